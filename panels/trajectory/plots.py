"""The trajectory panel's plots (pyqtgraph), fed by the model: the eigen-trajectory basis, agents and anchors
in ET-coefficient space, and the training curve of the model that belongs to the current settings.

Titles always say what is drawn: a plot without a model says why it is empty.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from panels.trajectory.model import TrajectoryModel
from panels.widgets import PlotThrottle, make_plot

SWEEP_COLUMNS = ("scene", "seeds", "minADE (m)", "minFDE (m)", "CV ADE (m)", "CV FDE (m)")
MAX_POINTS = 4000  # ET-space scatter: a fixed random subset of the test agents keeps the plot responsive


def _second(a: np.ndarray) -> np.ndarray:
    """The second coefficient, or zeros when k = 1 (the scatter is then a line)."""
    return a[:, 1] if a.shape[1] > 1 else np.zeros(len(a))


class TrajectoryPlots(QTabWidget):
    def __init__(self, model: TrajectoryModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.basis_plot = make_plot("", "future step (0.4 s)", "basis value (normalised units)")
        self.coef_plot = make_plot(
            "", "coefficient c1 (normalised units)", "coefficient c2 (normalised units)"
        )
        self.loss_plot = make_plot("", "epoch", "loss / minFDE (m)")
        self.addTab(self.basis_plot, "Basis")
        self.addTab(self.coef_plot, "ET space")
        self.addTab(self.loss_plot, "Training")
        self.sweep_tab = QWidget()
        self.sweep_title = QLabel("Scene sweep: none yet (press Sweep scenes × seeds)")
        self.sweep_title.setWordWrap(True)
        self.sweep_table = QTableWidget(0, len(SWEEP_COLUMNS))
        self.sweep_table.setHorizontalHeaderLabels(SWEEP_COLUMNS)
        self.sweep_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.sweep_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.sweep_table.verticalHeader().setVisible(False)
        lay = QVBoxLayout(self.sweep_tab)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.sweep_title)
        lay.addWidget(self.sweep_table, 1)
        self.addTab(self.sweep_tab, "Scene sweep")
        for name in ("forecast", "restored"):
            model.events.connect(name, self.update_model_plots)
        # a training run reports every epoch: redraw its curve at most every 100 ms while it runs
        self.loss_throttle = PlotThrottle(
            self.update_loss, live=lambda: model.training is not None, plots=(self.loss_plot,), parent=self
        )
        model.events.connect("training", self.loss_throttle.request)
        model.events.connect("sweep", self.update_sweep)
        self.update_model_plots()
        self.update_loss()

    def _shown_model(self):
        m = self.model
        return m.models.get(m.model_key()) if m.params.model == "eigentrajectory" else None

    def update_model_plots(self, **_info) -> None:
        import pyqtgraph as pg

        et = self._shown_model()
        self.basis_plot.clear()
        self.coef_plot.clear()
        if et is None:
            why = (
                "model is not EigenTrajectory"
                if self.model.params.model != "eigentrajectory"
                else "press Train"
            )
            self.basis_plot.getPlotItem().setTitle(f"Eigen-trajectory basis: none ({why})", color="k")
            self.coef_plot.getPlotItem().setTitle(f"ET space: none ({why})", color="k")
            return
        k = et.cfg.k
        self.basis_plot.getPlotItem().setTitle(
            f"Eigen-trajectory basis, k = {k} (future, moving agents)", color="k"
        )
        colors = [pg.intColor(i, hues=max(k, 2)) for i in range(k)]
        U = et.net.U_pred[0].numpy().reshape(et.cfg.pred_len, 2, k)
        t = np.arange(1, et.cfg.pred_len + 1)
        for j in range(k):
            self.basis_plot.plot(t, U[:, 0, j], pen=pg.mkPen(colors[j], width=2), name=f"u{j + 1} x")
            dashed = pg.mkPen(colors[j], width=1, style=Qt.PenStyle.DashLine)
            self.basis_plot.plot(t, U[:, 1, j], pen=dashed, name=f"u{j + 1} y")
        w = self.model.windows
        where = self.model.scene.label if self.model.scene is not None else "no data"
        self.coef_plot.getPlotItem().setTitle(f"Agents and anchors in ET space ({where})", color="k")
        if w is None or not w.num_agents:
            return
        co = et.coefficients(w)
        c = co["pred"][co["moving"]]
        if len(c) > MAX_POINTS:
            c = c[np.random.default_rng(0).choice(len(c), MAX_POINTS, replace=False)]
        self.coef_plot.plot(
            c[:, 0],
            _second(c),
            pen=None,
            symbol="o",
            symbolSize=3,
            symbolBrush=(60, 90, 200, 90),
            symbolPen=None,
            name="test agents (future, moving)",
        )
        a = et.net.anchors[0].numpy()
        self.coef_plot.plot(
            a[:, 0],
            _second(a),
            pen=None,
            symbol="x",
            symbolSize=12,
            symbolBrush=(220, 40, 40),
            symbolPen=(220, 40, 40),
            name="anchors (k-means)",
        )

    def update_loss(self, **_info) -> None:
        import pyqtgraph as pg

        m = self.model
        h = m.shown_history()
        self.loss_plot.clear()
        running = m.training is not None and m.training.key == m.model_key()
        if h is None or not h.train_loss:
            why = "training…" if running else "no training run for these settings"
            self.loss_plot.getPlotItem().setTitle(f"Training: {why}", color="k")
            return
        state = "running" if running else "finished"
        self.loss_plot.getPlotItem().setTitle(f"Training ({state}, {h.epoch}/{h.epochs} epochs)", color="k")
        e = np.arange(1, len(h.train_loss) + 1)
        self.loss_plot.plot(
            e,
            np.asarray(h.train_loss, float),
            pen=pg.mkPen((40, 80, 200), width=2),
            symbol="o",
            symbolSize=5,
            name="train loss (coef + ADE + FDE)",
        )
        self.loss_plot.plot(
            e,
            np.asarray(h.val_minfde, float),
            pen=pg.mkPen((200, 60, 40), width=2),
            symbol="s",
            symbolSize=5,
            name="validation minFDE (m)",
        )

    def update_sweep(self, **_info) -> None:
        """The scene sweep table: mean ± std over the seeds finished so far (a blank cell: not yet)."""
        sw = self.model.sweep
        t = self.sweep_table
        if sw is None:
            t.setRowCount(0)
            self.sweep_title.setText("Scene sweep: none yet (press Sweep scenes × seeds)")
            return
        self.sweep_title.setText(
            f"Scene sweep: {sw.model} over {len(sw.scenes)} scenes × {sw.seeds} seeds, "
            f"{sw.done}/{sw.total} runs done (mean ± std over seeds; CV = constant velocity)"
        )
        t.setRowCount(len(sw.scenes))
        for r, row in enumerate(sw.rows()):
            scene, n, ade, ade_sd, fde, fde_sd, cv_ade, cv_fde = row
            cells = [scene, f"{n}/{sw.seeds}", _pm(ade, ade_sd), _pm(fde, fde_sd), _num(cv_ade), _num(cv_fde)]
            for c, text in enumerate(cells):
                item = t.item(r, c)
                if item is None:
                    t.setItem(r, c, QTableWidgetItem(text))
                else:
                    item.setText(text)

    def sweep_cells(self) -> list[list[str]]:
        """The table's text, row by row (what the user reads)."""
        t = self.sweep_table
        return [[t.item(r, c).text() for c in range(t.columnCount())] for r in range(t.rowCount())]


def _num(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v:.3f}"


def _pm(mean: float, sd: float) -> str:
    if not np.isfinite(mean):
        return ""
    return f"{mean:.3f}" if not np.isfinite(sd) else f"{mean:.3f} ± {sd:.3f}"
