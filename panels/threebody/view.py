"""The 3D orbit view: bodies, fading trails and the orbital-plane grid, drawn from the model's recording at the
model's playback time, seen through the model's camera (mouse moves write the camera back to the model)."""

from __future__ import annotations

import numpy as np
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget
from vispy import scene

from panels.threebody.model import ThreeBodyModel
from panels.widgets import grid_segments, make_canvas, render_canvas

COLORS = np.array(
    [
        [1.0, 0.45, 0.2],
        [0.3, 0.75, 1.0],
        [0.55, 1.0, 0.35],
        [1.0, 0.85, 0.3],
        [0.85, 0.4, 1.0],
        [1.0, 0.35, 0.55],
    ]
)
STALE_STYLE = "background: #7a5a00; color: white; padding: 3px;"


def body_colors(n: int) -> np.ndarray:
    return COLORS[np.arange(n) % len(COLORS)]


def plane_grid(extent: float) -> np.ndarray:
    """The orbital-plane grid (z = 0) covering about twice ``extent`` in x and y."""
    half = 2.0 * max(float(extent), 1e-6)
    xy = grid_segments((-half, -half), (half, half), lines=10)
    return np.column_stack([xy, np.zeros(len(xy), np.float32)])


class ReportingCamera(scene.TurntableCamera):
    """A turntable camera that reports every view change (mouse drag, wheel, code) to ``on_change``."""

    def __init__(self, on_change, **kw) -> None:
        self._on_change = None
        super().__init__(**kw)
        self._on_change = on_change

    def view_changed(self) -> None:
        super().view_changed()
        if self._on_change is not None:
            self._on_change()


