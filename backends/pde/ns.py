"""2D incompressible Navier-Stokes in vorticity form on the periodic unit square, pseudo-spectral.

    dw/dt + u . grad w = nu lap w - drag w + f,     u = (psi_y, -psi_x),   -lap psi = w

Fourier in space with the 2/3 dealiasing rule on the advection term, IMEX in time (see
:class:`backends.pde.base.SpectralIMEX`): Crank-Nicolson diffusion/drag with Euler (FNO generator) or
Heun (2nd order) advection, or integrating-factor RK4 (4th order). Optional CFL-adaptive dt. A passive dye
(advected, diffusivity ``dye_kappa``) is carried along once painted. Batched: state is (B, C, n, n/2+1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from backends.common import UserError, require, require_finite, require_positive

from .base import BlowUp, FieldSim, SpectralIMEX, check_scheme, run
from .spectral import (
    Grid2D,
    check_grid,
    gaussian_random_field,
    periodic_gaussian,
    resolve_device,
    resolve_dtype,
)

FORCINGS = ("fno", "kolmogorov", "none")
INITS = ("grf", "taylor-green", "turbulence", "zero")
#: advective CFL (max(|u|+|v|) dt / dx) above which each scheme is unstable in practice
CFL_LIMIT = {"cn-euler": 0.5, "cn-heun": 1.0, "if-rk4": 1.8}


@dataclass(frozen=True)
class NSConfig:
    n: int = 128
    nu: float = 1e-3
    dt: float = 1e-3  # fixed step, or the largest step when adaptive
    scheme: str = "cn-heun"  # cn-euler | cn-heun | if-rk4
    adaptive: bool = False
    cfl: float = 0.5  # target CFL number when adaptive
    forcing: str = "fno"  # fno | kolmogorov | none
    forcing_amplitude: float = 1.0  # Kolmogorov: vorticity forcing amplitude A in A cos(2 pi k y)
    kolmogorov_k: int = 4
    drag: float | None = None  # linear drag; None = 0.1 for kolmogorov, 0 otherwise
    init: str = "grf"  # grf | taylor-green | turbulence | zero
    tg_k: int = 1  # Taylor-Green wavenumber (cycles per unit length)
    grf_alpha: float = 2.5
    grf_tau: float = 7.0
    dye_kappa: float = 1e-4
    batch: int = 1
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self):
        check_grid(self.n)
        require_positive("nu (viscosity)", self.nu)
        require_positive("dt", self.dt)
        require_positive("cfl", self.cfl)
        check_scheme(self.scheme)
        require(
            self.forcing in FORCINGS, f"forcing must be one of {', '.join(FORCINGS)}, got {self.forcing!r}"
        )
        require(self.init in INITS, f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        require(self.batch >= 1, f"batch must be >= 1, got {self.batch}")
        require(
            self.tg_k >= 1 and self.tg_k < self.n // 3,
            f"tg_k must be in 1..{self.n // 3 - 1}, got {self.tg_k}",
        )
        require(1 <= self.kolmogorov_k < self.n // 3, f"kolmogorov_k must be in 1..{self.n // 3 - 1}")
        require_finite("forcing_amplitude", self.forcing_amplitude)
        if self.drag is not None:
            require_positive("drag", self.drag, allow_zero=True)
        require_positive("dye_kappa", self.dye_kappa, allow_zero=True)
        resolve_dtype(self.dtype)

    @property
    def drag_value(self) -> float:
        if self.drag is not None:
            return float(self.drag)
        return 0.1 if self.forcing == "kolmogorov" else 0.0


def taylor_green_vorticity(X: torch.Tensor, Y: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Vorticity of the Taylor-Green vortex psi = sin(2 pi k x) sin(2 pi k y) / (2 pi k) (|u| <= 1).

    It is a steady solution of the Euler equations (u . grad w = 0), so under NS it decays exactly as
    ``exp(-nu |k|^2 t)`` with ``|k|^2 = 2 (2 pi k)^2``.
    """
    a = 2 * math.pi * k
    return 2 * a * torch.sin(a * X) * torch.sin(a * Y)


