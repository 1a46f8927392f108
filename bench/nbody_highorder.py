"""Our IAS15 (compiled with numba, and the numpy fallback) vs REBOUND IAS15 (C) on the figure-eight to t = 100,
same epsilon, same run. Ours is stepped from Python one step at a time, as the panel and the CLI use it; the
numba compilation happens in a warm-up before the timed runs (and is cached on disk afterwards).

.venv/bin/python bench/nbody_highorder.py
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from backends.nbody.core import energy, preset
from backends.nbody.integrators import IAS15
from backends.nbody.reference import make_simulation, state


def ours(s, t_end, tol, criterion, compiled=None):
    it = IAS15(s.mass, s.pos, s.vel, tol=tol, criterion=criterion, compiled=compiled)
    t0 = time.perf_counter()
    while it.t < t_end * (1 - 1e-15):
        it.step(t_end - it.t)
    return time.perf_counter() - t0, it.x, it.v, it.steps


def rebound_run(s, t_end, tol):
    sim = make_simulation(s.mass, s.pos, s.vel, tol=tol)
    t0 = time.perf_counter()
    sim.integrate(t_end, exact_finish_time=1)
    wall = time.perf_counter() - t0
    x, v = state(sim)
    return wall, x, v, sim.steps_done


def main() -> None:
    s = preset("figure8")
    t_end = 100.0
    e0 = energy(s.mass, s.pos, s.vel)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; figure-eight to t={t_end}"
    )
    print("| run | epsilon | wall [s] | steps | final abs(dE/E) | wall ratio ours/REBOUND |")
    print("|---|---|---|---|---|---|")
    ours(s, 0.1, 1e-9, "prs23")  # warm-up: numba compile / cache load
    for tol in (1e-9, 1e-7):
        wr, xr, vr, nr = rebound_run(s, t_end, tol)
        der = abs(energy(s.mass, xr, vr) - e0) / abs(e0)
        print(f"| REBOUND IAS15 (PRS23) | {tol:g} | {wr:.3f} | {nr} | {der:.1e} | 1 |")
        for compiled in (True, False):
            for crit in ("prs23", "global"):
                wo, xo, vo, no = ours(s, t_end, tol, crit, compiled)
                deo = abs(energy(s.mass, xo, vo) - e0) / abs(e0)
                name = f"ours IAS15 {'compiled' if compiled else 'numpy'} ({crit})"
                print(f"| {name} | {tol:g} | {wo:.3f} | {no} | {deo:.1e} | {wo / wr:.1f} |")
                if crit == "prs23":
                    dx = np.abs(xo - xr).max()
            what = "compiled" if compiled else "numpy"
            print(f"|  max position difference ours {what} (prs23) vs REBOUND | | | | {dx:.1e} | |")


if __name__ == "__main__":
    main()