class OrbitView(QWidget):
    """A stale banner (outside the rendered image) over the vispy canvas."""

    def __init__(self, model: ThreeBodyModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.stale_label = QLabel("")
        self.stale_label.setStyleSheet(STALE_STYLE)
        self.stale_label.setWordWrap(True)
        self.stale_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.stale_label.hide()
        self.canvas = make_canvas(size=(640, 480))
        self.view = self.canvas.central_widget.add_view()
        self._applying_camera = True  # the camera reports its own set-up: not a user's move
        self.view.camera = ReportingCamera(self._camera_moved, fov=40)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stale_label)
        lay.addWidget(self.canvas.native, 1)

        self.trails = scene.visuals.Line(
            pos=np.zeros((2, 3), np.float32),
            color=np.ones((2, 4), np.float32),
            connect="segments",
            method="gl",
            width=2,
            parent=self.view.scene,
            antialias=False,
        )
        self.trails.set_gl_state("translucent", depth_test=False)
        self._trail_key: tuple[int, int] | None = None
        self.bodies = scene.visuals.Markers(parent=self.view.scene)
        self.bodies.set_gl_state("translucent", depth_test=False)
        self.label = scene.visuals.Text(
            "", color="white", font_size=9, anchor_x="left", anchor_y="bottom", parent=self.canvas.scene
        )
        self.label.pos = (8, 24)
        # a plain segment grid (vispy's GridLines shades every pixel: ~75 ms a frame on a software rasterizer)
        self.grid = scene.visuals.Line(
            pos=plane_grid(1.0),
            connect="segments",
            color=(1, 1, 1, 0.08),
            method="gl",
            parent=self.view.scene,
        )
        self.grid.set_gl_state("translucent", depth_test=False)
        self.grid.order = -1

        ev = model.events
        for name in ("reset", "history", "frame", "restored"):
            ev.connect(name, self.redraw)
        ev.connect("params", self._on_params)
        ev.connect("camera", self._on_camera)
        ev.connect("stale", self._on_stale)
        self._on_camera(source=None)
        self.redraw()

    # -- model -> view ------------------------------------------------------------------------------------
    def _on_params(self, changed, **_) -> None:
        if "trail" in changed:
            self.redraw()

    def _on_stale(self, why: str = "", **_) -> None:
        self.stale_label.setText(why)
        self.stale_label.setVisible(bool(why))

    def _on_camera(self, source=None, **_) -> None:
        if source is self:
            return
        cam, c = self.model.camera, self.view.camera
        self._applying_camera = True
        try:
            c.center = tuple(cam.center)
            c.distance = None
            c.scale_factor = cam.distance
            c.azimuth = cam.azimuth
            c.elevation = cam.elevation
            self.grid.set_data(pos=plane_grid(float(np.max(np.abs(self.model.system.pos)))))
        finally:
            self._applying_camera = False
        self.canvas.update()

    def _camera_moved(self) -> None:
        if self._applying_camera:
            return
        c = self.view.camera
        try:
            self.model.set_camera(
                source=self,
                azimuth=float(c.azimuth),
                elevation=float(c.elevation),
                distance=float(c.scale_factor),
                center=[float(v) for v in c.center],
            )
        except ValueError:  # zoomed beyond the camera's range: the view follows the model's camera again
            self._on_camera(source=None)

    def redraw(self, **_) -> None:
        self.draw_frame(self.model.frame)

    def draw_frame(self, f: int) -> None:
        m, rec = self.model, self.model.rec
        f = int(np.clip(f, 0, len(rec) - 1))
        pos = rec.pos[f]
        n = pos.shape[0]
        cols = body_colors(n)
        size = 10.0 + 14.0 * np.cbrt(rec.mass / rec.mass.max())
        self.bodies.set_data(
            pos.astype(np.float32), size=size, face_color=np.c_[cols, np.ones(n)], edge_width=0
        )
        k = int(min(m.params.trail, f + 1))
        if k >= 2:
            seg = rec.pos[f - k + 1 : f + 1]  # (k, n, 3)
            pts = np.transpose(seg, (1, 0, 2)).reshape(-1, 3).astype(np.float32)
            if self._trail_key != (n, k):  # colours and connectivity only change with (n, k)
                alpha = np.linspace(0.0, 1.0, k) ** 1.5
                rgba = np.concatenate([np.repeat(cols, k, 0), np.tile(alpha, n)[:, None]], 1).astype(
                    np.float32
                )
                base = (np.arange(n)[:, None] * k + np.arange(k - 1)[None, :]).ravel()
                conn = np.stack([base, base + 1], 1).astype(np.uint32)
                self._trail_key = (n, k)
                self.trails.set_data(pos=pts, color=rgba, connect=conn)
            else:
                self.trails.set_data(pos=pts)
            self.trails.visible = True
        else:
            self.trails.visible = False
        de = rec.rel_energy_error()[f]
        txt = f"t = {rec.t[f]:.3f}   |dE/E| = {abs(de):.2e}   steps = {rec.steps}"
        if rec.status and rec.status != "ok":
            txt += f"   {rec.status}"
        self.label.text = txt
        self.canvas.update()

    # -- images -------------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int], frame: int | None = None) -> np.ndarray:
        """The view at ``size`` (and at recording sample ``frame``; None: the model's time) as RGBA uint8.

        vispy's render(size=...) stretches the on-screen viewport and loses markers and lines when the aspect
        differs, so the canvas is resized for the off-screen pass and restored afterwards."""
        c = self.canvas
        old = c.size
        w, h = int(size[0]), int(size[1])
        try:
            c.size = (w, h)
            if frame is not None:
                self.draw_frame(frame)
            img = c.render(alpha=True) if tuple(c.size) == (w, h) else render_canvas(c, (w, h))
            img = np.ascontiguousarray(img[..., :4]).astype(np.uint8)
            if img.shape[:2] != (h, w):  # the window system refused the size: resample
                yi = (np.arange(h) * img.shape[0] / h).astype(int)
                xi = (np.arange(w) * img.shape[1] / w).astype(int)
                img = img[yi][:, xi]
        finally:
            c.size = old
            if frame is not None:
                self.redraw()
        return img
