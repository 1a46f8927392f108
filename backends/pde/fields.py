"""Heat, wave and viscous Burgers (1D or 2D, spectral on the periodic unit interval/square) and Gray-Scott.

* Heat ``u_t = kappa lap u``: Crank-Nicolson (2nd order) or the exact exponential (``if-rk4``).
* Wave ``u_tt = c^2 lap u`` as ``(u, v = u_t)``: Stormer-Verlet (2nd order, symplectic), RK4 (4th order)
  or the exact per-mode rotation.
* Burgers ``u_t + (u . grad) u = nu lap u``: pseudo-spectral, 2/3 dealiased, IMEX (CN-Heun or IF-RK4).
  Exact Cole-Hopf solutions (:func:`burgers_cole_hopf`) for the tests.
* Gray-Scott ``u_t = Du lap u - u v^2 + F (1 - u)``, ``v_t = Dv lap v + u v^2 - (F + k) v`` with the
  classical (F, k) presets (Pearson 1993; the xmorphia / Karl Sims parameter map), 5-point Laplacian in grid
  units and forward Euler, as in the classical explorations (one step = one time unit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from backends.common import UserError, require, require_finite, require_positive

from .base import FieldSim, SpectralIMEX, check_scheme
from .spectral import (
    check_grid,
    gaussian_random_field,
    periodic_gaussian,
    resolve_device,
    resolve_dtype,
)


class _Grid:
    """Fourier tables for 1D (n) or 2D (n x n) periodic grids in rfft layout; arrays (..., [ny,] nx)."""

    def __init__(self, n: int, dim: int, device, dtype):
        self.n, self.dim, self.device, self.dtype = n, dim, device, dtype
        kx = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)
        x = torch.arange(n, dtype=torch.float64) / n
        cut = n / 3.0
        if dim == 1:
            KX, KY = kx, torch.zeros_like(kx)
            X, Y = x, torch.zeros_like(x)
            mask = kx.abs() < cut
        else:
            ky = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
            KY, KX = torch.meshgrid(ky, kx, indexing="ij")
            Y, X = torch.meshgrid(x, x, indexing="ij")
            mask = (KX.abs() < cut) & (KY.abs() < cut)
        self.kint = (KX, KY)
        self.kx = (2 * math.pi * KX).to(device, dtype)
        self.ky = (2 * math.pi * KY).to(device, dtype)
        self.k2 = self.kx**2 + self.ky**2
        if n % 2 == 0:  # first derivatives of the Nyquist modes are not real: zero them
            self.kx = torch.where(KX.to(device).abs() == n // 2, 0.0, self.kx)
            self.ky = torch.where(KY.to(device).abs() == n // 2, 0.0, self.ky)
        self.dealias = mask.to(device, dtype)
        self.X, self.Y = X.to(device, dtype), Y.to(device, dtype)
        self.shell = torch.round(torch.sqrt(KX**2 + KY**2)).long().to(device)
        w = torch.full_like(KX, 2.0)
        w[..., 0] = 1.0
        if n % 2 == 0:
            w[..., -1] = 1.0
        self.rweight = w.to(device, dtype)
        self.axes = tuple(range(-dim, 0))
        self.shape = (n,) * dim

    def rfft(self, a):
        return torch.fft.rfftn(a, dim=self.axes)

    def irfft(self, a):
        return torch.fft.irfftn(a, s=self.shape, dim=self.axes)

    def spectrum(self, hats: list[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        dens = sum(h.abs() ** 2 for h in hats)
        dens = 0.5 * dens * self.rweight / float(self.n) ** (2 * self.dim)
        while dens.dim() > self.dim:
            dens = dens[0]
        nshell = self.n // 2 + 1
        idx = self.shell.clamp(max=nshell)
        E = torch.zeros(nshell + 1, dtype=dens.dtype, device=dens.device).index_add_(
            0, idx.ravel(), dens.ravel()
        )
        return np.arange(nshell, dtype=float), E[:nshell].double().cpu().numpy()

    def blob(self, x, y, r):
        if self.dim == 1:
            dx = torch.remainder(self.X - x + 0.5, 1.0) - 0.5
            return torch.exp(-(dx**2) / (2 * r * r))
        return periodic_gaussian(self.X, self.Y, x, y, r)


def _mode(g: _Grid, k: int) -> torch.Tensor:
    """cos(2 pi k x) (1D) or cos(2 pi k x) cos(2 pi k y) (2D)."""
    a = torch.cos(2 * math.pi * k * g.X)
    if g.dim == 2:
        a = a * torch.cos(2 * math.pi * k * g.Y)
    return a


def _random(g: _Grid, batch: int, seed: int) -> torch.Tensor:
    if g.dim == 2:
        f = gaussian_random_field(g.n, batch, alpha=2.5, tau=7.0, seed=seed, device=g.device, dtype=g.dtype)
    else:
        gen = torch.Generator().manual_seed(int(seed))
        k = torch.fft.rfftfreq(g.n, d=1.0 / g.n, dtype=torch.float64)
        amp = (4 * math.pi**2 * k**2 + 49.0) ** (-1.25)
        amp[0] = 0
        c = (
            torch.complex(
                torch.randn(batch, k.numel(), generator=gen, dtype=torch.float64),
                torch.randn(batch, k.numel(), generator=gen, dtype=torch.float64),
            )
            * amp
        )
        f = torch.fft.irfft(c, n=g.n).to(g.device, g.dtype)
    return f / f.abs().amax(dim=tuple(range(1, f.dim())), keepdim=True).clamp_min(1e-30)


def _check_common(cfg) -> None:
    check_grid(cfg.n)
    require(cfg.dim in (1, 2), f"dim must be 1 or 2, got {cfg.dim}")
    require_positive("dt", cfg.dt)
    require(cfg.batch >= 1, f"batch must be >= 1, got {cfg.batch}")
    resolve_dtype(cfg.dtype)


class _SpectralSim(FieldSim):
    state_attrs = ("s",)

    def _setup(self, cfg, channels: int):
        self.cfg = cfg
        self.dim = cfg.dim
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype)
        self.g = _Grid(cfg.n, cfg.dim, self.device, self.dtype)
        self.dt = float(cfg.dt)
        self.channels = channels

    def _to_batch(self, a) -> torch.Tensor:
        a = torch.as_tensor(a, dtype=self.dtype, device=self.device)
        if a.dim() == self.dim:
            a = a.expand(self.cfg.batch, *a.shape).clone()
        require(tuple(a.shape[-self.dim :]) == self.g.shape, f"initial field must be of shape {self.g.shape}")
        require_finite("initial field", a.detach().cpu().numpy())
        return a

    def _step(self, dt=None):
        dt = self.dt if dt is None else dt
        self.s = self.advance_state(self.s, dt)
        self.t += dt
        self.steps += 1

    def state_tensors(self):
        return [self.s]

    def physical(self) -> torch.Tensor:
        """(B, C, *grid) real fields."""
        return self.g.irfft(self.s)

    def field(self, name=None):
        c = 0 if name in (None, self.field_names[0]) else self.field_names.index(name)
        return self.g.irfft(self.s[0, c]).detach().cpu().numpy()

    def spectrum(self):
        return self.g.spectrum([self.s[:1, c] for c in range(self.channels)])

    def paint(self, x, y, amount, radius=0.05, target=None):
        require_positive("radius", radius)
        require_finite("amount", amount)
        blob = amount * self.g.blob(float(x), float(y), float(radius))
        self.s[:, 0] = self.s[:, 0] + self.g.rfft(blob)
        self.blown_up = None


# -- heat ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeatConfig:
    n: int = 128
    dim: int = 2
    kappa: float = 1e-3
    dt: float = 1e-2
    scheme: str = "cn-heun"  # Crank-Nicolson (cn-*) or exact exponential (if-rk4)
    init: str = "random"  # random | mode | gaussian
    mode_k: int = 1
    batch: int = 1
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self):
        _check_common(self)
        require_positive("kappa (diffusivity)", self.kappa)
        check_scheme(self.scheme)
        require(self.init in ("random", "mode", "gaussian"), f"unknown heat init {self.init!r}")


class Heat(_SpectralSim, SpectralIMEX):
    model = "heat"
    field_names = ("temperature",)
    paint_targets = ("temperature",)

    def __init__(self, cfg: HeatConfig, u0=None):
        FieldSim.__init__(self)
        self._setup(cfg, 1)
        self.scheme = cfg.scheme
        g = self.g
        if u0 is None:
            if cfg.init == "mode":
                u0 = _mode(g, cfg.mode_k)
            elif cfg.init == "gaussian":
                u0 = g.blob(0.5, 0.5, 0.08)
            else:
                u0 = _random(g, cfg.batch, cfg.seed)
        self.s = g.rfft(self._to_batch(u0)).unsqueeze(1)
        self._init_imex((-cfg.kappa * g.k2).unsqueeze(0).unsqueeze(0), lambda s: torch.zeros_like(s))

    def advance_state(self, s, dt):
        if self.scheme == "if-rk4":
            return s * self._coeffs(dt)[0]
        A, Binv = self._coeffs(dt)
        return A * s * Binv

    def diagnostics(self):
        u = self.g.irfft(self.s[0, 0])
        return {
            "mean": float(u.mean()),
            "variance": float(u.var()),
            "max": float(u.max()),
            "min": float(u.min()),
        }


# -- wave ----------------------------------------------------------------------------------------------------
WAVE_SCHEMES = ("verlet", "rk4", "exact")


@dataclass(frozen=True)
class WaveConfig:
    n: int = 128
    dim: int = 2
    c: float = 0.2
    dt: float = 5e-3
    scheme: str = "rk4"  # verlet | rk4 | exact
    init: str = "gaussian"  # gaussian | mode | random
    mode_k: int = 1
    batch: int = 1
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self):
        _check_common(self)
        require_positive("c (wave speed)", self.c)
        require(self.scheme in WAVE_SCHEMES, f"wave scheme must be one of {', '.join(WAVE_SCHEMES)}")
        require(self.init in ("random", "mode", "gaussian"), f"unknown wave init {self.init!r}")
        kmax = 2 * math.pi * (self.n // 2) * math.sqrt(self.dim)
        limit = {"verlet": 2.0, "rk4": 2.8, "exact": math.inf}[self.scheme]
        if self.c * kmax * self.dt > limit:
            raise UserError(
                f"dt = {self.dt:g} is beyond the stability limit of {self.scheme} for c = {self.c:g} "
                f"at n = {self.n}: use dt <= {0.9 * limit / (self.c * kmax):.3g}"
            )


class Wave(_SpectralSim):
    """State s = (u_hat, v_hat) with v = u_t; ``u_tt = c^2 lap u`` is ``u' = v, v' = -c^2 |k|^2 u`` per mode."""

    model = "wave"
    field_names = ("displacement", "velocity")
    paint_targets = ("displacement",)

    def __init__(self, cfg: WaveConfig, u0=None, v0=None):
        FieldSim.__init__(self)
        self._setup(cfg, 2)
        g = self.g
        if u0 is None:
            if cfg.init == "mode":
                u0 = _mode(g, cfg.mode_k)
            elif cfg.init == "gaussian":
                u0 = g.blob(0.5, 0.5, 0.04)
            else:
                u0 = _random(g, cfg.batch, cfg.seed)
        u0 = self._to_batch(u0)
        v0 = torch.zeros_like(u0) if v0 is None else self._to_batch(v0)
        self.s = torch.stack([g.rfft(u0), g.rfft(v0)], 1)
        self.w2 = cfg.c**2 * g.k2  # omega^2 per mode
        self.omega = torch.sqrt(self.w2)

    def advance_state(self, s, dt):
        u, v = s[:, 0], s[:, 1]
        w2 = self.w2
        if self.cfg.scheme == "verlet":
            v = v - 0.5 * dt * w2 * u
            u = u + dt * v
            v = v - 0.5 * dt * w2 * u
        elif self.cfg.scheme == "rk4":

            def f(a, b):
                return b, -w2 * a

            k1 = f(u, v)
            k2 = f(u + 0.5 * dt * k1[0], v + 0.5 * dt * k1[1])
            k3 = f(u + 0.5 * dt * k2[0], v + 0.5 * dt * k2[1])
            k4 = f(u + dt * k3[0], v + dt * k3[1])
            u = u + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
            v = v + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        else:
            om = self.omega
            c, sn = torch.cos(om * dt), torch.sin(om * dt)
            safe = torch.where(om > 0, om, torch.ones_like(om))
            sinc = torch.where(om > 0, sn / safe, torch.full_like(om, dt))
            u, v = c * u + sinc * v, -om * sn * u + c * v
        return torch.stack([u, v], 1)

    def diagnostics(self):
        g = self.g
        u, v = self.s[0, 0], self.s[0, 1]
        norm = float(g.n) ** (2 * g.dim)
        e = 0.5 * ((v.abs() ** 2 + self.w2 * u.abs() ** 2) * g.rweight).sum() / norm
        return {"energy": float(e), "max": float(g.irfft(u).abs().max())}


# -- Burgers -------------------------------------------------------------------------------------------------
def burgers_cole_hopf(X, Y, t: float, nu: float, a: float | None = None, b: float = 1.0, dim: int = 1):
    """Exact periodic Burgers solution u = -2 nu grad(phi) / phi with phi = a + b e^{-nu (2pi)^2 t} (cos 2pi x
    [+ cos 2pi y]) a solution of the heat equation (Cole-Hopf). Returns u (1D) or (u, v) (2D); needs a > dim*b
    (default a = (dim + 1) b)."""
    a = (dim + 1) * b if a is None else a
    k = 2 * math.pi
    d = b * math.exp(-nu * k * k * t)
    phi = a + d * torch.cos(k * X) + (d * torch.cos(k * Y) if dim == 2 else 0.0)
    u = 2 * nu * k * d * torch.sin(k * X) / phi
    if dim == 1:
        return u
    return u, 2 * nu * k * d * torch.sin(k * Y) / phi


@dataclass(frozen=True)
class BurgersConfig:
    n: int = 128
    dim: int = 1
    nu: float = 1e-2
    dt: float = 1e-3
    scheme: str = "if-rk4"
    init: str = "sine"  # sine | cole-hopf | random
    batch: int = 1
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self):
        _check_common(self)
        require_positive("nu (viscosity)", self.nu)
        check_scheme(self.scheme)
        require(self.init in ("sine", "cole-hopf", "random"), f"unknown burgers init {self.init!r}")


class Burgers(_SpectralSim, SpectralIMEX):
    model = "burgers"

    def __init__(self, cfg: BurgersConfig, u0=None):
        FieldSim.__init__(self)
        self.field_names = ("u",) if cfg.dim == 1 else ("u", "v", "speed")
        self.paint_targets = ("u",) if cfg.dim == 1 else ("u", "v")
        self._setup(cfg, cfg.dim)
        self.scheme = cfg.scheme
        g = self.g
        if u0 is None:
            if cfg.init == "cole-hopf":
                u0 = burgers_cole_hopf(g.X, g.Y, 0.0, cfg.nu, dim=cfg.dim)
            elif cfg.init == "sine":
                u0 = torch.sin(2 * math.pi * g.X)
                if cfg.dim == 2:
                    u0 = (u0, torch.sin(2 * math.pi * g.Y))
            else:
                u0 = _random(g, cfg.batch, cfg.seed)
                if cfg.dim == 2:
                    u0 = (u0, _random(g, cfg.batch, cfg.seed + 1))
        comps = [u0] if cfg.dim == 1 else list(u0)
        self.s = torch.stack([g.rfft(self._to_batch(c)) for c in comps], 1)
        self._init_imex((-cfg.nu * g.k2).unsqueeze(0).unsqueeze(0), self._nonlinear)
        umax = float(self.physical().abs().amax()) * cfg.dim
        if umax * cfg.dt * cfg.n > 1.5:
            raise UserError(
                f"dt = {cfg.dt:g} gives CFL {umax * cfg.dt * cfg.n:.2f} > 1.5: "
                f"use dt <= {cfg.dt * 1.0 / (umax * cfg.dt * cfg.n):.3g}"
            )

    def _nonlinear(self, s):
        g = self.g
        if self.dim == 1:
            u = g.irfft(s)
            return -0.5j * g.kx * g.rfft(u * u) * g.dealias
        ik = [1j * g.kx, 1j * g.ky]
        phys = g.irfft(torch.cat([s, ik[0] * s, ik[1] * s], 1))  # u, v, u_x, v_x, u_y, v_y
        u, v = phys[:, 0:1], phys[:, 1:2]
        adv = u * phys[:, 2:4] + v * phys[:, 4:6]
        return -g.rfft(adv) * g.dealias

    def advance_state(self, s, dt):
        return self.imex_step(s, dt)

    def field(self, name=None):
        if name == "speed":
            p = self.physical()[0]
            return torch.sqrt((p**2).sum(0)).detach().cpu().numpy()
        return super().field(name)

    def velocity(self):
        if self.dim == 1:
            return None
        p = self.physical()[0].detach().cpu().numpy()
        return p[0], p[1]

    def paint(self, x, y, amount, radius=0.05, target=None):
        c = 0 if target in (None, "u") else 1
        require_positive("radius", radius)
        blob = amount * self.g.blob(float(x), float(y), float(radius))
        self.s[:, c] = self.s[:, c] + self.g.rfft(blob)

    def diagnostics(self):
        p = self.physical()[0]
        return {
            "energy": float(0.5 * (p**2).sum(0).mean()),
            "max": float(p.abs().max()),
            "cfl": float(p.abs().sum(0).max()) * self.dt * self.g.n,
        }


# -- Gray-Scott ----------------------------------------------------------------------------------------------
#: classical (F, k) pairs (Pearson 1993 classes; names as in the xmorphia map and Karl Sims' tutorial)
GRAY_SCOTT_PRESETS: dict[str, tuple[float, float]] = {
    "spots": (0.035, 0.065),
    "stripes": (0.022, 0.051),
    "mitosis": (0.0367, 0.0649),
    "coral": (0.0545, 0.062),
    "worms": (0.046, 0.065),
    "maze": (0.029, 0.057),
    "holes": (0.039, 0.058),
    "solitons": (0.030, 0.062),
    "u-skate": (0.062, 0.0609),
    "bubbles": (0.018, 0.051),
}


@dataclass(frozen=True)
class GrayScottConfig:
    n: int = 128
    preset: str = "coral"
    F: float | None = None  # None: from the preset
    k: float | None = None
    Du: float = 0.2097  # grid units (spacing 1): Pearson 1993, 2e-5 on 2.5 / 256
    Dv: float = 0.1048
    dt: float = 1.0
    seeds: int = 12  # number of random square seeds of v
    batch: int = 1
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    dim: int = 2

    def __post_init__(self):
        check_grid(self.n)
        require(
            self.preset in GRAY_SCOTT_PRESETS or self.preset == "custom",
            f"preset must be one of {', '.join(GRAY_SCOTT_PRESETS)} or custom, got {self.preset!r}",
        )
        require(self.dim == 2, "gray-scott is 2D only")
        for name in ("Du", "Dv", "dt"):
            require_positive(name, getattr(self, name))
        for name in ("F", "k"):
            v = getattr(self, name)
            if v is not None:
                require_positive(name, v, allow_zero=True)
        if self.preset == "custom":
            require(self.F is not None and self.k is not None, "custom preset needs F and k")
        if 4 * max(self.Du, self.Dv) * self.dt > 1.0:
            raise UserError(
                f"dt = {self.dt:g} is beyond the explicit diffusion limit 4 D dt <= 1: "
                f"use dt <= {0.25 / max(self.Du, self.Dv):.3g}"
            )
        require(self.batch >= 1, "batch must be >= 1")
        resolve_dtype(self.dtype)

    @property
    def feed_kill(self) -> tuple[float, float]:
        F0, k0 = GRAY_SCOTT_PRESETS.get(self.preset, (0.0, 0.0))
        return (self.F if self.F is not None else F0, self.k if self.k is not None else k0)


class GrayScott(FieldSim):
    model = "gray-scott"
    field_names = ("v", "u")
    paint_targets = ("v", "u")
    symmetric = False

    def __init__(self, cfg: GrayScottConfig):
        FieldSim.__init__(self)
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.dtype)
        self.dt = float(cfg.dt)
        n = cfg.n
        gen = torch.Generator().manual_seed(int(cfg.seed))
        u = torch.ones(cfg.batch, n, n, dtype=torch.float64)
        v = torch.zeros(cfg.batch, n, n, dtype=torch.float64)
        half = max(n // 20, 4)
        for b in range(cfg.batch):
            centres = torch.randint(half, n - half, (cfg.seeds, 2), generator=gen)
            for cy, cx in centres.tolist():
                u[b, cy - half : cy + half, cx - half : cx + half] = 0.5
                v[b, cy - half : cy + half, cx - half : cx + half] = 0.25
        u += 0.02 * (torch.rand(u.shape, generator=gen, dtype=torch.float64) - 0.5)
        v += 0.02 * (torch.rand(v.shape, generator=gen, dtype=torch.float64) - 0.5)
        self.u = u.clamp(0, 1).to(self.device, self.dtype)
        self.v = v.clamp(0, 1).to(self.device, self.dtype)
        x = torch.arange(n, dtype=torch.float64) / n
        Y, X = torch.meshgrid(x, x, indexing="ij")
        self.X, self.Y = X.to(self.device, self.dtype), Y.to(self.device, self.dtype)

    @staticmethod
    def _lap(a):
        return (
            torch.roll(a, 1, -1)
            + torch.roll(a, -1, -1)
            + torch.roll(a, 1, -2)
            + torch.roll(a, -1, -2)
            - 4 * a
        )

    def _step(self, dt=None):
        dt = self.dt if dt is None else dt
        F, k = self.cfg.feed_kill
        u, v = self.u, self.v
        uvv = u * v * v
        self.u = u + dt * (self.cfg.Du * self._lap(u) - uvv + F * (1 - u))
        self.v = v + dt * (self.cfg.Dv * self._lap(v) + uvv - (F + k) * v)
        self.t += dt
        self.steps += 1

    state_attrs = ("u", "v")

    def state_tensors(self):
        return [self.u, self.v]

    def field(self, name=None):
        a = self.u if name == "u" else self.v
        return a[0].detach().cpu().numpy()

    def diagnostics(self):
        u, v = self.u[0], self.v[0]
        return {
            "mean_u": float(u.mean()),
            "mean_v": float(v.mean()),
            "var_v": float(v.var()),
            "min_u": float(u.min()),
            "max_u": float(u.max()),
            "min_v": float(v.min()),
            "max_v": float(v.max()),
        }

    def paint(self, x, y, amount, radius=0.05, target=None):
        """Add ``amount * blob`` of chemical v (default) or u at (x, y); concentrations stay clipped to [0, 1]."""
        require_positive("radius", radius)
        require_finite("amount", amount)
        blob = amount * periodic_gaussian(self.X, self.Y, float(x), float(y), float(radius))
        if target == "u":
            self.u = (self.u + blob).clamp(0, 1)
        else:
            self.v = (self.v + blob).clamp(0, 1)
            self.u = (self.u - blob).clamp(0, 1)
        self.blown_up = None
