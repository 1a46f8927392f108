"""The Navier-Stokes residual of a predicted vorticity trajectory, measured in H^-1 (Spectral-Refiner).

For a trajectory w(t) on the periodic unit square the residual of the vorticity equation is

    R = dw/dt + u . grad w - nu lap w - f,      u = (psi_y, -psi_x),  -lap psi = w,

and ``||R||_{H^-1}`` is a functional a posteriori estimate of the error: for the linearised equation the
energy estimate bounds the error in L^2(H^1) by the residual in L^2(H^-1) (Cao et al. 2024). Unlike the
H^-1 norm of a data misfit, which damps wavenumber k by 1/(1 + 4 pi^2 k^2), the residual carries the
viscous and advective terms, so errors at high wavenumbers are not discounted: that is what lets the
refinement act on the modes the FNO truncates.

Space is exact on the grid (Fourier derivatives, the advection term dealiased by the 2/3 rule as the solver
does), so the H^-1 norm is evaluated through Parseval; the time derivative uses fourth-order finite
differences over frames ``frame_dt`` apart (central inside, one-sided at the last two frames), which is why
the data set's frames must resolve the flow in time (``generate_ns(frame_dt=...)``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from backends.common import require
from backends.pde.spectral import Grid2D

#: fourth-order first-derivative stencils (offsets, weights * 12): central; one step before the end; the end
CENTRAL = ((-2, -1, 1, 2), (1.0, -8.0, 8.0, -1.0))
NEXT_TO_LAST = ((-3, -2, -1, 0, 1), (-1.0, 6.0, -18.0, 10.0, 3.0))
LAST = ((-4, -3, -2, -1, 0), (3.0, -16.0, 36.0, -48.0, 25.0))


@dataclass(frozen=True)
class NSResidual:
    """Which equation a trajectory should satisfy: viscosity, frame spacing, forcing (``fno`` or ``none``)."""

    nu: float = 1e-3
    frame_dt: float = 1.0
    forcing: str = "fno"

    def __post_init__(self):
        require(1e-6 <= self.nu <= 1.0, f"residual: nu must be in [1e-6, 1], got {self.nu}")
        require(0.01 <= self.frame_dt <= 10, f"residual: frame_dt must be in [0.01, 10], got {self.frame_dt}")
        require(
            self.forcing in ("fno", "none"), f"residual: forcing must be fno or none, got {self.forcing!r}"
        )


def time_derivative(w: torch.Tensor, start: int, dt: float) -> torch.Tensor:
    """dw/dt at frames ``start..T-1`` of w (B, T, ...), fourth order; needs ``start >= 2`` and T >= 5."""
    T = w.shape[1]
    require(
        start >= 2 and T >= 5, f"time derivative needs 2 frames before the first and T >= 5, got {start}, {T}"
    )
    out = []
    for t in range(start, T):
        offs, wts = CENTRAL if t <= T - 3 else (NEXT_TO_LAST if t == T - 2 else LAST)
        out.append(sum(c * w[:, t + o] for o, c in zip(offs, wts)) / (12.0 * dt))
    return torch.stack(out, 1)


class Residual:
    """Evaluates the residual of (B, T, n, n) vorticity trajectories on one grid (tables cached)."""

    def __init__(self, eq: NSResidual, n: int, device=None, dtype=torch.float32):
        self.eq = eq
        self.g = g = Grid2D(n, torch.device(device or "cpu"), dtype)
        if eq.forcing == "fno":
            f = 0.1 * (torch.sin(2 * math.pi * (g.X + g.Y)) + torch.cos(2 * math.pi * (g.X + g.Y)))
        else:
            f = torch.zeros_like(g.X)
        self.f_hat = g.rfft(f)
        # H^-1 weight on the unit torus with the rfft double counting: ||a||^2 = sum w_k |a_k|^2 / n^4
        self.weight = g.rweight / (1.0 + g.k2) / float(n) ** 4

    def hat(self, w: torch.Tensor, start: int) -> torch.Tensor:
        """Fourier coefficients (rfft layout) of R at frames ``start..T-1``: (B, T - start, n, n//2 + 1)."""
        g, eq = self.g, self.eq
        w_hat = g.rfft(w[:, start:])
        psi = w_hat * g.inv_k2
        u, v = g.irfft(1j * g.ky * psi), g.irfft(-1j * g.kx * psi)
        wx, wy = g.irfft(1j * g.kx * w_hat), g.irfft(1j * g.ky * w_hat)
        adv = g.rfft(u * wx + v * wy) * g.dealias
        dwdt = g.rfft(time_derivative(w, start, eq.frame_dt))
        return dwdt + adv + eq.nu * g.k2 * w_hat - self.f_hat

    def hminus1_sq(self, a_hat: torch.Tensor) -> torch.Tensor:
        """Per-sample squared H^-1 norm of rfft coefficients (B, T, n, n//2+1), summed over the frames."""
        return (a_hat.abs().pow(2) * self.weight).flatten(1).sum(1)

    def norm_sq(self, w: torch.Tensor, start: int) -> torch.Tensor:
        """Per-sample ||R||^2 in L^2(H^-1) over frames ``start..T-1`` (a sum over frames times frame_dt)."""
        return self.hminus1_sq(self.hat(w, start)) * self.eq.frame_dt


def input_scale(res: Residual, given: torch.Tensor, t_out: int) -> torch.Tensor:
    """Per-sample size of the given frames' time derivative in L^2(H^-1), over ``t_out`` frames: a fixed
    yardstick for the residual of the predicted frames (it does not move while the prediction changes)."""
    dw = (given[:, 1:] - given[:, :-1]) / res.eq.frame_dt
    return res.hminus1_sq(res.g.rfft(dw)) * res.eq.frame_dt * t_out / dw.shape[1]


def relative_residual_per_sample(res: Residual, given: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """||R(w)|| over the predicted frames / :func:`input_scale`, w = the given frames then ``pred``: 0 for an
    exact solution, of order 1 for a trajectory unrelated to the equation."""
    w = torch.cat([given, pred], 1)
    return (res.norm_sq(w, given.shape[1]) / input_scale(res, given, pred.shape[1]).clamp_min(1e-30)).sqrt()


def relative_residual(res: Residual, given: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of :func:`relative_residual_per_sample`."""
    return relative_residual_per_sample(res, given, pred).mean()


__all__ = [
    "NSResidual",
    "Residual",
    "time_derivative",
    "input_scale",
    "relative_residual",
    "relative_residual_per_sample",
]
