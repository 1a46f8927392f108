import math

import numpy as np
import pytest
import torch

from backends.common import UserError
from backends.pde.base import BlowUp, run
from backends.pde.ns import NavierStokes2D, NSConfig, taylor_green_vorticity
from backends.pde.spectral import Grid2D, fft_friendly, gaussian_random_field


def _tg(scheme, n=32, dt=1e-3, nu=1e-3, k=1):
    cfg = NSConfig(
        n=n, nu=nu, dt=dt, init="taylor-green", tg_k=k, forcing="none", dtype="float64", scheme=scheme
    )
    sim = NavierStokes2D(cfg)
    w0 = sim.vorticity().clone()
    sim.advance_to(1.0)
    exact = w0 * math.exp(-nu * 2 * (2 * math.pi * k) ** 2 * 1.0)  # |k|^2 = kx^2 + ky^2 in rad / length
    return float((sim.vorticity() - exact).norm() / exact.norm()), sim


@pytest.mark.parametrize("scheme", ["cn-heun", "if-rk4"])
def test_taylor_green_exact_decay(scheme):
    err, sim = _tg(scheme)
    assert sim.t == pytest.approx(1.0, abs=1e-12)
    assert err < 1e-8


def test_taylor_green_higher_mode_and_viscosity():
    err, _ = _tg("if-rk4", n=64, dt=2e-3, nu=1e-2, k=3)
    assert err < 1e-10


def test_energy_decay_matches_enstrophy_identity():
    """Unforced NS: dE/dt = -2 nu Z exactly (Z = 0.5<w^2>), checked on a random turbulent field."""
    nu = 1e-3
    cfg = NSConfig(n=64, nu=nu, dt=1e-3, init="turbulence", forcing="none", dtype="float64", scheme="if-rk4")
    sim = NavierStokes2D(cfg)
    d0 = sim.diagnostics()
    zs = [d0["enstrophy"]]
    for _ in range(20):
        sim.step(1)
        zs.append(sim.diagnostics()["enstrophy"])
    d1 = sim.diagnostics()
    integral = 1e-3 * (sum(zs) - 0.5 * (zs[0] + zs[-1]))  # trapezoid of Z dt
    assert d1["energy"] - d0["energy"] == pytest.approx(-2 * nu * integral, rel=1e-5)
    assert d1["divergence"] < 1e-10


def _nonlinear_run(scheme, dt):
    cfg = NSConfig(n=32, nu=1e-2, dt=dt, init="grf", forcing="fno", dtype="float64", scheme=scheme, seed=3)
    sim = NavierStokes2D(cfg)
    sim.advance_to(0.2)
    return sim.vorticity()


@pytest.mark.parametrize("scheme,order", [("cn-heun", 2), ("if-rk4", 4)])
def test_time_order_by_refinement(scheme, order):
    ref = _nonlinear_run("if-rk4", 0.2 / 800)
    e1 = float((_nonlinear_run(scheme, 0.2 / 25) - ref).norm())
    e2 = float((_nonlinear_run(scheme, 0.2 / 50) - ref).norm())
    assert math.log2(e1 / e2) == pytest.approx(order, abs=0.35)


def test_spectrum_parseval_and_shape():
    # band-limited field (|k| < n/3): every mode falls in a shell k <= n/2, so Parseval holds to round-off
    sim = NavierStokes2D(NSConfig(n=64, init="turbulence", dtype="float64"))
    k, E = sim.spectrum()
    assert k.shape == (33,) and E[0] == pytest.approx(0.0, abs=1e-14)
    assert E.sum() == pytest.approx(sim.diagnostics()["energy"], rel=1e-10)
    assert np.argmax(E) in range(5, 12)  # the k^4 exp(-2 (k/8)^2) spectrum peaks at k = 8
    # a GRF has energy in the corners |k| > n/2 (not in any shell): tiny for alpha = 2.5
    sim = NavierStokes2D(NSConfig(n=64, init="grf", dtype="float64"))
    assert sim.spectrum()[1].sum() == pytest.approx(sim.diagnostics()["energy"], rel=1e-6)


def test_grf_matches_fno_spectrum_statistics():
    # the FNO generator's field variance: sum over modes of sqrt_eig^2 * 2 / n^4 (complex normal, real part)
    n, alpha, tau = 64, 2.5, 7.0
    f = gaussian_random_field(n, 200, alpha=alpha, tau=tau, seed=1)
    sigma = tau ** (0.5 * (2 * alpha - 2))
    k = np.fft.fftfreq(n, 1 / n)
    KX, KY = np.meshgrid(k, k)
    eig = (n**2 * math.sqrt(2) * sigma * (4 * math.pi**2 * (KX**2 + KY**2) + tau**2) ** (-alpha / 2)) ** 2
    eig[0, 0] = 0
    # real part of ifft2 of complex normal * sqrt_eig: var = sum eig / n^4 (each of re/im has var 1)
    expected = eig.sum() / n**4
    assert float(f.var()) == pytest.approx(expected, rel=0.05)
    assert abs(float(f.mean())) < 1e-12


