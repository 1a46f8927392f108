"""Trajectory forecaster panel: ETH/UCY or a synthetic crowd, constant velocity or EigenTrajectory, live.

Left: the scene (vispy) at the last observed step of the current 20-step window: every annotated person
(grey), the window's agents with their 8-step past (blue), ground-truth 12-step future (green) and the model's
samples (orange, the best-of-K sample red). Click an agent to focus it. Right: controls and three plots
(eigen-trajectory basis vectors, agents and anchors in ET-coefficient space, training loss / validation
minFDE). Training runs in :mod:`app.worker`; the panel stays interactive and Stop keeps the best epoch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import worker
from app.export import check_writable, export_plot, save_npz, save_png, write_video
from backends.common import UserError
from backends.trajectory.baselines import constant_velocity, constant_velocity_samples
from backends.trajectory.data import (
    SCENES,
    Windows,
    load_homography,
    load_split,
    read_ethucy,
    scene_files,
    world_to_image,
)
from backends.trajectory.metrics import best_sample, summarize
from panels.base import ExportAction, Panel
from panels.widgets import (
    Field,
    ParamForm,
    PlayBar,
    fill_with_splitter,
    grid_segments,
    make_canvas,
    make_plot,
    render_canvas,
)

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_ROOT = ROOT / "assets" / "trajectory" / "synthetic"
BUNDLED_WEIGHTS = ROOT / "assets" / "trajectory" / "eigentrajectory_synthetic.pt"
SHARED_ETHUCY = ROOT.parent / "shared" / "data" / "ethucy"
SHARED_HOMOGRAPHY = ROOT.parent / "shared" / "data" / "ethucy_homography"
MODELS = ("eigentrajectory", "cv20", "cv")


@dataclass(frozen=True)
class TrajectoryParams:
    data: str = "auto"  # 'auto': bundled synthetic crowd, or ../shared/data/ethucy for ETH/UCY scenes
    scene: str = "synthetic"
    model: str = "eigentrajectory"
    k: int = 6
    anchors: int = 20
    seed: int = 0
    epochs: int = 20
    image_coords: bool = False  # draw in image pixels through the scene homography
    video_windows: int = 10  # windows (0.4 s each) per MP4 export, from the current one


def resolve_data(p: TrajectoryParams) -> Path:
    if p.data and p.data != "auto":
        return Path(p.data).expanduser()
    return SYNTHETIC_ROOT if p.scene == "synthetic" else SHARED_ETHUCY


class TrajectoryPanel(Panel):
    key = "trajectory"
    title = "Trajectory forecaster"
    open_filter = "Pedestrian tracks (*.txt *.csv)"
    kmeans_init = 10  # k-means restarts for the anchors (tests lower it)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._p = TrajectoryParams()
        self._test: Windows | None = None
        self._tracks = None  # raw rows of each test recording (for bystanders)
        self._opened: Path | None = None  # a file opened with File > Open instead of a dataset split
        self._samples: np.ndarray | None = None  # (S, N, 12, 2)
        self._best: np.ndarray | None = None
        self._models: dict[
            tuple, object
        ] = {}  # trained EigenTrajectory models by (data, scene, k, anchors, seed)
        self._history = None
        self._task = None
        self._live_model = None
        self._win = 0
        self._focus: int | None = None  # agent index (global) in focus
        self._H: np.ndarray | None = None
        self._metrics: dict = {}
        self._build_ui()
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(lambda: self.advance(1))
        self._load()

    # -- UI ---------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self._canvas = make_canvas(bgcolor="#ffffff", size=(720, 540))
        from vispy import scene

        grid = self._canvas.central_widget.add_grid(margin=6)
        self._title = scene.Label("", color="black", font_size=9)
        self._title.height_max = 24
        grid.add_widget(self._title, row=0, col=0, col_span=2)
        self._view = grid.add_view(row=2, col=1, border_color=(0, 0, 0, 0.4))
        self._view.camera = scene.PanZoomCamera(aspect=1.0)
        self._yaxis = scene.AxisWidget(
            orientation="left",
            axis_label="y (m)",
            axis_font_size=9,
            axis_label_margin=40,
            tick_label_margin=5,
            text_color="black",
            axis_color="black",
            tick_color="black",
        )
        self._yaxis.width_max = 60
        grid.add_widget(self._yaxis, row=2, col=0)
        self._xaxis = scene.AxisWidget(
            orientation="bottom",
            axis_label="x (m)",
            axis_font_size=9,
            axis_label_margin=30,
            tick_label_margin=14,
            text_color="black",
            axis_color="black",
            tick_color="black",
        )
        self._xaxis.height_min = 56
        self._xaxis.height_max = 56
        grid.add_widget(self._xaxis, row=3, col=1)
        self._legend = scene.Label(
            "blue: past 3.2 s    green: true future 4.8 s    orange: predicted samples    red: best sample"
            "    grey: other people    (click an agent to focus it)",
            color=(0.25, 0.25, 0.25, 1),
            font_size=8,
        )
        self._legend.height_max = 22
        grid.add_widget(self._legend, row=1, col=0, col_span=2)
        self._xaxis.link_view(self._view)
        self._yaxis.link_view(self._view)
        self._grid = scene.visuals.Line(
            pos=grid_segments((0, 0), (1, 1)),
            connect="segments",
            color=(0, 0, 0, 0.10),
            method="gl",
            parent=self._view.scene,
        )
        self._bystanders = scene.visuals.Markers(parent=self._view.scene)
        self._pred_lines = scene.visuals.Line(connect="segments", parent=self._view.scene, width=1.5)
        self._past_lines = scene.visuals.Line(connect="segments", parent=self._view.scene, width=3)
        self._gt_lines = scene.visuals.Line(connect="segments", parent=self._view.scene, width=3)
        self._best_lines = scene.visuals.Line(connect="segments", parent=self._view.scene, width=2.5)
        self._agents = scene.visuals.Markers(parent=self._view.scene)
        for order, v in enumerate(
            (
                self._grid,
                self._bystanders,
                self._pred_lines,
                self._past_lines,
                self._gt_lines,
                self._best_lines,
                self._agents,
            )
        ):
            v.order = order
            v.set_gl_state("translucent", depth_test=False)
        self._canvas.events.mouse_press.connect(self._on_click)
        self._canvas.events.resize.connect(lambda e: QTimer.singleShot(0, self._sync_axes))

        self.form = ParamForm(
            [
                Field(
                    "data",
                    "Dataset folder",
                    "text",
                    tooltip="'auto' = bundled synthetic crowd, or ../shared/data/ethucy for ETH/UCY scenes; "
                    "or a folder with <scene>/train|val|test/*.txt",
                ),
                Field("scene", "Scene (held out)", "choice", choices=("synthetic",) + SCENES),
                Field("model", "Model", "choice", choices=MODELS),
                Field("k", "ET rank k", "int", 1, 16),
                Field("anchors", "Anchors / samples", "int", 1, 50),
                Field("seed", "Seed", "int", 0, 10**6),
                Field("epochs", "Training epochs", "int", 1, 500),
                Field(
                    "image_coords",
                    "Image pixels (homography)",
                    "bool",
                    tooltip="draw in the scene video's pixel coordinates through ethucy_homography/<scene>/H.txt",
                ),
            ]
        )
        self.form.set_values(self._p.__dict__)
        self.form.changed.connect(self._on_param)
        self.train_button = QPushButton("Train EigenTrajectory")
        self.train_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.playbar = PlayBar(with_step=True)
        self.playbar.run_toggled.connect(self._on_play)
        self.playbar.step_clicked.connect(lambda: self.advance(1))
        self.playbar.scrubbed.connect(self._on_scrub)

        self.basis_plot = make_plot(
            "Eigen-trajectory basis (future, moving agents)",
            "future step (0.4 s)",
            "basis value (normalised units)",
        )
        self.coef_plot = make_plot(
            "Agents and anchors in ET space",
            "coefficient c1 (normalised units)",
            "coefficient c2 (normalised units)",
        )
        self.loss_plot = make_plot("Training", "epoch", "loss / minFDE (m)")

        for plot in (self.basis_plot, self.coef_plot, self.loss_plot):
            for side_name in ("left", "bottom"):
                plot.getPlotItem().getAxis(side_name).enableAutoSIPrefix(False)
        tabs = QTabWidget()
        tabs.addTab(self.basis_plot, "Basis")
        tabs.addTab(self.coef_plot, "ET space")
        tabs.addTab(self.loss_plot, "Training")
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.addWidget(self.form)
        row = QHBoxLayout()
        row.addWidget(self.train_button)
        row.addWidget(self.stop_button)
        sl.addLayout(row)
        sl.addWidget(self.info)
        sl.addWidget(tabs, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self._canvas.native, 1)
        ll.addWidget(self.playbar)
        fill_with_splitter(self, [left, side], [3, 2])

    # -- parameters -------------------------------------------------------------------------------------
    def params(self) -> TrajectoryParams:
        return self._p

    def set_params(self, cfg: TrajectoryParams) -> None:
        old = self._p
        self._p = cfg
        self.form.set_values(cfg.__dict__)
        if (old.data, old.scene) != (cfg.data, cfg.scene):
            self._load()
        else:
            self._predict()

    def _on_param(self, name: str, value) -> None:
        try:
            self.set_params(replace(self._p, **{name: value}))
        except UserError as exc:
            self.status.emit(str(exc))
            self.info.setText(str(exc))

    # -- data and predictions ---------------------------------------------------------------------------
    def _load(self) -> None:
        root = resolve_data(self._p)
        try:
            self._test = load_split(root, self._p.scene, "test")
            self._tracks = [read_ethucy(f).rows for f in scene_files(root, self._p.scene, "test")]
            self._opened = None
        except UserError as exc:
            self._test, self._tracks = None, None
            self._samples = None
            self.info.setText(str(exc))
            self.status.emit(str(exc))
            self._draw()
            return
        self._after_load()

    def _after_load(self) -> None:
        self._H = None
        if self._opened is None and self._p.scene in SCENES and SHARED_HOMOGRAPHY.is_dir():
            try:
                self._H = load_homography(SHARED_HOMOGRAPHY, self._p.scene)
            except UserError:
                self._H = None
        self._win = 0
        self._focus = None
        self.playbar.set_frames(self._test.num_windows, follow=False)
        self.playbar.slider.setValue(0)
        self._predict()
        self._fit_camera()

    def open_path(self, path: Path) -> None:
        """Show one recording: ETH/UCY ``frame ped x y`` text, or CSV with columns frame, ped, x, y at 2.5 fps
        (other layouts: ``visual-lab run trajectory --csv FILE --columns ... --fps ...``)."""
        from backends.trajectory.data import make_windows, read_csv_tracks

        p = Path(path)
        tracks = read_csv_tracks(p) if p.suffix.lower() == ".csv" else read_ethucy(p)
        w = make_windows(tracks)
        if w.num_windows == 0:
            raise UserError(f"{p}: no 20-step windows (0.4 s steps) with >= 2 pedestrians present throughout")
        self._test, self._tracks, self._opened = w, [tracks.rows], p
        self._after_load()
        self.status.emit(f"opened {p.name}: {w.num_windows} windows, {w.num_agents} agents")

    def _scene_label(self) -> str:
        return self._opened.name if self._opened is not None else self._p.scene

    def _model_key(self) -> tuple:
        return (str(resolve_data(self._p)), self._p.scene, self._p.k, self._p.anchors, self._p.seed)

    def _et_model(self):
        m = self._models.get(self._model_key())
        if m is None and self._p.scene == "synthetic" and BUNDLED_WEIGHTS.is_file():
            from backends.trajectory.eigentrajectory import ETModel

            try:
                m = ETModel.load(BUNDLED_WEIGHTS)
            except UserError:
                m = None
            if m is not None and (m.cfg.k, m.cfg.num_samples) == (self._p.k, self._p.anchors):
                self._models[self._model_key()] = m
            else:
                m = None
        return m

    def _predict(self) -> None:
        w = self._test
        if w is None:
            self._draw()
            return
        note = ""
        if self._p.model == "cv":
            self._samples = constant_velocity(w.obs)[None].astype(np.float32)
        elif self._p.model == "cv20":
            self._samples = constant_velocity_samples(
                w.obs, num_samples=self._p.anchors, seed=self._p.seed
            ).astype(np.float32)
        else:
            m = self._et_model()
            if m is None:
                self._samples = constant_velocity_samples(
                    w.obs, num_samples=self._p.anchors, seed=self._p.seed
                ).astype(np.float32)
                note = "no trained EigenTrajectory for these settings yet: showing CV-20; press Train. "
            else:
                self._samples = m.predict(w)
                self._history = m.history or self._history
        self._best = best_sample(self._samples, w.pred)
        self._metrics = summarize(self._samples, w.pred)
        self._metrics.update(
            {
                "opened_file": str(self._opened) if self._opened else None,
                "scene": self._p.scene,
                "model": self._p.model if not note else "cv20 (fallback)",
                "windows": w.num_windows,
                "data": str(resolve_data(self._p)),
            }
        )
        m = self._metrics
        self.info.setText(
            note + f"{self._scene_label()} test: {w.num_windows} windows, {w.num_agents} agents. "
            f"minADE/minFDE {m['minADE']:.3f}/{m['minFDE']:.3f} m, "
            f"single-sample ADE/FDE {m['ADE']:.3f}/{m['FDE']:.3f} m"
        )
        self._update_plots()
        self._draw()

    # -- drawing ----------------------------------------------------------------------------------------
    def _to_view(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        if self._p.image_coords and self._H is not None:
            q = world_to_image(self._H, xy)
            return q
        return xy

    @staticmethod
    def _segments(paths: np.ndarray) -> np.ndarray:
        """(M, T, 2) polylines -> (M * (T - 1) * 2, 2) segment endpoints."""
        if paths.size == 0:
            return np.zeros((0, 2), np.float32)
        a, b = paths[:, :-1], paths[:, 1:]
        return np.stack([a, b], axis=2).reshape(-1, 2).astype(np.float32)

    def _draw(self) -> None:
        w = self._test
        empty = np.zeros((0, 2), np.float32)
        if w is None or self._samples is None or w.num_windows == 0:
            for v in (self._pred_lines, self._best_lines, self._past_lines, self._gt_lines):
                v.set_data(pos=np.zeros((2, 2), np.float32), color=(0, 0, 0, 0))
            self._agents.set_data(np.zeros((1, 2), np.float32), size=0)
            self._bystanders.set_data(np.zeros((1, 2), np.float32), size=0)
            self._title.text = "no data"
            self._canvas.update()
            return
        sl = w.window(self._win)
        obs, gt = w.obs[sl], w.pred[sl]
        samp = self._samples[:, sl]  # (S, n, 12, 2)
        best = self._best[sl]
        last = obs[:, -1]
        # prepend the last observed point so futures start at the agent
        fut = np.concatenate(
            [np.broadcast_to(last[None, :, None], (samp.shape[0],) + last.shape[:1] + (1, 2)), samp], axis=2
        )
        gt_full = np.concatenate([last[:, None], gt], axis=1)
        focus = self._focus if self._focus is not None and sl.start <= self._focus < sl.stop else None
        S, n = fut.shape[:2]
        alpha = np.full((S, n), 0.5)
        if focus is not None:
            alpha[:] = 0.06
            alpha[:, focus - sl.start] = 0.6
        pred_paths = self._to_view(fut.reshape(S * n, -1, 2))
        seg = self._segments(pred_paths)
        col = np.tile(np.array([1.0, 0.55, 0.0, 1.0]), (len(seg), 1))
        col[:, 3] = np.repeat(alpha.reshape(-1), (fut.shape[2] - 1) * 2)
        self._pred_lines.set_data(pos=seg if len(seg) else empty, color=col if len(seg) else (0, 0, 0, 0))
        best_paths = self._to_view(fut[best, np.arange(n)])
        self._best_lines.set_data(pos=self._segments(best_paths), color=(0.85, 0.1, 0.1, 0.9))
        self._past_lines.set_data(pos=self._segments(self._to_view(obs)), color=(0.1, 0.3, 0.9, 1.0))
        self._gt_lines.set_data(pos=self._segments(self._to_view(gt_full)), color=(0.1, 0.6, 0.2, 1.0))
        face = np.tile(np.array([0.1, 0.3, 0.9, 1.0]), (n, 1))
        sizes = np.full(n, 9.0)
        if focus is not None:
            face[focus - sl.start] = (0.85, 0.1, 0.1, 1.0)
            sizes[focus - sl.start] = 14.0
        self._agents.set_data(
            self._to_view(last).astype(np.float32), face_color=face, edge_color="white", size=sizes
        )
        frame = w.frames[self._win, 7]
        others = np.zeros((1, 2), np.float32)
        osize = 0
        if self._tracks is not None:
            rows = self._tracks[int(w.source[self._win]) % len(self._tracks)]  # the window's own recording
            pts = rows[rows[:, 0] == frame][:, 2:4]
            if len(pts):
                others, osize = self._to_view(pts).astype(np.float32), 6
        self._bystanders.set_data(others, face_color=(0.55, 0.55, 0.55, 0.8), edge_color=None, size=osize)
        m = self._metrics
        unit = "px" if (self._p.image_coords and self._H is not None) else "m"
        self._view.camera.flip = (False, unit == "px", False)  # image rows grow downwards
        self._xaxis.axis.axis_label = f"x ({unit})" if unit == "m" else "image column (px)"
        self._yaxis.axis.axis_label = f"y ({unit})" if unit == "m" else "image row (px)"
        fa = ""
        if focus is not None:
            d = np.linalg.norm(samp[:, focus - sl.start] - gt[focus - sl.start][None], axis=-1)
            fa = (
                f"   focus ped {w.ped_ids[focus]:g}: minADE {d.mean(-1).min():.2f} m, "
                f"minFDE {d[:, -1].min():.2f} m"
            )
        self._title.text = (
            f"{self._scene_label()} · {m.get('model', self._p.model)} · window {self._win + 1}/"
            f"{w.num_windows} · frame {frame:g} (t = {self._win * 0.4:.1f} s) · {n} agents{fa}"
        )
        self._sync_axes()
        self._canvas.update()

    def _sync_axes(self) -> None:
        for ax in (self._xaxis, self._yaxis):
            ax._view_changed()  # keep tick labels in step with layout changes, not only camera moves
        self._canvas.update()

    def _fit_camera(self) -> None:
        w = self._test
        if w is None or w.num_agents == 0:
            return
        pts = self._to_view(np.concatenate([w.obs.reshape(-1, 2), w.pred.reshape(-1, 2)]))
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
        pad = 0.08 * (hi - lo).max() + 0.5
        self._view.camera.set_range(x=(lo[0] - pad, hi[0] + pad), y=(lo[1] - pad, hi[1] + pad), margin=0)
        span = (hi - lo).max() + 2 * pad
        self._grid.set_data(pos=grid_segments(lo - 2 * span, hi + 2 * span, lines=50))  # room to pan and zoom

    def _on_click(self, event) -> None:
        w = self._test
        if w is None or event.button != 1:
            return
        tr = self._view.scene.transform
        p = tr.imap(np.array([event.pos[0], event.pos[1], 0, 1]))[:2]
        sl = w.window(self._win)
        pts = self._to_view(w.obs[sl, -1])
        d = np.linalg.norm(pts - p[None], axis=1)
        scale = 1.0 if not (self._p.image_coords and self._H is not None) else 30.0
        i = int(np.argmin(d)) if len(d) else -1
        self._focus = sl.start + i if i >= 0 and d[i] < 1.0 * scale else None
        self._draw()

    def focus_agent(self, index: int | None) -> None:
        """Focus agent ``index`` (global agent index of the current windows) or clear the focus."""
        self._focus = None if index is None else int(index)
        self._draw()

    # -- plots ------------------------------------------------------------------------------------------
    def _update_plots(self) -> None:
        import pyqtgraph as pg

        m = self._models.get(self._model_key()) if self._p.model == "eigentrajectory" else None
        if m is None and self._p.model == "eigentrajectory":
            m = self._et_model()
        self.basis_plot.clear()
        self.coef_plot.clear()
        colors = [pg.intColor(i, hues=max(self._p.k, 2)) for i in range(16)]
        if m is not None:
            U = m.net.U_pred[0].numpy().reshape(m.cfg.pred_len, 2, m.cfg.k)
            t = np.arange(1, m.cfg.pred_len + 1)
            for j in range(m.cfg.k):
                self.basis_plot.plot(t, U[:, 0, j], pen=pg.mkPen(colors[j], width=2), name=f"u{j + 1} x")
                self.basis_plot.plot(
                    t,
                    U[:, 1, j],
                    pen=pg.mkPen(colors[j], width=1, style=Qt.PenStyle.DashLine),
                    name=f"u{j + 1} y",
                )
            if self._test is not None and self._test.num_agents:
                co = m.coefficients(self._test)
                mov = co["moving"]
                c = co["pred"][mov]
                if len(c) > 4000:
                    c = c[np.random.default_rng(0).choice(len(c), 4000, replace=False)]
                self.coef_plot.plot(
                    c[:, 0],
                    c[:, 1] if c.shape[1] > 1 else np.zeros(len(c)),
                    pen=None,
                    symbol="o",
                    symbolSize=3,
                    symbolBrush=(60, 90, 200, 90),
                    symbolPen=None,
                    name="test agents (future, moving)",
                )
                a = m.net.anchors[0].numpy()
                self.coef_plot.plot(
                    a[:, 0],
                    a[:, 1] if a.shape[1] > 1 else np.zeros(len(a)),
                    pen=None,
                    symbol="x",
                    symbolSize=12,
                    symbolBrush=(220, 40, 40),
                    symbolPen=(220, 40, 40),
                    name="anchors (k-means)",
                )
        else:
            self.basis_plot.getPlotItem().setTitle("Eigen-trajectory basis: train or load a model", color="k")
        self._update_loss_plot()

    def _update_loss_plot(self) -> None:
        import pyqtgraph as pg

        self.loss_plot.clear()
        h = self._history
        if h is None or not h.train_loss:
            return
        e = np.arange(1, len(h.train_loss) + 1)
        self.loss_plot.plot(
            e,
            np.asarray(h.train_loss),
            pen=pg.mkPen((40, 80, 200), width=2),
            symbol="o",
            symbolSize=5,
            name="train loss (coef + ADE + FDE)",
        )
        self.loss_plot.plot(
            e,
            np.asarray(h.val_minfde, dtype=float),
            pen=pg.mkPen((200, 60, 40), width=2),
            symbol="s",
            symbolSize=5,
            name="validation minFDE (m)",
        )

    # -- computation ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Train EigenTrajectory on the fold's train/val splits in a worker (cancellable)."""
        from backends.trajectory.eigentrajectory import STATIC_DIST, ETConfig

        root = resolve_data(self._p)
        try:
            cfg = ETConfig(
                k=self._p.k,
                num_samples=self._p.anchors,
                seed=self._p.seed,
                epochs=self._p.epochs,
                static_dist=STATIC_DIST.get(self._p.scene, 0.2),
                kmeans_init=self.kmeans_init,
            )
            cfg.validate()
        except UserError as exc:
            self.status.emit(str(exc))
            self.info.setText(str(exc))
            return
        key = self._model_key()
        self._history = None
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.info.setText("training EigenTrajectory: fitting descriptors and anchors ...")
        self._task = worker.submit(
            _train_job,
            cfg,
            root,
            self._p.scene,
            group=f"trajectory-train-{id(self)}",
            label="EigenTrajectory training",
            on_yield=self._on_train_yield,
            on_progress=self._on_train_progress,
            on_done=lambda m, key=key: self._on_trained(key, m),
            on_error=self._on_train_error,
        )

    def stop(self) -> None:
        task = self._task
        if task is None:
            return
        task.cancel()
        task.wait(30_000)
        self._task = None
        snap = self._history
        if (
            snap is not None
            and getattr(snap, "best_state", None) is not None
            and self._live_model is not None
        ):
            self._live_model.net.load_state_dict(snap.best_state)
            self._live_model.history = snap
            self._models[self._model_key()] = self._live_model
            self.status.emit(f"training stopped after {snap.epoch} epochs; best epoch kept")
        self._training_ui_done()
        self._predict()

    def _on_train_progress(self, fraction, message) -> None:
        if message:
            self.info.setText(f"training: {message}")

    def _on_train_yield(self, item) -> None:
        self._live_model = item.model
        self._history = item
        self._update_loss_plot()

    def _on_trained(self, key, model) -> None:
        self._task = None
        if model is not None:
            self._models[key] = model
            self._history = model.history
        self._training_ui_done()
        self._predict()
        self.status.emit("EigenTrajectory trained")

    def _on_train_error(self, msg: str) -> None:
        self._task = None
        self._training_ui_done()
        self.info.setText(f"training failed: {msg}")
        self.status.emit(msg)

    def _training_ui_done(self) -> None:
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def advance(self, steps: int) -> None:
        if self._test is None:
            self._load()
        if self._test is None or self._test.num_windows == 0:
            return
        self._win = (self._win + int(steps)) % self._test.num_windows
        self.playbar.slider.blockSignals(True)
        self.playbar.slider.setValue(self._win)
        self.playbar.slider.blockSignals(False)
        self._draw()

    def _on_play(self, on: bool) -> None:
        self._timer.start() if on else self._timer.stop()

    def _on_scrub(self, i: int) -> None:
        if self._test is not None and 0 <= i < self._test.num_windows:
            self._win = i
            self._draw()

    # -- output -----------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        """The view as shown, rendered at the canvas' own size (vispy re-lays out the axis grid at other
        sizes without refitting the camera), then scaled to ``size`` keeping the aspect (white margins)."""
        from PIL import Image

        w, h = int(size[0]), int(size[1])
        cw, ch = (int(v) for v in self._canvas.size)
        img = render_canvas(self._canvas, (cw, ch))
        if (cw, ch) == (w, h):
            return img
        s = min(w / cw, h / ch)
        nw, nh = max(1, round(cw * s)), max(1, round(ch * s))
        small = np.asarray(Image.fromarray(img).resize((nw, nh), Image.LANCZOS))
        out = np.full((h, w, 4), 255, np.uint8)
        y0, x0 = (h - nh) // 2, (w - nw) // 2
        out[y0 : y0 + nh, x0 : x0 + nw] = small
        return out

    def canvas(self):
        return self._canvas

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Scene PNG", ("png",), lambda p: save_png(p, self.render((1280, 960)))),
            ExportAction("Scene with predictions MP4", ("mp4", "gif"), self._write_video),
            ExportAction("Predictions of this window CSV", ("csv",), self._write_predictions),
            ExportAction("Predictions of the scene NPZ", ("npz",), self._write_predictions_npz),
            ExportAction("Metrics JSON", ("json",), self._write_metrics),
            ExportAction(
                "Training plot PNG/SVG/CSV", ("png", "svg", "csv"), lambda p: export_plot(self.loss_plot, p)
            ),
        ]

    def _write_video(self, path: Path) -> None:
        if self._test is None or self._test.num_windows == 0:
            raise UserError("no scene loaded: nothing to record")
        start = self._win
        n = min(int(self._p.video_windows), self._test.num_windows)

        def gen():
            for i in range(n):
                self._win = (start + i) % self._test.num_windows
                self._draw()
                yield render_canvas(self._canvas, tuple(int(v) for v in self._canvas.size))

        try:
            write_video(path, gen(), fps=5.0)
        finally:
            self._win = start
            self._draw()

    def _write_predictions(self, path: Path) -> None:
        """The current window as CSV: window, frame (last observed), ped, sample, step, x, y (m); sample -1 is
        the ground truth. (The whole scene goes to the NPZ export: CSV text of every sample is too slow.)"""
        w, s = self._test, self._samples
        if w is None or s is None:
            raise UserError("no predictions to export: load a scene first")
        p = check_writable(path)
        sl = w.window(self._win)
        samp, gt, peds = s[:, sl], w.pred[sl], w.ped_ids[sl]
        S, n, T, _ = samp.shape
        frame = w.frames[self._win, 7]
        si, ai, ti = (a.ravel() for a in np.meshgrid(np.arange(S), np.arange(n), np.arange(T), indexing="ij"))
        gi, gti = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(T), indexing="ij"))
        table = np.concatenate(
            [
                np.c_[
                    np.full(len(si), self._win),
                    np.full(len(si), frame),
                    peds[ai],
                    si,
                    ti + 1,
                    samp[si, ai, ti],
                ],
                np.c_[
                    np.full(len(gi), self._win),
                    np.full(len(gi), frame),
                    peds[gi],
                    -np.ones(len(gi)),
                    gti + 1,
                    gt[gi, gti],
                ],
            ]
        )
        np.savetxt(
            p,
            table,
            delimiter=",",
            fmt=["%d", "%g", "%g", "%d", "%d", "%.4f", "%.4f"],
            header="window,frame,ped,sample,step,x_m,y_m",
            comments="",
        )

    def _write_predictions_npz(self, path: Path) -> None:
        """The whole test scene: samples (S, N, 12, 2), obs, gt, window offsets, ped ids, frames."""
        w, s = self._test, self._samples
        if w is None or s is None:
            raise UserError("no predictions to export: load a scene first")
        save_npz(
            path,
            samples=s,
            obs=w.obs,
            gt=w.pred,
            starts=w.starts,
            ped_ids=w.ped_ids,
            frames=w.frames,
            best=self._best,
        )

    def _write_metrics(self, path: Path) -> None:
        if not self._metrics:
            raise UserError("no metrics yet: load a scene first")
        p = check_writable(path)
        out = dict(self._metrics)
        out["params"] = self._p.__dict__
        if self._history is not None:
            out["training"] = {
                "train_loss": list(self._history.train_loss),
                "val_minFDE": list(map(float, self._history.val_minfde)),
            }
        p.write_text(json.dumps(out, indent=2))

    # -- sessions ---------------------------------------------------------------------------------------
    def state(self) -> dict:
        st = super().state()
        cam = self._view.camera.rect
        st.update(
            {
                "window": int(self._win),
                "focus": self._focus,
                "camera": [float(cam.left), float(cam.bottom), float(cam.width), float(cam.height)],
            }
        )
        return st

    def restore(self, state: dict) -> None:
        super().restore(state)
        if self._test is not None and "window" in state:
            self._win = int(state["window"]) % max(self._test.num_windows, 1)
        self._focus = state.get("focus")
        if "camera" in state:
            x, y, cw, ch = state["camera"]
            self._view.camera.rect = (x, y, cw, ch)
        self._draw()

    def shutdown(self) -> None:
        self._timer.stop()
        if self._task is not None:
            self._task.cancel()
            self._task.wait(30_000)
            self._task = None
        super().shutdown()


def _train_job(cfg, root, scene):
    """Worker generator: load the fold's train/val splits, then train EigenTrajectory on one thread."""

    from backends.common import Progress
    from backends.trajectory.eigentrajectory import train_eigentrajectory

    yield Progress(0.0, f"loading {scene} train/val splits")
    train, val = load_split(root, scene, "train"), load_split(root, scene, "val")
    return (yield from train_eigentrajectory(cfg, train, val))
