"""Darcy dataset at 64^2: recycled deflated CG (sorted sequence) vs plain Jacobi PCG, iterations and wall time.

.venv/bin/python bench/pde_darcy.py [--count 200] [--n 64] [--k 8 16 24]
"""

from __future__ import annotations

import argparse
import os
import platform

import numpy as np

from backends.common import drain
from backends.pde.darcy import darcy_coefficients, solve_sequence


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--k", type=int, nargs="+", default=[8, 16, 24])
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    a = darcy_coefficients(args.n, args.count, seed=0)
    plain = drain(solve_sequence(a, recycle=False, sort=False))
    ip = int(plain.iterations.sum())
    print(f"{args.count} systems at n={args.n}, tol 1e-10 (relative residual)")
    print(f"plain Jacobi-PCG: {ip} iterations, {plain.seconds:.2f} s")
    for k in args.k:
        rec = drain(solve_sequence(a, recycle=True, sort=True, k=k, m=2 * k))
        ir = int(rec.iterations.sum())
        late = rec.iterations[rec.order[-50:]].mean()
        err = float(np.abs(rec.u - plain.u).max() / np.abs(plain.u).max())
        print(
            f"recycled (k={k}, m={2 * k}): {ir} iterations (x{ip / ir:.2f} fewer), {rec.seconds:.2f} s "
            f"(wall x{plain.seconds / rec.seconds:.2f}), last 50 systems mean {late:.0f} "
            f"vs {plain.iterations.mean():.0f} it/system, max rel diff {err:.1e}"
        )


if __name__ == "__main__":
    main()
