"""Zero-shot super-resolution: a model trained at n evaluated on a finer grid, beside its prediction at n
interpolated to that grid (the resolution-invariance claim of neural operators, checked on the same samples).

The fine set comes from our solvers at the fine resolution (:func:`fine_test_set`) or from a file. The coarse
inputs are the fine ones restricted to n by taking every other node, which is exact on nested grids: the
periodic Navier-Stokes grid (n -> 2n points, as the FNO data were subsampled by striding) and the Darcy node
grid including the boundary (n -> 2n - 1 nodes, the FNO convention 421 -> 211). Interpolation back to the fine
grid: Fourier (zero-padded spectrum) on the periodic grid, bilinear on the node grid.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from backends.common import Progress, require

from . import data as opdata
from .models import OperatorModel
from .train import predict, rel_l2_per_sample


def is_periodic(kind: str) -> bool:
    """Navier-Stokes data live on the periodic torus grid; Darcy and generic data on a node grid."""
    return kind == "ns"


def fine_resolution(n: int, kind: str) -> int:
    """The grid that nests the n grid with half the spacing: 2n (periodic) or 2n - 1 nodes."""
    return 2 * n if is_periodic(kind) else 2 * n - 1


def restrict_index(m: int, n: int, periodic: bool) -> np.ndarray:
    """Indices of the fine grid (m points) nearest to the coarse grid's n points (exact when nested)."""
    if periodic:
        return np.rint(np.arange(n) * m / n).astype(int) % m
    return np.rint(np.arange(n) * (m - 1) / (n - 1)).astype(int)


def restrict(a: np.ndarray, n: int, periodic: bool) -> np.ndarray:
    idx = restrict_index(a.shape[-1], n, periodic)
    return np.ascontiguousarray(a[..., idx[:, None], idx[None, :]])


def _fourier_up_axis(u: np.ndarray, m: int, axis: int) -> np.ndarray:
    n = u.shape[axis]
    uh = np.moveaxis(np.fft.fft(u, axis=axis), axis, -1) / n
    out = np.zeros((*uh.shape[:-1], m), complex)
    h = n // 2
    pos = (n + 1) // 2  # k = 0 .. pos-1
    out[..., :pos] = uh[..., :pos]
    neg = n - pos - (n % 2 == 0)  # k = -neg .. -1 (the Nyquist mode apart)
    if neg:
        out[..., m - neg :] = uh[..., n - neg :]
    if n % 2 == 0:  # the Nyquist mode, split evenly between +n/2 and -n/2 (keeps a real field real)
        out[..., h] += 0.5 * uh[..., h]
        out[..., m - h] += 0.5 * uh[..., h]
    return np.moveaxis(np.real(np.fft.ifft(out * m, axis=-1)), -1, axis)


def fourier_upsample(u: np.ndarray, m: int) -> np.ndarray:
    """Trigonometric interpolation of periodic (..., n, n) samples to (..., m, m), m >= n: the samples at the
    coarse points are kept exactly, a band-limited field is reproduced exactly."""
    n = u.shape[-1]
    require(m >= n, f"upsampling needs m >= n, got {m} < {n}")
    out = _fourier_up_axis(np.asarray(u, np.float64), m, -1)
    return _fourier_up_axis(out, m, -2).astype(np.float32)


def upsample(u: np.ndarray, m: int, periodic: bool) -> np.ndarray:
    return fourier_upsample(u, m) if periodic else opdata.resample(u, m)


@dataclass
class ZeroShot:
    """Predictions and errors of one model on a fine set and on the same samples restricted to n."""

    n: int
    m: int
    coarse: opdata.OperatorData  # the fine samples restricted to n
    fine: opdata.OperatorData
    pred_coarse: np.ndarray  # the model at n
    pred_fine: np.ndarray  # the model directly at m
    pred_up: np.ndarray  # pred_coarse interpolated to m
    rel_l2_n: float  # mean relative L2 at n
    rel_l2_fine: float  # mean relative L2 of the direct prediction at m
    rel_l2_up: float  # mean relative L2 of the interpolated prediction at m
    gap: float  # mean ||pred_fine - pred_up|| / ||pred_up||: how far the direct prediction is from interpolation

    def numbers(self) -> dict:
        return {
            "n": self.n,
            "fine": self.m,
            "rel_l2_n": self.rel_l2_n,
            "rel_l2_fine": self.rel_l2_fine,
            "rel_l2_interpolated": self.rel_l2_up,
            "direct_vs_interpolated": self.gap,
        }


def zero_shot(model: OperatorModel, fine: opdata.OperatorData, n: int) -> ZeroShot:
    """Evaluate ``model`` (trained at n) on ``fine`` directly and via its prediction at n, interpolated."""
    m = fine.resolution
    require(m > n, f"zero-shot: the fine set ({m}x{m}) must be finer than the training grid ({n}x{n})")
    periodic = is_periodic(fine.kind)
    coarse = opdata.OperatorData(
        restrict(fine.x, n, periodic), restrict(fine.y, n, periodic), fine.kind, dict(fine.meta)
    )
    pc = predict(model, coarse.x)
    pf = predict(model, fine.x)
    pu = upsample(pc, m, periodic)
    gap = rel_l2_per_sample(pf, pu)
    return ZeroShot(
        n, m, coarse, fine, pc, pf, pu,
        float(rel_l2_per_sample(pc, coarse.y).mean()),
        float(rel_l2_per_sample(pf, fine.y).mean()),
        float(rel_l2_per_sample(pu, fine.y).mean()),
        float(gap.mean()),
    )  # fmt: skip


def fine_test_set(
    kind: str, n: int, count: int, *, seed: int, nu: float = 1e-3, steps: int = 20, t_in: int = 10
) -> Iterator[Progress]:
    """Generate ``count`` samples on the grid that nests n (same distributions as the training data, a seed
    of their own); returns OperatorData."""
    m = fine_resolution(n, kind)
    if kind == "ns":
        return (
            yield from opdata.generate_ns(m, count, nu=nu, steps=steps, t_in=t_in, seed=seed, batch=count)
        )
    return (yield from opdata.generate_darcy(m, count, seed=seed))


def zero_shot_generated(model: OperatorModel, kind: str, n: int, count: int, **kw) -> Iterator[Progress]:
    """Generate the fine test set (:func:`fine_test_set`), then :func:`zero_shot`; for a GUI worker."""
    fine = yield from fine_test_set(kind, n, count, **kw)
    yield Progress(1.0, f"zero-shot: evaluating at {fine.resolution}x{fine.resolution}")
    return zero_shot(model, fine, n)


__all__ = [
    "ZeroShot",
    "zero_shot",
    "zero_shot_generated",
    "fine_test_set",
    "fine_resolution",
    "restrict",
    "upsample",
    "fourier_upsample",
    "is_periodic",
]
