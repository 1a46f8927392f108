"""Synthetic splat scenes of a given size for the splat benchmarks (surface-like, real-scene splat sizes)."""

from __future__ import annotations

import numpy as np

from backends.splat.gaussians import SH_C0, Gaussians


def synthetic_scene(n: int, seed: int = 0, sh_degree: int = 0) -> Gaussians:
    """n Gaussians on 12 random spheres plus a floor: footprint like a trained scene (many small, overlapping)."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-2, 2, (12, 3)) * [1, 0.4, 1]
    radii = rng.uniform(0.3, 0.9, 12)
    k = rng.integers(0, 13, n)
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    means = np.where((k < 12)[:, None], centers[np.minimum(k, 11)] + radii[np.minimum(k, 11), None] * d, 0)
    floor = k == 12
    means[floor] = np.c_[
        rng.uniform(-3, 3, floor.sum()), np.full(floor.sum(), 1.0), rng.uniform(-3, 3, floor.sum())
    ]
    # splat size shrinks with density as in trained scenes: about 0.7x the mean spacing on the surfaces
    # (median 3-sigma radius ~6 px at 100k and 800x600, like the guitar scene)
    s = 0.7 * np.sqrt(60.0 / n)
    scales = np.exp(rng.normal(np.log(s), 0.4, (n, 3))) * [1, 1, 0.3]
    q = rng.normal(size=(n, 4))
    col = rng.uniform(0.1, 0.9, (n, 3))
    sh = np.zeros((n, (sh_degree + 1) ** 2, 3), np.float32)
    sh[:, 0] = (col - 0.5) / SH_C0
    if sh_degree:
        sh[:, 1:] = rng.normal(0, 0.05, sh[:, 1:].shape)
    return Gaussians(
        means=means,
        scales=scales,
        quats=q / np.linalg.norm(q, axis=1, keepdims=True),
        opacities=rng.uniform(0.3, 1.0, n),
        sh=sh,
    )
