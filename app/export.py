"""The export service every panel uses: images, plots, videos, arrays, and a sidecar session per file.

Every writer checks the destination first (folder, permissions, the suffix its format writes) and raises
:class:`backends.common.UserError` with a message that names the file, so the GUI shows a dialog and the CLI
prints one line. Every writer is atomic: it writes a temporary file in the same folder, fsyncs it and renames it
over the target, so an interrupted export leaves the previous file (or none), never a truncated one.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import safeio
from backends.common import UserError, parse_size  # noqa: F401 - part of the export service's API

IMAGE_SUFFIXES = ("png",)
VIDEO_SUFFIXES = ("mp4", "gif")
MAX_PLOT_WIDTH = 8192  # px: a 4K export with room (an 8192-px RGBA image is a few hundred MB at most)


@dataclass(frozen=True)
class ExportAction:
    """One entry of the Export menu. ``write(path)`` writes the file; the shell adds a sidecar session file."""

    label: str  # "Orbit MP4", "Energy plot SVG/CSV", ...
    suffixes: tuple[str, ...]  # allowed file endings without dot; the first is the default
    write: Callable[[Path], None]


@dataclass(frozen=True)
class VideoSpec:
    """What a panel's video shows. The shell asks for size (default the Export size), frame rate (default 30)
    and duration, then calls ``frame(u, size)`` on the GUI thread for u = 0 .. 1 (the animation's fraction)
    while another thread encodes; ``frame`` returns an RGBA uint8 image of exactly ``size`` = (width, height)
    with no UI hints in it, and must leave the panel's model as it found it. ``begin``/``end`` (optional) run
    once before the first and after the last frame (e.g. to record a trajectory once, or to restore a
    camera)."""

    label: str  # "Orbit", "Flow", "Turntable", ...
    duration: float  # default length in seconds
    frame: Callable[[float, tuple[int, int]], np.ndarray]
    begin: Callable[[], None] | None = None
    end: Callable[[], None] | None = None


def check_writable(
    path: str | os.PathLike,
    *,
    suffixes: Iterable[str] | None = None,
    inputs: Iterable[str | os.PathLike] = (),
    what: str = "",
) -> Path:
    """The output path, validated before the work (see :func:`backends.safeio.check_writable`)."""
    return safeio.check_writable(path, suffixes=suffixes, inputs=inputs, what=what)


def save_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB(A) uint8 (or float in [0, 1]) image as PNG."""
    import imageio.v3 as iio

    p = check_writable(path, suffixes=(".png",))
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = (np.clip(np.nan_to_num(img.astype(float)), 0, 1) * 255 + 0.5).astype(np.uint8)
    with safeio.atomic_write(p, "wb") as fh:
        fh.write(iio.imwrite("<bytes>", img, extension=".png"))
    return p


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float = 30.0) -> Path:
    """Write RGB(A) uint8 frames as MP4 (H.264 via imageio-ffmpeg) or GIF, chosen by the suffix."""
    import imageio.v2 as iio2

    p = check_writable(path, suffixes=tuple("." + s for s in VIDEO_SUFFIXES), what="video")
    if not (math.isfinite(fps) and 0.1 <= fps <= 240):
        raise UserError(f"cannot write video {p}: fps {fps} out of range 0.1..240")
    suffix = p.suffix.lower().lstrip(".")
    count = 0
    with safeio.atomic_path(p) as tmp:
        if suffix == "mp4":
            writer = iio2.get_writer(
                tmp, fps=fps, codec="libx264", quality=8, macro_block_size=16, ffmpeg_log_level="error"
            )
        else:
            writer = iio2.get_writer(tmp, mode="I", duration=1000.0 / fps, loop=0)
        try:
            for frame in frames:
                f = np.asarray(frame)
                if f.dtype != np.uint8:
                    f = (np.clip(np.nan_to_num(f.astype(float)), 0, 1) * 255 + 0.5).astype(np.uint8)
                if suffix == "mp4":
                    f = _pad_to_multiple(f[..., :3], 16)
                writer.append_data(f)
                count += 1
        finally:
            writer.close()
        if count == 0:
            raise UserError(f"nothing to write to {p}: no frames recorded yet")
    return p