def test_batch_and_float32_consistent_with_float64():
    w = gaussian_random_field(32, 3, seed=2)
    a = NavierStokes2D(NSConfig(n=32, dtype="float64", batch=3), w0=w)
    b = NavierStokes2D(NSConfig(n=32, dtype="float32", batch=3), w0=w)
    a.step(20)
    b.step(20)
    assert a.vorticity().shape == (3, 32, 32)
    rel = float((a.vorticity() - b.vorticity().double()).norm() / a.vorticity().norm())
    assert rel < 1e-5
    # batch members evolve independently: member 1 equals a single run of it
    c = NavierStokes2D(NSConfig(n=32, dtype="float64", batch=1), w0=w[1:2])
    c.step(20)
    assert torch.allclose(c.vorticity()[0], a.vorticity()[1], atol=1e-12)


def test_kolmogorov_laminar_steady_state():
    """Below the instability, Kolmogorov flow settles to w = A cos(2 pi k y) / (nu |k|^2 + drag)."""
    nu, drag, kf, A = 0.05, 0.1, 4, 1.0
    cfg = NSConfig(
        n=32,
        nu=nu,
        dt=5e-3,
        init="zero",
        forcing="kolmogorov",
        kolmogorov_k=kf,
        drag=drag,
        forcing_amplitude=A,
        dtype="float64",
        scheme="if-rk4",
    )
    sim = NavierStokes2D(cfg)
    sim.advance_to(1.5)
    kk = (2 * math.pi * kf) ** 2
    exact = A * torch.cos(2 * math.pi * kf * sim.g.Y) / (nu * kk + drag)
    assert torch.allclose(sim.vorticity()[0], exact, atol=1e-6)


def test_adaptive_dt_respects_cfl_and_paint():
    cfg = NSConfig(n=64, init="turbulence", forcing="none", adaptive=True, cfl=0.4, dt=0.1, nu=1e-3)
    sim = NavierStokes2D(cfg)
    sim.step(5)
    assert sim.diagnostics()["cfl"] <= 0.4 + 1e-6
    z0 = sim.diagnostics()["enstrophy"]
    sim.paint(0.25, 0.75, 20.0, 0.05, "vorticity")
    assert sim.diagnostics()["enstrophy"] > z0
    assert abs(float(sim.vorticity().mean())) < 1e-5  # painted vorticity keeps zero mean
    sim.paint(0.5, 0.5, 1.0, 0.05, "dye")
    dye = sim.field("dye")
    assert dye.shape == (64, 64)
    assert np.unravel_index(np.argmax(dye), dye.shape) == (32, 32)
    total = dye.sum()
    sim.step(5)
    assert sim.field("dye").sum() == pytest.approx(total, rel=1e-4)  # advection-diffusion conserves dye


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"n": 8}, ">= 16"),
        ({"n": 97}, "FFT-friendly"),
        ({"nu": 0.0}, "nu"),
        ({"nu": -1.0}, "nu"),
        ({"dt": float("nan")}, "dt"),
        ({"scheme": "euler"}, "scheme"),
        ({"forcing": "x"}, "forcing"),
        ({"init": "x"}, "init"),
        ({"dtype": "float16"}, "dtype"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(UserError, match=match):
        NavierStokes2D(NSConfig(**kwargs))


def test_dt_beyond_stability_rejected():
    with pytest.raises(UserError, match="stability"):
        NavierStokes2D(NSConfig(n=64, init="turbulence", dt=0.5))


def test_nan_input_rejected():
    w = np.zeros((32, 32))
    w[3, 3] = np.nan
    with pytest.raises(UserError, match="NaN"):
        NavierStokes2D(NSConfig(n=32), w0=w)


def test_blow_up_stops_and_keeps_history():
    cfg = NSConfig(n=32, init="turbulence", forcing="none", dt=0.003, nu=1e-4, scheme="cn-euler")
    sim = NavierStokes2D(cfg)
    sim.paint(0.5, 0.5, 3000.0, 0.05)  # a huge vortex makes the fixed dt unstable
    frames = []
    with pytest.raises(BlowUp, match="CFL|NaN"):
        for p in run(sim, 5.0, 50):
            frames.append(p.data)
    assert len(frames) >= 1 and np.all(np.isfinite(frames[0].field))


def test_fft_friendly():
    assert fft_friendly(64) and fft_friendly(96) and fft_friendly(1000) and not fft_friendly(97)
    g = Grid2D(16, torch.device("cpu"), torch.float64)
    assert float(g.dealias.sum()) > 0
    assert taylor_green_vorticity(g.X, g.Y).shape == (16, 16)
