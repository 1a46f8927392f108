"""The escape map as a batch study (:class:`backends.batch.EscapeMap`), Qt-free: the workload the panel's
parameters describe (the one ``visual-lab batch escape-map`` builds for the same grid, t_end and tile), a map
whose tiles fill in as chunks land, and a store (partial or finished) read back as a map.

Cells whose tile has not landed keep the store's fill values, so a partial map is an ordinary
:class:`EnsembleResult` whose unfinished cells have ``status == NOT_COMPUTED`` (the ensemble's "running").
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.batch.store import read_meta
from backends.batch.study import Study
from backends.batch.workloads import EscapeMap, workload_from_meta
from backends.common import Progress, UserError
from backends.nbody.ensemble import CLOSE, ESCAPED, RUNNING, EnsembleResult, grid_initial_conditions

NOT_COMPUTED = RUNNING  # the store's fill value of ``status``: a cell whose tile is not done yet
#: the store's (y, x) arrays, named like the fields of EnsembleResult, with their fill values
GRID_FILL = {
    "escape_time": np.nan,
    "escaper": -1,
    "status": NOT_COMPUTED,
    "energy_error": np.nan,
    "steps": 0,
    "redone": False,
    "r_min": np.nan,
}
METHOD = "study"  # EnsembleResult.method of a map made by a study


@dataclass
class StoredMap:
    """A store read back: its workload and seed, the map (unfinished tiles not computed) and which chunks
    are done."""

    path: Path
    workload: EscapeMap
    seed: int
    result: EnsembleResult
    done: np.ndarray  # (n_chunks,) bool

    @property
    def tiles(self) -> tuple[int, int]:
        return int(self.done.sum()), int(self.done.size)


def grid_axes(w: EscapeMap) -> tuple[np.ndarray, np.ndarray]:
    """The cell centres along x and y, by the ensemble's own formula (one row and one column of the grid)."""
    ny, nx = w.shape
    xs = grid_initial_conditions(w.ensemble_config(0, 0, 1, nx))[0]
    ys = grid_initial_conditions(w.ensemble_config(0, 0, ny, 1))[1]
    return xs, ys


def empty_map(w: EscapeMap) -> EnsembleResult:
    """A map of ``w`` with no tile computed yet."""
    shape = w.shape
    dtypes = {s.name: s.dtype for s in w.outputs()}
    grids = {k: np.full(shape, v, dtype=dtypes[k]) for k, v in GRID_FILL.items()}
    xs, ys = grid_axes(w)
    return EnsembleResult(xs, ys, **grids, t_end=float(w.t_end), wall_s=0.0, method=METHOD)


def put_tile(res: EnsembleResult, region: Mapping[str, tuple[slice, ...]], arrays: Mapping[str, np.ndarray]):
    """Write one finished chunk (``Study.region(i)``, the chunk's arrays) into the map, in place."""
    for name in (*GRID_FILL, "x", "y"):
        getattr(res, name)[region[name]] = arrays[name]


def escape_workload(meta: dict) -> EscapeMap:
    """The workload of a store's meta, or a :class:`UserError` naming what is wrong with it."""
    try:
        w = workload_from_meta(meta)
    except UserError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise UserError(f"corrupt study parameters ({type(exc).__name__}: {exc})") from None
    if not isinstance(w, EscapeMap):
        raise UserError(f"holds a {meta.get('workload')!r} study, not an escape map")
    return w


def read_store(path: Path) -> Generator[Progress, None, StoredMap]:
    """Read an escape-map store (partial or finished) as a map; only chunks marked done are shown."""
    import zarr

    path = Path(path)
    meta = read_meta(path)
    w = escape_workload(meta)
    yield Progress(None, f"reading {path.name}")
    try:
        g = zarr.open_group(str(path), mode="r")
        done = np.asarray(g["done"][:], dtype=bool)
        res = empty_map(w)
        arrays = {name: np.asarray(g[name][:]) for name in (*GRID_FILL, "x", "y")}
    except KeyError as exc:
        raise UserError(f"{path}: the store lacks array {exc}; it is damaged") from None
    regions = w.regions()
    if done.size != len(regions):
        raise UserError(f"{path}: 'done' has {done.size} chunks, the study {len(regions)}; it is damaged")
    for i in np.flatnonzero(done):  # a chunk written but not marked done is not shown (the rerun redoes it)
        region = regions[i]
        put_tile(res, region, {k: a[region[k]] for k, a in arrays.items()})
    return StoredMap(path, w, int(meta.get("seed", 0)), res, done)


def prepare(study: Study) -> Generator[Progress, None, StoredMap]:
    """Create the study's store (or open it to resume; refused when it holds another study), then read what
    it already holds: the long-work generator the panel runs before the study itself."""
    yield Progress(None, f"opening {study.store}")
    study.store.parent.mkdir(parents=True, exist_ok=True)
    try:
        study.open()
    except UserError as exc:  # the batch layer speaks of --out; here the user chose a store
        text = str(exc).replace("--out ", "store ", 1).replace("another --out", "another store")
        raise UserError(text) from None
    return (yield from read_store(study.store))


def map_summary(res: EnsembleResult, tiles: tuple[int, int] | None = None) -> str:
    """One line for a (possibly partial) study map: tiles (when known) and systems done, what they show."""
    computed = res.status != NOT_COMPUTED
    n = int(computed.sum())
    esc = int(np.sum(res.status == ESCAPED))
    flagged = int(np.sum(res.status == CLOSE))
    good = res.energy_error[computed & (res.status != CLOSE)]
    worst = float(np.nanmax(good)) if good.size and np.isfinite(good).any() else float("nan")
    redo = int(np.sum(res.redone)) if res.redone is not None else 0
    return (
        (f"{tiles[0]}/{tiles[1]} tiles, " if tiles else "")
        + f"{n}/{res.status.size} systems to t={res.t_end:g}: {esc} escapes, "
        f"{flagged} close encounters flagged, {redo} redone at eps 1e-9, worst |dE/E| (unflagged) {worst:.2e}"
    )
