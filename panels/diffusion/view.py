"""The particle view: draws what :class:`DiffusionModel` holds and follows its events.

One point-image visual for the particles (coloured by where they end up) with the target samples stamped
underneath, optional trajectory lines, or for the 64-D digits an image grid of the current state. The camera
auto-zooms to the robust extent of the particles, so heavy PFGM++ prior tails do not squash the picture;
non-finite particles are flagged and not drawn. Shift + drag adds points to the drawn point set.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget
from vispy import scene
from vispy.color import Color

from backends.diffusion.live import state_at
from panels.points import PointImage
from panels.widgets import make_canvas, render_canvas

from .model import DiffusionModel

BACKGROUND = "#0e1116"
STALE_STYLE = "background: #7a4a00; color: white; padding: 3px 8px;"
DIGIT_DIM = 64  # 8x8 digits are drawn as an image grid; other data as points (their first two columns)
LABEL_HZ = 10.0  # the Qt read-out is re-laid out at most this often while playing (text layout is slow)


def hue_colors(final: np.ndarray) -> np.ndarray:
    """RGBA per particle from the angle of its final position around the centre (so you see who goes where)."""
    c = final - np.nanmean(final, axis=0)
    ang = (np.arctan2(c[:, 1], c[:, 0]) / (2 * np.pi)) % 1.0
    h6 = ang * 6
    x = 1 - np.abs(h6 % 2 - 1)
    z = np.zeros_like(ang)
    o = np.ones_like(ang)
    i = np.floor(h6).astype(int) % 6
    r = np.choose(i, [o, x, z, z, x, o])
    g = np.choose(i, [x, o, o, x, z, z])
    b = np.choose(i, [z, z, x, o, o, x])
    rgb = 0.25 + 0.75 * np.stack([r, g, b], 1)
    return np.concatenate([rgb, np.full((len(final), 1), 0.85)], 1).astype(np.float32)


def digit_grid(x: np.ndarray, cols: int = 8) -> np.ndarray:
    """(n, 64) in ~[-1, 1] -> a tiled grey image (rows*9-1, cols*9-1) in [0, 1]."""
    n = min(len(x), cols * cols)
    rows = max(1, math.ceil(n / cols))
    img = np.full((rows * 9 - 1, cols * 9 - 1), 0.15, np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        tile = np.nan_to_num(x[k].reshape(8, 8), nan=0.0, posinf=1.0, neginf=-1.0)
        img[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = np.clip((tile + 1) / 2, 0, 1)
    return img


def particle_colors(model: DiffusionModel) -> np.ndarray | None:
    res = model.result
    if res is None or res.samples.shape[1] < 2:
        return None
    return hue_colors(np.where((~res.bad)[:, None], res.samples, 0.0)[:, :2])


class FlowView(QWidget):
    """The read-out line, the stale marker and the vispy canvas, all drawn from the model."""

    def __init__(self, model: DiffusionModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.canvas = make_canvas(bgcolor=BACKGROUND, size=(640, 640))
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = scene.PanZoomCamera(aspect=1)
        self.view.camera.rect = (-3, -3, 6, 6)
        # particles and target samples are stamped into one opaque image (panels/points.py says why)
        self.particles = PointImage(size=4, background=Color(BACKGROUND).rgba, parent=self.view.scene)
        self.lines = scene.visuals.Line(parent=self.view.scene, color=(1, 1, 1, 0.12), width=1)
        self.lines.visible = False
        self.particles.order, self.lines.order = 0, 1
        self.image = scene.visuals.Image(
            np.zeros((8, 8), np.float32), cmap="grays", clim=(0, 1), parent=self.view.scene
        )
        self.image.visible = False
        # the read-out is a Qt label on screen (vispy text costs ~5 ms a frame on llvmpipe); the same text is
        # drawn into the canvas only for exports
        self.export_label = scene.visuals.Text(
            "",
            color="white",
            font_size=9,
            anchor_x="left",
            anchor_y="center",
            parent=self.canvas.scene,
            pos=(10, 14),
        )
        self.export_label.visible = False
        self.frame_info = QLabel("")
        self.frame_info.setStyleSheet(f"background: {BACKGROUND}; color: white; padding: 3px 8px;")
        self.marker = QLabel("")
        self.marker.setObjectName("diffusion_stale")
        self.marker.setStyleSheet(STALE_STYLE)
        self.marker.setVisible(False)
        for label in (self.frame_info, self.marker):  # long text wraps or is cut, never widens the view
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.frame_info)
        lay.addWidget(self.marker)
        lay.addWidget(self.canvas.native, 1)
        self._colors: np.ndarray | None = None
        self._shown_mask: tuple | None = None  # (colours, mask) the point visual holds
        self._underlay = None  # the target array now stamped under the particles
        self._zoom_ref = None  # (target, centre, radius): the target never moves
        self._label_clock = 0.0
        self.playing = False  # set by the transport: throttles the Qt read-out
        self._drawing = False
        self.view.scene.transform.changed.connect(self._camera_moved)
        self.canvas.events.mouse_press.connect(self._on_mouse)
        self.canvas.events.mouse_move.connect(self._on_mouse)
        ev = model.events
        ev.connect("result", self._on_result)
        ev.connect("frame", lambda **_: self.draw())
        ev.connect("dataset", lambda **_: self.draw())
        ev.connect("stale", self._on_stale)
        ev.connect("params", self._on_params)
        ev.connect("restored", self._on_restored)

    # -- model events -------------------------------------------------------------------------------------
    def _on_result(self, **_) -> None:
        self._colors = particle_colors(self.model)
        self._shown_mask = None
        self.draw()

    def _on_params(self, changed: set[str]) -> None:
        if changed & {"lines", "target", "autozoom", "dataset"}:
            self.draw()

    def _on_stale(self, why: str) -> None:
        self.marker.setText(f"stale: {why}" if why else "")
        self.marker.setVisible(bool(why))

    def _on_restored(self, **_) -> None:
        self._on_result()
        cam = self.model.camera
        if cam is not None and not self.model.params.autozoom and not self.model.is_image():
            self.view.camera.rect = cam

    def _camera_moved(self, _ev=None) -> None:
        if not self._drawing and not self.model.is_image():
            r = self.view.camera.rect
            self.model.camera = (float(r.left), float(r.bottom), float(r.width), float(r.height))

    # -- drawing ------------------------------------------------------------------------------------------
    def draw(self) -> None:
        m, p = self.model, self.model.params
        is_img = m.is_image()
        self.image.visible = is_img
        self.particles.visible = not is_img
        target = m.target() if (not is_img and p.target) else None
        if target is not self._underlay:
            self._underlay = target
            self.particles.set_underlay(
                None if target is None else target[:, :2], color=(0.55, 0.6, 0.7, 0.35)
            )
        res = m.result
        dim = 0 if res is None else res.samples.shape[1]
        drawable = (
            dim == DIGIT_DIM if is_img else 2 <= dim != DIGIT_DIM
        )  # not: digits on a 2-D view, 1-D data
        if res is None or not drawable:
            self.particles.set_data(np.zeros((0, 2), np.float32), color=np.zeros((0, 4), np.float32))
            self._shown_mask = None
            self.lines.visible = False
            self.image.visible = False
            self._set_info("")
            self.canvas.update()
            return
        x = state_at(res.trajectory, m.frame)
        self._drawing = True
        try:
            if is_img:
                self._draw_digits(x)
            else:
                self._draw_points(x)
        finally:
            self._drawing = False
        self._camera_moved()
        self._set_info(m.frame_label())
        self.canvas.update()

    def _draw_digits(self, x: np.ndarray) -> None:
        inv = self.model.inverse
        if inv is not None:
            blocks = [digit_grid(b, cols=4) for b in (inv.measured, x, inv.dps, inv.truth)]
            gap = np.full((blocks[0].shape[0], 4), 0.05, np.float32)
            img = np.concatenate([blocks[0], gap, blocks[1], gap, blocks[2], gap, blocks[3]], axis=1)
        else:
            img = digit_grid(x)
        self.image.set_data(np.flipud(img))
        self.view.camera.rect = (0, 0, img.shape[1], img.shape[0])

    def _draw_points(self, x: np.ndarray) -> None:
        m = self.model
        with np.errstate(invalid="ignore"):
            fin = ~m.result.bad & np.all(np.isfinite(x[:, :2]), axis=1)
        pos = x[fin, :2].astype(np.float32)
        prev = self._shown_mask
        if prev is None or prev[0] is not self._colors or not np.array_equal(prev[1], fin):
            # 4 px dots; 3 px above 10,000 particles (less clutter)
            self.particles.set_data(pos, color=self._colors[fin], size=4 if len(pos) <= 10_000 else 3)
            self._shown_mask = (self._colors, fin)
        else:
            self.particles.set_data(pos)
        if m.params.autozoom:
            self._autozoom(pos)
        elif m.camera is not None:
            self.view.camera.rect = m.camera
        self._draw_lines(~m.result.bad)

    def _autozoom(self, pos: np.ndarray) -> None:
        """Frame the target data and the robust extent of the particles (heavy prior tails are clipped).
        Percentiles of a fixed 1-in-k subsample: the same picture at a fraction of the cost per frame."""
        target = self.model.target()
        if target is not None:
            if self._zoom_ref is None or self._zoom_ref[0] is not target:
                ref = target[:, :2]
                c = np.median(ref, axis=0)
                self._zoom_ref = (target, c, float(np.percentile(np.abs(ref - c), 99.5)) * 1.15)
            _, center, data_r = self._zoom_ref
        else:
            center = np.median(pos, axis=0) if len(pos) else np.zeros(2)
            data_r = 0.0
        sub = pos[:: max(1, len(pos) // 4000)]
        r = float(np.percentile(np.abs(sub - center), 98)) * 1.1 if len(sub) else data_r
        r = max(r, data_r, 1e-3)
        self.view.camera.rect = (center[0] - r, center[1] - r, 2 * r, 2 * r)

    def _draw_lines(self, good: np.ndarray) -> None:
        m = self.model
        if not m.params.lines:
            self.lines.visible = False
            return
        traj = m.result.trajectory
        idx = np.flatnonzero(good)[:150]
        seg = traj[: int(math.ceil(m.frame)) + 1, idx, :2]  # (F, m, 2)
        if m.sampler_shown in ("heun", "ode") and len(seg) > 2:  # skip the Euler predictor states
            seg = np.concatenate([seg[:-1:2], seg[-1:]])
        if seg.shape[0] < 2 or len(idx) == 0:
            self.lines.visible = False
            return
        pts = np.transpose(seg, (1, 0, 2)).reshape(-1, 2).astype(np.float32)
        fcount = seg.shape[0]
        base = (np.arange(len(idx)) * fcount)[:, None] + np.arange(fcount - 1)[None]
        conn = np.stack([base.ravel(), base.ravel() + 1], 1)
        ok = np.all(np.isfinite(pts), axis=1)
        conn = conn[ok[conn[:, 0]] & ok[conn[:, 1]]]
        self.lines.set_data(pos=np.nan_to_num(pts), connect=conn)
        self.lines.visible = True

    def _set_info(self, text: str) -> None:
        now = time.perf_counter()
        at_end = self.model.frame >= self.model.last_frame
        if text != self.frame_info.text() and (
            at_end or not self.playing or now - self._label_clock > 1 / LABEL_HZ
        ):
            self.frame_info.setText(text)
            self._label_clock = now

    # -- export -------------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        """Off-screen render at ``size`` with the read-out (and a stale marker) drawn in; the scene is laid out
        for that size, then restored."""
        text = self.model.frame_label()
        if self.model.stale:
            text = f"{text}   [stale: {self.model.stale}]".strip()
        self.export_label.text = text
        self.export_label.visible = bool(text)
        old = tuple(self.canvas.size)
        target = (int(size[0]), int(size[1]))
        cam = self.view.camera.rect
        try:
            if old == target:
                return render_canvas(self.canvas, size)
            self.canvas.size = target
            self.canvas.central_widget.size = target
            self.draw()
            return render_canvas(self.canvas, size)
        finally:
            self.export_label.visible = False
            if old != target:
                self.canvas.size = old
                self.canvas.central_widget.size = old
                self.view.camera.rect = cam
                self.draw()

    # -- drawing points with the mouse --------------------------------------------------------------------
    def _on_mouse(self, ev) -> None:
        if (
            self.model.params.dataset != "points"
            or ev.button != 1
            or "Shift" not in [k.name for k in ev.modifiers]
        ):
            return
        if ev.type == "mouse_move" and not ev.is_dragging:
            return
        tr = self.canvas.scene.node_transform(self.view.scene)
        self.model.add_points(np.asarray(tr.map(ev.pos)[:2], dtype=np.float32)[None])
        self.draw()
        ev.handled = True
