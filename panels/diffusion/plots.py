"""The training-loss and NFE-sweep plots, fed by :class:`DiffusionModel` (titles say what they show)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter

from backends.diffusion.pipeline import LABELS
from panels.widgets import PlotThrottle, finite_or_nan, make_plot

from .model import DiffusionModel

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
EMPTY_NFE_RANGE = (math.log10(2), math.log10(100))  # log10 of the NFE axis before a sweep
EMPTY_SW_RANGE = (-2.0, 0.5)  # log10 of sliced W2 before a sweep
MIN_TICK_GAP_PX = 28  # log-axis labels closer than this would overlap ("3 5 9" at small widths)


class LogAxis(pg.AxisItem):
    """A log axis labelled at 1-2-5 per decade (thinned to fit) in plain numbers: pyqtgraph's default log
    ticks label 2..9 of every decade, and those labels run into each other ("2345")."""

    def tickValues(self, minVal, maxVal, size):  # pyqtgraph override
        if not self.logMode:
            return super().tickValues(minVal, maxVal, size)
        lo, hi = math.floor(minVal), math.ceil(maxVal)
        span = max(maxVal - minVal, 1e-9)
        for mantissas in ((1, 2, 5), (1, 3), (1,)):
            vals = [math.log10(m * 10.0**e) for e in range(lo, hi + 1) for m in mantissas]
            vals = [v for v in vals if minVal - 1e-9 <= v <= maxVal + 1e-9]
            gaps = np.diff(vals) * size / span if len(vals) > 1 else [size]
            if min(gaps) >= MIN_TICK_GAP_PX:
                break
        if len(vals) < 2:  # a range inside one decade: pyqtgraph's ticks are far enough apart there
            return super().tickValues(minVal, maxVal, size)
        return [(1.0, vals)]

    def tickStrings(self, values, scale, spacing):  # pyqtgraph override
        if not self.logMode:
            return super().tickStrings(values, scale, spacing)
        return [f"{10.0**v:.3g}" for v in values]


class DiffusionPlots(QSplitter):
    """Training loss (top) and sample quality vs NFE for every sampler (bottom)."""

    def __init__(self, model: DiffusionModel, parent=None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.model = model
        self.loss_plot = make_plot("Training loss", "training step", "loss (EDM-weighted MSE)", logy=True)
        loss_axis = LogAxis("left")
        self.loss_plot.getPlotItem().setAxisItems({"left": loss_axis})
        loss_axis.setLogMode(True)  # the plot item is in log mode already: only the new axis needs telling
        self.loss_plot.getPlotItem().showGrid(x=True, y=True, alpha=0.25)
        self._loss = self.loss_plot.plot([], [], pen="#1f77b4", name="loss")
        self._loss_avg = self.loss_plot.plot(
            [], [], pen={"color": "#d62728", "width": 2}, name="running mean"
        )
        self.nfe_plot = make_plot("Sample quality vs NFE", "NFE (model evaluations)", "sliced W2 to data")
        item = self.nfe_plot.getPlotItem()
        self.nfe_axis, self.sw_axis = LogAxis("bottom"), LogAxis("left")
        item.setAxisItems({"bottom": self.nfe_axis, "left": self.sw_axis})
        for axis in (self.nfe_axis, self.sw_axis):  # labels are plain numbers: no "(x0.001)" SI scaling
            axis.enableAutoSIPrefix(False)
        item.setLabel("bottom", "NFE (model evaluations)")
        item.setLabel("left", "sliced W2 to data")
        item.setLogMode(x=True, y=True)
        item.showGrid(x=True, y=True, alpha=0.25)
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._bars: dict[str, pg.ErrorBarItem] = {}  # +-1 standard deviation over seeds (a sweep study's)
        self._floor = pg.InfiniteLine(
            angle=0,
            pen=pg.mkPen("k", style=Qt.PenStyle.DashLine),
            label="noise floor",
            labelOpts={"color": "k", "position": 0.1},
        )
        self._floor.setVisible(False)
        item.addItem(self._floor)
        self.addWidget(self.loss_plot)
        self.addWidget(self.nfe_plot)
        #: whether training or a sweep streams updates in (only then are redraws throttled); the panel sets it
        self.is_live: Callable[[], bool] = lambda: False
        self.loss_throttle = PlotThrottle(
            self.show_losses, live=self._live, plots=(self.loss_plot,), parent=self
        )
        self.curve_throttle = PlotThrottle(
            self.show_curves, live=self._live, plots=(self.nfe_plot,), parent=self
        )
        model.events.connect("losses", self.loss_throttle.request)
        model.events.connect("curves", self.curve_throttle.request)
        model.events.connect("restored", lambda **_: (self.loss_throttle.now(), self.curve_throttle.now()))
        self.show_losses()
        self.show_curves()

    def _live(self) -> bool:
        return self.is_live()

    def show_losses(self) -> None:
        m = self.model
        y = finite_or_nan(np.maximum(m.losses, 1e-12))
        x = m.loss_start + np.arange(1, len(y) + 1)
        self._loss.setData(x, y)
        if len(y) >= 10:
            k = max(5, len(y) // 50)
            self._loss_avg.setData(x[k - 1 :], np.convolve(np.nan_to_num(y), np.ones(k) / k, mode="valid"))
        else:
            self._loss_avg.setData([], [])
        family = m.weights.family if m.weights is not None else m.params.model
        if len(y):
            title = f"Training loss ({family}, {len(y) + m.loss_start} steps)"
        elif m.params.model == "exact":
            title = "Training loss (exact model: no training)"
        else:
            title = "Training loss (not trained yet: press Train)"
        item = self.loss_plot.getPlotItem()
        item.setTitle(title, color="k")
        item.setLabel("left", "loss (EDM-weighted MSE)" if family in ("edm", "pfgmpp") else "loss")

    def show_curves(self) -> None:
        m = self.model
        by: dict[str, list] = {}
        for pt in m.curves:
            by.setdefault(pt.sampler, []).append(pt)
        for s in list(self._curves):
            if s not in by:  # a sampler of an earlier sweep: remove it from the plot and its legend
                self.nfe_plot.getPlotItem().removeItem(self._curves.pop(s))
                self.nfe_plot.getPlotItem().removeItem(self._bars.pop(s))
        for s, pts in by.items():
            if s not in self._curves:
                color = SAMPLER_COLORS[s]
                self._curves[s] = self.nfe_plot.plot(
                    [],
                    [],
                    pen=pg.mkPen(color, width=2),
                    symbol="o",
                    symbolSize=5,
                    symbolBrush=color,
                    name=LABELS[s],
                )
                self._bars[s] = pg.ErrorBarItem(pen=pg.mkPen(color, width=1), beam=0.04)
                self.nfe_plot.getPlotItem().addItem(self._bars[s])
            self._curves[s].setData([p.nfe for p in pts], finite_or_nan([p.sw for p in pts]))
            self._set_bars(s, pts)
        floors = [p.floor for p in m.curves if math.isfinite(p.floor)]
        if floors:
            self._floor.setValue(math.log10(float(np.mean(floors))))
        self._floor.setVisible(bool(floors))
        vb = self.nfe_plot.getPlotItem().getViewBox()
        if m.curves:
            vb.enableAutoRange()
        else:  # an empty sweep shows the NFE range it will cover, not pyqtgraph's 1..10 default
            vb.setRange(xRange=EMPTY_NFE_RANGE, yRange=EMPTY_SW_RANGE, padding=0)
        about = f": {m.curves_about}" if m.curves else " (press NFE sweep)"
        self.nfe_plot.getPlotItem().setTitle(f"Sample quality vs NFE{about}", color="k")

    def _set_bars(self, sampler: str, pts: list) -> None:
        """Error bars of +-1 std over seeds, in the plot's log10 coordinates (ErrorBarItem is not log-aware);
        the lower end is clipped at 1/10 of the mean where the spread reaches zero."""
        sd = np.array([self.model.curve_spread.get((p.sampler, p.nfe), np.nan) for p in pts], float)
        mean = np.array([p.sw for p in pts], float)
        ok = np.isfinite(sd) & np.isfinite(mean) & (mean > 0)
        x, m, sd = np.log10([p.nfe for p in pts])[ok], mean[ok], sd[ok]
        y = np.log10(m)
        self._bars[sampler].setData(
            x=x, y=y, top=np.log10(m + sd) - y, bottom=y - np.log10(np.maximum(m - sd, m / 10)), beam=0.04
        )

    def error_bars(self, sampler: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log10 NFE, log10 mean, log10 of the upper end) of a sampler's error bars, as drawn."""
        o = self._bars[sampler].opts
        x, y, top = (np.asarray(o[k] if o[k] is not None else [], float) for k in ("x", "y", "top"))
        return x, y, y + top

    def curve_samplers(self) -> list[str]:
        """The samplers whose sweep curves are drawn (the legend's entries)."""
        return sorted(self._curves)
