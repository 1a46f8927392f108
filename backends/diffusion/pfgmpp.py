"""PFGM++ (Xu et al. 2023): the N-dimensional data augmented with D extra dimensions.

Perturbation kernel ``p_r(x | y) ~ 1 / (|x - y|^2 + r^2)^((N + D) / 2)`` with ``r = sigma sqrt(D)``. Its radius
``R = |x - y|`` has density ``~ R^(N-1) / (R^2 + r^2)^((N+D)/2)``, so ``R^2 / r^2 ~ BetaPrime(N/2, D/2)``: sampled
here as ``R = r sqrt(G1 / G2)`` with ``G1 ~ Gamma(N/2)``, ``G2 ~ Gamma(D/2)`` (no 1 - b cancellation for tiny D).
The prior at ``r_max = sigma_max sqrt(D)`` is the same kernel around 0: heavy tails for small D. As D -> inf the
kernel tends to N(0, sigma^2 I) and PFGM++ becomes EDM; the sampling ODE in sigma is the EDM one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from backends.common import require


def _rng(gen: torch.Generator | None) -> np.random.Generator:
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return np.random.default_rng(seed)


def sample_kernel_radius(n: int, N: int, D: float, r, gen: torch.Generator | None = None) -> torch.Tensor:
    """Radii |x - y| of n kernel samples; r is a scalar or an (n,) tensor (float64)."""
    require(math.isfinite(D) and D > 0, f"PFGM++ D must be a finite number > 0, got {D}")
    rng = _rng(gen)
    g1 = rng.standard_gamma(N / 2, n)
    g2 = rng.standard_gamma(D / 2, n)
    with np.errstate(divide="ignore", over="ignore"):
        ratio = np.sqrt(g1 / g2)
    return torch.as_tensor(r, dtype=torch.float64) * torch.as_tensor(ratio)


def _directions(n: int, dim: int, gen: torch.Generator | None) -> torch.Tensor:
    g = torch.randn(n, dim, generator=gen, dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


def sample_perturbation(n: int, dim: int, sigma: torch.Tensor, D: float, gen=None) -> torch.Tensor:
    """x - y for n kernel samples at noise levels sigma (n,): r = sigma sqrt(D)."""
    r = sigma.double() * math.sqrt(D)
    radius = sample_kernel_radius(n, dim, D, r, gen)
    return (radius[:, None] * _directions(n, dim, gen)).to(sigma.dtype)


def sample_prior(
    n: int, dim: int, sigma_max: float, D: float | None, gen=None, dtype=torch.float64
) -> torch.Tensor:
    """PFGM++ prior at r_max = sigma_max sqrt(D); D = None gives the EDM prior N(0, sigma_max^2 I)."""
    if D is None:
        return torch.randn(n, dim, generator=gen, dtype=dtype) * sigma_max
    radius = sample_kernel_radius(n, dim, D, sigma_max * math.sqrt(D), gen)
    return (radius[:, None] * _directions(n, dim, gen)).to(dtype)


def radial_pdf(R: np.ndarray, N: int, D: float, r: float) -> np.ndarray:
    """Normalised density of R = |x - y| under the kernel (analytic Beta-prime law)."""
    from scipy.special import betaln

    R = np.asarray(R, dtype=np.float64)
    logc = np.log(2.0) + (D / 2) * np.log(r * r) - betaln(N / 2, D / 2)
    return np.exp(logc + (N - 1) * np.log(R) - (N + D) / 2 * np.log(R * R + r * r))
