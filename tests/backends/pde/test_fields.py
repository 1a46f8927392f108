import math

import numpy as np
import pytest
import torch

from backends.common import UserError
from backends.pde.fields import (
    GRAY_SCOTT_PRESETS,
    Burgers,
    BurgersConfig,
    GrayScott,
    GrayScottConfig,
    Heat,
    HeatConfig,
    Wave,
    WaveConfig,
    burgers_cole_hopf,
)
from backends.pde.models import make_simulation


# -- heat -----------------------------------------------------------------------------------------------------
def _heat_err(dim, scheme, dt, k=2, kappa=1e-2, t=1.0):
    sim = Heat(
        HeatConfig(n=32, dim=dim, kappa=kappa, dt=dt, scheme=scheme, init="mode", mode_k=k, dtype="float64")
    )
    u0 = sim.g.irfft(sim.s[0, 0]).clone()
    sim.advance_to(t)
    lam = kappa * dim * (2 * math.pi * k) ** 2  # |k|^2 = dim (2 pi k)^2 for cos(2 pi k x) cos(2 pi k y)
    exact = u0 * math.exp(-lam * t)
    return float((sim.g.irfft(sim.s[0, 0]) - exact).abs().max())


@pytest.mark.parametrize("dim", [1, 2])
def test_heat_exact_mode(dim):
    assert _heat_err(dim, "if-rk4", 0.05) < 1e-13  # exponential integrator: exact per mode
    assert _heat_err(dim, "cn-heun", 1e-3, k=1, kappa=1e-3) < 1e-10  # Crank-Nicolson, small step


def test_heat_cn_second_order():
    e1, e2 = _heat_err(2, "cn-heun", 0.02), _heat_err(2, "cn-heun", 0.01)
    assert math.log2(e1 / e2) == pytest.approx(2.0, abs=0.1)


def test_heat_conserves_mean_and_decays_variance():
    sim = Heat(HeatConfig(n=64, kappa=1e-2, dt=0.01, init="random", dtype="float64"))
    d0 = sim.diagnostics()
    sim.step(50)
    d1 = sim.diagnostics()
    assert d1["mean"] == pytest.approx(d0["mean"], abs=1e-14)
    assert d1["variance"] < d0["variance"]


# -- wave -----------------------------------------------------------------------------------------------------
def _wave_err(dim, scheme, dt, k=1, c=0.3, t=1.0):
    sim = Wave(WaveConfig(n=32, dim=dim, c=c, dt=dt, scheme=scheme, init="mode", mode_k=k, dtype="float64"))
    u0 = sim.g.irfft(sim.s[0, 0]).clone()
    sim.advance_to(t)
    omega = c * math.sqrt(dim) * 2 * math.pi * k
    return float((sim.g.irfft(sim.s[0, 0]) - u0 * math.cos(omega * t)).abs().max())


@pytest.mark.parametrize("dim", [1, 2])
def test_wave_exact_mode(dim):
    assert _wave_err(dim, "exact", 0.1) < 1e-13
    assert _wave_err(dim, "rk4", 1e-3) < 1e-10


@pytest.mark.parametrize("scheme,order", [("verlet", 2), ("rk4", 4)])
def test_wave_time_order(scheme, order):
    e1, e2 = _wave_err(1, scheme, 0.02, k=2), _wave_err(1, scheme, 0.01, k=2)
    assert math.log2(e1 / e2) == pytest.approx(order, abs=0.15)


def test_wave_energy_conserved():
    sim = Wave(WaveConfig(n=64, c=0.2, dt=2e-3, scheme="rk4", init="gaussian", dtype="float64"))
    e0 = sim.diagnostics()["energy"]
    sim.step(200)
    assert sim.diagnostics()["energy"] == pytest.approx(e0, rel=1e-6)


def test_wave_dt_beyond_stability():
    with pytest.raises(UserError, match="stability"):
        WaveConfig(n=128, c=1.0, dt=0.1, scheme="rk4")


