"""Operator learning panel: generate (a batch study) or open a data set, train FNO/TFNO/LSM live, refine,
inspect test samples, roll a Navier-Stokes operator out beside the solver, evaluate zero-shot at 2n.

Wiring only: the form writes :class:`~panels.operator.model.OperatorLab`, buttons submit backend generators
through the panel's task set, and the views (:mod:`panels.operator.views`) redraw from the model's events. A
worker trains its own network and hands the GUI copies of the weights after every epoch; rollouts and
zero-shot runs get a network rebuilt from those copies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QTabWidget, QVBoxLayout, QWidget

from app.export import export_plot, save_png
from backends.batch import Study
from backends.batch.places import default_store, studies_dir
from backends.common import UserError, drain
from backends.operator import checkpoint
from backends.operator import data as opdata
from backends.operator.rollout import rollout
from backends.operator.studies import dataset_workload, load_study, read_study
from backends.operator.zeroshot import zero_shot_generated
from panels.base import ExportAction, Panel, VideoSpec
from panels.operator.exports import (
    write_metrics,
    write_predictions,
    write_rollout_csv,
    write_rollout_npz,
    write_weights,
    write_zeroshot_png,
)
from panels.operator.model import OperatorLab, OperatorParams, data_generator, train_with_previews
from panels.operator.render import TITLES, compose, compose_rollout, shared_limits
from panels.operator.views import RolloutView, TileGrid, ZeroShotView
from panels.study import run_study, where
from panels.widgets import ParamForm, PlotThrottle, bind_form, fill_with_splitter, make_plot, param_fields

SECONDS_PER_SAMPLE = 0.5  # video: how long each test sample is shown
SECONDS_PER_STEP = 0.25  # video: how long each rollout step is shown


class OperatorPanel(Panel):
    key = "operator"
    title = "Operator learning"
    open_filter = "Operator data (*.npz *.pt)"
    study_workloads = ("pde-dataset",)
    quick_start = (
        "<p>Press <b>Generate</b> for a Darcy (or Navier-Stokes) data set: a <code>pde-dataset</code> batch "
        "study (on the cluster when Compute &gt; Cluster… has one), counts streaming in as chunks finish; or "
        "File &gt; Open a neuraloperator <code>.pt</code>/NPZ set or a study store. Then <b>Train</b>: the test "
        "sample, the training curves and the energy spectra update after every epoch. <b>Refine</b> runs the "
        "Spectral-Refiner on the trained network (its last spectral layer widened to every mode and fine-tuned: "
        "on Navier-Stokes data against the equation's residual in H⁻¹, otherwise against the "
        "H⁻¹ misfit to the data); <b>Stop</b> keeps the last epoch.</p>"
        "<p><b>Roll out</b> (Navier-Stokes): the selected test sample's 10 given snapshots start the operator "
        "and the pseudo-spectral solver (from the last given snapshot) side by side, one unit of time per step, "
        "with the relative L2 error against time. Longer than the model's output window the rollout is "
        "<i>block-autoregressive</i>: the last 10 known frames (predictions included) are fed back and the next "
        "block of outputs appended. <b>Zero-shot 2n</b> generates test samples on the grid of half the spacing "
        "(NS: 2n points; Darcy: 2n-1 nodes, every other node is the n grid) and shows the model there beside "
        "its prediction at n, with both errors and the interpolated-from-n error.</p>"
    )
    controls = (
        ("Mouse wheel on an image", "zoom (all four tiles keep their own view)"),
        ("Drag on an image", "pan"),
        ("Right click on a plot", "pyqtgraph menu: axes, export"),
        ("Test sample / Output channel", "choose what the four tiles show"),
    )

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = OperatorLab()
        self._build()
        ev = self.model.events
        ev.connect("data", self._show_summary)
        # training hands over a preview every epoch: redraw at most every 100 ms while it runs
        history = PlotThrottle(
            self._draw_history, live=self._training, plots=(self.curves_plot,), parent=self
        )
        sample = PlotThrottle(self._draw_views, live=self._training, plots=(self.spectra_plot,), parent=self)
        ev.connect("history", history.request)
        ev.connect("sample", sample.request)
        ev.connect("prediction", sample.request)
        ev.connect("prediction", self._show_summary)
        ev.connect("stale", self._show_summary)
        ev.connect("restored", self._show_summary)
        ev.connect("study", self._show_summary)
        ev.connect("rollout", lambda **_: self.rollout_view.draw(self.model))
        ev.connect("zeroshot", lambda **_: self.zeroshot_view.draw(self.model))
        ev.connect("sample", lambda **_: self.zeroshot_view.draw(self.model))
        self.study_dir = studies_dir()  # Generate keeps one store per parameter set here
        self._show_summary()

    # -- UI -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        import pyqtgraph as pg

        self.form = ParamForm(param_fields(OperatorParams))
        bind_form(self.form, self.model, self.status.emit)
        buttons = {}
        for name, slot in (
            ("Generate", self.generate),
            ("Open data...", self._open_dialog),
            ("Train", self.start),
            ("Refine", self.refine),
            ("Stop", self.stop),
            ("Load weights...", self._load_weights_dialog),
            ("Roll out", self.roll_out),
            ("Zero-shot 2n", self.zero_shot),
        ):
            b = QPushButton(name)
            b.clicked.connect(slot)
            buttons[name] = b
        self.buttons = buttons
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(2, 2, 2, 2)
        lv.addWidget(self.form)
        rows = (("Generate", "Open data..."), ("Train", "Refine", "Stop"), ("Roll out", "Zero-shot 2n"),
                ("Load weights...",))  # fmt: skip
        for row in rows:
            h = QHBoxLayout()
            for name in row:
                h.addWidget(buttons[name])
            lv.addLayout(h)
        self.info = QLabel()
        self.info.setWordWrap(True)
        lv.addWidget(self.info)
        lv.addStretch(1)

        self.images = TileGrid([list(TITLES)], grey_cols=(0,))
        self.image_items, self.colorbar = self.images.items, self.images.colorbar
        self.curves_plot = make_plot("Training", "epoch", "relative error", logy=True)
        self.c_train = self.curves_plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2), name="train loss")
        self.c_test = self.curves_plot.plot([], [], pen=pg.mkPen("#d62728", width=2), name="test rel L2")
        self.refine_mark = pg.InfiniteLine(
            angle=90,
            pen=pg.mkPen("#555", width=1, style=QtCore.Qt.PenStyle.DashLine),
            label="refine",
            labelOpts={"position": 0.9},
        )
        self.refine_mark.setVisible(False)
        self.curves_plot.addItem(self.refine_mark)
        self.spectra_plot = make_plot(
            "Energy spectrum (test set)", "wavenumber |k|", "E(k)", logx=True, logy=True
        )
        self.s_truth = self.spectra_plot.plot([], [], pen=pg.mkPen("k", width=2), name="truth")
        self.s_pred = self.spectra_plot.plot(
            [], [], pen=pg.mkPen("#d62728", width=2, style=QtCore.Qt.PenStyle.DashLine), name="prediction"
        )
        plots = QWidget()
        ph = QHBoxLayout(plots)
        ph.setContentsMargins(0, 0, 0, 0)
        ph.addWidget(self.curves_plot)
        ph.addWidget(self.spectra_plot)
        sample_tab = QWidget()
        rv = QVBoxLayout(sample_tab)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.images, 3)
        rv.addWidget(plots, 2)
        self.rollout_view, self.zeroshot_view = RolloutView(), ZeroShotView()
        self.tabs = QTabWidget()
        self.tabs.addTab(sample_tab, "Test sample")
        self.tabs.addTab(self.rollout_view, "Rollout")
        self.tabs.addTab(self.zeroshot_view, "Zero-shot")
        fill_with_splitter(self, [left, self.tabs], [1, 3])

    def _show_summary(self, **_) -> None:
        stale, study = self.model.stale, self.model.study
        text = self.model.summary() + (f"<br><b>{stale}</b>" if stale else "")
        self.info.setText(text + (f"<br>{study.line()}" if study is not None else ""))

    # -- views ----------------------------------------------------------------------------------------------
    def _training(self) -> bool:
        return self.tasks.busy("run")

    def _draw_views(self) -> None:
        self._draw_sample()
        self._draw_spectra()

    def _draw_sample(self, **_) -> None:
        f = self.model.sample_fields()
        if f is not None:
            self.images.show_fields({k: f[k] for k in TITLES}, shared_limits(f))

    def _draw_history(self, **_) -> None:
        """Epochs counted on from training into refinement (a refinement restarts its own epoch numbers), with
        a dashed line where the last refinement starts: its loss is the refiner's objective, not the
        training loss."""
        h = self.model.history
        ep = np.arange(1, len(h) + 1, dtype=float)
        self.c_train.setData(ep, np.array([s.train_loss for s in h], float))
        self.c_test.setData(ep, np.array([s.test_l2 for s in h], float))
        starts = [i for i in range(1, len(h)) if h[i].epoch <= h[i - 1].epoch]
        self.refine_mark.setVisible(bool(starts))
        if starts:
            self.refine_mark.setValue(starts[-1] + 0.5)

    def _draw_spectra(self, **_) -> None:
        sp = self.model.spectra()
        if sp is None:
            return
        k, et, ep = sp
        sl = slice(1, None)  # log axes: skip k = 0
        self.s_truth.setData(k[sl], np.maximum(et[sl], 1e-30))
        self.s_pred.setData([] if ep is None else k[sl], [] if ep is None else np.maximum(ep[sl], 1e-30))

    # -- computation -----------------------------------------------------------------------------------------
    def generate(self) -> None:
        """Run the pde-dataset study of the form's data parameters; its finished chunks become the data set."""
        p = self.model.params
        n = p.n if p.problem == "darcy" or p.n % 16 == 0 else 16 * round(p.n / 16)
        name = f"{p.problem}-n{n}-count{p.count}-chunk{p.chunk}-seed{p.seed}"
        if p.problem == "ns":
            name += f"-nu{p.nu:g}-steps{p.steps}"
        try:
            work = dataset_workload(p.problem, n, p.count, p.chunk, nu=p.nu, steps=p.steps)
            self.study_dir.mkdir(parents=True, exist_ok=True)
            study = Study(work, default_store(work, p.seed, label=name, root=self.study_dir), seed=p.seed)
            study.open()
        except (UserError, OSError) as e:
            self.status.emit(str(e))
            return
        sizes = {i: r["x"][0].stop - r["x"][0].start for i, r in enumerate(work.regions())}
        self.model.begin_study(str(study.store), study.n_chunks, p.count, where())
        run_study(
            self, study, lambda results: self.model.add_study_chunks(results, sizes),
            on_done=lambda report: self._study_done(study.store, report), on_error=self.status.emit,
            group="run", label="generate",
        )  # fmt: skip

    def _study_done(self, store: Path, report) -> None:
        """The finished chunks become the data set (read in a worker: a big store takes seconds)."""
        if report.done == 0:
            self.status.emit("generate: no chunk finished")
            return
        failed = f", {len(report.failed)} chunks failed" if report.failed else ""
        self.tasks.submit(
            read_study, store, label="read study", group="run", on_error=self.status.emit,
            on_progress=lambda f, m: self.status.emit(m),
            on_done=lambda ds: (self.model.set_data(ds, store.name),
                                self.status.emit(f"generate: {report.done}/{report.total} chunks in {store}{failed}")),
        )  # fmt: skip

    def _run_training(self, refine: bool) -> None:
        m = self.model
        try:
            if refine:
                net = m.network()  # a fresh copy built from the weights shown: the worker owns it
                if net is None or m.train_data is None:
                    raise UserError(
                        "train or load a model (with its training data) before refining: press Train"
                    )
            else:
                net = m.new_network()
        except UserError as e:
            self.status.emit(str(e))
            return
        self.tasks.submit(
            train_with_previews, net, m.train_data, m.test_data, m.params.train_config(refine), refine,
            m.params.refine_on, label="refine operator" if refine else "train operator", group="run",
            on_yield=self._on_preview, on_error=self.status.emit, throttle_ms=0,
            on_done=lambda _r: self.status.emit("refinement done" if refine else "training done"),
        )  # fmt: skip

    def _on_preview(self, p) -> None:
        self.model.add_preview(p)
        s = p.stats
        self.status.emit(
            f"epoch {s.epoch}/{s.epochs}: loss {s.train_loss:.4g}, test rel L2 {s.test_l2:.4g}, "
            f"above the median wavenumber {p.high_k_error:.3g}"
        )

    def start(self) -> None:
        self._run_training(refine=False)

    def refine(self) -> None:
        self._run_training(refine=True)

    def roll_out(self) -> None:
        """The selected test sample's rollout, operator beside solver, step by step into the model."""
        try:
            net, given, cfg = self.model.rollout_job()
        except UserError as e:
            self.status.emit(str(e))
            return
        self.tabs.setCurrentWidget(self.rollout_view)
        self.tasks.submit(
            rollout, net, given, cfg, label="operator rollout", group="rollout", throttle_ms=0,
            on_yield=self.model.add_rollout_step, on_error=self.status.emit,
            on_done=lambda r: self.status.emit(f"rollout done: relative L2 {r.rel_l2[-1]:.4f} at t = {r.times[-1]}"),
        )  # fmt: skip

    def zero_shot(self) -> None:
        """Generate test samples on the fine grid and evaluate the trained model there and at n."""
        try:
            kind, n, count, kw = self.model.zeroshot_job()
        except UserError as e:
            self.status.emit(str(e))
            return
        self.tabs.setCurrentWidget(self.zeroshot_view)
        self.tasks.submit(
            zero_shot_generated, self.model.network(), kind, n, count, label="zero-shot", group="zeroshot",
            **kw, on_progress=lambda f, m: self.status.emit(m), on_done=self.model.set_zeroshot,
            on_error=self.status.emit,
        )  # fmt: skip

    def advance(self, steps: int) -> None:
        """Synchronously: generate the default data set if none, then train ``steps`` epochs (CLI snapshot)."""
        if self.model.train_data is None:
            self.model.set_data(drain(data_generator(self.model.params)), "generated")
        net = self.model.new_network()
        p = self.model.params
        cfg = p.train_config(epochs=max(1, min(int(steps), p.epochs)))
        for preview in train_with_previews(net, self.model.train_data, self.model.test_data, cfg):
            self.model.add_preview(preview)

    # -- files ------------------------------------------------------------------------------------------------
    def open_path(self, path: Path) -> None:
        data = opdata.load(path)
        self.stop()  # a running task's late results must not land on the new data
        self.model.set_data(data, Path(path).name)

    def open_study(self, path: Path, meta: dict) -> None:
        """A pde-dataset store's finished chunks as the data set (ready to train)."""
        data = load_study(path)
        self.stop()
        self.model.set_data(data, Path(path).name)

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open operator data", "", self.open_filter)
        if path:
            try:
                self.open_path(Path(path))
            except UserError as e:
                self.status.emit(str(e))

    def load_weights(self, directory: Path) -> None:
        net, _meta = checkpoint.load(directory)
        self.stop()
        self.model.set_network(net)

    def _load_weights_dialog(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Checkpoint directory")
        if d:
            try:
                self.load_weights(Path(d))
            except UserError as e:
                self.status.emit(str(e))

    # -- output ---------------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        f = self.model.sample_fields()
        if f is None:
            out = np.zeros((int(size[1]), int(size[0]), 4), np.uint8)
            out[..., 3] = 255
            return out
        return compose(f, size)

    def video(self) -> VideoSpec | None:
        """The rollout (solver | operator | difference, a quarter second per step) when there is one, else
        the test samples one after another (half a second each)."""
        r = self.model.rollout
        if r is not None and r.steps:
            steps, limits = len(r.steps), r.limits()

            def rollout_frame(u: float, size: tuple[int, int]) -> np.ndarray:
                return compose_rollout(self.model.rollout_fields(round(u * (steps - 1))), size, limits)

            return VideoSpec("Rollout", max(2.0, SECONDS_PER_STEP * steps), rollout_frame)
        test = self.model.test_data
        if test is None:
            return None
        n = len(test)

        def frame(u: float, size: tuple[int, int]) -> np.ndarray:
            return compose(self.model.sample_fields(min(int(u * n), n - 1)), size)

        return VideoSpec("Test samples", max(2.0, SECONDS_PER_SAMPLE * n), frame)

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Test sample PNG", ("png",), lambda p: save_png(p, self.render((1600, 400)))),
            ExportAction("Predictions NPZ", ("npz",), lambda p: write_predictions(self.model, p)),
            ExportAction("Metrics CSV", ("csv",), lambda p: write_metrics(self.model, p)),
            ExportAction(
                "Training curves SVG/PNG", ("svg", "png", "csv"), lambda p: export_plot(self.curves_plot, p)
            ),
            ExportAction("Weights (checkpoint directory)", ("ckpt",), lambda p: write_weights(self.model, p)),
            ExportAction("Rollout NPZ", ("npz",), lambda p: write_rollout_npz(self.model, p)),
            ExportAction("Rollout error CSV", ("csv",), lambda p: write_rollout_csv(self.model, p)),
            ExportAction("Zero-shot PNG", ("png",), lambda p: write_zeroshot_png(self.model, p)),
        ]
