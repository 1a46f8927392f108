"""REBOUND IAS15 as an optional reference backend (``pip install rebound``), stepped like our integrators."""

from __future__ import annotations

import numpy as np

from backends.common import UserError
from backends.nbody.integrators import Integrator


def rebound_available() -> bool:
    try:
        import rebound  # noqa: F401
    except ImportError:
        return False
    return True


def make_simulation(mass, pos, vel, eps: float = 0.0, tol: float = 1e-9):
    try:
        import rebound
    except ImportError:
        raise UserError("the REBOUND reference needs the 'rebound' package: pip install rebound") from None
    sim = rebound.Simulation()
    sim.G = 1.0
    sim.integrator = "ias15"
    if hasattr(sim, "ri_ias15"):  # REBOUND 4
        sim.ri_ias15.epsilon = tol
    else:  # REBOUND 5: integrator settings live on the integrator object
        sim.integrator.epsilon = tol
    sim.softening = eps
    for m, x, v in zip(mass, pos, vel):
        sim.add(
            m=float(m),
            x=float(x[0]),
            y=float(x[1]),
            z=float(x[2]),
            vx=float(v[0]),
            vy=float(v[1]),
            vz=float(v[2]),
        )
    return sim


def state(sim) -> tuple[np.ndarray, np.ndarray]:
    n = sim.N
    x = np.empty((n, 3))
    v = np.empty((n, 3))
    sim.serialize_particle_data(xyz=x, vxvyvz=v)
    return x, v


def integrate_to(mass, pos, vel, t_end: float, eps: float = 0.0, tol: float = 1e-9):
    """(positions, velocities, steps) after integrating to exactly ``t_end`` with REBOUND IAS15."""
    sim = make_simulation(mass, pos, vel, eps, tol)
    sim.integrate(t_end, exact_finish_time=1)
    x, v = state(sim)
    return x, v, sim.steps_done


class ReboundIAS15(Integrator):
    """REBOUND's IAS15 one step at a time (never beyond ``dt_max``). Force evaluations are not exposed by
    REBOUND, so ``force_evals`` stays -1 (reported as n/a)."""

    name = "rebound"
    adaptive = True

    def __init__(self, mass, x, v, eps=0.0, t=0.0, tol: float = 1e-9):
        super().__init__(mass, x, v, eps, t)
        self.sim = make_simulation(self.mass, self.x, self.v, eps, tol)
        self.force_evals = -1

    def step(self, dt_max: float) -> float:
        sim = self.sim
        t0 = sim.t
        if sim.dt > dt_max:
            sim.dt = dt_max
        sim.steps(1) if hasattr(sim, "steps") and callable(sim.steps) else sim.step()
        self.x, self.v = state(sim)
        self.t = sim.t
        self.steps = sim.steps_done
        self.last_dt = sim.t - t0
        return self.last_dt
