"""vispy canvases as native GL child windows: on screen, resizable at once, grabbed with their pixels."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

pytestmark = pytest.mark.gl


@pytest.fixture
def host(qtbot):
    from vispy import scene

    from app.gl_window import CanvasBackendWindow

    top = QWidget()
    qtbot.addWidget(top)
    lay = QVBoxLayout(top)
    lay.addWidget(QLabel("above"))
    canvas = scene.SceneCanvas(bgcolor=(0.0, 0.0, 1.0, 1.0), size=(200, 150), show=False)
    assert isinstance(canvas._backend, CanvasBackendWindow)
    view = canvas.central_widget.add_view()
    view.camera = scene.PanZoomCamera(rect=(0, 0, 1, 1))
    rect = scene.visuals.Rectangle(center=(0.5, 0.5), width=0.5, height=0.5, color="red", parent=view.scene)
    lay.addWidget(canvas.native)
    top.resize(400, 300)
    top.show()
    qtbot.waitExposed(top)
    qtbot.waitUntil(canvas._backend.isExposed, timeout=10_000)  # the GL window can follow its container late
    yield top, canvas, view, rect
    canvas.close()


def test_canvas_is_a_native_window_in_a_widget(host, qtbot):
    top, canvas, view, _ = host
    assert isinstance(canvas.native, QWidget) and top.isAncestorOf(canvas.native)
    draws = []
    canvas.events.draw.connect(lambda ev: draws.append(1))
    canvas.update()
    qtbot.waitUntil(lambda: len(draws) > 0, timeout=3000)
    # the canvas fills its place in the layout
    qtbot.waitUntil(
        lambda: tuple(canvas.size) == (canvas.native.width(), canvas.native.height()), timeout=3000
    )


def test_size_change_relays_out_the_scene_at_once(host):
    _, canvas, view, _ = host
    old = tuple(canvas.size)
    canvas.size = (320, 240)
    assert tuple(canvas.size) == (320, 240) and tuple(view.size) == (320, 240)
    img = canvas.render()
    assert img.shape[:2] == (240, 320)
    canvas.size = old
    assert tuple(view.size) == old


def test_grab_widget_contains_the_canvas_pixels(host, qtbot):
    from app.gl_window import grab_widget

    top, canvas, _, _ = host
    qtbot.wait(50)
    img = grab_widget(top)
    arr = np.ndarray((img.height(), img.bytesPerLine() // 4, 4), np.uint8, img.constBits())[:, : img.width()]
    origin = canvas.native.mapTo(top, canvas.native.rect().center())
    centre = arr[origin.y(), origin.x(), :3]
    assert tuple(centre) == (255, 0, 0)  # the red rectangle in the middle of the canvas
    corner = canvas.native.mapTo(top, canvas.native.rect().topLeft())
    assert tuple(arr[corner.y() + 2, corner.x() + 2, :3]) == (0, 0, 255)  # blue background


def test_paint_now_draws_synchronously(host):
    from app.gl_window import paint_now

    _, canvas, _, _ = host
    draws = []
    canvas.events.draw.connect(lambda ev: draws.append(time.perf_counter()))
    for _ in range(3):
        paint_now(canvas)
    assert len(draws) == 3
