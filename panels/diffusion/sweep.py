"""The panel's NFE sweep as a batch study (``nfe-sweep``): the workload of the model the user sees, its store,
and the curve points a store holds. Qt-free.

The workload samples the panel's own model: trained weights are written to a content-addressed ``.pt`` file
(the name carries the SHA-256 of the bytes, which the store records as a parameter), drawn points to a CSV the
same way. The store's name is a digest of the study's parameters, so pressing the button again with the same
model and settings resumes that store, and ``visual-lab batch nfe-sweep --weights FILE ...`` writes the same
store byte for byte.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np

from backends.batch.places import default_store
from backends.batch.study import Study
from backends.batch.workloads import NfeSweep
from backends.common import UserError
from backends.diffusion.live import generative, sweep_nfes
from backends.diffusion.pipeline import FAMILY_SAMPLERS, CurvePoint
from backends.safeio import write_bytes

SWEEP_COUNT = 2000  # samples per (sampler, NFE, seed): the in-process sweep's count


def study_for(workload, seed: int, root: Path) -> Study:
    """The study of ``workload`` in its default store under ``root``: one store per parameters and seed, so a
    re-run with the same ones finds its store and resumes."""
    return Study(workload, default_store(workload, seed, root=root), seed=seed)


def _pinned(root: Path, stem: str, suffix: str, data: bytes) -> Path:
    """Write ``data`` as ``root/stem-<sha256[:16]>suffix`` unless that file exists (same name, same bytes)."""
    p = root / f"{stem}-{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
    if not p.is_file():
        write_bytes(p, data)
    return p


def sweep_workload(
    model,
    root: Path,
    *,
    seeds: int,
    count: int = SWEEP_COUNT,
    nfes: tuple[int, ...] | None = None,
    samplers: tuple[str, ...] | None = None,
) -> NfeSweep:
    """The ``nfe-sweep`` workload of a :class:`panels.diffusion.model.DiffusionModel`'s current model."""
    p = model.params
    if p.model == "lightsb":
        raise UserError("LightSB has a single sampler (the exact bridge): its sweep runs in the panel")
    if not model.can_sample():
        raise UserError("train a model first to compare samplers")
    data = model.dataset()  # a UserError says what is missing (drawn points, a CSV file)
    root.mkdir(parents=True, exist_ok=True)
    kw: dict = {"dataset": p.dataset}
    if p.dataset == "points":  # the drawn set travels as a CSV (float32 written exactly: 9 digits)
        rows = "\n".join(",".join(f"{v:.9g}" for v in row) for row in model.points)
        kw.update(dataset="csv", csv=str(_pinned(root, "points", ".csv", (rows + "\n").encode())))
    elif p.dataset == "csv":
        kw["csv"] = str(Path(p.csv_path).expanduser().resolve())
    if p.model == "exact":
        family = "exact"
        kw.update(path=p.path, gamma=p.gamma)
    else:
        w = model.weights
        family = w.family
        tmp = root / ".weights.pt"
        generative(w).trained.save(tmp)
        blob = tmp.read_bytes()
        tmp.unlink()
        kw["weights"] = str(_pinned(root, f"diffusion-{family}", ".pt", blob))
    return NfeSweep(
        samplers=samplers or FAMILY_SAMPLERS[family],
        nfes=tuple(nfes or sweep_nfes(data.dim)),
        seeds=seeds,
        count=count,
        seed=p.seed,
        churn=p.churn,
        eps=p.eps,
        **kw,
    )


def sweep_point(sampler: str, nfe: int, sw: np.ndarray, floor: np.ndarray) -> tuple[CurvePoint, float]:
    """One (sampler, NFE) over its seeds: mean sliced W2 (inf if any run diverged), mean floor, and the
    standard deviation over seeds (NaN for one seed) for the error bar."""
    sw, floor = np.asarray(sw, float).ravel(), np.asarray(floor, float).ravel()
    finite = bool(np.all(np.isfinite(sw)))
    mean = float(np.mean(sw)) if finite else math.inf
    sd = float(np.std(sw, ddof=1)) if finite and len(sw) > 1 else math.nan
    fl = float(np.mean(floor[np.isfinite(floor)])) if np.isfinite(floor).any() else math.nan
    return CurvePoint(sampler, int(nfe), mean, fl), sd


def chunk_point(work_samplers, n_nfes: int, index: int, arrays: dict) -> tuple[CurvePoint, float]:
    """The curve point of study chunk ``index`` (one per (sampler, NFE), C order)."""
    i, _ = divmod(index, n_nfes)
    return sweep_point(
        work_samplers[i], int(arrays["nfe_used"].ravel()[0]), arrays["sw"][0, 0], arrays["floor"][0, 0]
    )


def store_points(path: Path, meta: dict) -> tuple[list[tuple[CurvePoint, float]], int, int]:
    """The curve points of the finished chunks of an ``nfe-sweep`` store, and chunks done / total."""
    import zarr

    if meta.get("workload") != "nfe-sweep":
        raise UserError(f"{path}: a {meta.get('workload')!r} study, not an NFE sweep")
    params = meta.get("params") or {}
    samplers, nfes = list(params.get("samplers") or []), list(params.get("nfes") or [])
    unknown = [s for s in samplers if s not in FAMILY_SAMPLERS["exact"] + ("bridge",)]
    if not samplers or not nfes or unknown:
        raise UserError(f"{path}: samplers {samplers} / nfes {nfes} are not an NFE sweep this panel shows")
    g = zarr.open_group(str(path), mode="r")
    sw, floor, used = g["sw"][:], g["floor"][:], g["nfe_used"][:]
    done = np.asarray(g["done"][:], bool)
    points = []
    for index in np.flatnonzero(done):
        i, j = divmod(int(index), len(nfes))
        points.append(sweep_point(samplers[i], int(used[i, j]), sw[i, j], floor[i, j]))
    return points, int(done.sum()), int(done.size)


def describe(meta: dict) -> str:
    """What a store measured, for the plot title: model and dataset, seeds."""
    p = meta.get("params") or {}
    model = f"weights {Path(p['weights']).name}" if p.get("weights") else "exact"
    return f"{model} on {p.get('dataset', '?')}, {p.get('seeds', '?')} seeds"


__all__ = ["SWEEP_COUNT", "describe", "study_for", "store_points", "sweep_workload"]
