"""Relative losses over functions on a uniform grid, (batch, channels, *spatial) tensors, mean over the batch.

- :func:`rel_l2`: ``||p - t|| / ||t||`` per sample (neuraloperator's ``LpLoss(d, p=2)``, relative; on a uniform
  grid the quadrature weights cancel).
- :func:`rel_h1`: ``sqrt(||e||^2 + ||grad e||^2) / sqrt(||t||^2 + ||grad t||^2)`` with the gradient by finite
  differences (``torch.gradient``: central inside, one-sided at the edges; spacing 1/n as neuraloperator).
- :func:`rel_hminus1`: the negative Sobolev norm ``||e||_{H^-1}^2 = sum_k |e_hat_k|^2 / (1 + 4 pi^2 |k|^2)`` on
  the unit torus, evaluated through Parseval (Spectral-Refiner, Cao et al. 2024), ratio to the same norm of t.
  The H^-1 weight damps the high wavenumbers so the fine-tuning is not dominated by small-scale noise.
"""

from __future__ import annotations

import math

import torch


def _per_sample_sq(a: torch.Tensor) -> torch.Tensor:
    return a.reshape(a.shape[0], -1).pow(2).sum(1)


def rel_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ||pred - true||_2 / ||true||_2 (all channels and grid points)."""
    return (_per_sample_sq(pred - true) / _per_sample_sq(true)).sqrt().mean()


def _grad_sq(a: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(2, a.ndim))
    grads = torch.gradient(a, spacing=[1.0 / a.shape[d] for d in dims], dim=dims)
    return sum(_per_sample_sq(g) for g in grads)


def rel_h1(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean relative H1 error (L2 plus gradient seminorm) over the batch."""
    e = pred - true
    num = _per_sample_sq(e) + _grad_sq(e)
    den = _per_sample_sq(true) + _grad_sq(true)
    return (num / den).sqrt().mean()


def _hminus1_weight(shape: tuple[int, ...], device, dtype) -> torch.Tensor:
    ks = [torch.fft.fftfreq(s, 1.0 / s, device=device, dtype=dtype) for s in shape]
    grids = torch.meshgrid(*ks, indexing="ij")
    k2 = sum(g**2 for g in grids)
    return 1.0 / (1.0 + 4 * math.pi**2 * k2)


def hminus1_sq(a: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """Per-sample ||a||_{H^-1}^2 over the last ``dims`` axes (periodic, unit domain), summed over the others."""
    spatial = tuple(a.shape[-dims:])
    npts = math.prod(spatial)
    ah = (
        torch.fft.fftn(a, dim=tuple(range(-dims, 0))) / npts
    )  # Fourier coefficients: a = sum_k ah_k e^{2 pi i k x}
    w = _hminus1_weight(spatial, a.device, a.real.dtype if a.is_complex() else a.dtype)
    return (ah.abs().pow(2) * w).reshape(a.shape[0], -1).sum(1)


def rel_hminus1(pred: torch.Tensor, true: torch.Tensor, dims: int = 2) -> torch.Tensor:
    """Mean relative H^-1 error over the batch (Parseval; the last ``dims`` axes are space)."""
    return (hminus1_sq(pred - true, dims) / hminus1_sq(true, dims)).sqrt().mean()


LOSSES = {"l2": rel_l2, "h1": rel_h1, "hminus1": rel_hminus1}