def random_turbulence(n: int, batch: int, seed: int, k0: float = 8.0, urms: float = 1.0) -> torch.Tensor:
    """Random-phase vorticity with energy spectrum E(k) ~ k^4 exp(-2 (k/k0)^2) (McWilliams-type), rms |u| = urms."""
    gen = torch.Generator().manual_seed(int(seed) + 7919)
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    KY, KX = torch.meshgrid(k, k, indexing="ij")
    kk = torch.sqrt(KX**2 + KY**2)
    # |w_hat|^2 ~ k^2 E(k) / k (shell area) -> |w_hat| ~ k * sqrt(E(k)/k)
    amp = kk * torch.sqrt(kk**3 * torch.exp(-2 * (kk / k0) ** 2))
    amp[0, 0] = 0.0
    amp[(KX.abs() >= n / 3) | (KY.abs() >= n / 3)] = 0.0
    phase = torch.rand(batch, n, n, generator=gen, dtype=torch.float64) * 2 * math.pi
    w = torch.fft.ifft2(amp * torch.exp(1j * phase)).real
    # normalise the velocity
    wh = torch.fft.fft2(w)
    k2 = (2 * math.pi) ** 2 * (KX**2 + KY**2)
    k2[0, 0] = 1.0
    e = (wh.abs() ** 2 / k2).sum(dim=(-2, -1)) / n**4  # = mean |u|^2
    return w * (urms / torch.sqrt(e)).view(-1, 1, 1)


