"""A small streamed SOG scene written with the project's SOG writer, for viewer tests and screenshots.

Two leaves (left at x = -10, right at x = +10), two levels (0 fine, 1 coarse), one chunk per leaf and level,
so refining one leaf loads exactly one chunk. Each leaf has its own colour (left orange, right blue)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from backends.splat import sog
from backends.splat.gaussians import SH_C0, Gaussians

LEAF_X = (-10.0, 10.0)
COLOURS = ((1.0, 0.55, 0.1), (0.2, 0.5, 1.0))


def blob(n: int, x: float, rgb, scale: float, seed: int) -> Gaussians:
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    dc = (np.asarray(rgb) - 0.5) / SH_C0
    return Gaussians(
        means=rng.normal(scale=[2.0, 0.5, 3.0], size=(n, 3)) + [x, 0.0, 0.0],
        scales=np.full((n, 3), scale) * np.exp(rng.uniform(-0.3, 0.3, size=(n, 3))),
        quats=q / np.linalg.norm(q, axis=1, keepdims=True),
        opacities=rng.uniform(0.6, 1.0, n),
        sh=np.broadcast_to(dc, (n, 1, 3)).copy(),
    )


def chunk_index(level: int, leaf: int) -> int:
    return 2 * level + leaf


def write_streamed(folder: Path, counts=(2000, 500)) -> Path:
    """Write the scene under ``folder``; returns its ``lod-meta.json``."""
    filenames, leaves = [], []
    for level, n in enumerate(counts):
        for leaf, x in enumerate(LEAF_X):
            sub = folder / f"{level}_{leaf}"
            sub.mkdir(parents=True)
            scale = 0.15 * np.sqrt(counts[0] / n)  # coarser levels: fewer, larger splats
            sog.write_sog(sub / "meta.json", blob(n, x, COLOURS[leaf], scale, seed=10 * level + leaf))
            filenames.append(f"{level}_{leaf}/meta.json")
    for leaf, x in enumerate(LEAF_X):
        lods = {
            str(level): {"file": chunk_index(level, leaf), "offset": 0, "count": n}
            for level, n in enumerate(counts)
        }
        leaves.append({"bound": {"min": [x - 8, -3, -10], "max": [x + 8, 3, 10]}, "lods": lods})
    meta = {
        "version": 1,
        "count": 2 * sum(counts),
        "lodLevels": len(counts),
        "filenames": filenames,
        "tree": {"bound": {"min": [-18, -3, -10], "max": [18, 3, 10]}, "children": leaves},
    }
    path = folder / "lod-meta.json"
    path.write_text(json.dumps(meta))
    return path
