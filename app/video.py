"""Video export for every panel: frames rendered on the GUI thread in short slices, encoded in a thread.

vispy draws only on the GUI thread, so :class:`VideoJob` renders one frame per event-loop turn (a frame takes
milliseconds to a few tens of them; the GUI stays responsive between frames) and hands it to an encoder thread
through a small queue. The file is written under a temporary name in the destination folder and moved into
place with ``os.replace`` only when complete: a cancelled or failed export leaves any previous file intact.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from app.export import VIDEO_SUFFIXES, VideoSpec, check_writable
from backends.common import UserError

MAX_SIDE = 4096  # "any size up to 4K"
FPS_RANGE = (1.0, 120.0)
DURATION_RANGE = (0.1, 600.0)
MAX_FRAMES = 36_000


@dataclass(frozen=True)
class VideoOptions:
    """Size (width, height), frame rate and duration of one video export; :meth:`check` gives the ranges."""

    size: tuple[int, int] = (1280, 720)
    fps: float = 30.0
    duration: float = 10.0

    @property
    def frames(self) -> int:
        return max(2, int(round(self.fps * self.duration)))

    def check(self, suffix: str) -> None:
        w, h = self.size
        if not (16 <= w <= MAX_SIDE and 16 <= h <= MAX_SIDE):
            raise UserError(f"video size {w}x{h} out of range: each side must be 16..{MAX_SIDE} pixels")
        if suffix == "mp4" and (w % 2 or h % 2):
            raise UserError(f"video size {w}x{h}: MP4 (H.264) needs even width and height")
        if not FPS_RANGE[0] <= self.fps <= FPS_RANGE[1]:
            raise UserError(f"frame rate {self.fps:g} out of range [{FPS_RANGE[0]:g}, {FPS_RANGE[1]:g}]")
        if not DURATION_RANGE[0] <= self.duration <= DURATION_RANGE[1]:
            raise UserError(
                f"duration {self.duration:g} s out of range [{DURATION_RANGE[0]:g}, {DURATION_RANGE[1]:g}] s"
            )
        if self.frames > MAX_FRAMES:
            raise UserError(f"{self.frames} frames is more than {MAX_FRAMES}: lower the rate or the duration")


def _to_rgb8(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8:
        f = (np.clip(np.nan_to_num(f.astype(float)), 0, 1) * 255 + 0.5).astype(np.uint8)
    if f.ndim != 3 or f.shape[1] != size[0] or f.shape[0] != size[1]:
        raise UserError(f"the panel rendered a frame of shape {f.shape}, expected {size[1]}x{size[0]}")
    return np.ascontiguousarray(f[..., :3])


class _Encoder(threading.Thread):
    """Appends frames from a queue to an MP4 (H.264) or GIF writer; ``None`` ends the file."""

    def __init__(self, tmp: Path, suffix: str, fps: float):
        super().__init__(daemon=True, name="video-encoder")
        self.frames: queue.Queue = queue.Queue(maxsize=4)
        self.tmp, self.suffix, self.fps = tmp, suffix, fps
        self.error: str | None = None
        self.abort = threading.Event()

    def run(self) -> None:
        import imageio.v2 as iio2

        writer = None
        try:
            if self.suffix == "mp4":
                writer = iio2.get_writer(
                    self.tmp,
                    format="FFMPEG",
                    fps=self.fps,
                    codec="libx264",
                    quality=8,
                    macro_block_size=2,
                    ffmpeg_log_level="error",
                )
            else:
                writer = iio2.get_writer(self.tmp, format="GIF", mode="I", duration=1000.0 / self.fps, loop=0)
            while not self.abort.is_set():
                frame = self.frames.get()
                if frame is None:
                    break
                writer.append_data(frame)
        except Exception as exc:  # reported to the GUI as one line
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            if writer is not None:
                try:
                    writer.close()
                except Exception as exc:
                    self.error = self.error or f"{type(exc).__name__}: {exc}"


class VideoJob(QObject):
    """Render ``spec``'s frames at ``options`` into ``path``; ``progressed(fraction, message)`` while it runs,
    then exactly one of ``finished(path)``, ``failed(message)`` or ``cancelled()``."""

    progressed = Signal(float, str)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, spec: VideoSpec, path: str | os.PathLike, options: VideoOptions, parent=None):
        super().__init__(parent)
        self.spec, self.options = spec, options
        self.path = check_writable(path)
        self.suffix = self.path.suffix.lower().lstrip(".")
        if self.suffix not in VIDEO_SUFFIXES:
            raise UserError(f"cannot write video {self.path}: use .mp4 or .gif")
        options.check(self.suffix)
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.part.{self.suffix}")
        self._encoder = _Encoder(self.tmp, self.suffix, options.fps)
        self._i = 0
        self._pending: np.ndarray | None = None
        self._stop = False
        self._closing = False
        self._ended = False
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        if self.spec.begin is not None:
            self.spec.begin()
        self._encoder.start()
        self._timer.start()

    def cancel(self) -> None:
        self._stop = True

    @property
    def running(self) -> bool:
        return not self._ended

    def _tick(self) -> None:
        """One step on the GUI thread: render a frame (or retry handing the last one over), or finish."""
        if self._stop or self._encoder.error:
            self._end(cancelled=self._stop)
            return
        n = self.options.frames
        if self._pending is None and self._i < n:
            u = self._i / (n - 1)
            try:
                self._pending = _to_rgb8(self.spec.frame(u, self.options.size), self.options.size)
            except Exception as exc:  # a failed frame ends the export with a dialog
                self._encoder.error = (
                    str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
                )
                self._end(cancelled=False)
                return
        if self._pending is not None:
            try:
                self._encoder.frames.put(self._pending, timeout=0.02)
            except queue.Full:
                return
            self._pending = None
            self._i += 1
            self.progressed.emit(self._i / n, f"frame {self._i}/{n}")
            return
        # all frames handed over: close the file without blocking the GUI thread
        if not self._closing:
            self._closing = True
            self._encoder.frames.put(None)
        if not self._encoder.is_alive():
            self._end(cancelled=False)

    def _end(self, cancelled: bool) -> None:
        if self._ended:
            return
        self._ended = True
        self._timer.stop()
        if self.spec.end is not None:
            try:
                self.spec.end()
            except Exception:  # restoring the view must not hide the export's outcome
                pass
        if cancelled or self._encoder.error:
            self._encoder.abort.set()
            try:
                self._encoder.frames.put_nowait(None)
            except queue.Full:
                pass
            threading.Thread(target=self._discard, daemon=True).start()
            if cancelled:
                self.cancelled.emit()
            else:
                self.failed.emit(f"video export to {self.path} failed: {self._encoder.error}")
            return
        try:
            with open(self.tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            self.failed.emit(f"video export to {self.path} failed: {exc}")
            return
        self.finished.emit(self.path)

    def _discard(self) -> None:
        self._encoder.join(30)
        self.tmp.unlink(missing_ok=True)


def run_blocking(spec: VideoSpec, path: str | os.PathLike, options: VideoOptions) -> Path:
    """Run a :class:`VideoJob` to its end in a local event loop (CLI and tests); raises UserError on failure."""
    from PySide6.QtCore import QEventLoop

    job = VideoJob(spec, path, options)
    loop = QEventLoop()
    outcome: dict = {}
    job.finished.connect(lambda p: (outcome.setdefault("path", p), loop.quit()))
    job.failed.connect(lambda m: (outcome.setdefault("error", m), loop.quit()))
    job.cancelled.connect(lambda: (outcome.setdefault("error", "cancelled"), loop.quit()))
    job.start()
    if job.running:
        loop.exec()
    if "error" in outcome:
        raise UserError(outcome["error"])
    return outcome["path"]


def ask_options(parent, spec: VideoSpec, size: tuple[int, int]) -> VideoOptions | None:
    """A small dialog for size, frame rate and duration; None when cancelled. Values are checked on OK."""
    from PySide6.QtWidgets import QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLineEdit

    from backends.common import parse_size

    dlg = QDialog(parent)
    dlg.setWindowTitle(f"Export video: {spec.label}")
    form = QFormLayout(dlg)
    size_edit = QLineEdit(f"{size[0]}x{size[1]}")
    size_edit.setToolTip(f"WIDTHxHEIGHT, 16..{MAX_SIDE} pixels a side (even for MP4)")
    fps = QDoubleSpinBox()
    fps.setRange(*FPS_RANGE)
    fps.setValue(30.0)
    fps.setSuffix(" frames/s")
    dur = QDoubleSpinBox()
    dur.setRange(*DURATION_RANGE)
    dur.setDecimals(1)
    dur.setValue(spec.duration)
    dur.setSuffix(" s")
    form.addRow("Size", size_edit)
    form.addRow("Frame rate", fps)
    form.addRow("Duration", dur)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.accepted.connect(dlg.accept)
    buttons.rejected.connect(dlg.reject)
    form.addRow(buttons)
    if dlg.exec() != QDialog.DialogCode.Accepted:
        return None
    return VideoOptions(parse_size(size_edit.text()), float(fps.value()), float(dur.value()))
