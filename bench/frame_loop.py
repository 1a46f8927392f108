"""Displayed frames per second of a vispy canvas, measured the way the app runs: change, update(), event loop.

Each frame calls ``step(k)`` (which changes the scene and calls ``canvas.update()``), then runs the Qt event
loop until the canvas has drawn once. Works with either canvas backend (native GL window or QOpenGLWidget).
"""

from __future__ import annotations

import time
from collections.abc import Callable


def displayed_fps(app, canvas, step: Callable[[int], None], frames: int = 120, timeout: float = 2.0) -> float:
    from PySide6.QtCore import QEventLoop

    draws: list[float] = []

    def on_draw(_ev) -> None:
        draws.append(time.perf_counter())

    canvas.events.draw.connect(on_draw)
    try:
        t0 = time.perf_counter()
        for k in range(frames):
            before = len(draws)
            step(k)
            canvas.update()
            deadline = time.perf_counter() + timeout
            while len(draws) == before and time.perf_counter() < deadline:
                app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        return len(draws) / (time.perf_counter() - t0)
    finally:
        canvas.events.draw.disconnect(on_draw)
