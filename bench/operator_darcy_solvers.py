"""Darcy data generation: which solver is fastest for a data set? Sparse direct (SuperLU), Jacobi-PCG,
deflated CG with Krylov recycling over similarity-sorted systems (the SKR idea), and, when pyamg is installed
(a bench-only extra: ``pip install pyamg``), CG preconditioned by smoothed-aggregation algebraic multigrid;
same systems, same run.

nice .venv/bin/python bench/operator_darcy_solvers.py [--n 85] [--count 60] [--tol 1e-8]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from backends.common import drain
from backends.pde.darcy import assemble, darcy_coefficients, direct_solve, embed, solve_sequence


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
    amg = _amg_pcg(a, args.tol, ref)
    if amg:
        rows.append(amg)
    print(f"{args.count} systems at {args.n}x{args.n}, tol {args.tol:g}")
    print("| solver | iterations | wall s | CPU s | max rel. diff to direct |")
    for name, it, wall, cpu, err in rows:
        print(f"| {name} | {it} | {wall:.2f} | {cpu:.2f} | {err:.1e} |")


def _amg_pcg(a: np.ndarray, tol: float, ref: np.ndarray):
    """CG with a smoothed-aggregation AMG preconditioner built per system (each system has its own a(x))."""
    try:
        import pyamg
    except ImportError:
        print("pyamg is not installed: no AMG row")
        return None
    w, c = time.perf_counter(), time.process_time()
    its, out = 0, []
    for x in a:
        A, b = assemble(x)
        residuals: list[float] = []
        u = pyamg.smoothed_aggregation_solver(A).solve(b, tol=tol, accel="cg", residuals=residuals)
        its += len(residuals) - 1
        out.append(embed(u, x.shape[0]))
    err = float(np.abs(np.stack(out) - ref).max() / np.abs(ref).max())
    return ("AMG-PCG (pyamg smoothed aggregation, setup per system)", its, time.perf_counter() - w,
            time.process_time() - c, err)  # fmt: skip


if __name__ == "__main__":
    main()
