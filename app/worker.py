"""One way to run backend generators off the GUI thread.

A backend's long work is a generator. :func:`submit` runs it in a ``QThread`` and turns what it yields into
throttled Qt signals delivered on the GUI thread: ``progress`` for :class:`backends.common.Progress` records,
``yielded`` for everything else (and for ``Progress.data``). Cancelling takes effect at the next ``yield``.
Tasks submitted with the same ``group`` follow *latest wins*: a new one cancels the stale one, whose late
results are dropped. The shell listens to :data:`manager` for the status bar, the log dock and error dialogs.
"""

from __future__ import annotations

import atexit
import gc
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from backends.common import Progress, UserError


class Task(QObject):
    """A generator running in its own thread. Signals arrive on the GUI thread."""

    yielded = Signal(object)
    progress = Signal(object, str)  # fraction in [0, 1] or None, message
    finished = Signal(object)  # the generator's return value
    failed = Signal(str, str)  # one-line message, traceback ('' for user errors)
    done = Signal()  # always last: finished, failed or cancelled

    def __init__(
        self,
        fn: Callable[..., Iterator[Any]],
        args,
        kwargs,
        label: str,
        group: str | None,
        throttle_ms: float,
    ):
        super().__init__()
        self.label = label or getattr(fn, "__name__", "task")
        self.group = group
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._throttle = throttle_ms / 1000.0
        self._cancel = threading.Event()
        self._on_cancel: list[Callable[[], None]] = []
        self.stale = False  # set when superseded: its results must not be shown
        self.result: Any = None
        self.error: str | None = None
        self.thread = _Runner(self)

    # -- control -----------------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()
        hooks, self._on_cancel = self._on_cancel, []
        for hook in hooks:
            hook()

    def also_cancel(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (from the cancelling thread) when this task is cancelled: for work that blocks
        outside the generator's yields, e.g. a batch study waiting on Dask futures."""
        if self._cancel.is_set():
            hook()
        else:
            self._on_cancel.append(hook)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        return self.thread.wait(timeout_ms)

    # -- runs in the worker thread ----------------------------------------------------------------------
    def _run(self) -> None:
        last_emit = 0.0
        pending: list[Any] = []  # at most one item: the latest not yet emitted
        last_progress = 0.0
        try:
            gen = self._fn(*self._args, **self._kwargs)
            try:
                while not self._cancel.is_set():
                    try:
                        item = next(gen)
                    except StopIteration as stop:
                        self.result = stop.value
                        break
                    now = time.monotonic()
                    if isinstance(item, Progress):
                        if now - last_progress >= self._throttle or item.fraction == 1.0:
                            self.progress.emit(item.fraction, item.message)
                            last_progress = now
                        if item.data is None:
                            continue
                        item = item.data
                    if now - last_emit >= self._throttle:
                        self.yielded.emit(item)
                        pending.clear()
                        last_emit = now
                    else:
                        pending[:] = [item]
            finally:
                gen.close()
            if pending and not self._cancel.is_set():
                self.yielded.emit(pending[0])
            if not self._cancel.is_set():
                self.finished.emit(self.result)
        except UserError as exc:
            self.error = str(exc)
            self.failed.emit(str(exc), "")
        except MemoryError:
            self.error = "out of memory: try a smaller size, count or batch"
            self.failed.emit(self.error, traceback.format_exc())
        except Exception as exc:  # every failure must reach the user, never kill the app
            self.error = f"{type(exc).__name__}: {exc}"
            self.failed.emit(self.error, traceback.format_exc())
        finally:
            # the inputs (networks, data sets, simulations) are not needed any more: let them go now, not
            # when the last reference to this task goes
            self._fn = self._args = self._kwargs = None
            self.done.emit()

    def release(self) -> None:
        """Forget the result and every connection once the task has ended and been reported (GUI thread).

        The connections hold lambdas that refer back to this task (a cycle through Qt that Python's
        collector cannot see): without this, every task ever run stayed in memory with its inputs and its
        result, even after a full collection (trained networks, data sets, sample results)."""
        self.result = None
        with warnings.catch_warnings():  # PySide warns (and older versions raise) when nothing is connected
            warnings.simplefilter("ignore", RuntimeWarning)
            for sig in (self.yielded, self.progress, self.finished, self.failed, self.done):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass
        self.thread._task = None


class _Runner(QThread):
    def __init__(self, task: Task):
        super().__init__()
        self._task = task

    def run(self) -> None:  # Qt override
        self._task._run()


class TaskManager(QObject):
    """Keeps every running task; the shell shows their progress and stops them all on close."""

    started = Signal(object)  # Task
    progressed = Signal(object, object, str)  # Task, fraction, message
    failed = Signal(object, str, str)  # Task, message, traceback
    ended = Signal(object)  # Task

    def __init__(self) -> None:
        super().__init__()
        self._tasks: list[Task] = []

    def submit(
        self,
        fn: Callable[..., Iterator[Any]],
        *args: Any,
        label: str = "",
        group: str | None = None,
        throttle_ms: float = 30.0,
        on_yield: Callable[[Any], None] | None = None,
        on_progress: Callable[[float | None, str], None] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> Task:
        """Run ``fn(*args, **kwargs)`` (a generator function) in a thread; callbacks run on the GUI thread."""
        if group is not None:
            for old in self._tasks:
                if old.group == group:
                    old.stale = True
                    old.cancel()
        task = Task(fn, args, kwargs, label, group, throttle_ms)

        def guarded(cb):
            if cb is None:
                return None
            return lambda *a: None if task.stale else cb(*a)

        if on_yield:
            task.yielded.connect(guarded(on_yield))
        if on_progress:
            task.progress.connect(guarded(on_progress))
        if on_done:
            task.finished.connect(guarded(on_done))
        if on_error:
            task.failed.connect(lambda msg, _tb: None if task.stale else on_error(msg))
        task.progress.connect(lambda f, m: self.progressed.emit(task, f, m))
        task.failed.connect(lambda msg, tb: self.failed.emit(task, msg, tb))
        task.done.connect(lambda: self._finish(task))
        self._tasks.append(task)
        task.thread.start()
        self.started.emit(task)
        return task

    def _finish(self, task: Task) -> None:
        task.thread.wait()
        if task in self._tasks:
            self._tasks.remove(task)
        self.ended.emit(task)
        task.release()

    def running(self) -> list[Task]:
        return [t for t in self._tasks if t.is_running()]

    def cancel_all(self) -> None:
        for t in self._tasks:
            t.cancel()

    def stop_all(self, timeout_ms: int = 10_000) -> bool:
        """Cancel every task and wait for its thread; True when all stopped in time."""
        self.cancel_all()
        ok = True
        for t in list(self._tasks):
            t.stale = True
            ok &= t.wait(timeout_ms)
        self._tasks = [t for t in self._tasks if t.is_running()]
        return ok


_manager: TaskManager | None = None
EXIT_WAIT_MS = 60_000


def _join_at_exit() -> None:
    """At interpreter exit, wait (bounded) for threads still finishing a cancelled step (a compile, a solve
    that cannot be interrupted): Qt aborts the process if a running QThread object is destroyed."""
    if _manager is None:
        return
    for task in list(_manager._tasks):
        task.cancel()
        task.wait(EXIT_WAIT_MS)


atexit.register(_join_at_exit)

_gc_timer = None
FULL_GC_TICKS = 120


def collect_garbage_on_gui_thread(interval_ms: int = 1000) -> None:
    """Run Python's cyclic garbage collector only on the GUI thread (idempotent).

    With automatic collection, a collection can start in whatever thread happens to allocate, e.g. a worker
    training a network; if the garbage holds Qt widgets (closed panels, dialogs), their C++ destructors then
    run in that worker and PySide can deadlock on the interpreter lock. So automatic collection is switched
    off and a GUI-thread timer collects instead: the young generation every ``interval_ms``, everything every
    ``FULL_GC_TICKS`` ticks.
    """
    global _gc_timer
    if _gc_timer is not None:
        return
    from PySide6.QtCore import QTimer

    gc.disable()
    gc.freeze()  # what exists at start-up (modules, torch) is never garbage: keep it out of every scan
    ticks = [0]

    def tick() -> None:
        # young objects every tick (fast); a full scan, which can take a few hundred ms on a big heap, only
        # every FULL_GC_TICKS ticks, so the GUI thread is rarely held that long
        ticks[0] += 1
        gc.collect(2 if ticks[0] % FULL_GC_TICKS == 0 else 1 if ticks[0] % 10 == 0 else 0)

    _gc_timer = QTimer()
    _gc_timer.setInterval(interval_ms)
    _gc_timer.timeout.connect(tick)
    _gc_timer.start()


def manager() -> TaskManager:
    """The process-wide task manager (created on first use, on the GUI thread)."""
    global _manager
    if _manager is None:
        _manager = TaskManager()
    return _manager


def submit(fn: Callable[..., Iterator[Any]], *args: Any, **kwargs: Any) -> Task:
    """Shortcut for ``manager().submit(...)``."""
    return manager().submit(fn, *args, **kwargs)


class TaskSet:
    """The tasks of one owner (a panel instance): groups are private to it, so two instances of a panel never
    cancel each other. :meth:`cancel` returns at once (results still in flight are dropped); threads finish in
    the background and :meth:`join` waits for them with a bound (shutdown only)."""

    def __init__(self, owner: str = "") -> None:
        self._prefix = f"{owner}#{id(self):x}:"
        self._tasks: list[Task] = []

    def submit(
        self, fn: Callable[..., Iterator[Any]], *args: Any, group: str | None = None, **kwargs: Any
    ) -> Task:
        """Like :func:`submit`; ``group`` (latest wins) is scoped to this set."""
        self._tasks = [t for t in self._tasks if t.is_running()]
        task = manager().submit(fn, *args, group=None if group is None else self._prefix + group, **kwargs)
        self._tasks.append(task)
        return task

    def running(self, group: str | None = None) -> list[Task]:
        want = None if group is None else self._prefix + group
        return [
            t for t in self._tasks if t.is_running() and not t.stale and (want is None or t.group == want)
        ]

    def busy(self, group: str | None = None) -> bool:
        return bool(self.running(group))

    def cancel(self, group: str | None = None) -> None:
        """Cancel (all, or one group's) tasks without waiting; their late results are never delivered."""
        want = None if group is None else self._prefix + group
        for t in self._tasks:
            if want is None or t.group == want:
                t.stale = True
                t.cancel()

    def join(self, timeout_ms: int = 3000) -> bool:
        """Wait for cancelled threads to end, at most ``timeout_ms`` in all; True when all ended."""
        deadline = time.monotonic() + timeout_ms / 1000
        ok = True
        for t in list(self._tasks):
            left = max(0, int((deadline - time.monotonic()) * 1000))
            ok &= t.wait(left)
        self._tasks = [t for t in self._tasks if t.is_running()]
        return ok
