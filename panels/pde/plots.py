"""The PDE side plots (pyqtgraph), fed by the model: energy spectrum E(k) with k^-3 and k^-5/3 guides, the
model's own history curves (named by what they plot), the point probe's time series, the line probe's profile
and space-time image, and the Darcy residual histories."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QSplitter, QTabWidget

from backends.pde.probes import line_profile
from panels.widgets import PlotThrottle, finite_or_nan, make_plot

from .figure import colormap_rgba
from .model import LINE_SAMPLES, SPECTRUM_MODELS, PDEModel

PLOTS_EVERY_MS = 500.0  # pyqtgraph repaints are the costly part of a live frame: 2 Hz while running
COLOURS = ("#1f77b4", "#ff7f0e")


class DecadeAxis(pg.AxisItem):
    """A log axis labelled at decades only (pyqtgraph labels 2·10¹, 3·10¹, ... too, which overlap)."""

    def logTickStrings(self, values, scale, spacing):  # pyqtgraph override
        strings = super().logTickStrings(values, scale, spacing)
        decade = [abs(v - round(v)) < 1e-6 for v in values]
        if not any(decade):  # less than a decade in view: the minor labels are all there is
            return strings
        return [s if d else "" for s, d in zip(strings, decade)]


def _log_plot(title: str, xlabel: str, ylabel: str, logx: bool) -> pg.PlotWidget:
    w = make_plot(title, xlabel, ylabel, logx=logx, logy=True)
    item = w.getPlotItem()
    sides = ("bottom", "left") if logx else ("left",)
    item.setAxisItems({side: DecadeAxis(side) for side in sides})
    for side in ("bottom", "left"):  # plain tick numbers, not "E(k) (x0.001)"
        item.getAxis(side).enableAutoSIPrefix(False)
    item.setLabel("bottom", xlabel)
    item.setLabel("left", ylabel)
    item.updateLogMode()  # the new axes take the plot's log mode
    item.showGrid(x=True, y=True, alpha=0.25)
    return w


class Plots(QSplitter):
    """Spectrum on top, tabs (history / probe / line / Darcy) below."""

    def __init__(self, model: PDEModel, parent=None) -> None:
        super().__init__(Qt.Orientation.Vertical, parent)
        self.model = model
        self.spectrum_plot = _log_plot(
            "Energy spectrum E(k)", "wavenumber k (cycles per unit length)", "E(k)", True
        )
        self.history_plot = _log_plot("history", "time t (model units)", "", False)
        self.probe_plot = make_plot("Probe", "time t (model units)", "field value")
        self.line_plot = make_plot(
            "Line probe: draw a line with Shift+drag", "distance along line", "field value"
        )
        self.kymo_plot = make_plot("Line probe over time", "distance along line", "time t", legend=False)
        self.darcy_plot = _log_plot(
            "Darcy: residual vs iteration", "CG iteration", "relative residual ‖r‖/‖b‖", False
        )
        pen = {"width": 2}
        self.spec_curve = self.spectrum_plot.plot([], [], pen={**pen, "color": "#1f77b4"}, name="E(k)")
        dash = Qt.PenStyle.DashLine
        self.k3 = self.spectrum_plot.plot([], [], pen={"color": "#d62728", "style": dash}, name="k^-3")
        self.k53 = self.spectrum_plot.plot([], [], pen={"color": "#2ca02c", "style": dash}, name="k^-5/3")
        self.hist_curves = [self.history_plot.plot([], [], pen={**pen, "color": c}) for c in COLOURS]
        self.probe_curve = self.probe_plot.plot([], [], pen={**pen, "color": "#9467bd"}, name="probe")
        self.line_curve = self.line_plot.plot([], [], pen={**pen, "color": "#8c564b"}, name="now")
        self.kymo = pg.ImageItem()
        self.kymo_plot.addItem(self.kymo)
        self.res_plain = self.darcy_plot.plot([], [], pen={**pen, "color": "#7f7f7f"}, name="plain PCG")
        self.res_rec = self.darcy_plot.plot([], [], pen={**pen, "color": "#d62728"}, name="recycled CG")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.history_plot, "History")
        self.tabs.addTab(self.probe_plot, "Probe")
        line_tab = QSplitter(Qt.Orientation.Vertical)
        line_tab.addWidget(self.line_plot)
        line_tab.addWidget(self.kymo_plot)
        self.line_tab = line_tab
        self.tabs.addTab(line_tab, "Line")
        self.tabs.addTab(self.darcy_plot, "Darcy")
        self.addWidget(self.spectrum_plot)
        self.addWidget(self.tabs)
        self.setMinimumWidth(320)
        #: whether a live run feeds frames now (only then are redraws throttled); the panel sets it
        self.is_live: Callable[[], bool] = lambda: False
        self._history_keys: tuple = ()
        plots = (self.spectrum_plot, self.history_plot, self.probe_plot, self.line_plot, self.kymo_plot)
        self.throttle = PlotThrottle(
            self._draw,
            PLOTS_EVERY_MS,
            live=lambda: self.is_live(),
            plots=plots + (self.darcy_plot,),
            parent=self,
        )
        ev = model.events
        ev.connect("frame", self.throttle.request)
        for name in ("params", "reset", "restored", "probe"):
            ev.connect(name, self.throttle.now)
        ev.connect("line", lambda **_: self._line_drawn())
        ev.connect("darcy", lambda **_: self._darcy())

    def _line_drawn(self) -> None:
        self.tabs.setCurrentWidget(self.line_tab)
        self.update_plots()

    def update_plots(self) -> None:
        """Redraw from the model now (live frames go through the throttle: at most 2 per second)."""
        self.throttle.now()

    def _draw(self) -> None:
        self._spectrum()
        self._history()
        self._probe()
        self._line()
        self._darcy(select=False)

    def _spectrum(self) -> None:
        m, fr = self.model, self.model.current
        shown = m.params.model in SPECTRUM_MODELS and fr is not None and fr.get("spectrum") is not None
        curves = ([], []), ([], []), ([], [])
        if shown:
            k, E = fr["spectrum"]
            keep = (k > 0) & (E > 1e-14 * max(float(E.max()), 1e-300))
            if keep.any():
                k, E = k[keep], E[keep]
                k0, e0 = k[min(3, len(k) - 1)], E[min(3, len(E) - 1)]
                kk = k[k >= k0]
                curves = (k, E), (kk, e0 * (kk / k0) ** -3.0), (kk, e0 * (kk / k0) ** (-5.0 / 3.0))
        for curve, (x, y) in zip((self.spec_curve, self.k3, self.k53), curves):
            curve.setData(x, y)
        title = (
            "Energy spectrum E(k)"
            if m.params.model in SPECTRUM_MODELS
            else f"no spectrum for {m.params.model}"
        )
        if shown:
            title += f" at t = {fr.get('spectrum_t', fr['t']):.4g}"
        self.spectrum_plot.getPlotItem().setTitle(title, color="k")

    def _history(self) -> None:
        name, keys = self.model.history()
        h = self.model.hist
        t = np.asarray(h["t"])
        for curve, (key, _label) in zip(self.hist_curves, keys + (("", ""),) * 2):
            v = h.get(key)
            curve.setData(
                *((t, finite_or_nan(v)) if v is not None and len(v) == len(t) and len(t) else ([], []))
            )
        if keys != self._history_keys:
            self._history_keys = keys
            item = self.history_plot.getPlotItem()
            model = self.model.params.model
            title = f"{name} vs time ({model})" if keys else f"no time history for {model}: see the Darcy tab"
            item.setTitle(title, color="k")
            item.setLabel("left", " and ".join(label for _, label in keys) or "—")
            self.tabs.setTabText(0, name.replace("&", "&&"))
            if item.legend is not None:
                item.legend.clear()
                for curve, (_key, label) in zip(self.hist_curves, keys):
                    item.legend.addItem(curve, label.split(" (")[0])

    def _probe(self) -> None:
        m = self.model
        ph = np.asarray(m.probe_hist, float).reshape(-1, 2)
        self.probe_curve.setData(ph[:, 0], finite_or_nan(ph[:, 1]))
        title = f"Probe: {m.params.view} at ({m.probe[0]:.2f}, {m.probe[1]:.2f})"
        self.probe_plot.getPlotItem().setTitle(title, color="k")
        self.probe_plot.getPlotItem().setLabel("left", m.params.view)

    def _line(self) -> None:
        m = self.model
        f, _ = m.display()
        if m.line is None or f is None or m.params.model == "darcy":
            self.line_curve.setData([], [])
            self.kymo.clear()
            self.line_plot.getPlotItem().setTitle("Line probe: draw a line with Shift+drag", color="k")
            return
        (x0, y0), (x1, y1) = m.line
        dist, v = line_profile(f, *m.line, num=LINE_SAMPLES)
        self.line_curve.setData(dist, finite_or_nan(v))
        title = f"{m.params.view} from ({x0:.2f}, {y0:.2f}) to ({x1:.2f}, {y1:.2f})"
        self.line_plot.getPlotItem().setTitle(title, color="k")
        if len(m.line_hist) >= 2:
            t = np.array([h[0] for h in m.line_hist])
            vals = np.stack([h[1] for h in m.line_hist])  # (T, samples)
            cmap, clim = m.cmap_and_clim(f)
            self.kymo.setImage(colormap_rgba(vals.T, cmap, clim), autoLevels=False)  # x = distance, y = time
            span = max(float(t[-1] - t[0]), 1e-12)
            self.kymo.setRect(QRectF(0.0, float(t[0]), float(dist[-1]) or 1.0, span))
        else:
            self.kymo.clear()

    def _darcy(self, select: bool = True) -> None:
        d = self.model.darcy
        if d is None:
            self.res_plain.setData([], [])
            self.res_rec.setData([], [])
            self.darcy_plot.getPlotItem().setTitle("Darcy: residual vs iteration (press Run)", color="k")
            return
        self.res_plain.setData(np.arange(len(d["res_plain"])), finite_or_nan(d["res_plain"]))
        self.res_rec.setData(np.arange(len(d["res_rec"])), finite_or_nan(d["res_rec"]))
        title = f"system {d['j'] + 1}: PCG {d['it_plain']} vs recycled {d['it_rec']} iterations"
        self.darcy_plot.getPlotItem().setTitle(title, color="k")
        if select:
            self.tabs.setCurrentWidget(self.darcy_plot)