def _pad_to_multiple(f: np.ndarray, m: int) -> np.ndarray:
    h, w = f.shape[:2]
    ph, pw = (-h) % m, (-w) % m
    if ph or pw:
        f = np.pad(f, ((0, ph), (0, pw), (0, 0)), mode="edge")
    return f


def save_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """Compressed NPZ of named arrays."""
    p = check_writable(path, suffixes=(".npz",))
    return safeio.write_npz(p, **{k: np.asarray(v) for k, v in arrays.items()})


def save_csv(path: str | os.PathLike, header: Sequence[str], columns: Sequence[np.ndarray]) -> Path:
    """CSV of equal-length columns with a header row."""
    p = check_writable(path, suffixes=(".csv",))
    cols = [np.asarray(c).ravel() for c in columns]
    if len({len(c) for c in cols}) > 1:
        raise UserError("columns of different lengths cannot be written as one CSV table")
    with safeio.atomic_write(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(header))
        for row in zip(*cols):
            w.writerow([repr(float(v)) if isinstance(v, float | np.floating) else v for v in row])
    return p


def export_plot(plot, path: str | os.PathLike, width: int | None = None) -> Path:
    """A pyqtgraph PlotWidget/PlotItem to PNG, SVG or CSV (the curves' data), by suffix.

    A PNG is ``width`` pixels wide (default: the width of the Export size setting) and keeps the plot's
    on-screen proportions at any width, the way matplotlib keeps a figure's at any dpi: text, legend, lines
    and markers all grow with the width (see :func:`render_plot`). A plot whose redraws are throttled
    (``plot.throttles``, see ``panels.widgets.PlotThrottle``) draws its pending update first."""
    p = check_writable(path, suffixes=(".png", ".svg", ".csv"), what="plot")
    for throttle in getattr(plot, "throttles", ()):  # panels.widgets.PlotThrottle: a redraw may be pending
        throttle.flush()
    item = plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot
    suffix = p.suffix.lower()
    if suffix == ".png":
        image = render_plot(item, _export_width() if width is None else int(width))
        with safeio.atomic_path(p) as tmp:
            if not image.save(str(tmp), "PNG"):
                raise UserError(f"cannot write plot {p}: Qt could not encode the PNG")
        return p
    if suffix == ".svg":
        return _plot_svg(item, p)
    if suffix == ".csv":
        import pyqtgraph.exporters as pgx

        with safeio.atomic_path(p) as tmp:
            pgx.CSVExporter(item).export(str(tmp))
        return p
    raise UserError(f"cannot export a plot as {p.suffix or 'a file without suffix'}: use .png, .svg or .csv")


def _export_width() -> int:
    """The width of the Export size setting (the size of the last render or video export)."""
    from app import settings

    try:
        return parse_size(str(settings.settings().value("export_size", "1280x720")))[0]
    except UserError:
        return 1280


def render_plot(item, width: int):
    """A QImage of a pyqtgraph item ``width`` pixels wide, laid out exactly as on screen and scaled as a whole.

    The scene is painted at its on-screen (logical) size into an image whose device-pixel ratio is the export
    scale. pyqtgraph's ImageExporter instead scales the painter's world transform, which items drawn in pixel
    units ignore: the legend (``ItemIgnoresTransformations``) and cosmetic pens (curves, grid, axes) kept
    their on-screen size, so a 3840-px export had a legend a fifth of the tick labels' height and hairlines.
    A device-pixel ratio scales those too, and nothing of the widget changes (no resize, no relayout)."""
    import pyqtgraph.exporters as pgx
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QImage, QPainter

    if not 16 <= width <= MAX_PLOT_WIDTH:
        raise UserError(f"plot export width {width} px is out of range 16..{MAX_PLOT_WIDTH}")
    _settle_layout(item)
    source = item.sceneBoundingRect()
    if source.width() < 1 or source.height() < 1:
        raise UserError("the plot has no size yet: show its tab once, then export")
    scale = width / source.width()
    height = max(1, round(source.height() * scale))
    image = QImage(width, height, QImage.Format.Format_ARGB32)
    image.setDevicePixelRatio(scale)
    view = item.scene().views()[0] if item.scene().views() else None
    background = view.backgroundBrush().color() if view is not None else None
    image.fill(background if background is not None and background.alpha() else 0xFFFFFFFF)
    exporter = pgx.ImageExporter(item)  # only for its list of the items to paint and their export mode
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        # resolutionScale 1: the device-pixel ratio already scales what these items draw in pixels
        exporter.setExportMode(True, {"antialias": True, "painter": painter, "resolutionScale": 1.0})
        with _thicker_lines(exporter.getPaintItems(), scale):
            item.scene().render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        exporter.setExportMode(False)
        painter.end()
    return image


