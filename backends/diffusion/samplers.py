"""Samplers with one k-diffusion-like signature: ``sample_x(model, x, sigmas, ..., return_trajectory)``.

``model(x, sigma)`` is a denoiser D(x; sigma) ~ E[x0 | x] (EDM convention, x = x0 + sigma n); ``x`` starts at
the prior (noise at ``sigmas[0]``); ``sigmas`` decreases to 0. The probability-flow ODE is
``dx/dsigma = (x - D(x; sigma)) / sigma``. With ``return_trajectory`` a sampler also returns the state after every
model evaluation: a tensor ``(nfe + 1, n, d)`` (Heun stores its Euler predictor too).
The same ODE is the PFGM++ ODE in ``r = sigma sqrt(D)`` (only the prior differs), so the ODE samplers serve both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from backends.common import UserError, require

from .edm import karras_sigmas

Model = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _to_d(x, sigma, denoised):
    return (x - denoised) / sigma


def _out(x, traj, return_trajectory):
    if return_trajectory:
        return x, torch.stack(traj)
    return x


@torch.no_grad()
def sample_euler(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    return_trajectory: bool = False,
    generator: torch.Generator | None = None,
):
    """First-order Euler on the probability-flow ODE; NFE = len(sigmas) - 1."""
    traj = [x]
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        d = _to_d(x, s, model(x, s))
        x = x + (s_next - s) * d
        traj.append(x)
    return _out(x, traj, return_trajectory)


@torch.no_grad()
def sample_heun(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = math.inf,
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
):
    """EDM Algorithm 2 (Heun, 2nd order, optional churn); NFE = 2 (len(sigmas) - 1) - 1."""
    n = len(sigmas) - 1
    traj = [x]
    for i in range(n):
        s, s_next = sigmas[i], sigmas[i + 1]
        gamma = min(s_churn / n, math.sqrt(2) - 1) if s_tmin <= float(s) <= s_tmax else 0.0
        s_hat = s * (1 + gamma)
        if gamma > 0:
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device) * s_noise
            x = x + eps * torch.sqrt(s_hat**2 - s**2)
        d = _to_d(x, s_hat, model(x, s_hat))
        x_pred = x + (s_next - s_hat) * d
        if float(s_next) == 0.0:
            x = x_pred
        else:
            traj.append(x_pred)
            d2 = _to_d(x_pred, s_next, model(x_pred, s_next))
            x = x + (s_next - s_hat) * 0.5 * (d + d2)
        traj.append(x)
    return _out(x, traj, return_trajectory)


@torch.no_grad()
def sample_euler_maruyama(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
):
    """Euler-Maruyama on the reverse SDE ``dx = -2 sigma score dsigma + sqrt(2 sigma) dW`` (VE, sigma(t) = t).

    Step sigma -> sigma': ``x' = x + (sigma^2 - sigma'^2) score + sqrt(sigma^2 - sigma'^2) z`` with
    ``score = (D - x) / sigma^2``; the last step (to 0) adds no noise. NFE = len(sigmas) - 1.
    """
    traj = [x]
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        delta = s * s - s_next * s_next
        score = (model(x, s) - x) / (s * s)
        x = x + delta * score
        if float(s_next) > 0:
            x = x + torch.sqrt(delta) * torch.randn(
                x.shape, generator=generator, dtype=x.dtype, device=x.device
            )
        traj.append(x)
    return _out(x, traj, return_trajectory)


@torch.no_grad()
def sample_ddim(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    eta: float = 0.0,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
):
    """DDIM in the sigma parametrisation: ``x' = D + sqrt(sigma'^2 - c^2) eps_hat + c z``,
    ``c = eta sigma' sqrt(1 - sigma'^2 / sigma^2)``. eta = 0 is deterministic DDIM (it coincides with Euler on
    the sigma-ODE, Karras et al. 2022 sec. 3); eta = 1 is ancestral DDPM sampling. NFE = len(sigmas) - 1.
    """
    traj = [x]
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        den = model(x, s)
        eps_hat = (x - den) / s
        c = eta * s_next * torch.sqrt(torch.clamp(1 - (s_next / s) ** 2, min=0.0))
        x = den + torch.sqrt(torch.clamp(s_next**2 - c**2, min=0.0)) * eps_hat
        if eta > 0 and float(s_next) > 0:
            x = x + c * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        traj.append(x)
    return _out(x, traj, return_trajectory)


@torch.no_grad()
def sample_dpmpp_2m(
    model: Model,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
):
    """DPM-Solver++(2M) (Lu et al. 2022), multistep 2nd order in lambda = -log sigma. NFE = len(sigmas) - 1."""
    traj = [x]
    old = None
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        den = model(x, s)
        if float(s_next) == 0.0:
            x = den
        else:
            t, t_next = -torch.log(s), -torch.log(s_next)
            h = t_next - t
            if old is None:
                d = den
            else:
                h_last = t - (-torch.log(sigmas[i - 1]))
                r = h_last / h
                d = (1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old
            x = (s_next / s) * x - torch.expm1(-h) * d
        old = den
        traj.append(x)
    return _out(x, traj, return_trajectory)


SAMPLERS: dict[str, Callable] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "em": sample_euler_maruyama,
    "ddim": sample_ddim,
    "dpmpp2m": sample_dpmpp_2m,
}
SAMPLER_LABELS = {
    "euler": "Euler",
    "heun": "Heun (EDM)",
    "em": "Euler-Maruyama",
    "ddim": "DDIM",
    "dpmpp2m": "DPM-Solver++(2M)",
}
STOCHASTIC = {"em"}


def steps_for(sampler: str, nfe: int) -> int:
    """Number of schedule steps that uses at most ``nfe`` model evaluations (Heun: 2 steps - 1)."""
    require(nfe >= 1, f"NFE must be >= 1, got {nfe}")
    if sampler == "heun":
        return max(1, (nfe + 1) // 2)
    return nfe


def nfe_of(sampler: str, steps: int) -> int:
    return 2 * steps - 1 if sampler == "heun" else steps


@dataclass
class SampleResult:
    """Samples, optional trajectory, the NFE actually used and a flag for non-finite / exploded particles."""

    samples: np.ndarray
    trajectory: np.ndarray | None
    nfe: int
    bad: np.ndarray  # (n,) bool: particle became NaN/inf or exploded
    message: str = ""

    @property
    def ok(self) -> bool:
        return not bool(self.bad.any())


def check_finite(x: np.ndarray, limit: float = 1e6) -> np.ndarray:
    """Per-particle flag: any NaN/inf or |x| > limit."""
    with np.errstate(invalid="ignore"):
        return ~np.all(np.isfinite(x) & (np.abs(x) < limit), axis=1)


def run_sampler(
    name: str,
    model: Model,
    x_init: torch.Tensor,
    nfe: int,
    *,
    sigma_min: float = 0.002,
    sigma_max: float = 80.0,
    rho: float = 7.0,
    generator: torch.Generator | None = None,
    return_trajectory: bool = False,
    **kw,
) -> SampleResult:
    """Run sampler ``name`` from ``x_init`` (already at noise level sigma_max) with a Karras schedule."""
    if name not in SAMPLERS:
        raise UserError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    steps = steps_for(name, nfe)
    sigmas = karras_sigmas(steps, sigma_min, sigma_max, rho, dtype=x_init.dtype, device=x_init.device)
    out = SAMPLERS[name](
        model, x_init, sigmas, generator=generator, return_trajectory=return_trajectory, **kw
    )
    x, traj = out if return_trajectory else (out, None)
    xs = x.detach().cpu().numpy()
    bad = check_finite(xs)
    msg = ""
    if bad.any():
        msg = (
            f"{int(bad.sum())} of {len(bad)} particles became NaN/inf or exploded with {SAMPLER_LABELS[name]} "
            f"at NFE {nfe_of(name, steps)}: use more steps"
        )
    return SampleResult(
        xs, None if traj is None else traj.detach().cpu().numpy(), nfe_of(name, steps), bad, msg
    )
