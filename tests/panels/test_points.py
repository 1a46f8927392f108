"""PointImage: dots land on the pixels GL would light, overlaps and the underlay composite as GL blends."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gl


@pytest.fixture
def scene_1px(qtbot):
    """A 64x48 canvas, on screen in a widget as in the panels, whose camera maps one data unit to one pixel."""
    from PySide6.QtWidgets import QVBoxLayout, QWidget
    from vispy import scene

    from panels.points import PointImage
    from panels.widgets import render_canvas

    top = QWidget()
    qtbot.addWidget(top)
    canvas = scene.SceneCanvas(bgcolor="black", size=(64, 48), show=False)
    canvas.native.setFixedSize(64, 48)
    QVBoxLayout(top).addWidget(canvas.native)
    top.show()
    qtbot.waitExposed(top)
    view = canvas.central_widget.add_view()
    view.camera = scene.PanZoomCamera()
    view.camera.rect = (0, 0, 64, 48)  # after the camera has its view
    vis = PointImage(size=3, background=(0.0, 0.0, 0.0, 1.0), parent=view.scene)
    yield vis, lambda size=(64, 48): render_canvas(canvas, size)
    canvas.close()


def test_dots_cover_their_pixels_and_later_dots_win(scene_1px):
    vis, render = scene_1px
    vis.set_data(
        np.array([[10.5, 20.5], [11.5, 20.5]]), color=np.array([[1, 0, 0, 1], [0, 1, 0, 1]], np.float32)
    )
    img = render()[::-1]  # rows from the bottom, as data y
    lit = np.argwhere(img[..., :3].sum(-1) > 0)
    assert {tuple(p) for p in lit} == {(y, x) for y in (19, 20, 21) for x in (9, 10, 11, 12)}
    assert tuple(img[20, 9, :3]) == (255, 0, 0)  # only the first dot
    assert tuple(img[20, 10, :3]) == (0, 255, 0)  # both: the later one is on top
    # alpha pre-blended over the background
    vis.set_data(np.array([[30.5, 30.5]]), color=np.array([[1.0, 1.0, 1.0, 0.5]], np.float32))
    assert abs(int(render()[::-1][30, 30, 0]) - 128) <= 1


def test_underlay_matches_gl_blending(scene_1px):
    vis, render = scene_1px
    vis.set_data(np.zeros((0, 2)), color=np.zeros((0, 4)))
    vis.set_underlay(np.array([[5.5, 5.5], [5.5, 5.5], [40.5, 5.5]]), color=(1.0, 1.0, 1.0, 0.5), size=1)
    img = render()[::-1]
    assert abs(int(img[5, 5, 0]) - 191) <= 1  # two dots: 1 - (1 - 0.5)^2 = 0.75
    assert abs(int(img[5, 40, 0]) - 128) <= 1
    assert np.count_nonzero(img[..., 0]) == 2
