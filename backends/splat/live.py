"""What the splat viewer computes off the GUI thread, or between frames, without Qt: scene loading, the
edited scene's instance rows, the importance order the level of detail draws from, and the depth sort.

Moved out of the panel so the viewer's data path can be tested and reused (the CLI, benches) without a display.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.common import Progress, UserError
from backends.splat import gauss4d, io, pointcloud, samples, tile_raster
from backends.splat.camera import Camera
from backends.splat.gaussians import Gaussians, concat
from backends.splat.sh import eval_sh_colors
from backends.splat.tile_raster import pack_rows

#: the scene sources of the viewer: two bundled samples, or files
SCENES = ("sample 3D", "dynamic 4D", "file")
SCENE_SUFFIXES = (".ply", ".splat", ".spz", ".npz", ".sog")
#: SOG scenes are also opened through these file names (a folder through the one it holds)
SCENE_NAMES = ("meta.json", "lod-meta.json")


def scene_paths(path: str) -> list[Path]:
    """The files of a ``file`` scene: one path, or several separated by ';' (loaded as blocks)."""
    return [Path(p.strip()) for p in path.split(";") if p.strip()]


def check_scene_files(path: str) -> list[Path]:
    """The files of ``path``, or one clear error naming the first that is missing or not a scene file."""
    paths = scene_paths(path)
    if not paths:
        raise UserError(
            "scene 'file' needs a .ply/.splat/.spz/.npz/.sog file or a SOG meta.json (File > Open)"
        )
    for p in paths:
        if p.suffix.lower() not in SCENE_SUFFIXES and p.name not in SCENE_NAMES:
            expected = ", ".join(SCENE_SUFFIXES + SCENE_NAMES)
            raise UserError(f"{p}: not a scene file (expected {expected})")
        if not p.is_file():
            raise UserError(f"{p}: no such file")
    return paths


@dataclass(frozen=True)
class LoadedScene:
    """What a scene source holds: the Gaussians, and the cameras that observed them (SfM scenes)."""

    gaussians: Gaussians
    cameras: tuple[Camera, ...] = ()


def _load_file_gen(p: Path) -> Iterator:
    suffix = p.suffix.lower()
    if suffix == ".npz" or (suffix == ".ply" and pointcloud.is_point_ply(p)):
        pts = yield from pointcloud.load_points_gen(p)
        return LoadedScene(pts.gaussians, pts.cameras)
    return LoadedScene((yield from io.load_gen(p)))


def load_scene_gen(scene: str, path: str = "") -> Iterator:
    """Yield Progress; return the :class:`LoadedScene` of a scene source (``scene`` in :data:`SCENES`).
    Several files load as blocks of one scene (their cameras are kept in order)."""
    if scene == "sample 3D":
        return LoadedScene((yield from io.load_gen(samples.SAMPLE_3D)))
    if scene == "dynamic 4D":
        return LoadedScene((yield from io.load_gen(samples.SAMPLE_4D)))
    if scene != "file":
        raise UserError(f"scene must be one of {', '.join(SCENES)}, got {scene!r}")
    paths = check_scene_files(path)
    parts = []
    for i, p in enumerate(paths):
        yield Progress(i / len(paths), f"loading {p.name}")
        parts.append((yield from _load_file_gen(p)))
    if len(parts) == 1:
        return parts[0]
    return LoadedScene(concat([s.gaussians for s in parts]), tuple(c for s in parts for c in s.cameras))


def warmup_job() -> Iterator:
    """Compile (or load from numba's cache) the CPU rasterizer before 'auto' switches to it."""
    yield Progress(None, "preparing the CPU splat rasterizer")
    tile_raster.warmup()


@dataclass(frozen=True)
class SceneRows:
    """The instance rows drawn for one scene state (edits, colouring, time).

    ``sh`` is aligned with the rows when colours depend on the view (SH degree > 0), else None; ``order`` lists
    row indices by decreasing importance (opacity x geometric-mean size): the level of detail draws a prefix.
    """

    rows: np.ndarray  # (N, 13) float32, see tile_raster.pack_rows
    sh: np.ndarray | None
    order: np.ndarray

    @property
    def count(self) -> int:
        return len(self.rows)

    def subset(self, k: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The ``k`` most important rows (and their SH)."""
        keep = self.order[:k]
        return self.rows[keep], (self.sh[keep] if self.sh is not None else None)


def importance_order(covs: np.ndarray, opacities: np.ndarray) -> np.ndarray:
    """Row indices by decreasing opacity x geometric-mean standard deviation (what covers most of a frame)."""
    sd = np.sqrt(np.maximum(np.einsum("nii->ni", covs), 1e-30))
    importance = opacities * np.prod(sd, 1) ** (1 / 3)
    return np.argsort(-importance, kind="stable")


def scene_rows(g: Gaussians, time: float, campos: np.ndarray) -> SceneRows:
    """Rows of the (edited) scene at ``time`` (4D) with colours for a camera at ``campos``."""
    if g.is_4d:
        means, covs, opac = gauss4d.slice_at(g, time)
    else:
        means, covs, opac = g.means, g.covariances(), g.opacities
    colors = eval_sh_colors(g.sh, means, campos)
    rows = pack_rows(means, covs, colors, opac)
    return SceneRows(rows, g.sh if g.sh.shape[1] > 1 else None, importance_order(covs, opac))


def sort_back_to_front(rows: np.ndarray, viewmat: np.ndarray, sh: np.ndarray | None = None) -> np.ndarray:
    """Rows reordered by decreasing view depth (safe in a worker: it reads only its arguments). With ``sh``
    (aligned with the rows, degree > 0) the colours are first re-evaluated for this camera position."""
    if sh is not None and sh.shape[1] > 1:
        campos = -np.asarray(viewmat)[:3, :3].T @ np.asarray(viewmat)[:3, 3]
        rows = rows.copy()
        rows[:, 9:12] = eval_sh_colors(sh, rows[:, 0:3], campos)
    r = np.asarray(viewmat, np.float32)
    depth = rows[:, 0:3] @ r[2, :3] + r[2, 3]
    return rows[np.argsort(-depth, kind="stable")]


def sort_job(rows: np.ndarray, viewmat: np.ndarray, key, sh: np.ndarray | None = None) -> Iterator:
    """Worker: the depth sort of :func:`sort_back_to_front`; returns (rows, milliseconds, key)."""
    t0 = time.perf_counter()
    out = sort_back_to_front(rows, viewmat, sh)
    yield Progress(1.0, "sorted")
    return out, (time.perf_counter() - t0) * 1000.0, key
