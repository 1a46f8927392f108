"""Probes on periodic fields: values along a line, for profiles and space-time (kymograph) views.

Fields live on the grid of :class:`backends.pde.spectral.Grid`: ``f[i, j]`` is the value at
``(x, y) = (j / n, i / n)`` on the periodic unit square. Sampling is bilinear with periodic wrap-around, so a
line may cross the boundary and the result is second-order accurate in the grid spacing.
"""

from __future__ import annotations

import numpy as np

from backends.common import UserError


def line_points(p0: tuple[float, float], p1: tuple[float, float], num: int) -> np.ndarray:
    """``num`` equally spaced (x, y) points from ``p0`` to ``p1`` inclusive, shape (num, 2)."""
    if num < 2:
        raise UserError(f"a line probe needs at least 2 samples, got {num}")
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise UserError("line probe end points must be finite")
    w = np.linspace(0.0, 1.0, num)[:, None]
    return (1 - w) * a + w * b


def sample_periodic(field: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear values of a periodic 2D ``field`` (n_y, n_x) at points ``xy`` (m, 2) in unit coordinates."""
    f = np.asarray(field)
    if f.ndim != 2:
        raise UserError(f"line probes need a 2D field, got shape {f.shape}")
    ny, nx = f.shape
    gx, gy = xy[:, 0] * nx, xy[:, 1] * ny
    j0, i0 = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
    tx, ty = gx - j0, gy - i0
    j0, i0 = j0 % nx, i0 % ny
    j1, i1 = (j0 + 1) % nx, (i0 + 1) % ny
    return (1 - ty) * ((1 - tx) * f[i0, j0] + tx * f[i0, j1]) + ty * ((1 - tx) * f[i1, j0] + tx * f[i1, j1])


def line_profile(
    field: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], num: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """(arc length s from ``p0``, field values) along the segment ``p0 -> p1``."""
    xy = line_points(p0, p1, num)
    s = np.linspace(0.0, float(np.hypot(*(np.asarray(p1, float) - np.asarray(p0, float)))), num)
    return s, sample_periodic(field, xy)