# -- Burgers --------------------------------------------------------------------------------------------------
def _burgers_err(dim, scheme, dt, nu=0.05, t=0.5):
    sim = Burgers(
        BurgersConfig(n=64, dim=dim, nu=nu, dt=dt, scheme=scheme, init="cole-hopf", dtype="float64")
    )
    sim.advance_to(t)
    exact = burgers_cole_hopf(sim.g.X, sim.g.Y, t, nu, dim=dim)
    exact = [exact] if dim == 1 else list(exact)
    p = sim.physical()[0]
    return max(float((p[i] - exact[i]).abs().max()) for i in range(dim))


@pytest.mark.parametrize("dim", [1, 2])
def test_burgers_cole_hopf_exact(dim):
    assert _burgers_err(dim, "if-rk4", 1e-3) < 1e-10


@pytest.mark.parametrize("scheme,order", [("cn-heun", 2), ("if-rk4", 4)])
def test_burgers_time_order(scheme, order):
    e1, e2 = _burgers_err(1, scheme, 4e-3), _burgers_err(1, scheme, 2e-3)
    assert math.log2(e1 / e2) == pytest.approx(order, abs=0.25)


def test_burgers_steepens_and_dissipates():
    sim = Burgers(BurgersConfig(n=128, dim=1, nu=5e-3, dt=5e-4, init="sine", dtype="float64"))
    e0 = sim.diagnostics()["energy"]
    grad0 = np.abs(np.diff(sim.field())).max()
    sim.advance_to(0.15)  # shock forms near t = 1 / (2 pi) for u0 = sin 2 pi x
    assert np.abs(np.diff(sim.field())).max() > 3 * grad0
    assert sim.diagnostics()["energy"] < e0


# -- Gray-Scott -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["mitosis", "coral"])
def test_gray_scott_forms_pattern(preset):
    sim = GrayScott(GrayScottConfig(n=64, preset=preset, seed=1))
    sim.step(3000)
    d = sim.diagnostics()
    assert 0.0 <= d["min_u"] and d["max_u"] <= 1.0 and 0.0 <= d["min_v"] and d["max_v"] <= 1.0
    assert d["var_v"] > 5e-3  # a non-trivial spatial pattern, not the trivial state u = 1, v = 0
    v = sim.field()
    # the pattern has spread from the seeds: v is present across the domain
    assert (v > 0.1).mean() > 0.2


def test_gray_scott_trivial_state_outside_pattern_region():
    # F = 0.01, k = 0.07: the seeds die out and the system returns to (u, v) = (1, 0)
    sim = GrayScott(GrayScottConfig(n=32, preset="custom", F=0.01, k=0.07))
    sim.step(2000)
    assert sim.diagnostics()["max_v"] < 1e-3


def test_gray_scott_presets_and_validation():
    assert {"spots", "stripes", "mitosis", "coral", "worms"} <= set(GRAY_SCOTT_PRESETS)
    with pytest.raises(UserError, match="preset"):
        GrayScottConfig(preset="nope")
    with pytest.raises(UserError, match="diffusion limit"):
        GrayScottConfig(dt=5.0)
    sim = GrayScott(GrayScottConfig(n=32))
    sim.paint(0.5, 0.5, 1.0, 0.05)
    assert sim.field()[16, 16] == pytest.approx(1.0) or sim.field()[16, 16] > 0.9


def test_make_simulation_all_models():
    for model in ("navier-stokes", "heat", "wave", "burgers", "gray-scott"):
        sim = make_simulation(model, n=32)
        sim.step(2)
        assert np.all(np.isfinite(sim.field()))
    with pytest.raises(UserError, match="unknown model"):
        make_simulation("nope")
    with pytest.raises(UserError, match=">= 16"):
        make_simulation("heat", n=8)
    with pytest.raises(UserError, match="kappa"):
        make_simulation("heat", kappa=0.0)
    assert torch.get_num_threads() >= 1
