"""Operator learning panel: generate or open a data set, train FNO/TFNO/LSM live, refine, inspect test samples.

Wiring only: the form writes :class:`~panels.operator.model.OperatorLab`, buttons submit backend generators
through the panel's task set, and the views redraw from the model's events. A worker trains its own network
and hands the GUI copies of the weights after every epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6 import QtCore
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.export import export_plot, save_csv, save_npz, save_png
from backends.common import UserError, drain
from backends.operator import checkpoint
from backends.operator import data as opdata
from panels.base import ExportAction, Panel, VideoSpec
from panels.operator.model import OperatorLab, OperatorParams, data_generator, train_with_previews
from panels.operator.render import TITLES, compose, shared_limits
from panels.widgets import ParamForm, PlotThrottle, bind_form, fill_with_splitter, make_plot, param_fields

SECONDS_PER_SAMPLE = 0.5  # video: how long each test sample is shown


class OperatorPanel(Panel):
    key = "operator"
    title = "Operator learning"
    open_filter = "Operator data (*.npz *.pt)"
    quick_start = (
        "<p>Press <b>Generate</b> for a Darcy (or Navier-Stokes) data set solved here, or File &gt; Open a "
        "neuraloperator <code>.pt</code>/NPZ set. Then <b>Train</b>: the test sample, the training curves and "
        "the energy spectra update after every epoch. <b>Refine</b> runs the Spectral-Refiner on the trained "
        "network; <b>Stop</b> keeps the last epoch. Pick the test sample and output channel in the form.</p>"
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

    def _show_summary(self, **_) -> None:
        stale = self.model.stale
        self.info.setText(self.model.summary() + (f"<br><b>{stale}</b>" if stale else ""))

    # -- views ----------------------------------------------------------------------------------------------
    def _training(self) -> bool:
        return self.tasks.busy("run")

    def _draw_views(self) -> None:
        self._draw_sample()
        self._draw_spectra()

    def _draw_sample(self, **_) -> None:
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

    def _draw_history(self, **_) -> None:
        h = self.model.history
        ep = np.array([s.epoch for s in h], float)
        self.c_train.setData(ep, np.array([s.train_loss for s in h], float))
        self.c_test.setData(ep, np.array([s.test_l2 for s in h], float))

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
        self.tasks.submit(
            data_generator, self.model.params, label="generate operator data", group="run",
            on_progress=lambda f, m: self.status.emit(m),
            on_done=lambda ds: self.model.set_data(ds, "generated"),
            on_error=self.status.emit,
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
            label="refine operator" if refine else "train operator", group="run",
            on_yield=self._on_preview, on_error=self.status.emit, throttle_ms=0,
            on_done=lambda _r: self.status.emit("refinement done" if refine else "training done"),
        )  # fmt: skip

    def _on_preview(self, p) -> None:
        self.model.add_preview(p)
        s = p.stats
        self.status.emit(f"epoch {s.epoch}/{s.epochs}: loss {s.train_loss:.4g}, test rel L2 {s.test_l2:.4g}")

    def start(self) -> None:
        self._run_training(refine=False)

    def refine(self) -> None:
        self._run_training(refine=True)

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
        """The test samples one after another (half a second each), as the export shows them."""
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
            raise UserError("no predictions yet: press Train (or load weights) first")
        save_npz(path, x=m.test_data.x, y=m.test_data.y, prediction=m.prediction, rel_l2=m.test_errors())

    def _write_metrics(self, path: Path) -> None:
        if not self.model.history:
            raise UserError("no training history yet: press Train")
        names, cols = self.model.metrics_columns()
        save_csv(path, names, cols)

    def _write_weights(self, path: Path) -> None:
        net = self.model.network()
        if net is None:
            raise UserError("no model yet: press Train first")
        checkpoint.save(path, net, {"n_test": len(self.model.test_data)})
