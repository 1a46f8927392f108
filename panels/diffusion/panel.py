"""Diffusion sampler panel: train small generative models live and watch particles flow from noise to data.

The backend (:mod:`backends.diffusion`) does all the math; this widget holds the parameters, runs training,
sampling and the NFE-vs-quality sweep in workers, and draws: one point-sprite visual for the particles (coloured
by where they end up), the target samples underneath, optional trajectory lines, or for the 64-D digits an image
grid of the current state. The camera auto-zooms to the robust extent of the particles, so heavy PFGM++ prior
tails do not squash the picture; non-finite particles are flagged and not drawn.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter, QVBoxLayout, QWidget
from vispy import scene
from vispy.color import Color

from app import worker
from app.export import check_writable, export_plot, save_csv, save_npz, save_png, write_video
from backends.common import Progress, UserError
from backends.diffusion.data import DATASETS, load_digits_array, make_dataset
from backends.diffusion.dds import InverseProblem, box_mask, masked_rmse, random_mask, solve
from backends.diffusion.lightsb import LightSBConfig, fit_lightsb
from backends.diffusion.models import FAMILIES, PATHS, Interpolant, TrainConfig, Trainer, load_trained
from backends.diffusion.pipeline import (
    ALL_SAMPLERS,
    LABELS,
    Generative,
    SampleConfig,
    exact_model,
    from_trained,
    generate,
    nfe_curves,
)
from backends.diffusion.samplers import SampleResult
from panels.base import ExportAction, Panel
from panels.points import PointImage
from panels.widgets import (
    Field,
    ParamForm,
    PlayBar,
    fill_with_splitter,
    finite_or_nan,
    make_canvas,
    make_plot,
    render_canvas,
)

INVERSE_CHOICES = ("none", "inpaint box", "inpaint random", "denoise")
DIGITS_ASSET = Path(__file__).resolve().parents[2] / "assets" / "diffusion" / "digits_edm.pt"
SAMPLER_COLORS = {
    "euler": "#1f77b4",
    "heun": "#d62728",
    "em": "#2ca02c",
    "ddim": "#9467bd",
    "dpmpp2m": "#ff7f0e",
    "ode": "#17becf",
    "sde": "#8c564b",
    "bridge": "#e377c2",
}


@dataclass(frozen=True)
class DiffusionParams:
    dataset: str = "swissroll"
    csv_path: str = ""
    model: str = "edm"
    train_steps: int = 2000
    sampler: str = "heun"
    nfe: int = 35
    count: int = 5000
    D: float = 128.0
    eps: float = 0.5
    path: str = "linear"
    gamma: float = 0.0
    churn: float = 0.0
    seed: int = 0
    inverse: str = "none"  # digits only: none | inpaint box | inpaint random | denoise
    lines: bool = False
    target: bool = True
    autozoom: bool = True

    def __post_init__(self):
        if self.dataset not in DATASETS:
            raise UserError(f"unknown dataset {self.dataset!r}")
        if self.model not in FAMILIES:
            raise UserError(f"unknown model {self.model!r}")
        if not (math.isfinite(self.D) and self.D > 0):
            raise UserError(f"PFGM++ D must be > 0, got {self.D}")
        if not (math.isfinite(self.eps) and self.eps > 0):
            raise UserError(f"epsilon must be > 0, got {self.eps}")


PLAY_SECONDS = 3.0  # Run plays the whole flow in this time, whatever the frame rate


def _hue_colors(final: np.ndarray) -> np.ndarray:
    """RGBA per particle from the angle/radius of its final position (so you see who goes where)."""
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


def _digit_grid(x: np.ndarray, cols: int = 8) -> np.ndarray:
    """(n, 64) in ~[-1, 1] -> a tiled grey image (rows*9-1, cols*9-1) in [0, 1]."""
    n = min(len(x), cols * cols)
    rows = max(1, math.ceil(n / cols))
    img = np.full((rows * 9 - 1, cols * 9 - 1), 0.15, np.float32)
    for k in range(n):
        r, c = divmod(k, cols)
        tile = np.nan_to_num(x[k].reshape(8, 8), nan=0.0, posinf=1.0, neginf=-1.0)
        img[r * 9 : r * 9 + 8, c * 9 : c * 9 + 8] = np.clip((tile + 1) / 2, 0, 1)
    return img


def _train_job(trainer: Trainer, steps: int):
    yield Progress(0.0, "training...")
    yield from trainer.run(steps)
    return trainer.last


def _lightsb_job(dataset, cfg: LightSBConfig):
    def src(n, rng):
        return rng.standard_normal((n, dataset.dim))

    model, losses = yield from fit_lightsb(src, dataset.sample, dataset.dim, cfg)
    return Generative("lightsb", dataset.dim, lsb=model, source=src, losses=losses)


def _inverse_job(net, kind: str, nfe: int, seed: int):
    """DDS and DPS on 16 digits; returns a dict for the side-by-side view."""
    yield Progress(None, f"solving {kind} with DDS and DPS at NFE {nfe}...")
    rng = np.random.default_rng(seed)
    truth = load_digits_array()[rng.choice(1797, 16, replace=False)]
    if kind == "denoise":
        prob = InverseProblem("denoise", None, sigma_y=0.5)
    else:
        mask = box_mask() if kind == "inpaint box" else random_mask(64, 0.5, rng)
        prob = InverseProblem("inpaint", mask, sigma_y=0.01)
    y = prob.measure(truth, rng)
    dds = solve(net, prob, y, method="dds", nfe=nfe, seed=seed, return_trajectory=True)
    dps = solve(net, prob, y, method="dps", nfe=nfe, seed=seed)
    shown = y if prob.mask is None else np.where(prob.mask > 0.5, y, -1.0)
    return {
        "truth": truth,
        "input": shown,
        "dds": dds,
        "dps": dps.x,
        "kind": kind,
        "rmse_dds": masked_rmse(dds.x, truth, prob.mask),
        "rmse_dps": masked_rmse(dps.x, truth, prob.mask),
    }


def _sample_job(model: Generative, cfg: SampleConfig):
    yield Progress(None, f"sampling {cfg.count} particles with {LABELS[cfg.sampler]}...")
    return generate(model, cfg, return_trajectory=True)


def _curves_job(*args, **kw):
    return (yield from nfe_curves(*args, **kw))


class DiffusionPanel(Panel):
    key = "diffusion"
    title = "Diffusion sampler"
    open_filter = "Point sets (*.csv)"

    def __init__(self, parent=None):
        super().__init__(parent)
        self._p = DiffusionParams()
        self._dataset = None
        self._model: Generative | None = None
        self._trainer: Trainer | None = None
        self._losses = np.zeros(0)
        self._result = None  # SampleResult with trajectory
        self._frame = 0.0  # continuous frame position in the trajectory
        self._label_clock = 0.0
        self._slider_clock = 0.0
        self._zoom_ref = None  # (target array, its centre, its radius): the target never moves
        self._curves: list = []
        self._target = None
        self._colors = None
        self._tasks: dict = {}
        self._inverse = None
        self._drawn: list[np.ndarray] = []  # user-drawn points for the 'points' dataset (Shift + drag)
        self._build_ui()
        self._canvas.events.mouse_press.connect(self._on_mouse)
        self._canvas.events.mouse_move.connect(self._on_mouse)
        # playback is timed by the clock (PLAY_SECONDS for the whole flow at any frame rate) and paced by the
        # draws: a tick moves the particles only once the previous frame is on screen
        self._timer = QTimer(self)
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)
        self._play_from: tuple[float, float] = (0.0, 0.0)  # (clock, frame) when Run was pressed
        self._frame_shown = True
        self._last_tick = 0.0
        self._canvas.events.draw.connect(self._on_canvas_drawn)

    # -- UI -----------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        fields = [
            Field("dataset", "Dataset", "choice", choices=DATASETS),
            Field("csv_path", "CSV file", "text", tooltip="points for the 'csv' dataset"),
            Field(
                "model",
                "Model",
                "choice",
                choices=FAMILIES,
                tooltip="exact: closed-form mixture denoiser (gmm, 8gaussians); lightsb: Light Schrodinger bridge",
            ),
            Field("train_steps", "Training steps", "int", 1, 200000, step=500),
            Field("sampler", "Sampler", "choice", choices=ALL_SAMPLERS),
            Field("nfe", "NFE", "int", 1, 1000),
            Field("count", "Particles", "int", 10, 200000, step=1000),
            Field(
                "D",
                "PFGM++ D",
                "float",
                0.01,
                1e9,
                log=True,
                tooltip="D -> inf is EDM; small D = heavy tails",
            ),
            Field(
                "eps",
                "epsilon",
                "float",
                1e-4,
                100.0,
                log=True,
                tooltip="interpolant SDE eps(t) = eps (1-t); LightSB entropic eps",
            ),
            Field("path", "Interpolant path", "choice", choices=PATHS),
            Field("gamma", "Interpolant gamma a", "float", 0.0, 10.0, step=0.1),
            Field("churn", "Heun churn", "float", 0.0, 100.0, step=1.0),
            Field("seed", "Seed", "int", 0, 2**31 - 2),
            Field(
                "inverse",
                "Digits inverse problem",
                "choice",
                choices=INVERSE_CHOICES,
                tooltip="digits: DDS (Tweedie -> CG -> DDIM) vs DPS guidance at equal NFE",
            ),
            Field("lines", "Trajectory lines", "bool"),
            Field("target", "Show target samples", "bool"),
            Field("autozoom", "Auto-zoom (heavy tails)", "bool"),
        ]
        self.form = ParamForm(fields, dataclasses.asdict(self._p))
        self.form.changed.connect(self._on_param)
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.start)
        self.sample_button = QPushButton("Sample")
        self.sample_button.clicked.connect(self.sample)
        self.compare_button = QPushButton("NFE sweep (all samplers)")
        self.compare_button.clicked.connect(self.compare)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.info = QLabel("Train a model (or pick model 'exact' on gmm/8gaussians), then Sample.")
        self.info.setWordWrap(True)
        self.info.setObjectName("diffusion_info")
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.form)
        row = QHBoxLayout()
        for b in (self.train_button, self.sample_button, self.stop_button):
            row.addWidget(b)
        lv.addLayout(row)
        lv.addWidget(self.compare_button)
        lv.addWidget(self.info)
        lv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)

        bg = "#0e1116"
        self._canvas = make_canvas(bgcolor=bg, size=(640, 640))
        self.view = self._canvas.central_widget.add_view()
        self.view.camera = scene.PanZoomCamera(aspect=1)
        self.view.camera.rect = (-3, -3, 6, 6)
        # particles and target samples are stamped into one opaque image (panels/points.py says why)
        self._particles = PointImage(size=4, background=Color(bg).rgba, parent=self.view.scene)
        self._target_shown = None  # the target array now in the underlay
        self._particle_mask = None  # which particles the current colours belong to
        self._lines_vis = scene.visuals.Line(parent=self.view.scene, color=(1, 1, 1, 0.12), width=1)
        self._lines_vis.visible = False
        self._particles.order, self._lines_vis.order = 0, 1
        self._image = scene.visuals.Image(
            np.zeros((8, 8), np.float32), cmap="grays", clim=(0, 1), parent=self.view.scene
        )
        self._image.visible = False
        # the frame read-out: a Qt label on screen (vispy text re-lays out its glyphs on every change and costs
        # ~5 ms a frame to draw on llvmpipe); the same text is drawn into the canvas only for exports
        self._label = scene.visuals.Text(
            "",
            color="white",
            font_size=9,
            anchor_x="left",
            anchor_y="center",
            parent=self._canvas.scene,
            pos=(10, 14),
        )
        self._label.visible = False
        self.frame_info = QLabel("")
        self.frame_info.setStyleSheet(f"background: {bg}; color: white; padding: 3px 8px;")
        self.playbar = PlayBar(with_step=True)
        self.playbar.run_toggled.connect(self._on_play)
        self.playbar.step_clicked.connect(lambda: self._set_frame(math.floor(self._frame) + 1))
        self.playbar.scrubbed.connect(lambda v: self._set_frame(v / 10.0))
        center = QWidget()
        cv = QVBoxLayout(center)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.setSpacing(0)
        cv.addWidget(self.frame_info)
        cv.addWidget(self._canvas.native, 1)
        cv.addWidget(self.playbar)

        self.loss_plot = make_plot("Training loss", "training step", "loss (EDM-weighted MSE)", logy=True)
        self._loss_curve = self.loss_plot.plot([], [], pen="#1f77b4", name="loss")
        self._loss_avg = self.loss_plot.plot(
            [], [], pen={"color": "#d62728", "width": 2}, name="running mean"
        )
        self.nfe_plot = make_plot(
            "Sample quality vs NFE", "NFE (model evaluations)", "sliced W2 to data", logx=True, logy=True
        )
        self._nfe_curves: dict = {}

        self._floor_line = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen("k", style=Qt.PenStyle.DashLine),
            label="noise floor",
            labelOpts={"color": "k", "position": 0.1},
        )
        self._floor_line.setVisible(False)
        self.nfe_plot.addItem(self._floor_line)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.loss_plot)
        right.addWidget(self.nfe_plot)

        fill_with_splitter(self, [scroll, center, right], [0, 3, 2])

    # -- parameters ---------------------------------------------------------------------------------------
    def params(self) -> DiffusionParams:
        return self._p

    def set_params(self, cfg: DiffusionParams) -> None:
        old = self._p
        self._p = cfg
        self.form.set_values(dataclasses.asdict(cfg))
        self._params_changed(old)

    def _on_param(self, name: str, value) -> None:
        try:
            new = dataclasses.replace(self._p, **{name: value})
        except UserError as exc:
            self._say(str(exc))
            self.form.set_values(dataclasses.asdict(self._p))
            return
        old = self._p
        self._p = new
        self._params_changed(old)

    def _params_changed(self, old: DiffusionParams) -> None:
        p = self._p
        model_keys = ("dataset", "csv_path", "model", "D", "path", "gamma", "seed")
        if any(getattr(old, k) != getattr(p, k) for k in model_keys) or (
            p.model == "lightsb" and old.eps != p.eps
        ):
            self._dataset = None
            self._model = None
            self._trainer = None
            self._target = None
            self._losses = np.zeros(0)
            self._loss_curve.setData([], [])
            self._loss_avg.setData([], [])
            title = "Training loss" if p.model != "exact" else "Training loss (exact model: no training)"
            self.loss_plot.getPlotItem().setTitle(title, color="k")
        if old.lines != p.lines or old.target != p.target or old.autozoom != p.autozoom:
            self._draw()

    def open_path(self, path: Path) -> None:
        self.set_params(dataclasses.replace(self._p, dataset="csv", csv_path=str(path)))
        self._ensure_dataset()
        self._say(f"loaded {len(self._dataset.points)} points from {Path(path).name}")

    # -- helpers ------------------------------------------------------------------------------------------
    def _say(self, msg: str) -> None:
        self.info.setText(msg)
        self.status.emit(msg)

    # -- user-drawn point set -----------------------------------------------------------------------------
    def _on_mouse(self, ev) -> None:
        if self._p.dataset != "points" or ev.button != 1 or "Shift" not in [k.name for k in ev.modifiers]:
            return
        if ev.type == "mouse_move" and not ev.is_dragging:
            return
        tr = self._canvas.scene.node_transform(self.view.scene)
        xy = np.asarray(tr.map(ev.pos)[:2], dtype=np.float32)
        self.add_drawn_points(xy[None])
        ev.handled = True

    def add_drawn_points(self, pts: np.ndarray, jitter: float = 0.03) -> None:
        """Add points (and a few jittered copies, so a stroke becomes a thin density) to the user point set."""
        pts = np.asarray(pts, np.float32).reshape(-1, 2)
        rng = np.random.default_rng(len(self._drawn))
        extra = np.repeat(pts, 4, axis=0) + rng.normal(0, jitter, (4 * len(pts), 2))
        self._drawn.append(np.concatenate([pts, extra]).astype(np.float32))
        self._dataset = None
        self._model = None
        self._trainer = None
        self._ensure_dataset()
        self._draw()
        self._say(f"{sum(len(d) for d in self._drawn)} drawn points (Shift + drag to add; Train to fit them)")

    def clear_drawn_points(self) -> None:
        self._drawn.clear()
        self._dataset = None

    def _ensure_dataset(self):
        if self._dataset is None:
            p = self._p
            if p.dataset == "points" and not self._drawn:
                raise UserError("dataset 'points': draw points first (Shift + drag on the view)")
            pts = np.concatenate(self._drawn) if self._drawn else None
            self._dataset = make_dataset(p.dataset, csv_path=p.csv_path or None, points=pts)
            self._target = self._dataset.sample(
                min(5000, max(p.count, 500)), np.random.default_rng(p.seed + 7)
            )
        return self._dataset

    def _train_config(self) -> TrainConfig:
        p = self._p
        hidden = 256 if p.dataset == "digits" else 128
        return TrainConfig(
            family=p.model, steps=p.train_steps, hidden=hidden, D=p.D, path=p.path, gamma=p.gamma, seed=p.seed
        )

    def _sample_config(self, count: int | None = None) -> SampleConfig:
        p = self._p
        return SampleConfig(
            sampler=p.sampler, nfe=p.nfe, count=count or p.count, seed=p.seed, churn=p.churn, eps=p.eps
        )

    def _ensure_model(self) -> Generative | None:
        ds = self._ensure_dataset()
        if self._model is None and self._p.model == "exact":
            self._model = exact_model(ds, Interpolant(self._p.path, self._p.gamma))
        if self._model is None and ds.name == "digits" and self._p.model == "edm" and DIGITS_ASSET.exists():
            self._model = from_trained(load_trained(DIGITS_ASSET))
            self._losses = self._model.losses
            self._update_loss_plot()
            self._say("loaded the bundled digits EDM model (assets/diffusion/digits_edm.pt)")
        return self._model

    # -- computation --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Train the selected model in a worker (resumes an existing model of the same kind)."""
        try:
            ds = self._ensure_dataset()
            self._draw()  # the target samples stay visible while the model trains
            p = self._p
            if p.model == "exact":
                self._ensure_model()
                self._say("the exact model needs no training: sampling")
                self.sample()
                return
            if p.model == "lightsb":
                cfg = LightSBConfig(eps=p.eps, steps=p.train_steps, seed=p.seed)
                self._submit(
                    _lightsb_job,
                    ds,
                    cfg,
                    group="diffusion-train",
                    label="LightSB fit",
                    on_yield=self._on_losses,
                    on_done=self._on_trained,
                    on_error=self._say,
                )
                return
            if self._trainer is None:
                self._trainer = Trainer(ds, self._train_config())
            self._submit(
                _train_job,
                self._trainer,
                p.train_steps,
                group="diffusion-train",
                label="diffusion training",
                on_yield=self._on_train_snapshot,
                on_done=self._on_trained,
                on_error=self._on_train_error,
            )
        except UserError as exc:
            self._say(str(exc))

    def _submit(self, fn, *args, **kw):
        task = worker.submit(fn, *args, **kw)
        self._tasks[kw["group"]] = task
        return task

    def stop(self) -> None:
        for t in self._tasks.values():
            t.cancel()
        if self._trainer is not None:
            self._model = from_trained(self._trainer.last) if len(self._trainer.losses) else self._model
        self._timer.stop()
        self.playbar.set_running(False)

    def sample(self) -> None:
        try:
            model = self._ensure_model()
            if model is None:
                self._say("train a model first (or choose model 'exact' on gmm / 8gaussians)")
                return
            if self._dataset.name == "digits" and self._p.inverse != "none":
                if model.denoiser is None:
                    raise UserError("the inverse problems need an EDM denoiser (model 'edm')")
                self._submit(
                    _inverse_job,
                    model.denoiser,
                    self._p.inverse,
                    self._p.nfe,
                    self._p.seed,
                    group="diffusion-sample",
                    label="DDS vs DPS",
                    on_done=self._on_inverse,
                    on_error=self._say,
                )
                return
            self._submit(
                _sample_job,
                model,
                self._sample_config(),
                group="diffusion-sample",
                label="sampling",
                on_done=self._on_sampled,
                on_error=self._say,
            )
        except UserError as exc:
            self._say(str(exc))

    def compare(self) -> None:
        try:
            model = self._ensure_model()
            if model is None:
                self._say("train a model first to compare samplers")
                return
            self._curves = []
            nfes = (3, 5, 9, 17, 33, 65) if self._dataset.dim <= 2 else (5, 9, 17, 33)
            self._submit(
                _curves_job,
                model,
                self._dataset,
                self._sample_config(),
                nfes,
                group="diffusion-compare",
                label="NFE sweep",
                on_yield=self._on_curves,
                on_done=self._on_curves,
                on_error=self._say,
            )
        except UserError as exc:
            self._say(str(exc))

    def advance(self, steps: int) -> None:
        """Synchronous: a few training steps (or none for 'exact'), then sample and show the final frame."""
        self._advance(steps)

    def _advance(self, steps: int) -> None:
        ds = self._ensure_dataset()
        p = self._p
        if p.model == "lightsb":
            cfg = LightSBConfig(eps=p.eps, steps=max(1, 10 * steps), seed=p.seed)
            gen = _lightsb_job(ds, cfg)
            self._model = self._drain(gen)
            self._losses = self._model.losses
        elif p.model != "exact":
            if self._trainer is None:
                self._trainer = Trainer(ds, self._train_config())
            snaps = list(self._trainer.run(max(1, 10 * steps)))
            self._on_train_snapshot(snaps[-1].data)
            self._model = from_trained(self._trainer.last)
        model = self._ensure_model()
        self._on_sampled(generate(model, self._sample_config(min(p.count, 1000)), return_trajectory=True))

    @staticmethod
    def _drain(gen):
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                return stop.value

    # -- worker callbacks (GUI thread) --------------------------------------------------------------------
    def _on_train_snapshot(self, snap) -> None:
        self._losses = snap.losses
        self._update_loss_plot()
        self._say(f"training step {snap.step}, loss {snap.losses[-1]:.4f}")

    def _on_losses(self, losses) -> None:
        self._losses = np.asarray(losses)
        self._update_loss_plot()

    def _update_loss_plot(self) -> None:
        y = finite_or_nan(np.maximum(self._losses, 1e-12))
        x = np.arange(1, len(y) + 1)
        self._loss_curve.setData(x, y)
        if len(y) >= 10:
            k = max(5, len(y) // 50)
            avg = np.convolve(np.nan_to_num(y), np.ones(k) / k, mode="valid")
            self._loss_avg.setData(x[k - 1 :], avg)
        self.loss_plot.getPlotItem().setTitle("Training loss", color="k")
        self.loss_plot.getPlotItem().setLabel(
            "left", "loss (EDM-weighted MSE)" if self._p.model in ("edm", "pfgmpp") else "loss"
        )

    def _on_trained(self, result) -> None:
        if isinstance(result, Generative):
            self._model = result
        elif result is not None:
            self._model = from_trained(result)
        self._say(f"trained {self._p.model} ({len(self._losses)} steps): sampling")
        self.sample()
        if self._dataset is not None and self._dataset.dim <= 2:
            self.compare()  # the NFE-vs-SW curves of every applicable sampler, in the background

    def _on_train_error(self, msg: str) -> None:
        if self._trainer is not None and len(self._trainer.last.losses):
            self._model = from_trained(self._trainer.last)
        self._say(msg)

    def _on_inverse(self, out) -> None:
        if out is None:
            return
        dds = out["dds"]
        res = SampleResult(dds.x, dds.trajectory, dds.nfe, np.zeros(len(dds.x), bool))
        self._on_sampled(res, inverse=out)
        self._say(
            f"{out['kind']}, NFE {dds.nfe} each: hidden-pixel RMSE DDS {out['rmse_dds']:.3f} vs "
            f"DPS {out['rmse_dps']:.3f}  (columns: input | DDS | DPS | truth)"
        )

    def _on_sampled(self, res, inverse=None) -> None:
        if res is None:
            return
        self._inverse = inverse
        self._result = res
        final = res.samples
        good = ~res.bad
        self._colors = (
            _hue_colors(np.where(good[:, None], final, 0.0)[:, :2]) if final.shape[1] >= 2 else None
        )
        n_frames = len(res.trajectory)
        self.playbar.set_frames(10 * (n_frames - 1) + 1)
        msg = (
            f"{res.samples.shape[0]} particles, {LABELS[self._p.sampler]}, NFE {res.nfe}. "
            f"Press Run to replay the flow."
        )
        if not res.ok:
            msg = f"WARNING: {res.message}. Bad particles are hidden."
        self._say(msg)
        self._set_frame(n_frames - 1)

    def _on_curves(self, points) -> None:
        if points is None:
            return
        self._curves = list(points)
        by: dict[str, list] = {}
        for pt in self._curves:
            by.setdefault(pt.sampler, []).append(pt)
        for s, pts in by.items():
            if s not in self._nfe_curves:
                self._nfe_curves[s] = self.nfe_plot.plot(
                    [],
                    [],
                    pen=pg.mkPen(SAMPLER_COLORS[s], width=2),
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=SAMPLER_COLORS[s],
                    name=LABELS[s],
                )
            self._nfe_curves[s].setData([p.nfe for p in pts], finite_or_nan([p.sw for p in pts]))
        floors = [p.floor for p in self._curves if math.isfinite(p.floor)]
        if floors:
            self._floor_line.setValue(math.log10(float(np.mean(floors))))
            self._floor_line.setVisible(True)

    # -- animation ----------------------------------------------------------------------------------------
    def _on_play(self, on: bool) -> None:
        if on:
            if self._result is None:
                self.playbar.set_running(False)
                return
            if self._frame >= len(self._result.trajectory) - 1:
                self._frame = 0.0
            self._play_from = (time.perf_counter(), self._frame)
            self._frame_shown = True
            self._timer.start()
        else:
            self._timer.stop()

    def _on_canvas_drawn(self, _ev=None) -> None:
        self._frame_shown = True

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._result is None or (not self._frame_shown and now - self._last_tick < 0.25):
            return  # the last frame is not on screen yet (a hidden canvas does not hold playback up for long)
        self._last_tick = now
        last = len(self._result.trajectory) - 1
        t0, f0 = self._play_from
        nxt = f0 + (now - t0) * max(last, 1) / PLAY_SECONDS
        self._frame_shown = False
        if nxt >= last:
            nxt = last
            self._timer.stop()
            self.playbar.set_running(False)
        self._set_frame(nxt)

    def _set_frame(self, f: float) -> None:
        if self._result is None:
            return
        last = len(self._result.trajectory) - 1
        self._frame = float(min(max(f, 0.0), last))
        now = time.perf_counter()
        # repainting the slider costs ~5 ms a frame here: 10 Hz while playing, always when paused or at the end
        if not self._timer.isActive() or self._frame >= last or now - self._slider_clock > 0.1:
            self._slider_clock = now
            self.playbar.slider.blockSignals(True)
            self.playbar.slider.setValue(int(round(self._frame * 10)))
            self.playbar.slider.blockSignals(False)
        self._draw()

    def _state_at(self, f: float) -> np.ndarray:
        traj = self._result.trajectory
        i = int(math.floor(f))
        i = min(i, len(traj) - 1)
        w = f - i
        if w <= 1e-9 or i + 1 >= len(traj):
            return traj[i]
        with np.errstate(invalid="ignore", over="ignore"):
            return (1 - w) * traj[i] + w * traj[i + 1]

    def _draw(self) -> None:
        p = self._p
        is_img = self._dataset is not None and self._dataset.dim > 2
        self._image.visible = is_img
        self._particles.visible = not is_img
        show_target = (not is_img) and p.target and self._target is not None
        if (self._target if show_target else None) is not self._target_shown:
            self._target_shown = self._target if show_target else None
            self._particles.set_underlay(
                None if self._target_shown is None else self._target_shown[:, :2],
                color=(0.55, 0.6, 0.7, 0.35),
            )
        if self._result is None:
            self._canvas.update()
            return
        x = self._state_at(self._frame)
        good = ~self._result.bad
        if is_img:
            if self._inverse is not None:
                inv = self._inverse
                blocks = [_digit_grid(b, cols=4) for b in (inv["input"], x, inv["dps"], inv["truth"])]
                gap = np.full((blocks[0].shape[0], 4), 0.05, np.float32)
                img = np.concatenate([blocks[0], gap, blocks[1], gap, blocks[2], gap, blocks[3]], axis=1)
            else:
                img = _digit_grid(x)
            self._image.set_data(np.flipud(img))
            self.view.camera.rect = (0, 0, img.shape[1], img.shape[0])
        else:
            with np.errstate(invalid="ignore"):
                fin = good & np.all(np.isfinite(x[:, :2]), axis=1)
            pos = x[fin, :2].astype(np.float32)
            self._set_particles(pos, fin)
            if p.autozoom:
                self._autozoom(pos)
            self._update_lines(good)
        t = self._frame_label()
        now = time.perf_counter()
        at_end = self._frame >= len(self._result.trajectory) - 1
        # re-laying out the text costs more than moving 20,000 points: 10 Hz while playing is plenty
        if t != self.frame_info.text() and (
            at_end or not self._timer.isActive() or now - self._label_clock > 0.1
        ):
            self.frame_info.setText(t)
            self._label_clock = now
        self._canvas.update()

    def _set_particles(self, pos: np.ndarray, fin: np.ndarray) -> None:
        """Positions every frame; colours only when the set of drawn particles or their colours change."""
        prev = self._particle_mask
        if prev is None or prev[0] is not self._colors or not np.array_equal(prev[1], fin):
            # 4 px dots; 3 px above 10,000 particles (less clutter)
            self._particles.set_data(pos, color=self._colors[fin], size=4 if len(pos) <= 10_000 else 3)
            self._particle_mask = (self._colors, fin)
        else:
            self._particles.set_data(pos)

    def _frame_label(self) -> str:
        res = self._result
        last = len(res.trajectory) - 1
        if self._inverse is not None:
            return f"input | DDS (Tweedie, CG, DDIM) | DPS | truth   step {self._frame:.1f}/{last}"
        return (
            f"{LABELS.get(self._p.sampler, self._p.sampler)} | eval {self._frame:.1f}/{last} | NFE {res.nfe}"
        )

    def _autozoom(self, pos: np.ndarray) -> None:
        """Frame the target data and the robust extent of the particles (heavy prior tails are clipped).
        Percentiles of a fixed 1-in-k subsample: the same picture at a fraction of the cost per frame."""
        if self._target is not None:
            if self._zoom_ref is None or self._zoom_ref[0] is not self._target:
                ref = self._target[:, :2]
                c = np.median(ref, axis=0)
                self._zoom_ref = (self._target, c, float(np.percentile(np.abs(ref - c), 99.5)) * 1.15)
            _, center, data_r = self._zoom_ref
        else:
            center = np.median(pos, axis=0) if len(pos) else np.zeros(2)
            data_r = 0.0
        sub = pos[:: max(1, len(pos) // 4000)]
        r = float(np.percentile(np.abs(sub - center), 98)) * 1.1 if len(sub) else data_r
        r = max(r, data_r, 1e-3)
        self.view.camera.rect = (center[0] - r, center[1] - r, 2 * r, 2 * r)

    def _update_lines(self, good: np.ndarray) -> None:
        if not self._p.lines or self._result is None:
            self._lines_vis.visible = False
            return
        traj = self._result.trajectory
        idx = np.flatnonzero(good)[:150]
        f = int(math.ceil(self._frame)) + 1
        seg = traj[:f, idx, :2]  # (F, m, 2)
        if self._p.sampler in ("heun", "ode") and len(seg) > 2:  # skip the Euler predictor states
            seg = np.concatenate([seg[:-1:2], seg[-1:]])
        if seg.shape[0] < 2 or len(idx) == 0:
            self._lines_vis.visible = False
            return
        pts = np.transpose(seg, (1, 0, 2)).reshape(-1, 2).astype(np.float32)
        fcount = seg.shape[0]
        base = (np.arange(len(idx)) * fcount)[:, None] + np.arange(fcount - 1)[None]
        conn = np.stack([base.ravel(), base.ravel() + 1], 1)
        ok = np.all(np.isfinite(pts), axis=1)
        conn = conn[ok[conn[:, 0]] & ok[conn[:, 1]]]
        self._lines_vis.set_data(pos=np.nan_to_num(pts), connect=conn)
        self._lines_vis.visible = True

    # -- output -------------------------------------------------------------------------------------------
    def canvas(self):
        return self._canvas

    def render(self, size: tuple[int, int]) -> np.ndarray:
        """Off-screen render at ``size`` with the frame read-out drawn in; the scene is laid out for that size,
        then restored."""
        self._label.text = self._frame_label() if self._result is not None else ""
        self._label.visible = bool(self._label.text)
        old = tuple(self._canvas.size)
        target = (int(size[0]), int(size[1]))
        cam = self.view.camera.rect
        try:
            if old == target:
                return render_canvas(self._canvas, size)
            self._canvas.size = target
            self._canvas.central_widget.size = target
            self._draw()
            return render_canvas(self._canvas, size)
        finally:
            self._label.visible = False
            if old != target:
                self._canvas.size = old
                self._canvas.central_widget.size = old
                self.view.camera.rect = cam
                self._draw()

    def _need_result(self):
        if self._result is None:
            raise UserError("nothing to export yet: sample first")
        return self._result

    def _export_png(self, path: Path) -> None:
        self._need_result()
        save_png(path, self.render((1200, 1200)))

    def _export_svg(self, path: Path) -> None:
        res = self._need_result()
        p = check_writable(path)
        x = res.samples[~res.bad]
        if x.shape[1] != 2:
            raise UserError("the SVG scatter is for 2-D data; export PNG for digits")
        x = x[:20000]
        lo, hi = x.min(0), x.max(0)
        span = float(max(hi - lo)) or 1.0
        size, pad = 800.0, 40.0
        sx = pad + (x[:, 0] - lo[0]) / span * (size - 2 * pad)
        sy = size - pad - (x[:, 1] - lo[1]) / span * (size - 2 * pad)
        cols = (self._colors[~res.bad][: len(x), :3] * 255).astype(int)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{size:.0f}" height="{size:.0f}" '
            f'viewBox="0 0 {size:.0f} {size:.0f}"><rect width="100%" height="100%" fill="white"/>',
            f'<text x="{pad}" y="24" font-family="sans-serif" font-size="16">{self._p.dataset}: '
            f"{LABELS.get(self._p.sampler, '')}, NFE {res.nfe}, {len(x)} samples</text>",
        ]
        for (a, b), c in zip(zip(sx, sy), cols):
            parts.append(f'<circle cx="{a:.2f}" cy="{b:.2f}" r="1.6" fill="rgb({c[0]},{c[1]},{c[2]})"/>')
        parts.append("</svg>")
        p.write_text("\n".join(parts))

    def _frames(self, size=(400, 400), count: int = 30):
        res = self._need_result()
        last = len(res.trajectory) - 1
        keep = self._frame
        try:
            for f in np.linspace(0, last, count):
                self._set_frame(float(f))
                yield self.render(size)
        finally:
            self._set_frame(keep)

    def _export_video(self, path: Path) -> None:
        self._need_result()
        write_video(path, self._frames(), fps=15)

    def _export_samples(self, path: Path) -> None:
        res = self._need_result()
        if str(path).lower().endswith(".csv"):
            cols = [res.samples[:, k] for k in range(res.samples.shape[1])]
            save_csv(path, [f"x{k}" for k in range(len(cols))], cols)
        else:
            save_npz(
                path,
                samples=res.samples,
                traj=res.trajectory.astype(np.float32),
                bad=res.bad,
                nfe=np.int64(res.nfe),
            )

    def _export_weights(self, path: Path) -> None:
        if self._model is None or self._model.trained is None:
            raise UserError("no trained weights: train an EDM, PFGM++ or interpolant model first")
        self._model.trained.save(check_writable(path))

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Sample scatter PNG", ("png",), self._export_png),
            ExportAction("Sample scatter SVG", ("svg",), self._export_svg),
            ExportAction("Flow video MP4/GIF", ("mp4", "gif"), self._export_video),
            ExportAction("Samples NPZ/CSV", ("npz", "csv"), self._export_samples),
            ExportAction(
                "Training loss plot", ("png", "svg", "csv"), lambda p: export_plot(self.loss_plot, p)
            ),
            ExportAction(
                "NFE vs sliced-W plot", ("png", "svg", "csv"), lambda p: export_plot(self.nfe_plot, p)
            ),
            ExportAction("Model weights", ("pt",), self._export_weights),
        ]

    # -- sessions -----------------------------------------------------------------------------------------
    def state(self) -> dict:
        st = super().state()
        st["camera_rect"] = list(map(float, self.view.camera.rect.pos + self.view.camera.rect.size))
        st["frame"] = self._frame
        return st

    def restore(self, state: dict) -> None:
        super().restore(state)
        if "camera_rect" in state:
            self.view.camera.rect = tuple(state["camera_rect"])
        if "frame" in state and self._result is not None:
            self._set_frame(float(state["frame"]))

    def shutdown(self) -> None:
        self._timer.stop()
        for t in self._tasks.values():
            t.stale = True
            t.cancel()
        for t in self._tasks.values():
            t.wait(10_000)
        self._tasks.clear()
