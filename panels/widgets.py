"""Small widgets every panel shares: a parameter form, a vispy canvas, a titled plot, a play bar."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QWidget,
)


# -- parameter form ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    """One row of a :class:`ParamForm`. ``kind`` is float, int, bool, choice or text."""

    name: str
    label: str
    kind: str = "float"
    minimum: float = -1e9
    maximum: float = 1e9
    decimals: int = 4
    step: float | None = None
    choices: tuple[str, ...] = ()
    tooltip: str = ""
    log: bool = False  # float spin box steps multiplicatively (x2 / /2): good for dt, nu, tolerances


class _LogSpinBox(QDoubleSpinBox):
    def stepBy(self, steps: int) -> None:  # Qt override
        v = self.value() or self.minimum() or 1e-12
        self.setValue(v * (2.0**steps))

    def textFromValue(self, value: float) -> str:  # Qt override
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:  # Qt override
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text, pos):  # Qt override: accept scientific notation while typing
        from PySide6.QtGui import QValidator

        try:
            float(text)
            return QValidator.State.Acceptable, text, pos
        except ValueError:
            return QValidator.State.Intermediate, text, pos


class ParamForm(QWidget):
    """A form built from :class:`Field` rows. ``changed(name, value)`` fires on every user edit."""

    changed = Signal(str, object)

    def __init__(self, fields: list[Field], values: dict[str, Any] | None = None, parent=None):
        super().__init__(parent)
        self._fields = {f.name: f for f in fields}
        self._widgets: dict[str, QWidget] = {}
        layout = QFormLayout(self)
        layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for f in fields:
            w = self._make(f)
            w.setToolTip(f.tooltip)
            w.setObjectName(f"param_{f.name}")
            self._widgets[f.name] = w
            layout.addRow(f.label, w)
        if values:
            self.set_values(values)

    def _make(self, f: Field) -> QWidget:
        if f.kind == "float":
            w = _LogSpinBox() if f.log else QDoubleSpinBox()
            w.setDecimals(f.decimals if not f.log else 12)
            w.setRange(f.minimum, f.maximum)
            if f.step is not None:
                w.setSingleStep(f.step)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=f.name: self.changed.emit(n, float(v)))
        elif f.kind == "int":
            w = QSpinBox()
            w.setRange(int(max(f.minimum, -(2**31) + 1)), int(min(f.maximum, 2**31 - 1)))
            if f.step is not None:
                w.setSingleStep(int(f.step))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=f.name: self.changed.emit(n, int(v)))
        elif f.kind == "bool":
            w = QCheckBox()
            w.toggled.connect(lambda v, n=f.name: self.changed.emit(n, bool(v)))
        elif f.kind == "choice":
            w = QComboBox()
            w.addItems(list(f.choices))
            w.currentTextChanged.connect(lambda v, n=f.name: self.changed.emit(n, v))
        elif f.kind == "text":
            w = QLineEdit()
            w.editingFinished.connect(lambda n=f.name, w=w: self.changed.emit(n, w.text()))
        else:
            raise ValueError(f"unknown field kind {f.kind!r}")
        return w

    def widget(self, name: str) -> QWidget:
        return self._widgets[name]

    def values(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, w in self._widgets.items():
            if isinstance(w, QDoubleSpinBox):
                out[name] = float(w.value())
            elif isinstance(w, QSpinBox):
                out[name] = int(w.value())
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            elif isinstance(w, QComboBox):
                out[name] = w.currentText()
            elif isinstance(w, QLineEdit):
                out[name] = w.text()
        return out

    def set_values(self, values: dict[str, Any]) -> None:
        """Set widgets without emitting ``changed`` (the model already holds these values)."""
        for name, v in values.items():
            w = self._widgets.get(name)
            if w is None or v is None:
                continue
            w.blockSignals(True)
            try:
                if isinstance(w, QDoubleSpinBox):
                    w.setValue(float(v))
                elif isinstance(w, QSpinBox):
                    w.setValue(int(v))
                elif isinstance(w, QCheckBox):
                    w.setChecked(bool(v))
                elif isinstance(w, QComboBox):
                    i = w.findText(str(v))
                    if i >= 0:
                        w.setCurrentIndex(i)
                elif isinstance(w, QLineEdit):
                    w.setText(str(v))
            finally:
                w.blockSignals(False)


# -- layout ---------------------------------------------------------------------------------------------
def param_fields(params_cls: type) -> list[Field]:
    """The form rows of a params dataclass declared with :func:`panels.model.param` (its one list of ranges)."""
    from panels.model import param_specs

    return [
        Field(
            name,
            s.label,
            s.kind,
            minimum=s.minimum,
            maximum=s.maximum,
            decimals=s.decimals,
            step=s.step,
            choices=s.choices,
            tooltip=s.tooltip,
            log=s.log,
        )
        for name, s in param_specs(params_cls).items()
        if s.form
    ]


def bind_form(form: ParamForm, model, on_error=None) -> None:
    """Keep ``form`` and ``model.params`` identical: edits go through the model's validation, model changes
    (sessions, presets, code) refresh the form. A rejected edit puts the model's value back into the form."""
    from dataclasses import asdict

    names = set(form.values())

    def sync(**_info) -> None:
        form.blockSignals(True)
        try:
            form.set_values({k: v for k, v in asdict(model.params).items() if k in names})
        finally:
            form.blockSignals(False)

    def edited(name: str, value) -> None:
        try:
            model.set_params(**{name: value})
        except ValueError as exc:
            sync()
            if on_error is not None:
                on_error(str(exc))

    form.changed.connect(edited)
    model.events.connect("params", sync)
    sync()


