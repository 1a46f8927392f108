"""Operator data sets as batch studies: the ``pde-dataset`` workload (:mod:`backends.batch.workloads`) for the
panel's Darcy / Navier-Stokes settings, and a reader that takes the *finished* chunks of its Zarr store (a
partial store is a smaller data set, never one padded with the fill value).

The workload fixes its own solver settings: Darcy by recycled deflated CG (tol 1e-10, the recycle space kept
inside a chunk, iterations recorded per sample); Navier-Stokes by Crank-Nicolson/Heun with a fixed dt = 1e-3
in float64, frames every unit of time (x = w(0..t_in-1), y = w(t_in..t_in+t_out-1)).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from backends.common import Progress, UserError, require

from .data import OperatorData

#: the pde-dataset models this reader turns into operator data, and their OperatorData kind
KINDS = {"darcy": "darcy", "navier-stokes": "ns"}


def dataset_workload(kind: str, n: int, count: int, chunk: int, *, nu: float = 1e-3, steps: int = 20,
                     t_in: int = 10):  # fmt: skip
    """The pde-dataset workload of ``count`` samples at ``n`` in chunks of ``chunk``; ``steps`` unit-time
    steps for Navier-Stokes as :func:`backends.operator.data.generate_ns` counts them (frames 0..steps)."""
    from backends.batch.workloads import DarcyDataset, NavierStokesDataset

    if kind == "darcy":
        return DarcyDataset(count=count, n=n, chunk=chunk)
    require(kind == "ns", f"no pde-dataset workload for problem {kind!r} (darcy or ns)")
    require(t_in < steps + 1, f"steps = {steps} leaves no output frames after t_in = {t_in}")
    return NavierStokesDataset(count=count, n=n, chunk=chunk, nu=nu, t_in=t_in, t_out=steps + 1 - t_in)


def load_study(path: str | Path) -> OperatorData:
    """The finished samples of a pde-dataset store (Darcy or Navier-Stokes) as OperatorData (float32).

    ``meta`` holds the workload's parameters, the chunks done/total and, for Darcy, the recycled CG
    iterations of the samples read."""
    import zarr

    from backends.batch.store import done_mask, read_meta
    from backends.batch.workloads import workload_from_meta

    p = Path(path)
    meta = read_meta(p)
    params = meta.get("params") or {}
    model = params.get("model")
    if meta.get("workload") != "pde-dataset" or model not in KINDS:
        raise UserError(
            f"{p}: a {meta.get('workload')} store ({model or 'no model'}); the operator panel reads "
            "pde-dataset stores of darcy or navier-stokes"
        )
    work = workload_from_meta(meta)
    g = zarr.open_group(str(p), mode="r")
    done = done_mask(g)
    rows = [work.regions()[i]["x"][0] for i in np.flatnonzero(done)]
    if not rows:
        raise UserError(f"{p}: no finished chunks yet (0/{done.size})")
    xs = [np.asarray(g["x"][s], np.float32) for s in rows]
    ys = [np.asarray(g["y"][s], np.float32) for s in rows]
    x, y = np.concatenate(xs), np.concatenate(ys)
    if x.ndim == 3:
        x, y = x[:, None], y[:, None]
    info = {k: v for k, v in params.items() if isinstance(v, str | int | float | bool)}
    info.update(source=p.name, chunks_done=int(done.sum()), chunks_total=int(done.size))
    if "iterations" in g:
        it = np.concatenate([np.asarray(g["iterations"][s]) for s in rows])
        info.update(iterations_recycled=int(it.sum()), iterations_per_system=float(it.mean()))
    if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
        raise UserError(f"{p}: the finished samples contain NaN or infinity")
    return OperatorData(x, y, KINDS[model], info)


def read_study(path: str | Path) -> Iterator[Progress]:
    """:func:`load_study` as a long-work generator (a big store takes seconds to read: not on a GUI thread)."""
    yield Progress(None, f"reading the finished samples of {Path(path).name}")
    return load_study(path)


__all__ = ["dataset_workload", "load_study", "read_study", "KINDS"]
