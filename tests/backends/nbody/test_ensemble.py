"""Batched torch IAS15 ensembles agree with our single-system integrator and with REBOUND."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import UserError, drain
from backends.nbody.core import energy, preset
from backends.nbody.ensemble import DONE, ESCAPED, EnsembleConfig, escape_map, integrate_batch
from backends.nbody.integrators import IAS15


@pytest.mark.parametrize("method", ["compiled", "torch"])
def test_batch_matches_single_system_ias15_and_conserves_energy(method):
    pytest.importorskip("torch")
    if method == "compiled":
        pytest.importorskip("numba")
    eq = [preset("random", seed=k) for k in (1, 2, 3)]  # seed 2 has a close pass at r = 1.7e-4
    pos = np.stack([s.pos for s in eq] * 8)  # 24+ systems -> the torch path
    vel = np.stack([s.vel for s in eq] * 8)
    t_end = 2.0
    out = drain(
        integrate_batch(
            eq[0].mass,
            pos,
            vel,
            t_end,
            tol=1e-9,
            escape_radius=50.0,
            tail=4,
            close_radius=1e-6,
            method=method,
        )
    )
    assert np.all(out["status"] == DONE), out["status"]
    for k, s in enumerate(eq):
        it = IAS15(s.mass, s.pos, s.vel, tol=1e-9)
        while it.t < t_end * (1 - 1e-15):
            it.step(t_end - it.t)
        assert np.abs(out["x"][k] - it.x).max() < 1e-7  # same method; the close pass amplifies roundoff
        e0 = energy(s.mass, s.pos, s.vel)
        assert abs(energy(s.mass, out["x"][k], out["v"][k]) - e0) / abs(e0) < 1e-8
    assert np.array_equal(out["x"][0], out["x"][len(eq)])  # identical systems, identical results


def test_escape_map_small_grid_and_against_rebound():
    pytest.importorskip("torch")
    cfg = EnsembleConfig(nx=5, ny=4, t_end=2.5)
    res = drain(escape_map(cfg))
    assert res.escape_time.shape == (4, 5) and res.status.shape == (4, 5)
    ok = res.status != 3
    assert np.nanmax(res.energy_error[ok]) < 1e-8
    esc = res.status == ESCAPED
    assert np.all(np.isfinite(res.escape_time[esc])) and np.all(np.isnan(res.escape_time[~esc]))
    assert np.all((res.escape_time[esc] > 0) & (res.escape_time[esc] <= cfg.t_end))
    rebound = pytest.importorskip("rebound")
    from backends.nbody.ensemble import grid_initial_conditions

    _, _, pos, vel, _ = grid_initial_conditions(cfg)
    k = 7
    sim = rebound.Simulation()
    sim.softening = cfg.softening
    for m, x in zip(cfg.masses, pos[k]):
        sim.add(m=m, x=x[0], y=x[1], z=x[2])
    sim.integrate(2.0)
    out = drain(
        integrate_batch(np.ones(3), pos[[k]], vel[[k]], 2.0, softening=cfg.softening, escape_radius=1e9)
    )
    xr = np.array([[p.x, p.y, p.z] for p in sim.particles])
    assert np.abs(out["x"][0] - xr).max() < 1e-6


def test_bad_ensemble_config():
    with pytest.raises(UserError):
        EnsembleConfig(nx=0)
    with pytest.raises(UserError):
        EnsembleConfig(t_end=-1)
    with pytest.raises(UserError):
        EnsembleConfig(masses=(1.0, 0.0, 1.0))
