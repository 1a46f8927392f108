"""The field view: a vispy float-texture image (colormap and limits change on the GPU) with arrows, probe and
line overlays, a Qt title, a stale marker and a colour bar around it. It draws what the model holds, listens to
its events and turns mouse gestures into calls the panel wires up (paint, probe, line)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from panels.widgets import ColorBar, make_canvas

from .figure import get_cmap, quiver_segments
from .model import PDEModel

TEXT_EVERY_S = 0.3  # while running, title and colour limits refresh at a few Hz (text layout is costly)


class FieldView(QWidget):
    """Left-drag paints, right-click (or Ctrl+click) places the probe, Shift+drag draws the line probe."""

    def __init__(self, model: PDEModel, parent=None) -> None:
        super().__init__(parent)
        from vispy import scene

        self.model = model
        self.on_paint: Callable[[float, float], None] = lambda x, y: None
        self.on_probe: Callable[[float, float], None] = model.set_probe
        self.on_line: Callable[[tuple, tuple], None] = model.set_line
        self.canvas = make_canvas(bgcolor="#ffffff", size=(720, 600))
        self.view = self.canvas.central_widget.add_view(border_color=None)
        self.view.camera = scene.PanZoomCamera(rect=(0, 0, 1, 1), aspect=1.0, interactive=False)
        self.image = scene.visuals.Image(
            np.zeros((8, 8), np.float32), texture_format="auto", cmap="viridis", clim=(-1, 1),
            parent=self.view.scene, interpolation="nearest",
        )  # fmt: skip
        self.quiver = scene.visuals.Arrow(
            pos=np.zeros((2, 2), np.float32), connect="segments", color="black", width=1.2, arrow_size=5.0,
            arrow_type="triangle_30", arrow_color="black", parent=self.view.scene,
        )  # fmt: skip
        self.quiver.visible, self.quiver.order = False, 5
        self.probe_marker = scene.visuals.Markers(parent=self.view.scene)
        self.probe_marker.order = 10
        self.probe_marker.set_gl_state("translucent", depth_test=False)
        self.line_vis = scene.visuals.Line(pos=np.zeros((2, 2), np.float32), color="black", width=2)
        self.line_vis.parent, self.line_vis.order, self.line_vis.visible = self.view.scene, 9, False
        self.line_vis.set_gl_state("translucent", depth_test=False)
        self.title = QLabel("")
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title.setObjectName("pde_title")
        self.stale_label = QLabel("")
        self.stale_label.setObjectName("pde_stale")
        self.stale_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stale_label.setWordWrap(True)
        self.stale_label.setStyleSheet("color: #c00000; font-weight: bold")
        self.colorbar = ColorBar()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w, k in ((self.title, 0), (self.stale_label, 0), (self.canvas.native, 1), (self.colorbar, 0)):
            lay.addWidget(w, k)
        self.draws = 0
        self._text_clock = 0.0
        self._later = False  # a catch-up draw is scheduled
        #: whether a live run feeds frames now (only then are texts throttled); the panel sets it
        self.is_live: Callable[[], bool] = lambda: False
        self._shown: dict = {}  # what the GL objects hold now (cmap, clim, n, probe), to skip redundant uploads
        self._drag: tuple[float, float] | None = None
        self._painting = False
        self.canvas.events.mouse_press.connect(self._on_press)
        self.canvas.events.mouse_move.connect(self._on_move)
        self.canvas.events.mouse_release.connect(self._on_release)
        self.canvas.events.draw.connect(self._count_draw)
        ev = model.events
        ev.connect("frame", lambda **_: self.draw(live=True))
        for name in ("params", "darcy", "reset", "restored", "probe", "line"):
            ev.connect(name, lambda **_: self.draw())
        ev.connect("stale", lambda why, **_: self._show_stale(why))
        self._show_stale(model.stale)
        self.draw()

    def _count_draw(self, _event) -> None:
        self.draws += 1

    def _show_stale(self, why: str) -> None:
        self.stale_label.setText(f"stale: {why}" if why else "")
        self.stale_label.setVisible(bool(why))

    # -- drawing --------------------------------------------------------------------------------------------
    def draw(self, live: bool = False) -> None:
        """Draw the model's field. ``live``: texts and colour limits refresh at a few Hz only."""
        m = self.model
        f, label = m.display()
        now = time.perf_counter()
        slow = not (live and self.is_live()) or now - self._text_clock > TEXT_EVERY_S
        shown = f is not None
        self.image.visible = self.probe_marker.visible = shown
        self.colorbar.setVisible(shown)
        if not shown:
            self.quiver.visible = self.line_vis.visible = False
            self.title.setText(m.title())
            self.canvas.update()
            return
        if slow or "clim" not in self._shown:
            self._set_colours(*m.cmap_and_clim(f))
        self.image.set_data(np.ascontiguousarray(f, dtype=np.float32))
        if f.shape[0] != self._shown.get("n"):
            from vispy.visuals.transforms import STTransform

            self._shown["n"] = f.shape[0]
            self.image.transform = STTransform(scale=(1.0 / f.shape[0],) * 2)
        if slow:
            self._text_clock = now
            self.colorbar.set_label(label)
            self.title.setText(m.title())
        elif not self._later:  # the last live frame's title and limits follow shortly
            self._later = True
            QTimer.singleShot(int(TEXT_EVERY_S * 1000), self, self._catch_up)
        vel = m.current.get("velocity") if (m.current is not None and m.params.model != "darcy") else None
        self.quiver.visible = bool(m.params.quiver and vel is not None)
        if self.quiver.visible:
            seg = quiver_segments(*vel)
            self.quiver.set_data(pos=seg, arrows=np.hstack([seg[0::2], seg[1::2]]))
        if m.probe != self._shown.get("probe"):
            self._shown["probe"] = m.probe
            pos = np.array([m.probe], np.float32)
            self.probe_marker.set_data(pos, face_color="yellow", edge_color="black", size=10, symbol="x")
        if self._drag is None:
            self._show_line(m.line)
        self.canvas.update()

    def _catch_up(self) -> None:
        self._later = False
        self.draw()

    def _set_colours(self, cmap: str, clim: tuple[float, float]) -> None:
        if cmap != self._shown.get("cmap"):
            self._shown["cmap"] = cmap
            obj = get_cmap(cmap)
            self.image.cmap = obj
            self.colorbar.set_colormap(obj.map(np.linspace(0.0, 1.0, 256)))
        if clim != self._shown.get("clim"):
            self._shown["clim"] = clim
            self.image.clim = clim
            self.colorbar.set_limits(*clim)

    def _show_line(self, line) -> None:
        self.line_vis.visible = line is not None and self.model.params.model != "darcy"
        if line is not None:
            self.line_vis.set_data(pos=np.asarray(line, np.float32))
        self.canvas.update()

    # -- mouse ----------------------------------------------------------------------------------------------
    def to_unit(self, pos) -> tuple[float, float] | None:
        """Canvas pixel -> unit-square coordinates of the field (None outside it)."""
        x, y = self.canvas.scene.node_transform(self.view.scene).map(pos)[:2]
        return (float(x), float(y)) if 0 <= x <= 1 and 0 <= y <= 1 else None

    def _on_press(self, event) -> None:
        xy = self.to_unit(event.pos)
        if xy is None:
            return
        mods = [k.name for k in (event.modifiers or ())]
        if event.button == 1 and "Shift" in mods:
            self._drag = xy
        elif event.button == 2 or "Control" in mods:
            self.on_probe(*xy)
        elif event.button == 1:
            self._painting = True
            self.on_paint(*xy)

    def _on_move(self, event) -> None:
        if not event.is_dragging:
            return
        xy = self.to_unit(event.pos)
        if xy is not None and self._drag is not None:
            self._show_line((self._drag, xy))
        elif xy is not None and self._painting:
            self.on_paint(*xy)

    def _on_release(self, event) -> None:
        self._painting = False
        if self._drag is not None:
            end, start = self.to_unit(event.pos), self._drag
            self._drag = None
            if end is not None and np.hypot(end[0] - start[0], end[1] - start[1]) > 1e-3:
                self.on_line(start, end)
            else:
                self._show_line(self.model.line)
