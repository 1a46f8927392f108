"""Diffusion sampler panel: train small generative models live and watch particles flow from noise to data.

Wiring only: the form and the model (:mod:`.model`) stay identical both ways, the buttons start jobs of
:mod:`backends.diffusion.live` in this panel's task set (training hands over copies of its weights; the GUI never
touches a module a worker trains), the view (:mod:`.view`) and the plots (:mod:`.plots`) draw what the model
holds, and the exports read the model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from app.export import ExportAction, VideoSpec, check_writable, export_plot, save_csv, save_npz, save_png
from backends.batch.places import studies_dir
from backends.batch.study import Study
from backends.common import UserError, drain
from backends.diffusion.data import make_dataset
from backends.diffusion.live import (
    generative,
    inverse_job,
    lightsb_job,
    model_for,
    sample_job,
    train_job,
)
from backends.diffusion.pipeline import LABELS, generate
from backends.safeio import write_text
from panels.base import Panel
from panels.widgets import ParamForm, bind_form, fill_with_splitter, param_fields

from .model import NOT_RESAMPLED, SAMPLING, SWEEP_KEYS, DiffusionModel, DiffusionParams
from .plots import DiffusionPlots
from .studies import NFESweepStudies
from .transport import Transport
from .view import FlowView, particle_colors

ADVANCE_STEPS = 10  # training steps per ``advance`` step (CLI snapshot, smoke tests)
ADVANCE_COUNT = 1000  # particles sampled by ``advance`` (at most)
EXPORT_SIZE = (1200, 1200)


class DiffusionPanel(NFESweepStudies, Panel):
    key = "diffusion"
    title = "Diffusion sampler"
    open_filter = "Point sets (*.csv)"
    study_workloads = ("nfe-sweep",)
    quick_start = (
        "<p>Pick a <b>Dataset</b> (2D toys, Gaussian mixtures, digits, or <i>points</i> you draw) and a "
        "<b>Model</b> (<i>exact</i> needs no training; EDM, PFGM++, stochastic interpolants and LightSB "
        "train live). Press <b>Train</b>, then <b>Sample</b>: particles flow from noise to data; "
        "<b>Play</b>/<b>Step</b>/the slider move along the flow.</p>"
        "<p>Change the <b>Sampler</b> or <b>NFE</b> with a trained model and the flow is resampled at once, "
        "particle by particle from the same noise. The NFE sweep tab compares samplers by sliced Wasserstein "
        "distance against the number of network evaluations. An orange bar means the view is out of date and "
        "says what to press.</p>"
    )
    controls = (
        ("Left-drag", "pan the particle view"),
        ("Wheel", "zoom"),
        ("Shift+drag", "draw points (dataset 'points')"),
        ("Play / Step / slider", "move along the sampling flow"),
    )

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = m = DiffusionModel()
        self.study_dir = studies_dir()  # where NFE sweep stores go (one per model and settings)
        self.study: Study | None = None  # the NFE sweep study running or last run
        self.form = ParamForm(param_fields(DiffusionParams))
        bind_form(self.form, m, on_error=self._say)
        self.compare_button = QPushButton("NFE sweep (all samplers)")
        self.compare_button.clicked.connect(lambda: self.compare())
        self.clear_button = QPushButton("Clear drawn points")
        self.clear_button.clicked.connect(m.clear_points)
        self.info = QLabel("Press Train (or pick model 'exact' on gmm/8gaussians and press Sample).")
        self.info.setWordWrap(True)
        self.info.setObjectName("diffusion_info")
        left = QWidget()
        lv = QVBoxLayout(left)
        for w in (self.form, self.compare_button, self.clear_button, self.info):
            lv.addWidget(w)
        lv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(300)

        self.flow = FlowView(m)
        self.view = self.flow.view
        self.transport = Transport(m, self.flow.canvas)
        self.transport.on_play = lambda on: setattr(self.flow, "playing", on)
        self.transport.train_button.clicked.connect(self.start)
        self.transport.sample_button.clicked.connect(self.sample)
        self.transport.stop_button.clicked.connect(self.stop)
        center = QWidget()
        cv = QVBoxLayout(center)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.setSpacing(0)
        cv.addWidget(self.flow, 1)
        cv.addWidget(self.transport)
        self.plots = DiffusionPlots(m)
        self.plots.is_live = lambda: self.tasks.busy()  # training or a sweep streams in: redraws throttled
        fill_with_splitter(self, [scroll, center, self.plots], [0, 3, 2])
        m.events.connect("resample", lambda **_: self.sample())
        m.events.connect("model_reset", self._on_model_reset)
        m.events.connect("params", self._on_params)
        self._on_params(set())

    def _on_params(self, changed: set[str]) -> None:
        if changed & SWEEP_KEYS:  # a sweep still running measures the old settings
            self.tasks.cancel("sweep")
        drawing = self.model.params.dataset == "points"
        self.clear_button.setEnabled(drawing)
        if "dataset" in changed and drawing:
            self._say("dataset 'points': Shift + drag on the view to draw points, then Train")

    def _on_model_reset(self) -> None:
        if self.tasks.busy("train") or self.tasks.busy("sweep"):
            self.tasks.cancel("train")
            self.tasks.cancel("sweep")
            self._say("training stopped: the model or its data changed")

    def _say(self, msg: str) -> None:
        self.info.setText(msg)
        self.status.emit(msg)

    def open_path(self, path: Path) -> None:
        n = len(make_dataset("csv", csv_path=path).points)  # a bad file changes nothing
        self.model.set_params(dataset="csv", csv_path=str(path))
        self._say(f"loaded {n} points from {Path(path).name}")

    # -- computation --------------------------------------------------------------------------------------
    def start(self) -> None:
        """Train the selected model in a worker (continuing from the weights at hand of the same family)."""
        m = self.model
        p = m.params
        try:
            ds = m.dataset()
            if p.model == "exact":
                self._say("the exact model needs no training: sampling")
                self.sample()
                return
            if p.model == "lightsb":
                job, args = lightsb_job, (ds, m.lightsb_config())
            else:
                start = m.weights if m.weights is not None and m.weights.family == p.model else None
                job, args = train_job, (ds, m.train_config(), p.train_steps, start)
        except UserError as exc:
            self._say(str(exc))
            return
        self.tasks.cancel("sweep")
        self.tasks.submit(
            job,
            *args,
            group="train",
            label=f"{p.model} training",
            on_yield=self._on_train_update,
            on_done=self._on_trained,
            on_error=self._say,
        )

    def stop(self) -> None:
        """Cancel every task at once (never waits); the weights handed over so far stay, so Sample works."""
        self.tasks.cancel()
        self.transport.play(False)
        if self.model.stale == SAMPLING:
            self.model.mark_stale(NOT_RESAMPLED)

    def sample(self) -> None:
        m = self.model
        p = m.params
        try:
            if not m.can_sample():
                raise UserError("train a model first (or choose model 'exact' on gmm / 8gaussians)")
            gen = model_for(m.weights, m.dataset(), p.model, m.interpolant())
            if p.dataset == "digits" and p.inverse != "none":
                self.tasks.submit(
                    inverse_job, gen, p.inverse, p.nfe, p.seed, group="sample", label="DDS vs DPS",
                    on_done=self._on_inverse, on_error=self._on_sample_error,
                )  # fmt: skip
                return
            cfg = m.sample_config()
            self.tasks.submit(
                sample_job, gen, cfg, group="sample", label="sampling",
                on_done=lambda res: self._on_sampled(res, cfg.sampler), on_error=self._on_sample_error,
            )  # fmt: skip
        except UserError as exc:
            self._on_sample_error(str(exc))

    def advance(self, steps: int) -> None:
        """Synchronous: ``10 * steps`` training steps (none for 'exact'), then sample and show the last frame."""
        m = self.model
        p = m.params
        ds = m.dataset()
        n = max(1, ADVANCE_STEPS * steps)
        if p.model == "lightsb":
            self._on_trained(drain(lightsb_job(ds, m.lightsb_config(n))), then_sample=False)
        elif p.model != "exact" and not (steps == 0 and m.can_sample()):  # 0 steps: sample what is at hand
            start = m.weights if m.weights is not None and m.weights.family == p.model else None
            self._on_trained(drain(train_job(ds, m.train_config(), n, start)), then_sample=False)
        gen = model_for(m.weights, ds, p.model, m.interpolant())
        cfg = m.sample_config(min(p.count, ADVANCE_COUNT))
        self._on_sampled(generate(gen, cfg, return_trajectory=True), cfg.sampler)

    # -- worker callbacks (GUI thread; every argument is a copy the worker no longer touches) --------------
    def _on_train_update(self, upd) -> None:
        m = self.model
        m.set_losses(upd.losses)
        if upd.weights is not None:
            m.set_weights(upd.weights)
        if len(upd.losses):
            self._say(f"training step {upd.step}, loss {upd.losses[-1]:.4f}")

    def _on_trained(self, weights, then_sample: bool = True) -> None:
        m = self.model
        m.set_weights(weights)
        m.set_losses(weights.losses)
        self._say(
            f"trained {weights.family} ({len(weights.losses)} steps)" + (": sampling" if then_sample else "")
        )
        if then_sample:
            self.sample()
            if weights.dim <= 2:
                self.compare()

    def _on_sampled(self, res, sampler: str) -> None:
        self.model.show_result(res, sampler)
        if res.ok:
            self._say(
                f"{len(res.samples)} particles, {LABELS[sampler]}, NFE {res.nfe}. Press Play to replay the flow."
            )
        else:
            self._say(f"WARNING: {res.message}. Bad particles are hidden.")

    def _on_inverse(self, out) -> None:
        res, inv = out
        self.model.show_result(res, self.model.params.sampler, inverse=inv)
        self._say(
            f"{inv.kind}, NFE {res.nfe} each: hidden-pixel RMSE DDS {inv.rmse_dds:.3f} vs DPS {inv.rmse_dps:.3f}"
            "  (columns: input | DDS | DPS | truth)"
        )

    def _on_sample_error(self, msg: str) -> None:
        if self.model.result is not None:
            self.model.mark_stale(f"{msg}")
        self._say(msg)

    # -- output -------------------------------------------------------------------------------------------
    def canvas(self):
        return self.flow.canvas

    def render(self, size: tuple[int, int]) -> np.ndarray:
        return self.flow.render(size)

    def video(self) -> VideoSpec:
        """The flow from noise (u = 0) to data (u = 1), as drawn in the view."""
        m = self.model

        def frame(u: float, size: tuple[int, int]) -> np.ndarray:
            keep = m.frame
            m.set_frame(float(u) * m.last_frame)
            try:
                return self.render(size)
            finally:
                m.set_frame(keep)

        return VideoSpec("Flow", 4.0, frame, begin=self._need_result)

    def _need_result(self):
        if self.model.result is None:
            raise UserError("nothing to export yet: press Sample first")
        return self.model.result

    def _export_svg(self, path: Path) -> None:
        res = self._need_result()
        p = check_writable(path)
        good = ~res.bad
        x = res.samples[good]
        if x.shape[1] != 2:
            raise UserError("the SVG scatter is for 2-D data; export PNG for digits")
        x, cols = x[:20000], (particle_colors(self.model)[good][:20000, :3] * 255).astype(int)
        lo, hi = x.min(0), x.max(0)
        span = float(max(hi - lo)) or 1.0
        size, pad = 800.0, 40.0
        sx = pad + (x[:, 0] - lo[0]) / span * (size - 2 * pad)
        sy = size - pad - (x[:, 1] - lo[1]) / span * (size - 2 * pad)
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{size:.0f}" height="{size:.0f}" '
            f'viewBox="0 0 {size:.0f} {size:.0f}"><rect width="100%" height="100%" fill="white"/>',
            f'<text x="{pad}" y="24" font-family="sans-serif" font-size="16">{self.model.params.dataset}: '
            f"{LABELS.get(self.model.sampler_shown, '')}, NFE {res.nfe}, {len(x)} samples</text>",
        ]
        parts += [
            f'<circle cx="{a:.2f}" cy="{b:.2f}" r="1.6" fill="rgb({c[0]},{c[1]},{c[2]})"/>'
            for a, b, c in zip(sx, sy, cols)
        ]
        parts.append("</svg>")
        write_text(p, "\n".join(parts))

    def _export_samples(self, path: Path) -> None:
        res = self._need_result()
        if str(path).lower().endswith(".csv"):
            cols = [res.samples[:, k] for k in range(res.samples.shape[1])]
            save_csv(path, [f"x{k}" for k in range(len(cols))], cols)
        else:
            save_npz(path, samples=res.samples, traj=res.trajectory, bad=res.bad, nfe=np.int64(res.nfe))

    def _export_weights(self, path: Path) -> None:
        w = self.model.weights
        if w is None or w.family == "lightsb":
            raise UserError("no trained weights: train an EDM, PFGM++ or interpolant model first")
        generative(w).trained.save(check_writable(path))

    def exports(self) -> list[ExportAction]:
        plots = self.plots
        return [
            ExportAction("Sample scatter PNG", ("png",), lambda p: save_png(p, self._scatter_png())),
            ExportAction("Sample scatter SVG", ("svg",), self._export_svg),
            ExportAction("Samples NPZ/CSV", ("npz", "csv"), self._export_samples),
            ExportAction(
                "Training loss plot", ("png", "svg", "csv"), lambda p: export_plot(plots.loss_plot, p)
            ),
            ExportAction(
                "NFE vs sliced-W plot", ("png", "svg", "csv"), lambda p: export_plot(plots.nfe_plot, p)
            ),
            ExportAction("Model weights", ("pt",), self._export_weights),
        ]

    def _scatter_png(self) -> np.ndarray:
        self._need_result()
        return self.render(EXPORT_SIZE)
