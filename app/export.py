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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends import safeio
from backends.common import UserError, parse_size  # noqa: F401 - part of the export service's API

IMAGE_SUFFIXES = ("png",)
VIDEO_SUFFIXES = ("mp4", "gif")


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


def export_plot(plot, path: str | os.PathLike, width: int = 1200) -> Path:
    """A pyqtgraph PlotWidget/PlotItem to PNG, SVG or CSV (the curves' data), by suffix."""
    import pyqtgraph.exporters as pgx

    p = check_writable(path, suffixes=(".png", ".svg", ".csv"), what="plot")
    item = plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot
    suffix = p.suffix.lower()
    if suffix == ".png":
        exporter = pgx.ImageExporter(item)
        exporter.parameters()["width"] = int(width)
    elif suffix == ".svg":
        return _plot_svg(item, p)
    elif suffix == ".csv":
        exporter = pgx.CSVExporter(item)
    else:
        raise UserError(
            f"cannot export a plot as {p.suffix or 'a file without suffix'}: use .png, .svg or .csv"
        )
    with safeio.atomic_path(p) as tmp:
        exporter.export(str(tmp))
    return p


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
