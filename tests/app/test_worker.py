"""The worker keeps the GUI responsive, delivers results on the GUI thread, cancels, and latest wins."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QThread, QTimer

from app.worker import manager, submit
from backends.common import Progress, UserError


def heavy(seconds: float):
    """CPU-bound numpy and pure-Python work for ``seconds``, yielding partial sums."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    total = 0.0
    i = 0
    while time.perf_counter() - t0 < seconds:
        a = rng.random((300, 300))
        total += float(np.linalg.svd(a, compute_uv=False)[0])
        total += sum(k * k for k in range(20_000)) * 1e-12
        i += 1
        yield Progress(min(1.0, (time.perf_counter() - t0) / seconds), f"iter {i}", total)
    return total


def test_gui_stays_responsive_during_heavy_job(qtbot):
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    # settle what earlier tests left (deferred deletes, pending repaints, garbage): not what is measured here
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    qtbot.wait(300)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    results = []
    task = submit(heavy, 1.5, on_done=results.append, label="heavy")
    timer.start()
    qtbot.waitUntil(lambda: not task.is_running() and bool(results), timeout=20_000)
    timer.stop()
    gaps = np.diff(ticks)
    assert len(ticks) > 50
    assert gaps.max() < 0.100, f"GUI blocked for {gaps.max() * 1000:.0f} ms"
    assert results[0] > 0


def test_results_arrive_on_gui_thread_with_progress(qtbot):
    gui = QThread.currentThread()
    seen, progress, threads = [], [], []

    def on_yield(v):
        threads.append(QThread.currentThread())
        seen.append(v)

    def gen():
        for i in range(5):
            yield Progress((i + 1) / 5, "step", i)
        return "done"

    done = []
    task = submit(
        gen,
        on_yield=on_yield,
        on_progress=lambda f, m: progress.append(f),
        on_done=done.append,
        throttle_ms=0,
    )
    qtbot.waitUntil(lambda: done == ["done"], timeout=5000)
    task.wait()
    assert seen == [0, 1, 2, 3, 4]
    assert progress[-1] == 1.0
    assert all(t is gui for t in threads)


def test_cancel_stops_at_next_yield(qtbot):
    count = {"n": 0}

    def endless():
        while True:
            count["n"] += 1
            time.sleep(0.005)
            yield count["n"]

    task = submit(endless)
    qtbot.waitUntil(lambda: count["n"] > 3, timeout=5000)
    task.cancel()
    assert task.wait(5000)
    n = count["n"]
    time.sleep(0.05)
    assert count["n"] == n


def test_latest_request_wins(qtbot):
    got = []

    def slow(tag):
        for i in range(50):
            time.sleep(0.01)
            yield (tag, i)
        return tag

    first = submit(slow, "old", group="g", on_yield=got.append, throttle_ms=0)
    second = submit(slow, "new", group="g", on_yield=got.append, on_done=got.append, throttle_ms=0)
    qtbot.waitUntil(lambda: "new" in got, timeout=10_000)
    assert first.wait(5000) and second.wait(5000)
    assert first.stale and first.cancelled
    late_old = [g for g in got[got.index(("new", 0)) :] if isinstance(g, tuple) and g[0] == "old"]
    assert late_old == []


@pytest.mark.parametrize(
    "exc, expect_trace", [(UserError("nu must be > 0"), False), (ZeroDivisionError("x"), True)]
)
def test_errors_reach_the_gui(qtbot, exc, expect_trace):
    errors = []

    def bad():
        yield 1
        raise exc

    failed = []
    manager().failed.connect(lambda t, m, tb: failed.append((m, tb)))
    task = submit(bad, on_error=errors.append)
    qtbot.waitUntil(lambda: bool(errors), timeout=5000)
    task.wait()
    assert str(exc) in errors[0]
    assert bool(failed[-1][1]) == expect_trace


def test_stop_all_joins_every_thread(qtbot):
    def endless():
        while True:
            time.sleep(0.002)
            yield 0

    for _ in range(3):
        submit(endless)
    before = threading.active_count()
    assert manager().stop_all(5000)
    qtbot.wait(50)
    assert manager().running() == []
    assert threading.active_count() <= before