def _settle_layout(item) -> None:
    """Lay the plot out for the data it holds now. Axes measure their tick labels while painting and widen
    on the next layout pass, so a plot drawn right before the export (a panel flushing its throttled draw)
    would be painted with the old axis widths: tick labels over the axis label. One throwaway paint and the
    pending layout requests (no user input is processed) settle it."""
    from PySide6.QtCore import QCoreApplication, QEvent, QRectF
    from PySide6.QtGui import QImage, QPainter

    scratch = QImage(4, 4, QImage.Format.Format_ARGB32)
    painter = QPainter(scratch)
    try:
        item.scene().render(painter, QRectF(0, 0, 4, 4), item.sceneBoundingRect())
    finally:
        painter.end()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)


@contextmanager
def _thicker_lines(items, scale: float):
    """Cosmetic pens (pyqtgraph's default) stay one device pixel wide under any painter scale, so a curve,
    an axis, the grid or a marker line would be a hairline in a 4K export: widen them by ``scale`` while
    painting and put the original pens back afterwards."""
    import pyqtgraph as pg
    from PySide6.QtCore import Qt

    def wider(pen):
        pen = pg.mkPen(pen)
        if pen.isCosmetic() and pen.style() != Qt.PenStyle.NoPen:
            pen.setWidthF(max(pen.widthF(), 1.0) * scale)
        return pen

    undo: list[Callable[[], None]] = []
    try:
        if scale > 1.0:
            for it in items:
                if isinstance(it, pg.PlotCurveItem):
                    pen, shadow = it.opts["pen"], it.opts["shadowPen"]
                    it.opts["pen"] = wider(pen)
                    it.opts["shadowPen"] = None if shadow is None else wider(shadow)
                    undo.append(
                        lambda it=it, pen=pen, shadow=shadow: it.opts.update(pen=pen, shadowPen=shadow)
                    )
                elif isinstance(it, pg.PlotDataItem) and it.opts.get("pen") is not None:
                    pen = it.opts["pen"]  # what its legend sample draws with (its curve is a child item)
                    it.opts["pen"] = wider(pen)
                    undo.append(lambda it=it, pen=pen: it.opts.update(pen=pen))
                elif isinstance(it, pg.AxisItem):  # not setPen: that relabels the axis and relayouts the plot
                    pen = it._pen
                    _set_axis_pen(it, wider(it.pen()))
                    undo.append(lambda it=it, pen=pen: _set_axis_pen(it, pen))
                elif isinstance(it, pg.InfiniteLine):
                    pen = it.pen
                    it.setPen(wider(pen))
                    undo.append(lambda it=it, pen=pen: it.setPen(pen))
        yield
    finally:
        for fn in reversed(undo):
            fn()


def _set_axis_pen(axis, pen) -> None:
    axis._pen = pen  # None means "the foreground colour"
    axis.picture = None  # the axis caches its drawing
    axis.update()


def _plot_svg(item, path: Path) -> Path:
    """Vector SVG of a plot through Qt's SVG generator (pyqtgraph 0.14's SVG exporter fails on Qt 6.12 paths)."""
    with safeio.atomic_path(path) as tmp:
        _render_svg(item, tmp)
    return path


def _render_svg(item, path: Path) -> None:
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    rect = item.sceneBoundingRect()
    gen = QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(rect.size().toSize())
    gen.setViewBox(QRectF(0, 0, rect.width(), rect.height()))
    gen.setTitle("Visual Lab plot")
    painter = QPainter(gen)
    try:
        item.scene().render(painter, QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()


def sidecar_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".session.json")


def write_sidecar(path: str | os.PathLike, session: dict) -> Path:
    """Write ``FILE.session.json`` next to an export so the figure can be reproduced."""
    from app import session as sessions

    return sessions.save(sidecar_path(path), session)
