"""Escape-map ensemble (free-fall three-body problem, softening 0.02, t_end = 10) vs a loop of REBOUND IAS15.

Ours runs every system of the grid (default 100 x 100 = 10,000) with the engine of ``EnsembleConfig``
(compiled IAS15 on CPU, torch on a GPU), with 1 thread and with all threads. REBOUND IAS15 then integrates a
random subset of the same systems, each to exactly the time ours stopped it (escape, flag or t_end), once with
REBOUND's default epsilon 1e-9 and once with our epsilon (equal accuracy setting); its loop time is extrapolated
linearly to the whole grid (printed as such). |dE/E| is measured with the softened energy for both.

    .venv/bin/python bench/nbody_ensemble.py --n 100 --subset 1000
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from backends.common import drain
from backends.nbody.core import energy
from backends.nbody.ensemble import (
    CLOSE,
    DONE,
    ESCAPED,
    STALLED,
    EnsembleConfig,
    escape_map,
    grid_initial_conditions,
)
from backends.nbody.reference import integrate_to


def rebound_loop(cfg, pos, vel, t_stop, tol):
    m = np.asarray(cfg.masses, float)
    t0 = time.perf_counter()
    finals = [
        integrate_to(m, pos[k], vel[k], t_stop[k], eps=cfg.softening, tol=tol) if t_stop[k] > 0 else None
        for k in range(len(pos))
    ]
    wall = time.perf_counter() - t0
    de, steps = [], 0
    for k, fin in enumerate(finals):
        if fin is None:
            continue
        e0 = energy(m, pos[k], vel[k], cfg.softening**2)
        de.append(abs((energy(m, fin[0], fin[1], cfg.softening**2) - e0) / e0))
        steps += fin[2]
    return wall, np.asarray(de), steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="grid side (n*n systems)")
    ap.add_argument("--subset", type=int, default=1000, help="systems run through REBOUND")
    ap.add_argument("--t-end", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=0, help="threads of the 'all threads' run (0: all cores)")
    ap.add_argument("--method", default="auto", help="auto, compiled or torch")
    ap.add_argument("--device", default="cpu", help="torch device (torch engine)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads or os.cpu_count())
    base = dict(nx=args.n, ny=args.n, t_end=args.t_end, device=args.device, method=args.method)
    # warm-up: numba compiles (or loads its cache) outside the timed runs
    drain(escape_map(EnsembleConfig(**{**base, "nx": 2, "ny": 2, "t_end": 0.1})))
    runs = {}
    for threads in (1, args.threads or os.cpu_count()):
        if threads in runs:
            continue
        runs[threads] = drain(escape_map(EnsembleConfig(**base, threads=threads)))
        print(f"ours, {threads} thread(s): {runs[threads].summary()}", flush=True)
    res = runs[max(runs)]
    cfg = EnsembleConfig(**base)
    _, _, pos, vel, _ = grid_initial_conditions(cfg)
    nsys = pos.shape[0]
    status = res.status.ravel()
    t_stop = np.where(status == ESCAPED, np.nan_to_num(res.escape_time.ravel()), cfg.t_end)
    rng = np.random.default_rng(0)
    pick = np.sort(rng.choice(nsys, size=min(args.subset, nsys), replace=False))
    pick = pick[status[pick] != CLOSE]  # flagged systems stop at an unknown time: not compared
    # ours may stop a system early only by escape; otherwise at t_end (STALLED: at max_steps, not expected)
    assert not np.any(status == STALLED), "a system hit max_steps"
    reb = {}
    for tol in sorted({1e-9, cfg.tol}):
        reb[tol] = rebound_loop(cfg, pos[pick], vel[pick], t_stop[pick], tol)
    err = res.energy_error.ravel()
    ok = status != CLOSE
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, engine {res.method}, device {args.device}, load avg {os.getloadavg()[0]:.1f}",
        f"systems: {nsys} ({args.n}x{args.n}), t_end={cfg.t_end}, softening={cfg.softening}, ours: epsilon "
        f"{cfg.tol:g} (PRS23), predictor-corrector to {cfg.pc_tol:g}, redo at 1e-9 above |dE/E| {cfg.energy_target:g}",
        f"status counts (bound to t_end, escaped, close-encounter flagged): {int(np.sum(status == DONE))}, "
        f"{int(np.sum(status == ESCAPED))}, {int(np.sum(status == CLOSE))}; redone at eps 1e-9: "
        f"{int(np.sum(res.redone))}",
        f"ours max |dE/E| of unflagged systems: {np.nanmax(err[ok]):.2e} "
        f"(systems above 1e-8: {int(np.sum(err[ok] > 1e-8))}); steps: median {np.median(res.steps):.0f}, "
        f"max {res.steps.max()}",
    ]
    for threads, r in sorted(runs.items()):
        lines.append(f"ours, {threads} thread(s): {r.wall_s:.1f} s = {nsys / r.wall_s:.0f} systems/s")
    for tol, (wall, de, steps) in reb.items():
        total = wall * nsys / len(pick)
        ratios = ", ".join(f"{total / r.wall_s:.1f}x ({t} thr)" for t, r in sorted(runs.items()))
        lines.append(
            f"REBOUND IAS15 loop, epsilon {tol:g}: {wall:.1f} s for {len(pick)} systems ({steps} steps, "
            f"max |dE/E| {de.max():.1e}) -> extrapolated {total:.1f} s; ratio REBOUND/ours: {ratios}"
        )
    print("\n".join(lines))
    if args.out:
        np.savez_compressed(
            args.out,
            x=res.x,
            y=res.y,
            escape_time=res.escape_time,
            status=res.status,
            energy_error=res.energy_error,
            steps=res.steps,
        )


if __name__ == "__main__":
    main()
