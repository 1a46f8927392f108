"""The panel's scene sweep as batch studies (``trajectory-sweep``): the model of the panel's settings over every
scene of the data folder x seeds, constant velocity as the baseline, and the per-scene table. Qt-free.

Each study's store is named by a digest of its parameters, so pressing the button again with the same settings
resumes it, and ``visual-lab batch trajectory-sweep --data D --seeds S --model M --epochs E --k K --anchors A
--seed N`` writes the same store byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.batch.places import default_store
from backends.batch.study import Study
from backends.batch.workloads import TrajectorySweep
from backends.common import UserError
from backends.trajectory.live import SHARED_ETHUCY

METRICS = ("minADE", "minFDE", "ADE", "FDE")
TABLE_HEADER = ("scene", "seeds", "minADE_mean", "minADE_std", "minFDE_mean", "minFDE_std",
                "cv_ADE", "cv_FDE")  # fmt: skip


def study_for(workload, seed: int, root: Path) -> Study:
    """The study of ``workload`` in its default store under ``root``: one store per parameters and seed, so a
    re-run with the same ones finds its store and resumes."""
    return Study(workload, default_store(workload, seed, root=root), seed=seed)


def sweep_root(data: str) -> Path:
    """The folder of scenes to sweep: the panel's data folder, or ETH/UCY for 'auto'."""
    return SHARED_ETHUCY if data in ("", "auto") else Path(data).expanduser()


def sweep_workloads(
    params, seeds: int, scenes: tuple[str, ...] = ()
) -> tuple[TrajectorySweep, TrajectorySweep | None]:
    """The model of the panel's settings over ``scenes`` (default: every scene) x ``seeds``, and constant
    velocity (deterministic: one seed) as the baseline (None when the model is constant velocity itself)."""
    root = sweep_root(params.data)
    if not root.is_dir():
        raise UserError(f"scene sweep: dataset folder {root} not found (set 'Dataset folder')")
    main = TrajectorySweep(
        data=str(root), scenes=tuple(scenes), seeds=seeds, model=params.model, epochs=params.epochs,
        seed=params.seed, k=params.k, anchors=params.anchors,
    )  # fmt: skip
    base = None if params.model == "cv" else TrajectorySweep(str(root), tuple(scenes), seeds=1, model="cv")
    return main, base


@dataclass
class SceneSweep:
    """What the table shows: per scene and seed the metrics of the finished chunks (NaN: not yet)."""

    model: str
    scenes: list[str]
    seeds: int
    metrics: dict[str, np.ndarray]  # name -> (scenes, seeds)
    baseline: dict[str, np.ndarray] = field(default_factory=dict)  # cv: name -> (scenes,), NaN: not yet
    stores: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, model: str, scenes: list[str], seeds: int) -> SceneSweep:
        return cls(model, list(scenes), seeds, {m: np.full((len(scenes), seeds), np.nan) for m in METRICS})

    def put(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        i, k = divmod(index, self.seeds)
        for m in METRICS:
            self.metrics[m][i, k] = float(np.asarray(arrays[m]).ravel()[0])

    def put_baseline(self, scenes: list[str], index: int, arrays: dict[str, np.ndarray]) -> None:
        row = self.scenes.index(scenes[index])
        for m in METRICS:
            self.baseline.setdefault(m, np.full(len(self.scenes), np.nan))[row] = float(
                np.asarray(arrays[m]).ravel()[0]
            )

    def put_baselines(self, scenes: list[str], arrays: dict[str, np.ndarray], done: np.ndarray) -> None:
        """The finished chunks of a baseline store (one seed: chunk i is scene i)."""
        for i in np.flatnonzero(done):
            self.put_baseline(scenes, int(i), {m: arrays[m][i, :1] for m in METRICS})

    @property
    def done(self) -> int:
        return int(np.isfinite(self.metrics["minADE"]).sum())

    @property
    def total(self) -> int:
        return self.metrics["minADE"].size

    def rows(self) -> list[tuple]:
        """One row per scene (TABLE_HEADER): seeds done, mean and std over them (ddof 1; NaN for < 2)."""
        out = []
        for i, scene in enumerate(self.scenes):
            row: list = [scene]
            a = self.metrics["minADE"][i]
            n = int(np.isfinite(a).sum())
            row.append(n)
            for m in ("minADE", "minFDE"):
                v = self.metrics[m][i][np.isfinite(self.metrics[m][i])]
                row += [float(v.mean()) if n else np.nan, float(v.std(ddof=1)) if n > 1 else np.nan]
            for m in ("ADE", "FDE"):
                row.append(float(self.baseline[m][i]) if m in self.baseline else np.nan)
            out.append(tuple(row))
        return out


def read_store(path: Path, meta: dict) -> tuple[list[str], str, int, dict[str, np.ndarray], np.ndarray]:
    """Scenes, model, seeds, the metric arrays (NaN where a chunk is not done) and the done mask of a
    ``trajectory-sweep`` store."""
    import zarr

    if meta.get("workload") != "trajectory-sweep":
        raise UserError(f"{path}: a {meta.get('workload')!r} study, not a trajectory sweep")
    p = meta.get("params") or {}
    scenes, seeds = list(p.get("scenes") or []), p.get("seeds")
    if not scenes or not isinstance(seeds, int) or seeds < 1:
        raise UserError(f"{path}: no scenes or seeds in the study's parameters")
    g = zarr.open_group(str(path), mode="r")
    done = np.asarray(g["done"][:], bool)
    mask = done.reshape(len(scenes), seeds)
    arrays = {m: np.where(mask, np.asarray(g[m][:], float), np.nan) for m in METRICS}
    return scenes, str(p.get("model", "?")), seeds, arrays, done
