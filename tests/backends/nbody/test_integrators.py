"""Accuracy of our integrators against physics (periodic orbits, conservation laws, convergence order) and
against REBOUND IAS15."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from backends.nbody.core import accel, accel_jerk, angular_momentum, energy, preset
from backends.nbody.integrators import IAS15, RK4, Hermite, Leapfrog
from backends.nbody.run import RunConfig, run


def integrate(it, t_end):
    while it.t < t_end * (1 - 1e-15):
        it.step(t_end - it.t)
    return it


def test_force_and_jerk_match_finite_differences():
    s = preset("random", seed=3)
    a, j = accel_jerk(s.mass, s.pos, s.vel)
    assert np.allclose(a, accel(s.mass, s.pos), rtol=1e-13, atol=1e-13)
    h = 1e-6
    jd = (accel(s.mass, s.pos + h * s.vel) - accel(s.mass, s.pos - h * s.vel)) / (2 * h)
    assert np.allclose(j, jd, rtol=1e-6, atol=1e-8)
    # momentum conservation: sum m a = 0
    assert np.abs(s.mass @ a).max() < 1e-13


def test_figure8_hermite_returns_after_one_period():
    s = preset("figure8")
    it = integrate(Hermite(s.mass, s.pos, s.vel, eta=0.01), s.period)
    assert np.abs(it.x - s.pos).max() < 1e-6
    assert np.abs(it.v - s.vel).max() < 1e-6


def test_hermite_converges_with_fourth_order_in_eta():
    """Position error ~ eta^4 (a 4th-order method). The energy error converges at least as fast; we measure
    ~eta^5 because the Hermite corrector is time-symmetric to leading order (Kokubo et al. 1998)."""
    s = preset("figure8")
    t_end = 2.0
    e0 = energy(s.mass, s.pos, s.vel)
    ref = integrate(IAS15(s.mass, s.pos, s.vel, tol=1e-12), t_end).x
    etas = np.array([0.08, 0.04, 0.02])
    derr, xerr = [], []
    for eta in etas:
        it = integrate(Hermite(s.mass, s.pos, s.vel, eta=eta), t_end)
        derr.append(abs(energy(s.mass, it.x, it.v) - e0) / abs(e0))
        xerr.append(np.abs(it.x - ref).max())
    slope_x = np.polyfit(np.log(etas), np.log(xerr), 1)[0]
    slope_e = np.polyfit(np.log(etas), np.log(derr), 1)[0]
    assert 3.7 < slope_x < 4.3, (slope_x, xerr)
    assert 3.7 < slope_e < 5.3, (slope_e, derr)


def test_aarseth_criterion_runs_accurately():
    s = preset("figure8")
    it = integrate(Hermite(s.mass, s.pos, s.vel, eta=0.01, criterion="aarseth"), s.period)
    assert np.abs(it.x - s.pos).max() < 1e-4
    assert it.steps < 5000


@pytest.mark.parametrize("cls,order", [(Leapfrog, 2), (RK4, 4)])
def test_fixed_step_methods_converge_with_their_order(cls, order):
    s = preset("figure8")
    t_end = 1.0
    ref = integrate(IAS15(s.mass, s.pos, s.vel, tol=1e-12), t_end).x
    dts = np.array([0.02, 0.01, 0.005])
    errs = [np.abs(integrate(cls(s.mass, s.pos, s.vel, dt=dt), t_end).x - ref).max() for dt in dts]
    slope = np.polyfit(np.log(dts), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.3, (slope, errs)


def test_leapfrog_is_symplectic_no_energy_drift():
    s = preset("figure8")
    e0 = energy(s.mass, s.pos, s.vel)
    it = Leapfrog(s.mass, s.pos, s.vel, dt=0.01)
    errs = []
    for k in range(1, 6):
        integrate(it, k * s.period)
        errs.append(abs(energy(s.mass, it.x, it.v) - e0) / abs(e0))
    assert max(errs) < 1e-3 and errs[-1] < 3 * errs[0] + 1e-6  # bounded, not growing


def test_highorder_conserves_energy_to_machine_precision_on_figure8():
    cfg = RunConfig(preset="figure8", integrator="highorder", t_end=100.0, tol=1e-7, max_samples=50)
    res = run(None, cfg)
    assert res.status == "ok"
    assert np.abs(res.rel_energy_error).max() < 1e-12
    assert np.abs(res.ang_mom_error).max() < 1e-12
    # still the figure eight: body 2 passes through the origin every half period
    assert np.abs(res.pos[-1]).max() < 1.2


@pytest.mark.parametrize("name,tol", [("lagrange", 1e-10), ("butterfly1", 1e-5), ("moth1", 1e-5)])
def test_periodic_presets_return(name, tol):
    s = preset(name)
    it = integrate(IAS15(s.mass, s.pos, s.vel, tol=1e-10), s.period)
    assert np.abs(it.x - s.pos).max() < tol
    assert np.abs(it.v - s.vel).max() < tol


def test_sun_jupiter_saturn_energy_and_periods():
    s = preset("sun-jupiter-saturn")
    year = 2 * np.pi
    it = integrate(IAS15(s.mass, s.pos, s.vel), 11.86 * year)  # one Jupiter orbit
    e0 = energy(s.mass, s.pos, s.vel)
    assert abs(energy(s.mass, it.x, it.v) - e0) / abs(e0) < 1e-12
    rel = it.x[1] - it.x[0]
    ang = np.degrees(np.arctan2(rel[1], rel[0]))
    assert abs(ang) < 5.0  # Jupiter back near its start after 11.86 yr (Saturn perturbs a little)
    assert np.allclose(
        angular_momentum(s.mass, it.x, it.v), angular_momentum(s.mass, s.pos, s.vel), rtol=1e-11
    )


needs_rebound = pytest.mark.skipif(
    importlib.util.find_spec("rebound") is None, reason="REBOUND not installed"
)


@needs_rebound
def test_highorder_matches_rebound_on_pythagorean_at_t10():
    from backends.nbody.reference import integrate_to

    s = preset("pythagorean")
    it = integrate(IAS15(s.mass, s.pos, s.vel, tol=1e-9), 10.0)
    xr, vr, _ = integrate_to(s.mass, s.pos, s.vel, 10.0, tol=1e-9)
    assert np.abs(it.x - xr).max() < 1e-6
    assert np.abs(it.v - vr).max() < 1e-6


def test_pythagorean_outcome():
    """Szebehely & Peters (1967): the lightest body (m=3) is ejected near t ~ 60-70 and the bodies of mass 4
    and 5 stay as a tight, very eccentric binary."""
    res = run(None, RunConfig(preset="pythagorean", integrator="highorder", t_end=70.0, max_samples=100))
    esc = [e for e in res.events if e.kind == "escape"]
    assert len(esc) == 1 and esc[0].bodies == (0,)
    assert 55 < esc[0].t < 70
    assert 0.95 < esc[0].value < 1.0
    assert "binary (1,2)" in esc[0].text
    assert any(e.kind == "close" for e in res.events)
    assert abs(res.rel_energy_error[-1]) < 1e-8
