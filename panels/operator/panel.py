"""Operator learning panel: generate or open a data set, train FNO/TFNO/LSM live, refine, inspect test samples.

Wiring only: the form writes :class:`~panels.operator.model.OperatorLab`, buttons submit backend generators
through :mod:`app.worker`, and the views redraw from the model's events.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from PySide6 import QtCore
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.export import export_plot, save_csv, save_npz, save_png
from app.worker import submit
from backends.common import UserError, drain
from backends.operator import checkpoint
from backends.operator import data as opdata
from panels.base import ExportAction, Panel
from panels.operator.model import MODELS, PROBLEMS, OperatorLab, OperatorParams, train_with_previews
from panels.operator.render import TITLES, compose, shared_limits
from panels.widgets import Field, ParamForm, fill_with_splitter, make_plot

FIELDS = [
    Field(
        "problem",
        "Problem",
        "choice",
        choices=PROBLEMS,
        tooltip="darcy: a -> u; ns: 10 vorticity steps -> the rest",
    ),
    Field("n", "Resolution n", "int", minimum=16, maximum=256),
    Field("count", "Samples", "int", minimum=2, maximum=20000),
    Field("seed", "Seed", "int", minimum=0, maximum=10**6),
    Field("nu", "Viscosity nu (ns)", log=True, minimum=1e-6, maximum=1.0),
    Field("steps", "Unit-time steps (ns)", "int", minimum=11, maximum=200),
    Field("n_test", "Test samples", "int", minimum=1, maximum=10000),
    Field("model", "Model", "choice", choices=MODELS, tooltip="fno3d: spatiotemporal FNO (Navier-Stokes)"),
    Field("modes", "Fourier modes", "int", minimum=1, maximum=128),
    Field("width", "Width", "int", minimum=8, maximum=256),
    Field("epochs", "Epochs", "int", minimum=1, maximum=10000),
    Field("lr", "Learning rate", log=True, minimum=1e-6, maximum=1.0),
    Field("batch_size", "Batch size", "int", minimum=1, maximum=1024),
    Field("refine_epochs", "Refiner epochs", "int", minimum=1, maximum=1000),
    Field("sample", "Test sample", "int", minimum=0, maximum=10000),
    Field("channel", "Output channel / step", "int", minimum=0, maximum=1000),
]


class OperatorPanel(Panel):
    key = "operator"
    title = "Operator learning"
    open_filter = "Operator data (*.npz *.pt)"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = OperatorLab()
        self._task = None
        self._build()
        for event, fn in (
            ("params", self._show_params),
            ("data", self._show_summary),
            ("history", self._draw_history),
            ("prediction", self._draw_sample),
            ("sample", self._draw_sample),
        ):
            self.model.on(event, fn)
        self.model.on("prediction", self._draw_spectra)
        self.model.on("prediction", self._show_summary)
        self._show_summary()

    # -- UI -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        import pyqtgraph as pg

        self.form = ParamForm(FIELDS, asdict(self.model.params))
        self.form.changed.connect(self._on_form)
        buttons = {}
        for name, slot in (
            ("Generate", self.generate),
            ("Open data...", self._open_dialog),
            ("Train", self.start),
            ("Refine", self.refine),
            ("Stop", self.stop),
            ("Load weights...", self._load_weights_dialog),
        ):
            b = QPushButton(name)
            b.clicked.connect(slot)
            buttons[name] = b
        self.buttons = buttons
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(2, 2, 2, 2)
        lv.addWidget(self.form)
        for row in (("Generate", "Open data..."), ("Train", "Refine", "Stop"), ("Load weights...",)):
            h = QHBoxLayout()
            for name in row:
                h.addWidget(buttons[name])
            lv.addLayout(h)
        self.info = QLabel()
        self.info.setWordWrap(True)
        lv.addWidget(self.info)
        lv.addStretch(1)

        self.images = pg.GraphicsLayoutWidget()
        self.images.setBackground("#101418")
        self.image_items = {}
        for i, title in enumerate(TITLES):
            vb = self.images.addViewBox(row=0, col=i, lockAspect=True)
            vb.invertY(True)
            item = pg.ImageItem()
            vb.addItem(item)
            self.images.addLabel(title, row=1, col=i, color="#dddddd")
            self.image_items[title] = item
        self.image_items["input"].setColorMap(pg.colormap.get("CET-L1"))  # grey
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), interactive=False)
        self.colorbar.setImageItem([self.image_items[k] for k in TITLES[1:]])
        self.images.addItem(self.colorbar, row=0, col=4)
        self.curves_plot = make_plot("Training", "epoch", "relative error", logy=True)
        self.c_train = self.curves_plot.plot([], [], pen=pg.mkPen("#1f77b4", width=2), name="train loss")
        self.c_test = self.curves_plot.plot([], [], pen=pg.mkPen("#d62728", width=2), name="test rel L2")
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
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.images, 3)
        rv.addWidget(plots, 2)
        fill_with_splitter(self, [left, right], [1, 3])

    # -- form <-> model -------------------------------------------------------------------------------------
    def _on_form(self, name: str, value) -> None:
        try:
            if name in ("sample", "channel"):
                self.model.select(**{name: value})
            else:
                self.model.set_params(**{name: value})
        except UserError as e:
            self.status.emit(str(e))
            self._show_params()

    def _show_params(self) -> None:
        self.form.set_values(asdict(self.model.params))

    def _show_summary(self) -> None:
        self.info.setText(self.model.summary())

    def params(self) -> OperatorParams:
        return self.model.params

    def set_params(self, cfg: OperatorParams) -> None:
        self.model.set_params(**asdict(cfg))

    # -- views ----------------------------------------------------------------------------------------------
    def _draw_sample(self) -> None:
        f = self.model.sample_fields()
        if f is None:
            return
        lo, hi = shared_limits(f)
        for k in TITLES:
            a = f[k]
            item = self.image_items[k]
            if a is None:
                item.clear()
                continue
            levels = (float(a.min()), float(a.max()) or 1.0) if k == "input" else (lo, hi)
            item.setImage(a.T, levels=levels)  # ImageItem indexes [x, y]
        self.colorbar.setLevels((lo, hi))

    def _draw_history(self) -> None:
        h = self.model.history
        ep = np.array([s.epoch for s in h], float)
        self.c_train.setData(ep, np.array([s.train_loss for s in h], float))
        self.c_test.setData(ep, np.array([s.test_l2 for s in h], float))

    def _draw_spectra(self) -> None:
        sp = self.model.spectra()
        if sp is None:
            return
        k, et, ep = sp
        sl = slice(1, None)  # log axes: skip k = 0
        self.s_truth.setData(k[sl], np.maximum(et[sl], 1e-30))
        self.s_pred.setData([] if ep is None else k[sl], [] if ep is None else np.maximum(ep[sl], 1e-30))

    # -- computation -----------------------------------------------------------------------------------------
    def _generator(self):
        p = self.model.params
        if p.problem == "darcy":
            return opdata.generate_darcy(p.n, p.count, seed=p.seed, compare=True)
        n = p.n if p.n % 16 == 0 else 16 * round(p.n / 16)
        return opdata.generate_ns(
            n, p.count, nu=p.nu, steps=p.steps, t_in=10, seed=p.seed, batch=min(p.count, 64)
        )

    def generate(self) -> None:
        self.stop()
        if self._busy():
            return
        self._task = submit(
            self._generator, label="generate operator data", group=f"operator-{id(self)}",
            on_progress=lambda f, m: self.status.emit(m),
            on_done=lambda ds: self.model.set_data(ds, "generated"),
            on_error=self.status.emit,
        )  # fmt: skip

    def _run_training(self, refine: bool) -> None:
        m = self.model
        self.stop()
        if self._busy():
            return
        try:
            if refine:
                if m.net is None:
                    raise UserError("train or load a model before refining it")
                net = m.net
            else:
                net = m.new_network()
        except UserError as e:
            self.status.emit(str(e))
            return
        self._task = submit(
            train_with_previews, net, m.train_data, m.test_data, m.params.train_config(refine), refine,
            label="refine operator" if refine else "train operator", group=f"operator-{id(self)}",
            on_yield=self._on_preview, on_error=self.status.emit, throttle_ms=0,
            on_done=lambda _net: self.status.emit("refinement done" if refine else "training done"),
        )  # fmt: skip

    def _on_preview(self, p) -> None:
        self.model.add_preview(p)
        s = p.stats
        self.status.emit(f"epoch {s.epoch}/{s.epochs}: loss {s.train_loss:.4g}, test rel L2 {s.test_l2:.4g}")

    def start(self) -> None:
        self._run_training(refine=False)

    def refine(self) -> None:
        self._run_training(refine=True)

    def stop(self) -> None:
        """Cancel at the next epoch or progress step (never blocks); results so far stay in the model."""
        if self._task is not None:
            self._task.cancel()

    def _busy(self) -> bool:
        if self._task is not None and self._task.is_running():
            self.status.emit(
                "the previous run is still stopping (it ends after the current epoch); try again"
            )
            return True
        return False

    def advance(self, steps: int) -> None:
        """Synchronously: generate the default data set if none, then train ``steps`` epochs (CLI snapshot)."""
        if self.model.data is None:
            self.model.set_data(drain(self._generator()), "generated")
        net = self.model.new_network()
        cfg = self.model.params.train_config()
        cfg = type(cfg)(**{**asdict(cfg), "epochs": max(1, min(int(steps), cfg.epochs))})
        for p in train_with_previews(net, self.model.train_data, self.model.test_data, cfg):
            self.model.add_preview(p)

    def shutdown(self) -> None:
        self.stop()
        if self._task is not None:
            self._task.stale = True
            self._task.wait(5_000)

    # -- files ------------------------------------------------------------------------------------------------
    def open_path(self, path: Path) -> None:
        self.model.set_data(opdata.load(path), Path(path).name)

    def _open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open operator data", "", self.open_filter)
        if path:
            try:
                self.open_path(Path(path))
            except UserError as e:
                self.status.emit(str(e))

    def load_weights(self, directory: Path) -> None:
        net, _meta = checkpoint.load(directory)
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

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Test sample PNG", ("png",), lambda p: save_png(p, self.render((1600, 400)))),
            ExportAction("Predictions NPZ", ("npz",), self._write_predictions),
            ExportAction("Metrics CSV", ("csv",), self._write_metrics),
            ExportAction(
                "Training curves SVG/PNG", ("svg", "png", "csv"), lambda p: export_plot(self.curves_plot, p)
            ),
            ExportAction("Weights (checkpoint directory)", ("ckpt",), self._write_weights),
        ]

    def _write_predictions(self, path: Path) -> None:
        m = self.model
        if m.prediction is None:
            raise UserError("no predictions yet: train or load a model first")
        save_npz(path, x=m.test_data.x, y=m.test_data.y, prediction=m.prediction, rel_l2=m.test_errors())

    def _write_metrics(self, path: Path) -> None:
        if not self.model.history:
            raise UserError("no training history yet")
        names, cols = self.model.metrics_columns()
        save_csv(path, names, cols)

    def _write_weights(self, path: Path) -> None:
        if self.model.net is None:
            raise UserError("no model yet: train one first")
        checkpoint.save(path, self.model.net, {"n_test": len(self.model.test_data)})

    # -- sessions ---------------------------------------------------------------------------------------------
    def state(self) -> dict:
        return self.model.state()

    def restore(self, state: dict) -> None:
        self.model.restore(state)
