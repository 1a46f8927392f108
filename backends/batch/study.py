"""A study: a workload, its chunks (each chunk's seed fixed by its index) and a Zarr store; resumable.

    study = Study(EscapeMap(grid=200, t_end=10), "map.zarr")
    report = study.run("local:2")            # or "none", "tcp://127.0.0.1:8786", a SchedulerSpec, a Client

Each chunk is a pure function of the workload's parameters, the chunk index and the chunk's seed, so the store
does not depend on where or in which order chunks run (``none``, ``local:N`` and an external scheduler give
bit-identical stores). Chunks run on Dask; their results come back to this client, which writes them: one
writer, no locks, and workers need no shared file system. Chunks already marked done are not submitted again.

For a GUI: iterate :meth:`Study.results` in a worker thread; it yields a :class:`ChunkResult` per finished
chunk (already stored) as futures complete; :meth:`Study.cancel` from any thread cancels the pending futures
and ends the iteration (finished chunks stay in the store). :meth:`Study.follow` wraps it as a long-work
generator for ``app.worker.submit`` (cumulative results, so throttling loses none).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from backends.batch import store as zstore
from backends.batch.schedulers import SchedulerSpec, client_for, parse_scheduler
from backends.common import Progress


class Workload(Protocol):
    """What a study computes. Implementations are frozen dataclasses (picklable, hashable parameters)."""

    name: str

    def params(self) -> dict: ...  # every parameter, strict JSON

    def outputs(self) -> list[zstore.ArraySpec]: ...

    def regions(self) -> list[dict[str, tuple[slice, ...]]]: ...  # per chunk: array name -> region

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]: ...


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index``: a function of the study seed and the index only (never of the worker)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])


def run_chunk(workload: Workload, index: int, seed: int) -> tuple[dict[str, np.ndarray], float, float]:
    """The task a Dask worker runs (module level, so it pickles by reference): arrays, wall and CPU seconds."""
    t0, c0 = time.perf_counter(), time.process_time()
    arrays = workload.run_chunk(index, seed)
    return arrays, time.perf_counter() - t0, time.process_time() - c0


@dataclass
class ChunkResult:
    index: int
    arrays: dict[str, np.ndarray] | None  # None when the chunk failed
    seconds: float = 0.0  # compute (wall) time on the worker
    error: str | None = None  # "ExcType: message" when it failed
    cpu_seconds: float = 0.0  # CPU time of the worker process meanwhile (< seconds on a busy machine)
    store_seconds: float = 0.0  # the client's time to write it into the store


@dataclass
class StudyReport:
    total: int
    skipped: int  # chunks found done in the store (resumed)
    computed: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    cancelled: bool = False
    wall_s: float = 0.0
    compute_s: float = 0.0  # sum of the chunks' compute (wall) time on the workers
    compute_cpu_s: float = 0.0  # the same in CPU time
    store_s: float = 0.0  # the client's time writing chunks

    @property
    def done(self) -> int:
        return self.skipped + len(self.computed)


class Study:
    def __init__(self, workload: Workload, store: str | Path, seed: int = 0):
        self.workload = workload
        self.store = Path(store)
        self.seed = int(seed)
        self._regions = workload.regions()
        self.seeds = [chunk_seed(self.seed, i) for i in range(len(self._regions))]
        self._group = None
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._client = None
        self._futures: list = []
        self._ac = None

    @property
    def n_chunks(self) -> int:
        return len(self._regions)

    def meta(self) -> dict:
        return {
            "workload": self.workload.name,
            "params": self.workload.params(),
            "seed": self.seed,
            "chunk_seeds": self.seeds,
            "n_chunks": self.n_chunks,
        }

    def open(self):
        """Create the store, or open it to resume (refused if it holds another study)."""
        if self._group is None:
            self._group = zstore.open_store(self.store, self.meta(), self.workload.outputs())
        return self._group

    def pending(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(~zstore.done_mask(self.open()))]

    def cancel(self) -> None:
        """Stop: pending futures are cancelled, the iteration ends; finished chunks stay stored. A cancelled
        Study stays cancelled (a Cancel that races a start is never lost): resume with a new Study."""
        self._cancel.set()
        with self._lock:
            client, futures, ac = self._client, list(self._futures), self._ac
        if ac is not None:
            ac.clear()
        if client is not None and futures:
            client.cancel(futures)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def region(self, index: int) -> dict[str, tuple[slice, ...]]:
        """Where chunk ``index`` goes in each array (e.g. an escape-map tile's rows and columns)."""
        return self._regions[index]

    def _store(self, res: ChunkResult) -> ChunkResult:
        if res.arrays is not None:
            t0 = time.perf_counter()
            zstore.write_chunk(self.open(), res.index, self._regions[res.index], res.arrays)
            res.store_seconds = time.perf_counter() - t0
        return res

    def results(self, client=None, chunks: list[int] | None = None) -> Iterator[ChunkResult]:
        """Run the pending chunks (or ``chunks``) and yield each as it finishes, after storing it.

        ``client``: a ``distributed.Client``, or None to run in this process (scheduler ``none``). A chunk
        that raises yields a result with ``error`` set; the other chunks go on."""
        todo = self.pending() if chunks is None else list(chunks)
        if client is None:
            for i in todo:
                if self._cancel.is_set():
                    return
                try:
                    arrays, secs, cpu = run_chunk(self.workload, i, self.seeds[i])
                except Exception as exc:  # a failed chunk is reported, the study goes on
                    yield ChunkResult(i, None, 0.0, _describe(exc))
                    continue
                yield self._store(ChunkResult(i, arrays, secs, cpu_seconds=cpu))
            return
        yield from self._results_dask(client, todo)

    def _results_dask(self, client, todo: list[int]) -> Iterator[ChunkResult]:
        from distributed import as_completed

        token = f"{self.workload.name}-{time.time_ns():x}"
        futures = [
            client.submit(run_chunk, self.workload, i, self.seeds[i], key=f"batch-{token}-{i}", pure=False)
            for i in todo
        ]
        index = {f.key: i for f, i in zip(futures, todo)}
        ac = as_completed(futures)
        with self._lock:
            self._client, self._futures, self._ac = client, futures, ac
        try:
            if self._cancel.is_set():
                self.cancel()
            for fut in ac:
                if self._cancel.is_set():
                    break
                i = index[fut.key]
                if fut.status == "cancelled":
                    continue
                try:
                    arrays, secs, cpu = fut.result()
                except Exception as exc:  # the worker's exception, reported per chunk
                    yield ChunkResult(i, None, 0.0, _describe(exc))
                    continue
                finally:
                    fut.release()
                yield self._store(ChunkResult(i, arrays, secs, cpu_seconds=cpu))
        finally:
            with self._lock:
                pending = [f for f in self._futures if not f.done()]
                self._client, self._futures, self._ac = None, [], None
            if pending:
                client.cancel(pending)

    def follow(self, client=None) -> Iterator[Progress]:
        """:meth:`results` as a long-work generator for ``app.worker.submit``: yields ``Progress(fraction,
        message, data)`` where ``data`` is the tuple of every :class:`ChunkResult` so far (cumulative, so a
        throttled consumer that keeps only the latest item misses none); returns the :class:`StudyReport`."""
        t0 = time.perf_counter()
        todo = self.pending()
        report = StudyReport(self.n_chunks, self.n_chunks - len(todo))
        got: list[ChunkResult] = []
        for res in self.results(client, todo):
            got.append(res)
            if res.error is None:
                report.computed.append(res.index)
            else:
                report.failed[res.index] = res.error
            report.wall_s = time.perf_counter() - t0
            msg = f"{report.done}/{report.total} chunks" + (
                f", {len(report.failed)} failed" if report.failed else ""
            )
            yield Progress(report.done / report.total, msg, tuple(got))
        report.cancelled = self.cancelled
        return report

    def run(
        self,
        scheduler: str | SchedulerSpec | Any = "none",
        on_result: Callable[[ChunkResult, StudyReport], None] | None = None,
    ) -> StudyReport:
        """Run every pending chunk on ``scheduler`` (text, spec or a Client); returns what happened.

        ``on_result`` is called after each chunk (for progress). KeyboardInterrupt cancels and propagates."""
        t0 = time.perf_counter()
        todo = self.pending()
        report = StudyReport(self.n_chunks, self.n_chunks - len(todo))
        if isinstance(scheduler, str):
            scheduler = parse_scheduler(scheduler)

        def consume(client):
            for res in self.results(client, todo):
                if res.error is None:
                    report.computed.append(res.index)
                    report.compute_s += res.seconds
                    report.compute_cpu_s += res.cpu_seconds
                    report.store_s += res.store_seconds
                else:
                    report.failed[res.index] = res.error
                report.wall_s = time.perf_counter() - t0
                if on_result is not None:
                    on_result(res, report)

        try:
            if not todo:
                pass
            elif isinstance(scheduler, SchedulerSpec):
                with client_for(scheduler) as client:
                    consume(client)
            else:
                consume(scheduler)
        except KeyboardInterrupt:
            self.cancel()
            report.cancelled = True
            raise
        finally:
            report.wall_s = time.perf_counter() - t0
        report.cancelled = report.cancelled or self.cancelled
        return report


def _describe(exc: BaseException) -> str:
    """One line for a chunk's error: type and message (the type for a message-less exception)."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return line if len(line) < 400 else line[:397] + "..."
