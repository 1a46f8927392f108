"""Batched torch IAS15 ensemble (escape map of the free-fall three-body problem) vs a loop of REBOUND IAS15.

Both integrate the same systems to the same stop times (ours decides when a system escapes / is flagged; REBOUND
then integrates each of those systems to exactly that time with the same epsilon). REBOUND is run over a
random subset and extrapolated linearly to the whole grid (printed as such).

    .venv/bin/python bench/nbody_ensemble.py --n 100 --subset 300
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from backends.nbody.ensemble import CLOSE, EnsembleConfig, escape_map, grid_initial_conditions
from backends.nbody.reference import integrate_to


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100, help="grid side (n*n systems)")
    ap.add_argument("--subset", type=int, default=300, help="systems run through REBOUND")
    ap.add_argument("--t-end", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="")
    ap.add_argument("--device", default="cpu", help="torch device of the batched integrator (cpu, cuda)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = EnsembleConfig(nx=args.n, ny=args.n, t_end=args.t_end, device=args.device)
    gen = escape_map(cfg)
    while True:
        try:
            p = next(gen)
            print(p.message, flush=True)
        except StopIteration as stop:
            res = stop.value
            break
    ours = res.wall_s
    print("ours:", res.summary())
    xs, ys, pos, vel, _ = grid_initial_conditions(cfg)
    t_stop = np.where(np.isnan(res.escape_time), 0.0, res.escape_time).ravel()
    # stop times of all systems: escape time, flag time or t_end
    status = res.status.ravel()
    rng = np.random.default_rng(0)
    pick = rng.choice(pos.shape[0], size=min(args.subset, pos.shape[0]), replace=False)
    # REBOUND integrates each picked system to the time ours stopped it
    from backends.nbody.ensemble import integrate_batch

    g2 = integrate_batch(
        np.asarray(cfg.masses),
        pos[pick],
        vel[pick],
        cfg.t_end,
        cfg.tol,
        progress_every_s=1e9,
        device=args.device,
        softening=cfg.softening,
        escape_radius=cfg.escape_radius,
        close_radius=cfg.close_radius,
    )
    while True:
        try:
            next(g2)
        except StopIteration as stop:
            sub = stop.value
            break
    t0 = time.perf_counter()
    agree = 0
    for k, i in enumerate(pick):
        ts = float(sub["t_stop"][k])
        if ts <= 0:
            continue
        xr, _, _ = integrate_to(np.asarray(cfg.masses), pos[i], vel[i], ts, eps=cfg.softening, tol=cfg.tol)
        if sub["status"][k] != CLOSE:
            agree += int(np.abs(xr - sub["x"][k]).max() < 1e-3)
    reb_sub = time.perf_counter() - t0
    reb_total = reb_sub * pos.shape[0] / len(pick)
    n_ok = int(np.sum(sub["status"] != CLOSE))
    lines = [
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads, device {args.device}",
        f"systems: {pos.shape[0]} ({args.n}x{args.n}), t_end={cfg.t_end}, epsilon={cfg.tol}",
        f"ours (batched torch IAS15): {ours:.1f} s = {pos.shape[0] / ours:.1f} systems/s",
        f"REBOUND IAS15 loop: {reb_sub:.2f} s for {len(pick)} systems -> extrapolated {reb_total:.1f} s",
        f"ratio (REBOUND loop / ours): {reb_total / ours:.2f}x",
        f"final positions agree with REBOUND to 1e-3 in {agree}/{n_ok} unflagged subset systems",
        f"status counts (bound, escaped, close-encounter flagged): "
        f"{int(np.sum(status == 1))}, {int(np.sum(status == 2))}, {int(np.sum(status == 3))}",
        f"worst |dE/E| of unflagged systems: {np.nanmax(res.energy_error[res.status != CLOSE]):.2e}",
    ]
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
    _ = t_stop


if __name__ == "__main__":
    main()
