"""Darcy data generation: which solver is fastest for a data set? Sparse direct (SuperLU), Jacobi-PCG, and
deflated CG with Krylov recycling over similarity-sorted systems (the SKR idea), same systems, same run.

nice .venv/bin/python bench/operator_darcy_solvers.py [--n 85] [--count 60] [--tol 1e-8]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from backends.common import drain
from backends.pde.darcy import darcy_coefficients, direct_solve, solve_sequence


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=85)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--tol", type=float, default=1e-8)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    a = darcy_coefficients(args.n, args.count, seed=0)
    w, c = time.perf_counter(), time.process_time()
    ref = np.stack([direct_solve(x) for x in a])
    rows = [("sparse direct (SuperLU)", "-", time.perf_counter() - w, time.process_time() - c, 0.0)]
    for name, rec in (("Jacobi-PCG", False), ("recycled deflated CG (k 16, m 32, sorted)", True)):
        w, c = time.perf_counter(), time.process_time()
        r = drain(solve_sequence(a, recycle=rec, sort=rec, tol=args.tol))
        err = float(np.abs(r.u - ref).max() / np.abs(ref).max())
        rows.append((name, int(r.iterations.sum()), time.perf_counter() - w, time.process_time() - c, err))
    print(f"{args.count} systems at {args.n}x{args.n}, tol {args.tol:g}")
    print("| solver | iterations | wall s | CPU s | max rel. diff to direct |")
    for name, it, wall, cpu, err in rows:
        print(f"| {name} | {it} | {wall:.2f} | {cpu:.2f} | {err:.1e} |")


if __name__ == "__main__":
    main()