def fill_with_splitter(owner: QWidget, parts: list[QWidget], stretch: list[int]) -> QSplitter:
    """Lay ``parts`` side by side in a horizontal splitter filling ``owner`` (controls | view | plots)."""
    split = QSplitter(Qt.Orientation.Horizontal)
    for i, (w, k) in enumerate(zip(parts, stretch, strict=True)):
        split.addWidget(w)
        split.setStretchFactor(i, k)
    lay = QHBoxLayout(owner)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(split)
    return split


# -- colour bar -------------------------------------------------------------------------------------------
class ColorBar(QWidget):
    """A horizontal colour bar drawn by Qt under a canvas: gradient, five tick values and a label.

    Drawn outside the GL canvas on purpose: it changes a few times a second at most, while text inside a
    vispy scene is re-laid out on every frame the canvas draws.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._lut = np.linspace(0, 1, 256)[:, None].repeat(4, 1)
        self._lut[:, 3] = 1.0
        self._limits = (0.0, 1.0)
        self._label = ""
        # bar + ticks + a row of tick values + the label row, from the font (a fixed 56 px clipped the label)
        height = 4 + 14 + 7 + 2 * self.fontMetrics().height() + 6
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)

    def set_colormap(self, lut: np.ndarray) -> None:
        """``lut``: (N, 4) RGBA in [0, 1], low to high."""
        self._lut = np.asarray(lut, dtype=float)
        self.update()

    def set_limits(self, lo: float, hi: float) -> None:
        if (lo, hi) != self._limits:
            self._limits = (float(lo), float(hi))
            self.update()

    def set_label(self, text: str) -> None:
        if text != self._label:
            self._label = text
            self.update()

    def limits(self) -> tuple[float, float]:
        return self._limits

    def paintEvent(self, _event) -> None:
        from PySide6.QtCore import QPointF, QRectF
        from PySide6.QtGui import QColor, QLinearGradient, QPainter

        painter = QPainter(self)
        try:
            fm = painter.fontMetrics()
            margin = max(fm.horizontalAdvance("-0.000e+00") // 2, 8)
            bar = QRectF(margin, 4, max(self.width() - 2 * margin, 10), 14)
            grad = QLinearGradient(bar.topLeft(), bar.topRight())
            n = len(self._lut)
            for i in range(0, n, max(1, n // 64)):
                r, g, b, a = (float(np.clip(c, 0, 1)) for c in self._lut[i])
                grad.setColorAt(i / (n - 1), QColor.fromRgbF(r, g, b, a))
            r, g, b, a = (float(np.clip(c, 0, 1)) for c in self._lut[-1])
            grad.setColorAt(1.0, QColor.fromRgbF(r, g, b, a))
            painter.fillRect(bar, grad)
            painter.setPen(QColor("black"))
            painter.drawRect(bar)
            lo, hi = self._limits
            y = bar.bottom()
            for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
                x = bar.left() + frac * bar.width()
                painter.drawLine(QPointF(x, y), QPointF(x, y + 4))
                text = f"{lo + frac * (hi - lo):.3g}"
                tw = fm.horizontalAdvance(text)
                painter.drawText(QPointF(x - tw / 2, y + 5 + fm.ascent()), text)
            if self._label:
                tw = fm.horizontalAdvance(self._label)
                painter.drawText(
                    QPointF((self.width() - tw) / 2, y + 7 + fm.ascent() + fm.height()), self._label
                )
        finally:
            painter.end()


# -- play bar ---------------------------------------------------------------------------------------------
class PlayBar(QWidget):
    """Run / pause / step buttons and a scrub slider over recorded frames."""

    run_toggled = Signal(bool)
    step_clicked = Signal()
    scrubbed = Signal(int)

    def __init__(self, parent=None, with_step: bool = True):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.run_button = QPushButton("Run")
        self.run_button.setCheckable(True)
        self.run_button.toggled.connect(self._toggled)
        lay.addWidget(self.run_button)
        if with_step:
            self.step_button = QPushButton("Step")
            self.step_button.clicked.connect(self.step_clicked)
            lay.addWidget(self.step_button)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self.scrubbed)
        lay.addWidget(self.slider, 1)

    def _toggled(self, on: bool) -> None:
        self.run_button.setText("Pause" if on else "Run")
        self.run_toggled.emit(on)

    def set_running(self, on: bool) -> None:
        self.run_button.blockSignals(True)
        self.run_button.setChecked(on)
        self.run_button.setText("Pause" if on else "Run")
        self.run_button.blockSignals(False)

    def set_frames(self, count: int, follow: bool = True) -> None:
        """Update the slider range; while ``follow`` the slider stays on the newest frame."""
        self.slider.blockSignals(True)
        at_end = self.slider.value() >= self.slider.maximum()
        self.slider.setRange(0, max(count - 1, 0))
        if follow and at_end:
            self.slider.setValue(max(count - 1, 0))
        self.slider.blockSignals(False)


#: plots redraw at most this often while a run streams updates in (one draw per update starved the event loop)
PLOT_INTERVAL_MS = 100.0


# -- vispy canvas and pyqtgraph plot ----------------------------------------------------------------------
def make_canvas(bgcolor: str = "#101418", size: tuple[int, int] = (640, 480)):
    """A vispy SceneCanvas ready to embed (``canvas.native`` is the QWidget)."""
    from vispy import scene

    canvas = scene.SceneCanvas(keys="interactive", bgcolor=bgcolor, size=size, show=False)
    canvas.native.setMinimumSize(200, 150)
    return canvas


def render_canvas(canvas, size: tuple[int, int]) -> np.ndarray:
    """Render a vispy canvas off-screen at ``size`` = (width, height) as RGBA uint8, camera untouched."""
    w, h = int(size[0]), int(size[1])
    img = canvas.render(size=(w, h), alpha=True)
    return np.ascontiguousarray(img[..., :4]).astype(np.uint8)


class PlotThrottle(QObject):
    """Redraw plots at most every ``interval_ms`` while updates stream in, and never lose the last one.

    ``request()`` on every model update: it draws at once if the last draw is older than the interval
    (leading edge), otherwise once when the interval has passed (trailing edge), so a burst of updates costs
    one draw per interval and the plot always ends on the newest data. While ``live()`` is false (no run
    streams in: a synchronous step, a script, a test) ``request()`` draws at once. ``now()`` draws at once (a
    reset, a restored session); ``flush()`` draws only if a trailing draw is pending (before an export).
    The data drawn is never thinned: plot CSV exports read the curves' data.

    Pass the plot widgets it draws as ``plots``: :func:`app.export.export_plot` flushes their throttles, so an
    export taken mid-run shows everything the model holds.
    """

    def __init__(
        self,
        draw: Callable[[], None],
        interval_ms: float = PLOT_INTERVAL_MS,
        *,
        live: Callable[[], bool] = lambda: True,
        plots=(),
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if not 0 <= interval_ms <= 10_000:
            raise ValueError(f"interval_ms must be in 0..10000, got {interval_ms}")
        self._draw = draw
        self.live = live
        self.interval_ms = float(interval_ms)
        self._last = -math.inf  # time.monotonic() of the last draw
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.now)
        self.draws = 0  # how many times it drew (tests, benchmarks)
        for plot in plots:
            plot.throttles.append(self)

    def request(self, *_args, **_kwargs) -> None:
        """An update arrived: draw now or at the end of the interval (signal/event payloads are ignored)."""
        wait = self._last + self.interval_ms / 1000 - time.monotonic()
        if wait <= 0 or not self.live():
            self.now()
        elif not self._timer.isActive():
            self._timer.start(max(1, math.ceil(wait * 1000)))

    def now(self, *_args, **_kwargs) -> None:
        """Draw at once (cancels a pending trailing draw)."""
        self._timer.stop()
        self._last = time.monotonic()
        self.draws += 1
        self._draw()

    def flush(self) -> None:
        """Draw now if a trailing draw is pending."""
        if self._timer.isActive():
            self.now()

    @property
    def pending(self) -> bool:
        return self._timer.isActive()


def make_plot(
    title: str, xlabel: str, ylabel: str, *, logx: bool = False, logy: bool = False, legend: bool = True
):
    """A pyqtgraph PlotWidget with title, labelled axes (units in the label) and a legend.

    ``w.throttles`` lists the :class:`PlotThrottle` objects that draw into it: the export service flushes
    them before it writes the plot."""
    import pyqtgraph as pg

    pg.setConfigOptions(background="w", foreground="k", antialias=True)
    w = pg.PlotWidget()
    w.throttles = []
    w.setBackground("w")
    item = w.getPlotItem()
    item.setTitle(title, color="k")
    item.setLabel("bottom", xlabel)
    item.setLabel("left", ylabel)
    for side in ("bottom", "left"):  # plain tick numbers, not "distance (x0.001)" with scaled ticks
        item.getAxis(side).enableAutoSIPrefix(False)
    item.setLogMode(x=logx, y=logy)
    item.showGrid(x=True, y=True, alpha=0.25)
    if legend:
        item.addLegend(offset=(10, 10))
    w.setMinimumHeight(140)
    return w


def finite_or_nan(a: np.ndarray) -> np.ndarray:
    """Replace inf by NaN so plots skip those points instead of drawing garbage (pyqtgraph connects finite)."""
    a = np.asarray(a, dtype=float).copy()
    a[~np.isfinite(a)] = np.nan
    return a


def grid_segments(lo: tuple[float, float], hi: tuple[float, float], lines: int = 10) -> np.ndarray:
    """Segments (2M, 2) of a square grid covering the box lo..hi with about ``lines`` lines across, at a
    1-2-5 spacing. Drawn as one ``Line(connect="segments")``: vispy's ``GridLines`` shades every pixel of
    the canvas (tens of ms a frame on a software rasterizer)."""
    lo_a, hi_a = np.asarray(lo, float), np.asarray(hi, float)
    span = float(max((hi_a - lo_a).max(), 1e-9))
    raw = span / max(lines, 1)
    mag = 10.0 ** np.floor(np.log10(raw))
    step = mag * next(m for m in (1.0, 2.0, 5.0, 10.0) if m * mag >= raw * (1 - 1e-9))
    xs = np.arange(np.floor(lo_a[0] / step), np.ceil(hi_a[0] / step) + 1) * step
    ys = np.arange(np.floor(lo_a[1] / step), np.ceil(hi_a[1] / step) + 1) * step
    segs = [((x, ys[0]), (x, ys[-1])) for x in xs] + [((xs[0], y), (xs[-1], y)) for y in ys]
    return np.asarray(segs, np.float32).reshape(-1, 2)
