"""Samplers for stochastic interpolants: ODE (Heun in t) and SDE (Euler-Maruyama) with tunable eps(t).

``fields(x, t) -> (b, s)``: velocity b(t, x) and score s(t, x) of x_t. The probability-flow ODE is
``dx = b dt``; for any eps(t) >= 0 the SDE ``dx = (b + eps(t) s) dt + sqrt(2 eps(t)) dW`` has the same marginals
(Albergo, Boffi & Vanden-Eijnden). ``eps(t) = eps * (1 - t)`` (default) vanishes at the data end, where the score
is singular. Time runs from 0 (Gaussian) to ``t_end`` (data).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from backends.common import require

Fields = Callable[[torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]
T_END = 1.0 - 1e-3


def time_grid(steps: int, t_end: float = T_END, dtype=torch.float64) -> torch.Tensor:
    require(steps >= 1, f"number of steps must be >= 1, got {steps}")
    return torch.linspace(0.0, t_end, steps + 1, dtype=dtype)


def eps_profile(eps: float, kind: str = "1-t") -> Callable[[float], float]:
    require(eps >= 0, f"epsilon must be >= 0, got {eps}")
    if kind == "const":
        return lambda t: eps
    if kind == "1-t":
        return lambda t: eps * (1.0 - t)
    raise ValueError(f"unknown eps profile {kind!r}")


@torch.no_grad()
def sample_interpolant_ode(
    fields: Fields, x: torch.Tensor, ts: torch.Tensor, *, return_trajectory: bool = False, generator=None
):
    """Heun on dx/dt = b; NFE = 2 (len(ts) - 1); the trajectory stores the Euler predictor too."""
    traj = [x]
    for i in range(len(ts) - 1):
        t, t2 = float(ts[i]), float(ts[i + 1])
        h = t2 - t
        b1, _ = fields(x, t)
        xp = x + h * b1
        traj.append(xp)
        b2, _ = fields(xp, t2)
        x = x + 0.5 * h * (b1 + b2)
        traj.append(x)
    return (x, torch.stack(traj)) if return_trajectory else x


@torch.no_grad()
def sample_interpolant_sde(
    fields: Fields,
    x: torch.Tensor,
    ts: torch.Tensor,
    *,
    eps: float = 0.5,
    eps_kind: str = "1-t",
    generator=None,
    return_trajectory: bool = False,
):
    """Euler-Maruyama on dx = (b + eps(t) s) dt + sqrt(2 eps(t)) dW; NFE = len(ts) - 1."""
    prof = eps_profile(eps, eps_kind)
    traj = [x]
    for i in range(len(ts) - 1):
        t, t2 = float(ts[i]), float(ts[i + 1])
        h = t2 - t
        b, s = fields(x, t)
        e = prof(t)
        x = x + h * (b + e * s)
        if e > 0:
            x = x + (2 * e * h) ** 0.5 * torch.randn(
                x.shape, generator=generator, dtype=x.dtype, device=x.device
            )
        traj.append(x)
    return (x, torch.stack(traj)) if return_trajectory else x
