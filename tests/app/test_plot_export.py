"""Plot PNG exports keep the on-screen figure's proportions at any width (issue 13: tiny legends in 4K exports).

Measured on the PNG's ink: the heights of the bottom axis label and the legend text grow with the export
width, the curves get thicker in proportion, and an export at twice the widget's width, shrunk back by two,
is the widget's own screenshot (same layout, nothing clipped or moved)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from app import export

WIDGET = (400, 300)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(int), 0]))
    return list(zip(edges[::2], edges[1::2]))


def _dark(img: np.ndarray) -> np.ndarray:
    """Black text and axes: dark and grey (the coloured curves are excluded)."""
    rgb = img[..., :3].astype(int)
    return (rgb.max(-1) < 110) & (rgb.max(-1) - rgb.min(-1) < 40)


def _axis_label_height(img: np.ndarray) -> int:
    """Rows of the bottom axis label: the last run of rows with dark ink."""
    rows = _dark(img).any(axis=1)
    start, stop = _runs(rows)[-1]
    return stop - start


def _legend_text_height(img: np.ndarray, plot, scale: float) -> int:
    """Rows from the top of the first legend entry's text to the bottom of the last one."""
    legend = plot.getPlotItem().legend
    r = legend.sceneBoundingRect()
    x0, x1 = int(r.left() * scale), int(r.right() * scale)
    y0, y1 = int(r.top() * scale), int(r.bottom() * scale)
    rows = np.flatnonzero(_dark(img[y0:y1, x0:x1]).any(axis=1))
    return int(rows[-1] - rows[0] + 1)


def _curve_width(img: np.ndarray) -> float:
    """Median number of red pixels per row through the middle of the plot (a steep part of the sine)."""
    rgb = img[..., :3].astype(int)
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 110) & (rgb[..., 2] < 110)
    h, w = red.shape
    return float(np.median(red[int(0.45 * h) : int(0.55 * h), : int(0.45 * w)].sum(axis=1)))


@pytest.fixture
def plot(qtbot):
    from panels.widgets import make_plot

    w = make_plot("Energy error", "time t (units)", "log10 |dE/E|")
    qtbot.addWidget(w)
    x = np.linspace(0.0, 10.0, 400)
    w.plot(x, np.cos(x), pen={"color": "r", "width": 2}, name="reference curve")
    w.plot(x, np.sin(x), pen="b", name="ours")
    w.resize(*WIDGET)
    w.show()
    qtbot.waitExposed(w)
    return w


def test_text_legend_and_lines_scale_with_the_export_width(plot, tmp_path):
    imgs = {}
    for width in (800, 1600):
        p = export.export_plot(plot, tmp_path / f"p{width}.png", width=width)
        imgs[width] = iio.imread(p)
        assert imgs[width].shape[:2] == (width * WIDGET[1] // WIDGET[0], width)
    small, big = imgs[800], imgs[1600]
    label = _axis_label_height(big) / _axis_label_height(small)
    legend = _legend_text_height(big, plot, 4.0) / _legend_text_height(small, plot, 2.0)
    line = _curve_width(big) / _curve_width(small)
    assert 1.8 <= label <= 2.2, label
    assert 1.8 <= legend <= 2.2, legend
    assert 1.6 <= line <= 2.4, line
    # the legend text is as tall as the axis label (same font) at every width, not a fixed few pixels
    assert _legend_text_height(big, plot, 4.0) >= 0.8 * _axis_label_height(big)


def test_export_is_the_widget_scaled_and_leaves_it_as_it_was(plot, tmp_path):
    from pyqtgraph.functions import ndarray_from_qimage
    from PySide6.QtGui import QImage

    def screenshot() -> np.ndarray:
        img = plot.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
        return ndarray_from_qimage(img)[..., [2, 1, 0]].astype(float)  # BGRA in memory

    item = plot.getPlotItem()
    before = screenshot()
    pens = [c.curve.opts["pen"].widthF() for c in item.curves]
    rng = item.viewRange()
    big = iio.imread(export.export_plot(plot, tmp_path / "p.png", width=2 * WIDGET[0]))[..., :3].astype(float)
    halved = big.reshape(WIDGET[1], 2, WIDGET[0], 2, 3).mean(axis=(1, 3))
    # same layout: text, ticks, legend and curves where the screen has them (antialiasing differs a little)
    assert np.abs(halved - before).mean() < 6.0
    assert np.array_equal(screenshot(), before)
    assert [c.curve.opts["pen"].widthF() for c in item.curves] == pens
    assert item.viewRange() == rng


def test_plot_png_width_defaults_to_the_export_size_setting(plot, tmp_path, config_dir):
    from app import settings

    settings.settings().setValue("export_size", "1000x700")
    png = iio.imread(export.export_plot(plot, tmp_path / "p.png"))
    assert png.shape[1] == 1000
    with pytest.raises(export.UserError, match="out of range"):
        export.export_plot(plot, tmp_path / "q.png", width=100_000)


def test_a_plot_changed_right_before_the_export_is_laid_out_for_its_new_ticks(plot, qtbot, tmp_path):
    """A panel draws its newest data and exports at once: the left axis must already be as wide as the new,
    longer tick labels need when the export is painted (tick labels over the axis label otherwise)."""
    item = plot.getPlotItem()
    x = np.linspace(0.0, 10.0, 400)
    narrow = item.getAxis("left").width()
    for curve in item.curves:
        curve.setData(x, -11.5 - 1e-3 * np.cos(x))  # tick labels like -11.5005: much wider than "0.5"
    export.export_plot(plot, tmp_path / "now.png", width=800)
    painted = item.getAxis("left").width()
    qtbot.wait(300)
    settled = item.getAxis("left").width()
    assert settled > narrow + 10  # the new labels need a wider axis
    assert painted == settled
