"""pyqtgraph plots fed by the three-body model: energy error and step size (ours and REBOUND), the escape-time
map with axes and a colour bar, and the DQN reward curve. They keep no state of their own."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from backends.nbody.ensemble import CLOSE, ESCAPED, STATUS_NAMES
from backends.nbody.live import log_escape_time
from panels.threebody.escape_study import NOT_COMPUTED
from panels.threebody.model import ThreeBodyModel
from panels.widgets import PlotThrottle, finite_or_nan, make_plot

ENS_TITLE = "Escape time: body 2 starts at (x, y), all at rest"
ENS_LEGEND = "grey: no escape by t_end, black: close encounter"  # the title's second line (two short lines:
# a long title would set the plot's minimum width and push the colour bar out of the tab)
# while a study fills the map; no longer than ENS_LEGEND (a longer title widens the plot for good)
ENS_LEGEND_PARTIAL = "grey: no escape, black: close, pale: not yet done"
BOUND_RGBA = (150, 150, 150, 255)
CLOSE_RGBA = (0, 0, 0, 255)
NOT_COMPUTED_RGBA = (232, 232, 232, 255)  # a tile of a study that has not landed: paler than "no escape"
READOUT_LINES = 3  # the read-out wraps within this many lines: the layout never jumps with text length


def fixed_text(text: str = "", lines: int = READOUT_LINES) -> QLabel:
    """A wrapped label of fixed height that never widens its column (long results wrap, then clip)."""
    label = QLabel(text)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.setFixedHeight(label.fontMetrics().lineSpacing() * lines + 6)
    return label


class EnergyPlots(QWidget):
    def __init__(self, model: ThreeBodyModel, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.energy_plot = make_plot("Relative energy error", "t [N-body units]", "log10 |dE/E|")
        self.dt_plot = make_plot("Step size", "t [N-body units]", "log10 dt")
        self.e_curve = self.energy_plot.plot(pen="b", name="ours")
        self.e_ref = self.energy_plot.plot(pen="r", name="REBOUND IAS15")
        self.dt_curve = self.dt_plot.plot(pen="b", name="ours")
        self.dt_ref = self.dt_plot.plot(pen="r", name="REBOUND IAS15")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.energy_plot)
        lay.addWidget(self.dt_plot)
        # a long run appends a chunk many times a second: redraw at most every 100 ms (the curves can hold
        # 50,000 samples; one draw per chunk starved the event loop), at once for a reset or a session
        self.throttle = PlotThrottle(self._draw_run, plots=(self.energy_plot, self.dt_plot), parent=self)
        model.events.connect("history", self.throttle.request)
        for name in ("reset", "restored"):
            model.events.connect(name, self.draw_run)
        model.events.connect("reference", self.draw_reference)
        model.events.connect("reset", self.draw_reference)
        self.draw_run()

    def draw_run(self, **_) -> None:
        """Draw the run now (a pending throttled draw is cancelled)."""
        self.throttle.now()

    def _draw_run(self) -> None:
        rec, name = self.model.rec, self.model.run_label or "ours"
        for plot, curve in ((self.energy_plot, self.e_curve), (self.dt_plot, self.dt_curve)):
            _legend_entry(plot, curve, name, len(rec) > 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.e_curve.setData(rec.t[1:], finite_or_nan(np.log10(np.abs(rec.rel_energy_error()[1:]))))
            self.dt_curve.setData(rec.t[1:], finite_or_nan(np.log10(rec.dt[1:])))

    def draw_reference(self, **_) -> None:
        ref = self.model.ref
        for plot, curve in ((self.energy_plot, self.e_ref), (self.dt_plot, self.dt_ref)):
            _legend_entry(plot, curve, "REBOUND IAS15", len(ref["t"]) > 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            self.e_ref.setData(ref["t"][1:], finite_or_nan(np.log10(np.abs(ref["de"][1:]))))
            self.dt_ref.setData(ref["t"][1:], finite_or_nan(np.log10(ref["dt"][1:])))


def _legend_entry(plot, curve, name: str, shown: bool) -> None:
    """The legend lists a curve under ``name`` only while it has data (a legend describes what is drawn)."""
    legend = plot.getPlotItem().legend
    label = legend.getLabel(curve)
    if shown and label is None:
        legend.addItem(curve, name)
    elif shown and label.text != name:
        label.setText(name)
    elif not shown and label is not None:
        legend.removeItem(curve)


class EnsembleMap(QWidget):
    """log10 escape time in viridis with its colour bar; bound systems grey, close encounters black."""

    def __init__(self, model: ThreeBodyModel, controls: list[QWidget], parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.plot = make_plot(ENS_TITLE, "x of body 2", "y of body 2", legend=False)
        self.plot.getPlotItem().setAspectLocked(True)  # square cells: the grid is square in (x, y)
        self.image = pg.ImageItem()
        self.overlay = pg.ImageItem()
        self.plot.addItem(self.image)
        self.plot.addItem(self.overlay)
        self.bar = pg.ColorBarItem(
            values=(0, 1), colorMap=pg.colormap.get("viridis"), label="log10 escape time", interactive=False
        )
        self.bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        self.readout = fixed_text()
        self.plot.scene().sigMouseMoved.connect(self._hover)
        lay = QVBoxLayout(self)
        for w in controls:
            lay.addWidget(w)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.readout)
        model.events.connect("ensemble", self.draw)
        model.events.connect("restored", self.draw)
        self.draw()

    def draw(self, **_) -> None:
        res, m = self.model.ensemble, self.model
        text = m.ens_message + (f" [{m.ens_stale}]" if m.ens_stale else "")
        self.readout.setText(text)
        self.image.setVisible(res is not None)
        self.overlay.setVisible(res is not None)
        if res is None:
            self.plot.getPlotItem().setTitle(ENS_TITLE, size="9pt")
            return
        lg, (lo, hi) = log_escape_time(res)
        self.image.setImage(np.nan_to_num(lg, nan=lo).T, levels=(lo, hi))
        self.bar.setLevels((lo, hi))
        over = np.zeros(res.status.shape + (4,), np.uint8)
        over[res.status != ESCAPED] = BOUND_RGBA
        over[res.status == CLOSE] = CLOSE_RGBA
        partial = bool(np.any(res.status == NOT_COMPUTED))
        over[res.status == NOT_COMPUTED] = NOT_COMPUTED_RGBA
        self.overlay.setImage(np.transpose(over, (1, 0, 2)), levels=(0, 255))
        dx = (res.x[-1] - res.x[0]) / max(len(res.x) - 1, 1) if len(res.x) > 1 else 1.0
        dy = (res.y[-1] - res.y[0]) / max(len(res.y) - 1, 1) if len(res.y) > 1 else 1.0
        rect = QRectF(res.x[0] - dx / 2, res.y[0] - dy / 2, dx * len(res.x), dy * len(res.y))
        self.image.setRect(rect)
        self.overlay.setRect(rect)
        legend = ENS_LEGEND_PARTIAL if partial else ENS_LEGEND
        title = f"Escape time of {len(res.x)}x{len(res.y)} systems to t = {res.t_end:g}<br>{legend}"
        self.plot.getPlotItem().setTitle(title, size="9pt")

    def _hover(self, pos) -> None:
        res = self.model.ensemble
        if res is None or len(res.x) < 2 or len(res.y) < 2:
            return
        p = self.plot.getPlotItem().vb.mapSceneToView(pos)
        ix = int(round((p.x() - res.x[0]) / (res.x[1] - res.x[0])))
        iy = int(round((p.y() - res.y[0]) / (res.y[1] - res.y[0])))
        if 0 <= ix < len(res.x) and 0 <= iy < len(res.y):
            if res.status[iy, ix] == NOT_COMPUTED:
                self.readout.setText(f"x={res.x[ix]:.3f} y={res.y[iy]:.3f}: not computed yet")
                return
            st = STATUS_NAMES.get(int(res.status[iy, ix]), "?")
            et = res.escape_time[iy, ix]
            txt = f"x={res.x[ix]:.3f} y={res.y[iy]:.3f}: {st}"
            if np.isfinite(et):
                txt += f" at t={et:.3f} (body {int(res.escaper[iy, ix])})"
            txt += f", |dE/E|={res.energy_error[iy, ix]:.1e}, steps={int(res.steps[iy, ix])}"
            self.readout.setText(txt)


DQN_TITLE = "dqn-eval study: cost against accuracy"
POLICY_BRUSH = (220, 30, 30)


class RewardPlot(QWidget):
    """The DQN training reward and, once a dqn-eval store is opened, its cost–accuracy plot: the fixed etas
    as a labelled line with markers, the policy as a red star."""

    def __init__(self, model: ThreeBodyModel, controls: list[QWidget], parent=None) -> None:
        super().__init__(parent)
        self.model = model
        self.plot = make_plot("DQN training reward", "episode", "episode reward")
        self.curve = self.plot.plot(pen="b", symbol="o", symbolSize=4, name="reward")
        self.info = fixed_text()
        # log-log: the etas span decades in both cost and error, the policy sits among the cheap ones
        self.study_plot = make_plot(
            DQN_TITLE, "mean force evaluations", "log-mean |dE/E|", logx=True, logy=True
        )
        item = self.study_plot.getPlotItem()
        item.getViewBox().setDefaultPadding(0.1)  # room for the eta labels at the ends
        item.legend.anchor(
            (1, 0), (1, 0), offset=(-10, 10)
        )  # top right: the curve runs top left to bottom right
        self.fixed_curve = self.study_plot.plot(pen="b", symbol="o", symbolSize=6, name="fixed eta")
        self.policy_point = self.study_plot.plot(
            pen=None, symbol="star", symbolSize=16, symbolBrush=POLICY_BRUSH, name="policy"
        )
        self.eta_labels: list[pg.TextItem] = []
        self.study_info = fixed_text()
        lay = QVBoxLayout(self)
        for w in controls:
            lay.addWidget(w)
        lay.addWidget(self.plot, 1)
        lay.addWidget(self.info)
        lay.addWidget(self.study_plot, 1)
        lay.addWidget(self.study_info)
        model.events.connect("training", self.draw)
        model.events.connect("restored", self.draw)
        model.events.connect("dqn_study", self.draw_study)
        self.draw()
        self.draw_study()

    def draw(self, **_) -> None:
        r = np.asarray(self.model.rewards, float)
        self.curve.setData(np.arange(1, len(r) + 1), r)
        self.info.setText(self.model.train_message)

    def draw_study(self, **_) -> None:
        rows, m = self.model.dqn_rows, self.model
        for label in self.eta_labels:
            self.study_plot.removeItem(label)
        self.eta_labels = []
        shown = bool(rows) and rows[0].systems > 0
        self.study_plot.setVisible(bool(m.dqn_store))
        self.study_info.setVisible(bool(m.dqn_store))
        self.study_info.setText(m.dqn_message)
        if not shown:
            self.fixed_curve.setData([], [])
            self.policy_point.setData([], [])
            self.study_plot.getPlotItem().setTitle(DQN_TITLE, size="9pt")
            return
        pol, fixed = rows[0], rows[1:]
        self.fixed_curve.setData([r.mean_evals for r in fixed], [r.log_mean_de for r in fixed])
        self.policy_point.setData([pol.mean_evals], [pol.log_mean_de])
        for r in fixed:  # the eta below left of its marker, off the line (log axes: at log10 x, log10 y)
            eta = r.stepping.removeprefix("eta=")
            label = pg.TextItem(f"{float(eta):.2g}" if _is_number(eta) else eta, color="k", anchor=(1, 0))
            label.setPos(np.log10(r.mean_evals), np.log10(r.log_mean_de))
            self.study_plot.addItem(label)
            self.eta_labels.append(label)
        blown = sum(r.blowups for r in fixed)
        title = (
            f"{pol.systems} systems: log-mean |dE/E| against cost<br>"
            f"blow-ups: policy {pol.blowups}, fixed etas {blown}"
        )
        self.study_plot.getPlotItem().setTitle(title, size="9pt")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
