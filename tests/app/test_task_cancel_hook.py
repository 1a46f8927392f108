"""``Task.also_cancel``: work that blocks outside its generator's yields (a study waiting on Dask futures) is
woken by a hook that the task's cancel calls exactly once, also when the hook comes after the cancel."""

from __future__ import annotations

import threading
import time

from app.worker import submit
from backends.common import Progress


def test_also_cancel_hook_runs_once_and_at_once_when_registered_after_cancel(qtbot):
    release = threading.Event()
    calls: list[str] = []

    def blocked():
        yield Progress(0.0, "waiting")
        release.wait(20)  # blocks between yields, like Study.results on as_completed
        yield Progress(1.0, "released")

    task = submit(blocked, label="blocked")
    task.also_cancel(lambda: (calls.append("hook"), release.set()))
    qtbot.waitUntil(task.is_running, timeout=5000)
    t0 = time.monotonic()
    task.cancel()
    task.cancel()  # a second Stop calls nothing again
    assert calls == ["hook"]
    assert task.wait(5000) and time.monotonic() - t0 < 5  # the hook woke the thread (else 20 s)
    assert task.cancelled and release.is_set()

    late: list[int] = []
    task.also_cancel(lambda: late.append(1))  # registered after the cancel: called now, once
    assert late == [1]
    task.cancel()
    assert late == [1] and calls == ["hook"]
