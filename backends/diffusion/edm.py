"""EDM (Karras et al. 2022): noise schedule, preconditioning and training-noise distribution.

``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)`` with
``c_skip = sd^2 / (sigma^2 + sd^2)``, ``c_out = sigma sd / sqrt(sigma^2 + sd^2)``, ``c_in = 1 / sqrt(sigma^2 + sd^2)``,
``c_noise = ln(sigma) / 4``; loss weight ``lambda = (sigma^2 + sd^2) / (sigma sd)^2``; training noise
``ln sigma ~ N(P_mean, P_std^2)``; sampling schedule ``sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) -
smax^(1/rho)))^rho`` then 0.
"""

from __future__ import annotations

import torch

from backends.common import require


def karras_sigmas(
    n: int,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    dtype=torch.float64,
    device=None,
) -> torch.Tensor:
    """``n`` decreasing noise levels from sigma_max to sigma_min, followed by a final 0 (length n + 1)."""
    require(n >= 1, f"number of steps must be >= 1, got {n}")
    require(0 < sigma_min < sigma_max, f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    require(rho > 0, f"rho must be > 0, got {rho}")
    if n == 1:
        s = torch.tensor([sigma_max], dtype=dtype, device=device)
    else:
        i = torch.arange(n, dtype=dtype, device=device)
        s = (sigma_max ** (1 / rho) + i / (n - 1) * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return torch.cat([s, s.new_zeros(1)])


def precond(sigma: torch.Tensor, sigma_data: float):
    """(c_skip, c_out, c_in, c_noise) for noise level(s) sigma."""
    sd2 = sigma_data**2
    s2 = sigma * sigma
    c_skip = sd2 / (s2 + sd2)
    c_out = sigma * sigma_data / torch.sqrt(s2 + sd2)
    c_in = 1 / torch.sqrt(s2 + sd2)
    c_noise = torch.log(sigma) / 4
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    return (sigma * sigma + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_training_sigma(
    n: int,
    generator: torch.Generator,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    dtype=torch.float32,
    device=None,
) -> torch.Tensor:
    """Log-normal training noise levels."""
    z = torch.randn(n, generator=generator, dtype=dtype, device=device)
    return torch.exp(p_mean + p_std * z)
