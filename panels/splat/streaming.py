"""Drives a streamed SOG scene from the GUI side: when the camera rests (or every so often while it moves)
the model chooses the levels, a worker decodes the missing chunks and builds the rows, and the result is
applied on the GUI thread. The model and :mod:`panels.splat.stream` hold the state; this holds the timer."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from panels.splat.scheduler import StreamClock
from panels.splat.stream import stream_job


class StreamDriver(QObject):
    def __init__(
        self, model, tasks, on_message: Callable[[str], None], on_change: Callable[[], None], parent=None
    ):
        super().__init__(parent)
        self.model, self.tasks, self.on_message, self.on_change = model, tasks, on_message, on_change
        self.clock = StreamClock()
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.tick)

    def soon(self) -> None:
        """The camera (or budget, or scene) changed: choose the levels again when the clock says so."""
        if self.model.stream is None:
            return
        now = time.monotonic()
        self.clock.camera_changed(now)
        self.timer.start(int(1000 * self.clock.wait_s(now)))

    def tick(self) -> None:
        """Choose the levels for the camera; a worker decodes the missing chunks and builds the rows (latest
        wins; a job already decoding every missing chunk goes on, and a plan follows its result)."""
        stream, now = self.model.stream, time.monotonic()
        wait = self.clock.wait_s(now)
        if stream is None or wait is None:
            return
        if wait > 0:
            self.timer.start(int(1000 * wait))
            return
        self.clock.planned(now)
        request = self.model.stream_plan()
        if request is None or (
            request.missing and set(request.missing) <= stream.loading and self.tasks.busy("stream")
        ):
            return

        def done(result) -> None:
            self.model.stream_apply(result)
            if result.failed:
                self.on_message(next(iter(result.failed.values())))
            self.soon()  # the camera may have moved on while it loaded

        def failed(message: str) -> None:  # the chunks not delivered are not asked for again
            stream.failed |= {i for i in stream.loading if not stream.streamed.loaded(i)}
            stream.loading.clear()
            self.on_message(message)
            self.on_change()

        stream.loading = set(request.missing)
        self.tasks.submit(
            stream_job, request, group="stream", label="streamed SOG chunks", on_done=done, on_error=failed
        )
        self.on_change()
