"""Distances between sample sets: sliced Wasserstein (control variates), MMD (RBF), exact W2, noise floor.

Sliced Wasserstein with control variates (Nguyen & Ho, ICLR 2024). For directions theta uniform on the sphere,
SW_2^2 = E_theta[W_2^2(theta#mu, theta#nu)]. Fit Gaussians N(m1, S1), N(m2, S2) to the two sets; the W2^2 between
their projections is ``(theta.(m1-m2))^2 + (sqrt(theta'S1 theta) - sqrt(theta'S2 theta))^2``. Its lower bound
``G_low = (theta.(m1-m2))^2`` and upper bound ``G_up = G_low + theta'S1 theta + theta'S2 theta`` have known
expectations ``|m1-m2|^2/d`` and ``|m1-m2|^2/d + (tr S1 + tr S2)/d`` and serve as control variates:
``SW^2 ~ mean(W) - alpha (mean(G) - E G)``, ``alpha = Cov(W, G) / Var(G)`` estimated from the same L directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from backends.common import require


def _directions(d: int, n: int, rng: np.random.Generator) -> np.ndarray:
    th = rng.standard_normal((n, d))
    return th / np.linalg.norm(th, axis=1, keepdims=True)


def _sorted_quantiles(proj: np.ndarray, k: int) -> np.ndarray:
    """proj (L, n) -> quantile functions on a k-point grid (L, k) (exact when n == k)."""
    s = np.sort(proj, axis=1)
    n = s.shape[1]
    if n == k:
        return s
    q = (np.arange(k) + 0.5) / k * n - 0.5
    lo = np.clip(np.floor(q).astype(int), 0, n - 1)
    hi = np.clip(lo + 1, 0, n - 1)
    f = np.clip(q - lo, 0, 1)[None, :]
    return s[:, lo] * (1 - f) + s[:, hi] * f


def projected_w2sq(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """W_2^2 between the 1-D projections of x and y on each direction (rows of theta): (L,)."""
    k = max(len(x), len(y))
    px = _sorted_quantiles(theta @ x.T, k)
    py = _sorted_quantiles(theta @ y.T, k)
    return np.mean((px - py) ** 2, axis=1)


def sliced_wasserstein(
    x, y, n_proj: int = 256, seed: int = 0, control_variate: str | None = "upper"
) -> float:
    """SW_2 between sample sets x (n, d) and y (m, d); ``control_variate`` in {None, 'lower', 'upper'}."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    require(
        x.ndim == 2 and y.ndim == 2 and x.shape[1] == y.shape[1], "sample sets must be (n, d) with equal d"
    )
    require(control_variate in (None, "lower", "upper"), f"unknown control variate {control_variate!r}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.inf
    d = x.shape[1]
    theta = _directions(d, n_proj, np.random.default_rng(seed))
    w = projected_w2sq(x, y, theta)
    est = float(w.mean())
    if control_variate is not None and n_proj > 1:
        m1, m2 = x.mean(0), y.mean(0)
        dm = m1 - m2
        g = (theta @ dm) ** 2
        eg = float(dm @ dm) / d
        if control_variate == "upper":
            xc, yc = x - m1, y - m2
            g = g + np.mean((xc @ theta.T) ** 2, axis=0) + np.mean((yc @ theta.T) ** 2, axis=0)
            eg += (float(np.mean(np.sum(xc * xc, 1))) + float(np.mean(np.sum(yc * yc, 1)))) / d
        gc = g - g.mean()
        var = float(np.mean(gc * gc))
        if var > 1e-300:
            alpha = float(np.mean((w - w.mean()) * gc)) / var
            est = est - alpha * (float(g.mean()) - eg)
    return math.sqrt(max(est, 0.0))


def mmd_rbf(x, y, bandwidth: float | None = None, max_points: int = 2000, seed: int = 0) -> float:
    """Unbiased MMD^2 with a Gaussian kernel exp(-|a-b|^2 / 2 h^2); h = median pairwise distance if None."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.inf
    if len(x) > max_points:
        x = x[rng.choice(len(x), max_points, replace=False)]
    if len(y) > max_points:
        y = y[rng.choice(len(y), max_points, replace=False)]
    require(len(x) >= 2 and len(y) >= 2, "MMD needs at least 2 samples per set")

    def sq(a, b):
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0.0)

    if bandwidth is None:
        z = np.concatenate([x, y])[:1000]
        bandwidth = float(np.sqrt(np.median(sq(z, z)[np.triu_indices(len(z), 1)]))) or 1.0
    g = 1.0 / (2 * bandwidth**2)
    kxx, kyy, kxy = np.exp(-g * sq(x, x)), np.exp(-g * sq(y, y)), np.exp(-g * sq(x, y))
    n, m = len(x), len(y)
    return float((kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean())


def w2_exact(x, y, max_points: int = 2000) -> float:
    """Exact W_2 between two equal-size empirical sets (optimal assignment, scipy linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    require(len(x) == len(y), f"exact W2 needs equal set sizes, got {len(x)} and {len(y)}")
    require(len(x) <= max_points, f"exact W2 is O(n^3): at most {max_points} points, got {len(x)}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        return math.inf
    c = ((x[:, None, :] - y[None]) ** 2).sum(-1)
    r, col = linear_sum_assignment(c)
    return float(math.sqrt(c[r, col].mean()))


def metric_with_floor(
    samples: np.ndarray,
    truth: Callable[[int, int], np.ndarray],
    metric: Callable[[np.ndarray, np.ndarray], float] = sliced_wasserstein,
    repeats: int = 4,
    seed: int = 10_000,
    spread: bool = False,
):
    """(metric to the truth, noise floor[, floor std]), each averaged over ``repeats`` ground-truth sets.

    ``truth(n, seed)`` draws n ground-truth samples. A single SW value between two 5000-point sets fluctuates
    by tens of percent, so both numbers are means over the same number of independent reference draws.
    """
    n = len(samples)
    vals = [metric(samples, truth(n, seed + k)) for k in range(repeats)]
    floors = [metric(truth(n, seed + 100 + k), truth(n, seed + 200 + k)) for k in range(repeats)]
    if spread:  # also the standard deviation of the floor across the repeats: how much one set fluctuates
        return float(np.mean(vals)), float(np.mean(floors)), float(np.std(floors))
    return float(np.mean(vals)), float(np.mean(floors))