class NavierStokes2D(FieldSim, SpectralIMEX):
    model = "navier-stokes"
    field_names = ("vorticity", "dye", "speed", "streamfunction")
    paint_targets = ("vorticity", "dye")
    symmetric = True
    state_attrs = ("s",)

    def __init__(self, cfg: NSConfig, w0: torch.Tensor | np.ndarray | None = None):
        FieldSim.__init__(self)
        self.cfg = cfg
        self.scheme = cfg.scheme
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype)
        self.g = Grid2D(cfg.n, self.device, self.dtype)
        self.dt = float(cfg.dt)
        self.last_dt = self.dt
        self._capture_umax = False
        self._umax_t = None
        n, g = cfg.n, self.g
        if w0 is None:
            w0 = self.initial_vorticity()
        w0 = torch.as_tensor(w0, dtype=self.dtype, device=self.device)
        if w0.dim() == 2:
            w0 = w0.expand(cfg.batch, n, n)
        require(tuple(w0.shape[-2:]) == (n, n), f"initial vorticity must be {n}x{n}, got {tuple(w0.shape)}")
        require_finite("initial vorticity", w0.detach().cpu().numpy())
        self.batch = w0.shape[0]
        self.s = g.rfft(w0).unsqueeze(1).contiguous()  # (B, 1, n, n/2+1): channel 0 vorticity [, 1 dye]
        f = torch.zeros(n, n, dtype=self.dtype, device=self.device)
        if cfg.forcing == "fno":
            f = 0.1 * (torch.sin(2 * math.pi * (g.X + g.Y)) + torch.cos(2 * math.pi * (g.X + g.Y)))
        elif cfg.forcing == "kolmogorov":
            f = cfg.forcing_amplitude * torch.cos(2 * math.pi * cfg.kolmogorov_k * g.Y)
        self.forcing_field = f
        self.fh = g.rfft(f)
        self._setup_operators(with_dye=False)
        c = self.cfl()
        if not cfg.adaptive and c > CFL_LIMIT[cfg.scheme]:
            raise UserError(
                f"dt = {cfg.dt:g} gives an advective CFL number {c:.2f} above the stability limit "
                f"{CFL_LIMIT[cfg.scheme]} of {cfg.scheme}: use dt <= {cfg.dt * 0.8 * CFL_LIMIT[cfg.scheme] / c:.3g} "
                "or turn on adaptive dt"
            )

    # -- set-up ------------------------------------------------------------------------------------------
    def initial_vorticity(self) -> torch.Tensor:
        cfg, g = self.cfg, self.g
        if cfg.init == "grf":
            return gaussian_random_field(
                cfg.n,
                cfg.batch,
                alpha=cfg.grf_alpha,
                tau=cfg.grf_tau,
                seed=cfg.seed,
                device=self.device,
                dtype=self.dtype,
            )
        if cfg.init == "taylor-green":
            return taylor_green_vorticity(g.X, g.Y, cfg.tg_k).expand(cfg.batch, cfg.n, cfg.n).clone()
        if cfg.init == "turbulence":
            return random_turbulence(cfg.n, cfg.batch, cfg.seed).to(self.device, self.dtype)
        return torch.zeros(cfg.batch, cfg.n, cfg.n, dtype=self.dtype, device=self.device)

    def _setup_operators(self, with_dye: bool) -> None:
        g, cfg = self.g, self.cfg
        Lw = -cfg.nu * g.k2 - self.cfg.drag_value
        Ls = [Lw]
        if with_dye:
            Ls.append(-cfg.dye_kappa * g.k2)
        L = torch.stack(Ls).unsqueeze(0)  # (1, C, n, nr)
        F = torch.zeros_like(L, dtype=self.s.dtype)
        F[0, 0] = self.fh
        self._F = F
        self._ikx, self._iky = 1j * g.kx, 1j * g.ky
        self._D = torch.stack([self._iky * g.inv_k2, -self._ikx * g.inv_k2, self._ikx, self._iky]).unsqueeze(
            0
        )
        self._neg_mask = -g.dealias
        self._init_imex(L, self._nonlinear)

    def _nonlinear(self, s: torch.Tensor) -> torch.Tensor:
        """-(u . grad) of every channel, dealiased, plus the forcing on the vorticity channel."""
        g = self.g
        C = s.shape[1]
        if C == 1:
            # one broadcast multiply gives (u, v, w_x, w_y) hats: D = (i ky / k^2, -i kx / k^2, i kx, i ky)
            phys = g.irfft(s * self._D)
            if self._capture_umax:
                self._capture_umax = False
                self._umax_t = (phys[:, 0].abs() + phys[:, 1].abs()).amax()
            adv = phys[:, 0:1] * phys[:, 2:3]
            adv.addcmul_(phys[:, 1:2], phys[:, 3:4])
        else:
            psi = s[:, :1] * g.inv_k2
            spec = torch.cat([self._iky * psi, -self._ikx * psi, self._ikx * s, self._iky * s], dim=1)
            phys = g.irfft(spec)
            u, v = phys[:, 0:1], phys[:, 1:2]
            if self._capture_umax:
                self._capture_umax = False
                self._umax_t = (u.abs() + v.abs()).amax()
            adv = u * phys[:, 2 : 2 + C] + v * phys[:, 2 + C : 2 + 2 * C]
        nl = g.rfft(adv)
        nl.mul_(self._neg_mask)
        return nl.add_(self._F)

    # -- stepping ----------------------------------------------------------------------------------------
    def _step_capped(self, cap: float) -> None:
        self._step(None, cap)

    def current_dt(self) -> float:
        if not self.cfg.adaptive:
            return self.dt
        umax = self._umax()
        if umax <= 0:
            return self.dt
        return min(self.dt, self.cfg.cfl / (umax * self.cfg.n))

    def _step(self, dt: float | None = None, cap: float = math.inf) -> None:
        n0 = None
        if dt is None:
            if self.cfg.adaptive:
                # the first stage N(s) computes the velocity anyway: take max|u| from it (no extra FFTs)
                self._capture_umax = True
                n0 = self._nonlinear(self.s)
                umax = float(self._umax_t)
                dt = min(self.dt, self.cfg.cfl / (umax * self.cfg.n)) if umax > 0 else self.dt
            else:
                dt = self.dt
        dt = min(dt, cap)
        self.s = self.imex_step(self.s, dt, n0)
        self.last_dt = dt
        self.t += dt
        self.steps += 1

    def state_tensors(self):
        return [self.s]

    def _state_loaded(self) -> None:
        self.last_dt = self.dt
        self._setup_operators(with_dye=self.s.shape[1] > 1)

    def check(self) -> None:
        super().check()
        c = self.cfl(self.last_dt)
        if c > 3 * CFL_LIMIT[self.scheme]:
            self.blown_up = (
                f"navier-stokes: CFL number {c:.1f} at t = {self.t:.4g} (limit "
                f"{CFL_LIMIT[self.scheme]}): the run is unstable; reduce dt or use adaptive dt"
            )
            raise BlowUp(self.blown_up)

    # -- fields and diagnostics --------------------------------------------------------------------------
    def _uv_hat(self):
        g = self.g
        psi = self.s[:, 0] * g.inv_k2
        return 1j * g.ky * psi, -1j * g.kx * psi

    def _umax(self) -> float:
        uh, vh = self._uv_hat()
        uv = self.g.irfft(torch.stack([uh, vh], 1))
        return float((uv[:, 0].abs() + uv[:, 1].abs()).amax())

    def cfl(self, dt: float | None = None) -> float:
        """max(|u| + |v|) dt / dx over the batch."""
        return self._umax() * (self.dt if dt is None else dt) * self.cfg.n

    def vorticity(self) -> torch.Tensor:
        return self.g.irfft(self.s[:, 0])

    def field(self, name: str | None = None) -> np.ndarray:
        name = name or "vorticity"
        g = self.g
        if name == "vorticity":
            a = self.g.irfft(self.s[0, 0])
        elif name == "dye":
            a = g.irfft(self.s[0, 1]) if self.s.shape[1] > 1 else torch.zeros(g.n, g.n)
        elif name == "streamfunction":
            a = g.irfft(self.s[0, 0] * g.inv_k2)
        elif name == "speed":
            u, v = self.velocity_tensors()
            a = torch.sqrt(u[0] ** 2 + v[0] ** 2)
        else:
            raise UserError(f"navier-stokes has no field {name!r}: use one of {', '.join(self.field_names)}")
        return a.detach().cpu().numpy()

    def velocity_tensors(self):
        uh, vh = self._uv_hat()
        uv = self.g.irfft(torch.stack([uh, vh], 1))
        return uv[:, 0], uv[:, 1]

    def velocity(self):
        u, v = self.velocity_tensors()
        return u[0].detach().cpu().numpy(), v[0].detach().cpu().numpy()

    def diagnostics(self) -> dict[str, float]:
        """Energy 0.5<|u|^2>, enstrophy 0.5<w^2>, max CFL, max |div u| (spectral), of batch element 0."""
        g = self.g
        uh, vh = self._uv_hat()
        uv = g.irfft(torch.stack([uh[:1], vh[:1]], 1))[0]
        w = g.irfft(self.s[0, 0])
        div = g.irfft(1j * g.kx * uh[0] + 1j * g.ky * vh[0])
        umax = float((uv[0].abs() + uv[1].abs()).max())
        return {
            "energy": float(0.5 * (uv**2).sum(0).mean()),
            "enstrophy": float(0.5 * (w**2).mean()),
            "cfl": umax * self.last_dt * g.n,
            "divergence": float(div.abs().max()),
            "dt": float(self.last_dt),
        }

    def spectrum(self):
        uh, vh = self._uv_hat()
        return self.g.spectrum(uh[:1], vh[:1])

    # -- painting ----------------------------------------------------------------------------------------
    def paint(
        self, x: float, y: float, amount: float, radius: float = 0.05, target: str | None = None
    ) -> None:
        """Add a Gaussian blob ``amount * exp(-d^2 / 2 r^2)`` of vorticity (zero-mean) or dye at (x, y)."""
        target = target or "vorticity"
        require(target in self.paint_targets, f"paint target must be one of {', '.join(self.paint_targets)}")
        require_positive("radius", radius)
        require_finite("amount", amount)
        g = self.g
        blob = amount * periodic_gaussian(g.X, g.Y, float(x), float(y), float(radius))
        if target == "vorticity":
            blob = blob - blob.mean()
            self.s[:, 0] = self.s[:, 0] + g.rfft(blob)
        else:
            if self.s.shape[1] == 1:
                self.s = torch.cat([self.s, torch.zeros_like(self.s)], dim=1)
                self._setup_operators(with_dye=True)
            self.s[:, 1] = self.s[:, 1] + g.rfft(blob)
        self.blown_up = None


def simulate_ns(cfg: NSConfig, t_end: float, frames: int = 50, w0=None):
    """Convenience generator: :func:`backends.pde.base.run` on a new :class:`NavierStokes2D`."""
    sim = NavierStokes2D(cfg, w0)
    return (yield from run(sim, t_end, frames))


__all__ = [
    "NSConfig",
    "NavierStokes2D",
    "taylor_green_vorticity",
    "random_turbulence",
    "simulate_ns",
    "BlowUp",
]
