"""The workloads a study can run. Each is a frozen dataclass: its fields are the study's parameters, its
``run_chunk(index, seed)`` a pure function that calls the domain backend (no physics is re-implemented here).

* :class:`EscapeMap` (``escape-map``): a grid of three-body systems cut into tiles, each tile one
  :func:`backends.nbody.ensemble.escape_map` call (the compiled IAS15 ensemble, one thread per chunk).
* :class:`DarcyDataset` (``pde-dataset --model darcy``): FNO-style Darcy pairs, each chunk a sequence of
  similar systems solved by recycled CG (:func:`backends.pde.darcy.generate_dataset`).

PDE data sets follow one layout (the operator-learning reader relies on it): ``x`` the inputs and ``y`` the
outputs, dims ``('sample', 'y', 'x')`` (or ``('sample', 't', 'y', 'x')`` for sequences), plus extra arrays.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from backends.batch.store import ArraySpec, chunk_slices
from backends.common import UserError, drain

MAX_GRID = 20_000  # per side: 4e8 systems, far beyond a day on 1,000 workers


def _check_int(name: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or not lo <= value <= hi:
        raise UserError(f"{name} must be a whole number {lo}..{hi}, got {value!r}")


def _check_range(name: str, r: tuple[float, float]) -> None:
    if len(r) != 2 or not all(math.isfinite(v) for v in r) or not r[0] < r[1] or max(map(abs, r)) > 1e3:
        raise UserError(f"{name} must be MIN,MAX with MIN < MAX, finite, |value| <= 1000, got {r}")


@dataclass(frozen=True)
class EscapeMap:
    """Escape-time map of the Pythagorean-style three-body grid (see :mod:`backends.nbody.ensemble`)."""

    grid: int = 100  # systems per side (x); 1..MAX_GRID
    grid_y: int = 0  # systems along y (0: same as grid)
    t_end: float = 10.0  # (0, 1e4]
    tile: int = 50  # systems per tile side (one chunk = tile x tile systems); 1..2000
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    name = "escape-map"

    def __post_init__(self) -> None:
        _check_int("--grid", self.grid, 1, MAX_GRID)
        _check_int("--grid-y", self.grid_y, 0, MAX_GRID)
        _check_int("--tile", self.tile, 1, 2000)
        if not (math.isfinite(self.t_end) and 0 < self.t_end <= 1e4):
            raise UserError(f"--t-end must be in (0, 10000], got {self.t_end}")
        _check_range("--x-range", self.x_range)
        _check_range("--y-range", self.y_range)
        self.ensemble_config(0, 0, 1, 1)  # the ensemble's own validation, before any work

    @property
    def shape(self) -> tuple[int, int]:
        return (self.grid_y or self.grid, self.grid)

    def ensemble_config(self, r0: int, c0: int, r1: int, c1: int):
        """The ensemble of the tile rows r0:r1, columns c0:c1: a sub-rectangle of the full grid."""
        from backends.nbody.ensemble import EnsembleConfig

        ny, nx = self.shape
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        dx, dy = (x1 - x0) / nx, (y1 - y0) / ny
        return EnsembleConfig(
            nx=c1 - c0,
            ny=r1 - r0,
            x_range=(x0 + c0 * dx, x0 + c1 * dx),
            y_range=(y0 + r0 * dy, y0 + r1 * dy),
            t_end=float(self.t_end),
            threads=1,  # Dask workers are the parallelism; one numba thread each keeps chunks independent
        )

    def params(self) -> dict:
        p = dataclasses.asdict(self)
        p["x_range"], p["y_range"] = list(self.x_range), list(self.y_range)
        ens = dataclasses.asdict(self.ensemble_config(0, 0, 1, 1))
        p["ensemble"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in ens.items()
                         if k not in ("nx", "ny", "x_range", "y_range")}  # fmt: skip
        return p

    def outputs(self) -> list[ArraySpec]:
        ny, nx = self.shape
        t = (min(self.tile, ny), min(self.tile, nx))
        grid = [
            ("escape_time", "float64", float("nan")),
            ("escaper", "int8", -1),
            ("status", "int8", 0),
            ("energy_error", "float64", float("nan")),
            ("steps", "int32", 0),
            ("redone", "bool", False),
            ("r_min", "float64", float("nan")),
        ]
        out = [ArraySpec(n, ("y", "x"), (ny, nx), t, d, f) for n, d, f in grid]
        out += [
            ArraySpec("x", ("x",), (nx,), (t[1],), "float64", float("nan")),
            ArraySpec("y", ("y",), (ny,), (t[0],), "float64", float("nan")),
        ]
        return out

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        ny, nx = self.shape
        out = []
        for ry, rx in chunk_slices((ny, nx), (min(self.tile, ny), min(self.tile, nx))):
            reg = {s.name: (ry, rx) for s in self.outputs() if s.dims == ("y", "x")}
            reg.update(x=(rx,), y=(ry,))
            out.append(reg)
        return out

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        from backends.nbody.ensemble import escape_map

        ry, rx = self.regions()[index]["status"]
        res = drain(escape_map(self.ensemble_config(ry.start, rx.start, ry.stop, rx.stop)))
        arrays = {
            "escape_time": res.escape_time,
            "escaper": res.escaper,
            "status": res.status,
            "energy_error": res.energy_error,
            "steps": res.steps,
            "redone": res.redone,
            "r_min": res.r_min if res.r_min is not None else np.full(res.status.shape, np.nan),
            "x": res.x,
            "y": res.y,
        }
        dtypes = {s.name: s.dtype for s in self.outputs()}
        return {k: np.asarray(v).astype(dtypes[k]) for k, v in arrays.items()}


@dataclass(frozen=True)
class DarcyDataset:
    """FNO Darcy pairs (a -> u) on an n x n grid; a chunk is ``chunk`` similar systems solved in sequence with
    Krylov recycling (the recycle space lives inside the chunk, so chunks stay independent)."""

    count: int = 100  # samples, 1..10^7
    n: int = 64  # grid nodes per side, 16..1024
    chunk: int = 32  # samples per chunk, 1..10^4
    tol: float = 1e-10  # relative residual, (0, 1e-2]
    recycle_k: int = 16
    recycle_m: int = 32
    name = "pde-dataset"
    model = "darcy"

    def __post_init__(self) -> None:
        _check_int("--count", self.count, 1, 10_000_000)
        _check_int("--n", self.n, 16, 1024)
        _check_int("--chunk", self.chunk, 1, 10_000)
        if not (math.isfinite(self.tol) and 0 < self.tol <= 1e-2):
            raise UserError(f"--tol must be in (0, 0.01], got {self.tol}")
        _check_int("--recycle-k", self.recycle_k, 0, 200)
        _check_int("--recycle-m", self.recycle_m, 0, 400)

    def params(self) -> dict:
        return {"model": self.model, **dataclasses.asdict(self)}

    def outputs(self) -> list[ArraySpec]:
        c, n = min(self.chunk, self.count), self.n
        field = ("sample", "y", "x")
        return [
            ArraySpec("x", field, (self.count, n, n), (c, n, n), "float64", 0.0),
            ArraySpec("y", field, (self.count, n, n), (c, n, n), "float64", 0.0),
            ArraySpec("iterations", ("sample",), (self.count,), (c,), "int32", 0),
        ]

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        return [
            {"x": (s, slice(None), slice(None)), "y": (s, slice(None), slice(None)), "iterations": (s,)}
            for (s,) in chunk_slices((self.count,), (min(self.chunk, self.count),))
        ]

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        from backends.pde.darcy import DarcyConfig, generate_dataset

        (s,) = self.regions()[index]["iterations"]
        cfg = DarcyConfig(
            n=self.n, count=s.stop - s.start, seed=seed, tol=self.tol,
            recycle_k=self.recycle_k, recycle_m=self.recycle_m,
        )  # fmt: skip
        out = drain(generate_dataset(cfg, compare=False))
        return {"x": out["a"], "y": out["u"], "iterations": out["iterations"].astype("int32")}


WORKLOADS = {"escape-map": EscapeMap, "pde-dataset": DarcyDataset}
