"""Light Schroedinger Bridge (Korotin, Gushchin & Burnaev, ICLR 2024).

The Schroedinger bridge between p0 and p1 for a Wiener prior of volatility eps has the static plan
``pi(y | x) ~ exp(<x, y> / eps) v(y)``. LightSB parametrises the adjusted potential as a Gaussian mixture
``v(y) = sum_k alpha_k N(y | r_k, eps S_k)`` (S_k diagonal), which makes the conditional plan a mixture in closed
form: ``pi(y | x) = sum_k p_k(x) N(y | r_k + S_k x, eps S_k)`` with
``p_k(x) ~ alpha_k exp((x'S_k x + 2 r_k'x) / (2 eps))``. It is fitted by minimising
``E_{x~p0} log c(x) - E_{y~p1} log v(y)``, ``c(x) = sum_k alpha_k exp((x'S_k x + 2 r_k'x) / (2 eps))``.
Between the endpoints the bridge is Brownian: ``x_t = (1-t) x + t y + sqrt(eps t (1-t)) z``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from backends.common import Progress, UserError, require

from .models import Adam


@dataclass(frozen=True)
class LightSBConfig:
    eps: float = 0.1
    components: int = 8
    steps: int = 2000
    batch: int = 512
    lr: float = 1e-2
    seed: int = 0
    report_every: int = 25

    def __post_init__(self):
        require(math.isfinite(self.eps) and self.eps > 0, f"entropic epsilon must be > 0, got {self.eps}")
        require(self.components >= 1, f"LightSB needs >= 1 component, got {self.components}")
        require(self.steps >= 1 and self.batch >= 2, "LightSB needs steps >= 1 and batch >= 2")


class LightSB(nn.Module):
    def __init__(self, dim: int, cfg: LightSBConfig, init_means: np.ndarray | None = None):
        super().__init__()
        self.dim, self.eps = dim, float(cfg.eps)
        k = cfg.components
        g = torch.Generator().manual_seed(cfg.seed)
        r = torch.randn(k, dim, generator=g, dtype=torch.float64) * 0.5
        if init_means is not None:
            r = torch.as_tensor(init_means, dtype=torch.float64)
        self.log_alpha = nn.Parameter(torch.zeros(k, dtype=torch.float64))
        self.r = nn.Parameter(r.clone())
        self.log_s = nn.Parameter(torch.full((k, dim), math.log(0.1), dtype=torch.float64))

    def log_v(self, y: torch.Tensor) -> torch.Tensor:
        """log of the adjusted potential v(y) (a Gaussian mixture with covariances eps S_k)."""
        s = torch.exp(self.log_s)
        var = self.eps * s  # (K, d)
        diff = y[:, None, :] - self.r[None]
        logn = -0.5 * ((diff * diff) / var[None]).sum(-1) - 0.5 * torch.log(2 * math.pi * var).sum(-1)[None]
        return torch.logsumexp(torch.log_softmax(self.log_alpha, 0)[None] + logn, dim=1)

    def _log_weights(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.exp(self.log_s)
        quad = (x[:, None, :] ** 2 * s[None]).sum(-1) + 2 * (x @ self.r.T)
        return torch.log_softmax(self.log_alpha, 0)[None] + quad / (2 * self.eps)

    def log_c(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self._log_weights(x), dim=1)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.log_c(x).mean() - self.log_v(y).mean()

    @torch.no_grad()
    def sample_conditional(self, x: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """y ~ pi(y | x), exactly (mixture component, then Gaussian)."""
        x = x.to(torch.float64)
        p = torch.softmax(self._log_weights(x), dim=1)
        k = torch.multinomial(p, 1, generator=gen)[:, 0]
        s = torch.exp(self.log_s)[k]
        mean = self.r[k] + s * x
        return mean + torch.sqrt(self.eps * s) * torch.randn(x.shape, generator=gen, dtype=torch.float64)

    @torch.no_grad()
    def sample_bridge(
        self, x: torch.Tensor, steps: int, gen: torch.Generator | None = None, return_trajectory: bool = False
    ):
        """Endpoint y ~ pi(.|x), then the Brownian bridge x -> y at t_i = i/steps, sampled sequentially."""
        require(steps >= 1, f"bridge steps must be >= 1, got {steps}")
        x = x.to(torch.float64)
        y = self.sample_conditional(x, gen)
        traj = [x]
        cur = x
        for i in range(steps):
            t, t2 = i / steps, (i + 1) / steps
            if i + 1 == steps:
                cur = y
            else:
                dt = t2 - t
                mean = cur + dt / (1 - t) * (y - cur)
                var = self.eps * dt * (1 - t2) / (1 - t)
                cur = mean + math.sqrt(var) * torch.randn(x.shape, generator=gen, dtype=torch.float64)
            traj.append(cur)
        return (y, torch.stack(traj)) if return_trajectory else y


def fit_lightsb(
    source: Callable[[int, np.random.Generator], np.ndarray],
    target: Callable[[int, np.random.Generator], np.ndarray],
    dim: int,
    cfg: LightSBConfig,
) -> Iterator[Progress]:
    """Generator: fit LightSB from samples of p0 (source) and p1 (target); returns (model, losses)."""
    rng = np.random.default_rng(cfg.seed)
    init = target(cfg.components, rng)
    model = LightSB(dim, cfg, init_means=init)
    opt = Adam(model.parameters(), lr=cfg.lr)
    losses: list[float] = []
    for k in range(cfg.steps):
        x = torch.as_tensor(source(cfg.batch, rng), dtype=torch.float64)
        y = torch.as_tensor(target(cfg.batch, rng), dtype=torch.float64)
        loss = model.loss(x, y)
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise UserError(
                f"LightSB training diverged at step {k + 1}: lower the learning rate or raise eps"
            )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(lv)
        if (k + 1) % cfg.report_every == 0 or k + 1 == cfg.steps:
            yield Progress(
                (k + 1) / cfg.steps, f"LightSB step {k + 1}/{cfg.steps}, loss {lv:.4f}", np.asarray(losses)
            )
    return model, np.asarray(losses)


def gaussian_bridge_closed_form(m0, A, m1, B, eps: float):
    """Closed-form entropic (Schroedinger) plan between N(m0, A) and N(m1, B), Wiener volatility eps.

    The plan is Gaussian with ``y | x ~ N(m1 + S (x - m0), eps S)`` where S is the SPD solution of
    ``S A S + eps S = B``: ``S = A^-1/2 (-eps/2 I + (A^1/2 B A^1/2 + eps^2/4 I)^1/2) A^-1/2``.
    Returns (S, joint mean (2d,), joint covariance (2d, 2d)).
    """
    from scipy.linalg import sqrtm

    A = np.asarray(A, float)
    B = np.asarray(B, float)
    d = len(A)
    ah = np.real(sqrtm(A))
    ahi = np.linalg.inv(ah)
    t = -eps / 2 * np.eye(d) + np.real(sqrtm(ah @ B @ ah + eps**2 / 4 * np.eye(d)))
    S = ahi @ t @ ahi
    joint = np.block([[A, A @ S.T], [S @ A, B]])
    return S, np.concatenate([m0, m1]), joint
