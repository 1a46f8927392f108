"""The trajectory scene (vispy): draws what :class:`~panels.trajectory.model.TrajectoryModel` holds.

Every annotated person of the window (grey), the window's agents with their 8-step past (blue), the true
12-step future (green), the model's samples (orange) and the best-of-K sample (red). A focused pedestrian's
past, samples and truth are drawn on top, thick, and everything else is dimmed. The on-screen view listens to
the model and writes clicks (focus) and pan/zoom (camera) back to it; an off-screen view of any size renders
exports and video frames from the same model, with fonts and line widths scaled to the image.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QTimer

from panels.trajectory.model import TrajectoryModel
from panels.widgets import grid_segments, make_canvas, render_canvas

LEGEND = (
    "blue: past 3.2 s    green: true future 4.8 s    orange: predicted samples    red: best sample"
    "    grey: other people"
)
PAST, TRUTH, SAMPLE, BEST = (0.1, 0.3, 0.9), (0.1, 0.6, 0.2), (1.0, 0.55, 0.0), (0.85, 0.1, 0.1)
BASE_SIZE = (720, 540)  # the on-screen canvas size fonts and widths are designed for
CLICK_SLOP_PX = 5  # a press and release closer than this is a click (focus), not a pan


def segments(paths: np.ndarray) -> np.ndarray:
    """(M, T, 2) polylines -> (M * (T - 1) * 2, 2) segment endpoints (float32)."""
    if paths.size == 0:
        return np.zeros((0, 2), np.float32)
    a, b = paths[:, :-1], paths[:, 1:]
    return np.stack([a, b], axis=2).reshape(-1, 2).astype(np.float32)


def _rgba(rgb, alpha) -> np.ndarray:
    """(n, 4) colours of one hue with per-row alpha."""
    alpha = np.atleast_1d(np.asarray(alpha, float))
    return np.c_[np.tile(rgb, (len(alpha), 1)), alpha]


class TrajectoryView:
    """The vispy canvas drawing the model; listens to the model and writes clicks and pan/zoom back."""

    def __init__(self, model: TrajectoryModel) -> None:
        from vispy import scene

        self.model = model
        self.scale = 1.0  # fonts, margins, widths and marker sizes relative to BASE_SIZE
        self.canvas = make_canvas(bgcolor="#ffffff", size=BASE_SIZE)
        self.layout = self.canvas.central_widget.add_grid(margin=6)
        self.title = scene.Label("", color="black")
        self.layout.add_widget(self.title, row=0, col=0, col_span=2)
        self.legend = scene.Label(LEGEND, color=(0.25, 0.25, 0.25, 1))
        self.layout.add_widget(self.legend, row=1, col=0, col_span=2)
        self.view = self.layout.add_view(row=2, col=1, border_color=(0, 0, 0, 0.4))
        self.view.camera = scene.PanZoomCamera(aspect=1.0)
        axis = dict(text_color="black", axis_color="black", tick_color="black")
        self.yaxis = scene.AxisWidget(orientation="left", axis_label="y (m)", **axis)
        self.layout.add_widget(self.yaxis, row=2, col=0)
        self.xaxis = scene.AxisWidget(orientation="bottom", axis_label="x (m)", **axis)
        self.layout.add_widget(self.xaxis, row=3, col=1)
        self.xaxis.link_view(self.view)
        self.yaxis.link_view(self.view)
        parent = self.view.scene
        self.grid = scene.visuals.Line(connect="segments", color=(0, 0, 0, 0.10), method="gl", parent=parent)
        self.bystanders = scene.visuals.Markers(parent=parent)
        self.pred = scene.visuals.Line(connect="segments", parent=parent)
        self.past = scene.visuals.Line(connect="segments", parent=parent)
        self.truth = scene.visuals.Line(connect="segments", parent=parent)
        self.best = scene.visuals.Line(connect="segments", parent=parent)
        self.agents = scene.visuals.Markers(parent=parent)
        self.focus_pred = scene.visuals.Line(connect="segments", parent=parent)
        self.focus_lines = scene.visuals.Line(connect="segments", parent=parent)
        self.focus_marker = scene.visuals.Markers(parent=parent)
        layers = (self.grid, self.bystanders, self.pred, self.past, self.truth, self.best, self.agents)
        for order, v in enumerate(layers + (self.focus_pred, self.focus_lines, self.focus_marker)):
            v.order = order
            v.set_gl_state("translucent", depth_test=False)
        self._grid_for = None
        self._applying_camera = False
        self._held: tuple[int, int] | None = None  # size a video keeps the canvas at between frames
        self._restore_to: tuple[int, int] | None = None
        self._frame_cache: tuple[int | None, np.ndarray] | None = None  # (window, image) while held
        self._share_fonts()
        self.set_scale(1.0)
        self.canvas.events.mouse_release.connect(self._on_release)
        # the grid lays itself out while drawing: when that changed the view's box, the axes follow
        self._axes_box: tuple[float, float] | None = None
        self.canvas.events.draw.connect(self._after_draw, position="last")
        self.view.scene.events.transform_change.connect(self._on_camera_moved)
        for name in ("scene", "forecast", "frame", "camera", "params", "restored"):
            model.events.connect(name, self._model_changed)

    def _model_changed(self, **_info) -> None:
        self._frame_cache = None
        self.draw()

    def set_scale(self, s: float) -> None:
        """Fonts, margins and line widths for an image ``s`` times the base size (exports scale with size)."""
        self.scale = s
        self.layout.margin = 6 * s
        # vispy's grid solves its layout incrementally from the previous solution: an under-constrained
        # layout would then depend on the sizes rendered before. A fresh solver makes it a function of size.
        self.layout._need_solver_recreate = True
        self.title._text_visual.font_size, self.title.height_max = 9 * s, 24 * s
        self.legend._text_visual.font_size, self.legend.height_max = 8 * s, 22 * s
        for ax, label_margin, tick_margin in ((self.yaxis, 40, 5), (self.xaxis, 30, 14)):
            ax.axis.axis_font_size, ax.axis.tick_font_size = 9 * s, 8 * s
            ax.axis.axis_label_margin, ax.axis.tick_label_margin = label_margin * s, tick_margin * s
            ax.axis.major_tick_length, ax.axis.minor_tick_length = 10 * s, 5 * s
        self.yaxis.width_max = 72 * s
        self.xaxis.height_min = self.xaxis.height_max = 56 * s
        for line, width in ((self.pred, 1.5), (self.past, 3), (self.truth, 3), (self.best, 2.5)):
            line.set_data(width=width * s)
        self.focus_pred.set_data(width=2.5 * s)
        self.focus_lines.set_data(width=5 * s)

    def _share_fonts(self) -> None:
        """One glyph atlas for every text of this canvas: each vispy text visual otherwise rasterises its own
        glyphs on first draw (about 30 ms a glyph on a software renderer)."""
        from vispy.visuals.text.text import FontManager

        shared = FontManager(method="cpu")
        texts = [self.title._text_visual, self.legend._text_visual]
        for ax in (self.xaxis.axis, self.yaxis.axis):
            texts += [ax._text, ax._axis_label_vis]
        for t in texts:
            t._font_manager = shared  # vispy: "a temporary solution to use a global manager"
            t._update_font()

    # -- drawing -------------------------------------------------------------------------------------------
    def draw(self, window: int | None = None, **_info) -> None:
        """Draw window ``window`` (default: the model's) of the model's scene with the model's camera."""
        m = self.model
        w, fc = m.windows, m.forecast
        self._apply_camera()
        if w is None or fc is None or not m.num_windows:
            self._clear()
            self.title.text = m.title()
            self.canvas.update()
            return
        win = m.window if window is None else int(window)
        sl = w.window(win)
        obs, gt, samp, best = w.obs[sl], w.pred[sl], fc.samples[:, sl], fc.best[sl]
        S, n = samp.shape[:2]
        last = obs[:, -1]
        # futures start at the agent's last observed position
        fut = np.concatenate([np.broadcast_to(last[None, :, None], (S, n, 1, 2)), samp], axis=2)
        gt_full = np.concatenate([last[:, None], gt], axis=1)
        fi = m.focus_index(win)
        local = None if fi is None else fi - sl.start
        dim = np.ones(n)
        if local is not None:
            dim[:] = 0.25
            dim[local] = 0.0  # the focused agent is drawn by the focus layers
        T = fut.shape[2] - 1
        pred_alpha = np.tile(0.5 * dim if local is None else 0.06 * dim, S)
        self.pred.set_data(
            pos=segments(m.to_view(fut.reshape(S * n, -1, 2))),
            color=_rgba(SAMPLE, np.repeat(pred_alpha, 2 * T)),
        )
        best_paths = fut[best, np.arange(n)]
        self.best.set_data(
            pos=segments(m.to_view(best_paths)), color=_rgba(BEST, np.repeat(0.9 * dim, 2 * T))
        )
        self.past.set_data(
            pos=segments(m.to_view(obs)), color=_rgba(PAST, np.repeat(dim, 2 * (obs.shape[1] - 1)))
        )
        self.truth.set_data(pos=segments(m.to_view(gt_full)), color=_rgba(TRUTH, np.repeat(dim, 2 * T)))
        face = _rgba(PAST, np.where(dim > 0, dim, 1.0))
        self.agents.set_data(
            m.to_view(last).astype(np.float32), face_color=face, edge_color="white", size=9 * self.scale
        )
        self._draw_focus(fut, obs, gt_full, best, local)
        pts = m.scene.bystanders(win)
        if len(pts):
            alpha = 0.8 if local is None else 0.35
            self.bystanders.set_data(
                m.to_view(pts).astype(np.float32),
                face_color=(0.55, 0.55, 0.55, alpha),
                edge_color=None,
                size=6 * self.scale,
            )
        else:
            self.bystanders.set_data(np.zeros((1, 2), np.float32), size=0)
        self.title.text = m.title(win)
        self._sync_axes()

    def _draw_focus(self, fut, obs, gt_full, best, local) -> None:
        if local is None:
            for v in (self.focus_pred, self.focus_lines):
                v.set_data(pos=np.zeros((2, 2), np.float32), color=(0, 0, 0, 0))
            self.focus_marker.set_data(np.zeros((1, 2), np.float32), size=0)
            return
        m = self.model
        T = fut.shape[2] - 1
        mine = fut[:, local]  # (S, 13, 2): every sample of the focused agent
        self.focus_pred.set_data(pos=segments(m.to_view(mine)), color=(*SAMPLE, 0.85))
        paths = [
            m.to_view(obs[local][None]),
            m.to_view(gt_full[local][None]),
            m.to_view(mine[best[local]][None]),
        ]
        colors = [
            _rgba(PAST, np.ones(2 * (obs.shape[1] - 1))),
            _rgba(TRUTH, np.ones(2 * T)),
            _rgba(BEST, np.ones(2 * T)),
        ]
        self.focus_lines.set_data(
            pos=np.concatenate([segments(p) for p in paths]), color=np.concatenate(colors)
        )
        self.focus_marker.set_data(
            m.to_view(obs[local, -1][None]).astype(np.float32),
            face_color=BEST,
            edge_color="black",
            edge_width=1.5 * self.scale,
            size=15 * self.scale,
        )

    def _clear(self) -> None:
        for v in (self.pred, self.best, self.past, self.truth, self.focus_pred, self.focus_lines):
            v.set_data(pos=np.zeros((2, 2), np.float32), color=(0, 0, 0, 0))
        for v in (self.agents, self.bystanders, self.focus_marker):
            v.set_data(np.zeros((1, 2), np.float32), size=0)

    def _apply_camera(self) -> None:
        m = self.model
        image = m.image_mode()
        self.view.camera.flip = (False, image, False)  # image rows grow downwards
        self.xaxis.axis.axis_label = "image column (px)" if image else "x (m)"
        self.yaxis.axis.axis_label = "image row (px)" if image else "y (m)"
        key = (id(m.scene), image)
        if key != self._grid_for and m.scene is not None and m.windows.num_agents:
            x, y, cw, ch = m.fit_rect()
            span = max(cw, ch)
            lo, hi = np.array([x, y]) - 2 * span, np.array([x + cw, y + ch]) + 2 * span
            self.grid.set_data(pos=grid_segments(lo, hi, lines=50))  # room to pan and zoom
            self._grid_for = key
        if m.camera is not None and self._camera_rect() != m.camera:
            self._applying_camera = True
            try:
                self.view.camera.rect = m.camera
            finally:
                self._applying_camera = False

    def _camera_rect(self) -> tuple[float, float, float, float]:
        r = self.view.camera.rect
        return (float(r.left), float(r.bottom), float(r.width), float(r.height))

    def _after_draw(self, _event=None) -> None:
        box = tuple(float(v) for v in self.view.size)
        if box != self._axes_box:
            self._axes_box = box
            QTimer.singleShot(0, self._sync_axes)

    def _sync_axes(self) -> None:
        for ax in (self.xaxis, self.yaxis):
            ax._view_changed()  # keep tick labels in step with layout changes, not only camera moves
        self.canvas.update()

    # -- mouse ---------------------------------------------------------------------------------------------
    def _on_camera_moved(self, _event=None) -> None:
        if not self._applying_camera and self.model.camera is not None:
            self.model.set_camera(self._camera_rect())

    def canvas_to_view(self, pos) -> np.ndarray:
        """Canvas pixel (x, y) -> the drawing's units (metres or image pixels)."""
        tr = self.canvas.scene.node_transform(self.view.scene)
        return tr.map([pos[0], pos[1], 0, 1])[:2]

    def view_to_canvas(self, xy) -> np.ndarray:
        tr = self.view.scene.node_transform(self.canvas.scene)
        p = tr.map([xy[0], xy[1], 0, 1])
        return p[:2] / p[3]

    def _on_release(self, event) -> None:
        press = event.press_event
        if event.button != 1 or press is None:
            return
        if np.hypot(*(np.asarray(event.pos) - press.pos)) > CLICK_SLOP_PX:
            return  # a drag: the camera panned
        self.model.pick(self.canvas_to_view(event.pos))

    # -- output --------------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int], window: int | None = None, hold: bool = False) -> np.ndarray:
        """RGBA uint8 of ``size`` = (w, h) showing window ``window`` (default: the model's) with the model's
        camera, laid out for that size (fonts and widths scaled); then the on-screen layout is put back, or,
        with ``hold``, kept for the next frame of the same size until :meth:`release` (videos)."""
        c = self.canvas
        target = (int(size[0]), int(size[1]))
        if self._held == target:  # a video: a window lasts many frames; the model is unchanged between them
            if self._frame_cache is None or self._frame_cache[0] != window:
                self.draw(window)
                self._frame_cache = (window, render_canvas(c, target))
            return self._frame_cache[1].copy()
        self.release()
        old = tuple(c.size)
        try:
            c.size = target
            c.central_widget.size = target
            self.set_scale(max(0.25, min(target[0] / BASE_SIZE[0], target[1] / BASE_SIZE[1])))
            self.draw(window)
            render_canvas(c, target)  # the first pass lays the grid out for this size; the axes follow it
            self._sync_axes()
            return render_canvas(c, target)
        finally:
            self._restore_to = old
            if hold:
                self._held = target
            else:
                self.release()

    def release(self) -> None:
        """Put the on-screen layout back after renders at another size."""
        if self._restore_to is None:
            return
        old, self._restore_to, self._held, self._frame_cache = self._restore_to, None, None, None
        self.canvas.size = old
        self.canvas.central_widget.size = old
        self.set_scale(1.0)
        self.draw()
