"""Finished tasks let go of their inputs and results (the soak's growth: every task ever run stayed alive)."""

from __future__ import annotations

import gc
import weakref

from app.worker import Task, TaskSet


class Payload:
    """Stands for a network or a data set handed to a worker (weak-referenceable)."""


def _job(inp: Payload, n: int):
    yield from range(n)
    return Payload()


def test_finished_and_cancelled_tasks_free_their_inputs_and_results(qtbot):
    tasks = TaskSet("memory-test")
    inputs, results = [], []
    for i in range(4):
        inp = Payload()
        inputs.append(weakref.ref(inp))
        task = tasks.submit(
            _job, inp, 3 if i % 2 == 0 else 10**9, group=f"g{i}", throttle_ms=0,
            on_yield=lambda _v: None, on_done=lambda r: results.append(weakref.ref(r)),
        )  # fmt: skip
        del inp
        if i % 2:  # an endless run, stopped by the user
            qtbot.waitUntil(lambda: tasks.busy(), timeout=5000)
            tasks.cancel()
        # waiting on the group, not on task.done: a short job may end (and emit) before a signal spy connects
        qtbot.waitUntil(lambda i=i: not tasks.busy(f"g{i}"), timeout=10_000)
        del task
    assert tasks.join(5000)
    qtbot.wait(50)  # the manager's end-of-task slot runs on the GUI thread
    gc.collect()
    assert len(results) == 2
    assert [r() for r in inputs] == [None] * 4
    assert [r() for r in results] == [None] * 2
    assert not [o for o in gc.get_objects() if isinstance(o, Task)]
