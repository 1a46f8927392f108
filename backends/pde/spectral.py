"""Fourier grid helpers on the periodic unit square: wavenumbers, 2/3 dealiasing, Gaussian random fields.

Layout: arrays are ``(..., ny, nx)`` with x along the last axis, grid points ``x_j = j / n``. Real FFTs
(``rfft2``) halve the last axis, so ``kx = rfftfreq`` and ``ky = fftfreq``. Physical wavenumbers are
``2 pi k`` radians per unit length.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from backends.common import UserError

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def fft_friendly(n: int) -> bool:
    """True when n has no prime factor other than 2, 3 and 5 (fast FFT sizes)."""
    if n < 1:
        return False
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def check_grid(n: int, *, minimum: int = 16, maximum: int = 4096) -> None:
    if not isinstance(n, int | np.integer) or n < minimum:
        raise UserError(f"grid size n must be an integer >= {minimum}, got {n}")
    if n > maximum:
        raise UserError(f"grid size n = {n} is too large (at most {maximum})")
    if not fft_friendly(int(n)):
        raise UserError(
            f"grid size n = {n} is not FFT-friendly: use a product of 2, 3 and 5 (e.g. 64, 96, 128, 256)"
        )


def resolve_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise UserError(f"dtype must be one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def resolve_device(name: str | torch.device) -> torch.device:
    if isinstance(name, torch.device):
        return name
    if name in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise UserError(f"unknown device {name!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but no CUDA GPU is available")
    return dev


class Grid2D:
    """Wavenumber tables for an n x n periodic grid in rfft2 layout, on a device and dtype."""

    def __init__(self, n: int, device: torch.device, dtype: torch.dtype):
        self.n = n
        self.device, self.dtype = device, dtype
        ky = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
        kx = torch.fft.rfftfreq(n, d=1.0 / n, dtype=torch.float64)
        KY, KX = torch.meshgrid(ky, kx, indexing="ij")
        self.kint = (KX, KY)  # integer wavenumbers (float64, CPU)
        two_pi = 2.0 * math.pi
        self.kx = (two_pi * KX).to(device=device, dtype=dtype)
        self.ky = (two_pi * KY).to(device=device, dtype=dtype)
        k2 = self.kx**2 + self.ky**2
        self.k2 = k2
        if n % 2 == 0:  # first derivatives of the Nyquist modes are not real: zero them (standard practice)
            self.kx = torch.where(KX.to(device).abs() == n // 2, 0.0, self.kx)
            self.ky = torch.where(KY.to(device).abs() == n // 2, 0.0, self.ky)
        inv = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, torch.ones_like(k2)), torch.zeros_like(k2))
        self.inv_k2 = inv
        cut = n / 3.0  # 2/3 rule: keep |k| < n/3 in each direction
        self.dealias = ((KX.abs() < cut) & (KY.abs() < cut)).to(device=device, dtype=dtype)
        # shell index for the energy spectrum, and the rfft double-counting weight of each column
        kmag = torch.sqrt(KX**2 + KY**2)
        self.shell = torch.round(kmag).to(torch.long).to(device)
        w = torch.full_like(KX, 2.0)
        w[:, 0] = 1.0
        if n % 2 == 0:
            w[:, -1] = 1.0
        self.rweight = w.to(device=device, dtype=dtype)
        x = torch.arange(n, dtype=torch.float64) / n
        Y, X = torch.meshgrid(x, x, indexing="ij")
        self.X = X.to(device=device, dtype=dtype)
        self.Y = Y.to(device=device, dtype=dtype)

    def rfft(self, a: torch.Tensor) -> torch.Tensor:
        return torch.fft.rfft2(a)

    def irfft(self, a: torch.Tensor) -> torch.Tensor:
        return torch.fft.irfft2(a, s=(self.n, self.n))

    def spectrum(self, uh: torch.Tensor, vh: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Shell-summed energy spectrum E(k), k = 0..n/2 (integer shells), of the first batch element.

        ``sum(E) == 0.5 * mean(u^2 + v^2)`` (Parseval), so E(k) is an energy density per unit shell.
        """
        n = self.n
        dens = uh.abs() ** 2
        if vh is not None:
            dens = dens + vh.abs() ** 2
        dens = 0.5 * dens * self.rweight / float(n) ** 4
        while dens.dim() > 2:
            dens = dens[0]
        nshell = n // 2 + 1
        idx = self.shell.clamp(max=nshell)
        E = torch.zeros(nshell + 1, dtype=dens.dtype, device=dens.device).index_add_(
            0, idx.ravel(), dens.ravel()
        )
        E = E[:nshell].double().cpu().numpy()
        return np.arange(nshell, dtype=float), E


def gaussian_random_field(
    n: int,
    batch: int = 1,
    *,
    alpha: float = 2.5,
    tau: float = 7.0,
    sigma: float | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Periodic GRF with covariance sigma^2 (-Laplacian + tau^2)^(-alpha), as the FNO data generator.

    Same spectrum as ``GaussianRF(2, s, alpha=2.5, tau=7)`` of the FNO code (``random_fields.py``):
    ``sqrt_eig = s^2 sqrt(2) sigma ((4 pi^2 |k|^2 + tau^2)^(-alpha/2))`` with ``sigma = tau^(alpha - 1)``,
    the mean mode zeroed, complex normal coefficients, real part of the inverse FFT. Returns (batch, n, n).
    """
    if sigma is None:
        sigma = tau ** (0.5 * (2 * alpha - 2.0))
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    k = torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64)
    KY, KX = torch.meshgrid(k, k, indexing="ij")
    sqrt_eig = n**2 * math.sqrt(2.0) * sigma * ((4 * math.pi**2 * (KX**2 + KY**2) + tau**2) ** (-alpha / 2.0))
    sqrt_eig[0, 0] = 0.0
    noise = torch.randn(batch, n, n, 2, generator=gen, dtype=torch.float64)
    coeff = torch.complex(noise[..., 0], noise[..., 1]) * sqrt_eig
    field = torch.fft.ifft2(coeff).real
    return field.to(device=device, dtype=dtype)


def periodic_gaussian(X: torch.Tensor, Y: torch.Tensor, x0: float, y0: float, radius: float) -> torch.Tensor:
    """exp(-d^2 / (2 r^2)) with d the minimum-image distance on the unit torus."""
    dx = torch.remainder(X - x0 + 0.5, 1.0) - 0.5
    dy = torch.remainder(Y - y0 + 0.5, 1.0) - 0.5
    return torch.exp(-(dx**2 + dy**2) / (2.0 * radius**2))
