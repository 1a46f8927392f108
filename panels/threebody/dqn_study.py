"""A ``dqn-eval`` batch store (:class:`backends.batch.DqnEval`) read back as the cost–accuracy table its users
want, Qt-free: per stepping (the learned policy, then each fixed eta), over the systems of finished chunks,
the mean force evaluations, the log-mean of |dE/E| and the blow-ups.

The log-mean is ``10 ** mean(log10 |dE/E|)`` (the geometric mean): the typical system, the average the policy
was trained and judged on (docs/nbody.md); the arithmetic mean is dominated by the worst few systems. The
evaluation floors |dE/E| at ``E_FLOOR`` and counts a blown-up system as 1, so every stored value has a log.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.batch.store import read_meta
from backends.batch.workloads import DqnEval
from backends.common import Progress, UserError

#: the CSV columns of :func:`table_columns`
TABLE_HEADER = ("stepping", "systems", "mean_force_evals", "log_mean_abs_dE_over_E", "blowups")


@dataclass(frozen=True)
class SteppingRow:
    """One stepping over the finished systems."""

    stepping: str  # "policy" or "eta=0.01"
    systems: int
    mean_evals: float
    log_mean_de: float  # 10 ** mean(log10 |dE/E|)
    blowups: int


@dataclass
class StoredEval:
    """A dqn-eval store read back: its table (row 0 the policy) and which chunks are done."""

    path: Path
    workload: DqnEval
    rows: list[SteppingRow]
    done: np.ndarray  # (n_chunks,) bool

    @property
    def chunks(self) -> tuple[int, int]:
        return int(self.done.sum()), int(self.done.size)


def eval_workload(meta: dict) -> DqnEval:
    """The dqn-eval study of a store's meta (the policy file need not exist here: only the sizes matter for
    reading), or a :class:`UserError` naming what is wrong with it."""
    if meta.get("workload") != DqnEval.name:
        raise UserError(f"holds a {meta.get('workload')!r} study, not a dqn-eval")
    p = meta.get("params") or {}
    try:
        return DqnEval(systems=p["systems"], first_seed=p["first_seed"], chunk=p["chunk"], lam=p["lam"])
    except UserError as exc:
        raise UserError(f"corrupt study parameters ({exc})") from None
    except (TypeError, KeyError) as exc:
        raise UserError(f"corrupt study parameters ({type(exc).__name__}: {exc})") from None


def stepping_table(
    steppings: list[str], de: np.ndarray, evals: np.ndarray, blowups: np.ndarray, systems: np.ndarray
) -> list[SteppingRow]:
    """The table over the systems selected by ``systems`` (bool, per system); ``de``/``evals`` are
    (stepping, system), ``blowups`` (stepping,) already summed over the finished chunks."""
    n = int(systems.sum())
    rows = []
    for k, name in enumerate(steppings):
        d, e = de[k, systems], evals[k, systems]
        log_mean = float(10.0 ** np.mean(np.log10(d))) if n else float("nan")
        rows.append(SteppingRow(name, n, float(np.mean(e)) if n else float("nan"), log_mean, int(blowups[k])))
    return rows


def read_eval_store(path: Path) -> Generator[Progress, None, StoredEval]:
    """Read a dqn-eval store (partial or finished); only chunks marked done count."""
    import zarr

    path = Path(path)
    meta = read_meta(path)
    w = eval_workload(meta)
    steppings = list((meta.get("params") or {}).get("steppings") or [])
    yield Progress(None, f"reading {path.name}")
    try:
        g = zarr.open_group(str(path), mode="r")
        done = np.asarray(g["done"][:], dtype=bool)
        de, evals, blowups = (np.asarray(g[k][:]) for k in ("de", "evals", "blowups"))
    except KeyError as exc:
        raise UserError(f"{path}: the store lacks array {exc}; it is damaged") from None
    regions = w.regions()
    if done.size != len(regions) or de.shape != evals.shape or de.shape[0] != len(steppings):
        raise UserError(f"{path}: arrays do not match the study's {len(regions)} chunks; it is damaged")
    finished = np.zeros(w.systems, bool)
    for i in np.flatnonzero(done):  # a chunk written but not marked done is not counted (a rerun redoes it)
        finished[regions[i]["de"][1]] = True
    if finished.any() and not (np.all(de[:, finished] > 0) and np.all(np.isfinite(de[:, finished]))):
        raise UserError(f"{path}: 'de' of a finished chunk is not a positive number; it is damaged")
    rows = stepping_table(steppings, de, evals, blowups[:, done].sum(axis=1), finished)
    return StoredEval(path, w, rows, done)


def table_columns(rows: list[SteppingRow]) -> list[np.ndarray]:
    """The table as the columns of :data:`TABLE_HEADER` (for a CSV)."""
    return [
        np.array([r.stepping for r in rows], dtype=object),
        np.array([r.systems for r in rows], dtype=np.int64),
        np.array([r.mean_evals for r in rows], dtype=np.float64),
        np.array([r.log_mean_de for r in rows], dtype=np.float64),
        np.array([r.blowups for r in rows], dtype=np.int64),
    ]


def table_summary(stored: StoredEval) -> str:
    """One line: chunks and systems done, the blow-ups, the policy against the fixed eta nearest in cost."""
    done, total = stored.chunks
    rows = stored.rows
    n = rows[0].systems if rows else 0
    text = f"{done}/{total} chunks, {n}/{stored.workload.systems} systems"
    if not n:
        return text + " finished: nothing to show yet"
    pol, fixed = rows[0], rows[1:]
    text += f"; blow-ups: policy {pol.blowups}, fixed etas {sum(r.blowups for r in fixed)}"
    if fixed:
        near = min(fixed, key=lambda r: abs(r.mean_evals - pol.mean_evals))
        text += (
            f"; policy {pol.log_mean_de:.2e} at {pol.mean_evals:.0f} evals vs {near.stepping} "
            f"{near.log_mean_de:.2e} at {near.mean_evals:.0f}"
        )
    return text
