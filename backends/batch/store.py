"""The Zarr store of a study: one array per output chunked like the work, a ``done`` array written last.

Layout (zarr format 3, readable by ``xarray.open_zarr(path)``, dimensions from each array's
``dimension_names``)::

    STORE/
      zarr.json           group attributes: "visual_lab_batch" = {format, workload, params, version, seed,
                          chunk_seeds, n_chunks}
      <output>/           one array per workload output, its zarr chunks equal to the work's chunks
      done/               (chunk,) bool, one zarr chunk per study chunk; True once that chunk's data is stored

Finishing a chunk is recorded atomically: the chunk's data arrays are written first, then its element of
``done`` (zarr's local store writes every chunk file to a temporary name and renames it). A client killed
between the two leaves ``done`` False and the rerun recomputes that chunk, overwriting the same bytes.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.common import UserError

FORMAT = "visual-lab-batch/1"
ATTR = "visual_lab_batch"


@dataclass(frozen=True)
class ArraySpec:
    """One output array: its name, named dimensions, full shape, zarr chunk shape, dtype and fill value."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: str
    fill_value: Any = 0


def project_version() -> str:
    try:
        return importlib.metadata.version("visual-lab")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _strict_json(value: Any) -> Any:
    """Round-trip through strict JSON: attributes must not hold NaN/Infinity or numpy scalars."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise UserError(f"study parameters are not strict JSON: {exc}") from None


def read_meta(path: str | Path) -> dict:
    """The study attributes of STORE; a clear error if it is not a study store."""
    import zarr

    p = Path(path)
    if not p.exists():
        raise UserError(f"{p}: no such store")
    if not (p / "zarr.json").is_file():
        raise UserError(f"{p}: not a batch store (no zarr.json)")
    try:
        g = zarr.open_group(str(p), mode="r")
    except Exception as exc:  # any unreadable metadata is the same user problem
        raise UserError(f"{p}: not a readable Zarr group ({exc})") from None
    meta = g.attrs.asdict().get(ATTR)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{p}: a Zarr group but not a visual-lab batch store")
    return meta


def open_store(path: str | Path, meta: dict, outputs: list[ArraySpec]):
    """Create STORE for a study, or open it to resume when it holds the same study; returns the zarr group.

    ``meta``: workload, params, seed, chunk_seeds, n_chunks (format and version are added). An existing
    store of another workload or other parameters, a foreign Zarr group, a file or a non-empty folder is
    refused (never overwritten)."""
    import zarr

    p = Path(path)
    meta = _strict_json({"format": FORMAT, "version": project_version(), **meta})
    if p.exists():
        if p.is_dir() and not any(p.iterdir()):
            p.rmdir()
        elif not p.is_dir():
            raise UserError(f"--out {p}: exists and is not a folder (a Zarr store is a folder)")
        elif not (p / "zarr.json").is_file():
            raise UserError(f"--out {p}: a non-empty folder that is not a Zarr store; choose another path")
    if p.exists():
        old = read_meta(p)
        diff = _first_difference(old, meta)
        if diff:
            raise UserError(
                f"--out {p}: holds another study ({diff}); choose another --out or repeat its parameters"
            )
        g = zarr.open_group(str(p), mode="r+")
        missing = [s.name for s in outputs if s.name not in g] + ([] if "done" in g else ["done"])
        if missing:
            raise UserError(f"--out {p}: study store lacks arrays {missing}; it is damaged")
        return g
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"--out {p}: folder {parent} does not exist")
    try:
        g = zarr.open_group(str(p), mode="w-", zarr_format=3)
    except OSError as exc:
        raise UserError(f"--out {p}: cannot write ({exc.strerror or exc})") from None
    for s in outputs:
        g.create_array(
            s.name,
            shape=s.shape,
            chunks=s.chunks,
            dtype=s.dtype,
            fill_value=s.fill_value,
            dimension_names=s.dims,
        )
    g.create_array(
        "done", shape=(meta["n_chunks"],), chunks=(1,), dtype="bool", fill_value=False,
        dimension_names=("chunk",),
    )  # fmt: skip
    # the parameters also as top-level attributes, for xarray users (ds.attrs["t_end"]); ours is ATTR
    flat = {k: v for k, v in meta["params"].items() if k not in (ATTR, "done")}
    flat.update(workload=meta["workload"], version=meta["version"], seed=meta["seed"])
    g.attrs.update({**flat, ATTR: meta})  # last: a store without ATTR is an interrupted creation
    with warnings.catch_warnings():  # "not part of the format 3 spec yet": zarr and xarray read it
        warnings.simplefilter("ignore", category=UserWarning)
        zarr.consolidate_metadata(str(p))  # metadata never changes after this; xarray opens it in one read
    return zarr.open_group(str(p), mode="r+")


def _first_difference(old: dict, new: dict) -> str:
    """'' when ``old`` and ``new`` describe the same study, else the first differing item, for the user."""
    if old.get("workload") != new["workload"]:
        return f"workload {old.get('workload')!r} there, {new['workload']!r} asked"
    po, pn = old.get("params") or {}, new["params"]
    for key in list(pn) + [k for k in po if k not in pn]:  # the workload's own order: top-level first
        if po.get(key) != pn.get(key):
            return f"{key} = {json.dumps(po.get(key))[:80]} there, {json.dumps(pn.get(key))[:80]} asked"
    for key in ("seed", "n_chunks"):
        if old.get(key) != new[key]:
            return f"{key} = {old.get(key)} there, {new[key]} asked"
    return ""


def done_mask(group) -> np.ndarray:
    return np.asarray(group["done"][:], dtype=bool)


def write_chunk(group, index: int, regions: dict[str, tuple[slice, ...]], arrays: dict[str, np.ndarray]):
    """Store one finished chunk: its data first, then ``done[index] = True`` (one atomic file)."""
    if set(regions) != set(arrays):
        raise ValueError(f"chunk {index}: arrays {sorted(arrays)} do not match the regions {sorted(regions)}")
    for name, region in regions.items():
        group[name][region] = arrays[name]
    group["done"][index] = True


def status(path: str | Path) -> dict:
    """Chunks done/total and the parameters of STORE (the `batch status` command)."""
    import zarr

    meta = read_meta(path)
    g = zarr.open_group(str(path), mode="r")
    done = done_mask(g)
    arrays = {
        name: {"dims": list(a.metadata.dimension_names or ()), "shape": list(a.shape), "dtype": str(a.dtype)}
        for name, a in g.arrays()
        if name != "done"
    }
    return {
        "store": str(path),
        "workload": meta["workload"],
        "chunks_done": int(done.sum()),
        "chunks_total": int(done.size),
        "pending": [int(i) for i in np.flatnonzero(~done)[:20]],
        "version": meta["version"],
        "seed": meta["seed"],
        "params": meta["params"],
        "arrays": arrays,
    }


def chunk_slices(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    """Regions of a regular chunk grid, C order (the last dimension fastest)."""
    counts = [math.ceil(n / c) for n, c in zip(shape, chunks)]
    out = []
    for idx in np.ndindex(*counts):
        out.append(tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(idx, chunks, shape)))
    return out
