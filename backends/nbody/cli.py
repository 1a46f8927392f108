"""Headless CLI: ``visual-lab run threebody --preset figure8 --integrator hermite --eta 0.01 --t-end 100
--out run.npz`` writes t, pos, vel, mass, energy, steps, force_evals (+ dt, events) and prints one summary line.
``visual-lab run threebody train-policy ...`` trains the learned time-stepping policy instead."""

from __future__ import annotations

import argparse

from backends.common import UserError
from backends.nbody.core import PRESETS
from backends.nbody.io import save_result
from backends.nbody.run import INTEGRATORS, RunConfig, run, system_for


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # bad flags are user errors: one line, exit 2
        raise UserError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="visual-lab run threebody", description="Integrate a three-body (N-body) system.")
    p.add_argument("--preset", default="figure8", choices=PRESETS)
    p.add_argument("--integrator", default="hermite", choices=INTEGRATORS)
    p.add_argument("--eta", type=float, default=0.01, help="Hermite step factor (x collision time)")
    p.add_argument("--aarseth", action="store_true", help="Hermite: Aarseth's step criterion")
    p.add_argument("--dt", type=float, default=1e-3, help="fixed step of leapfrog / rk4")
    p.add_argument("--tol", type=float, default=1e-9, help="high-order / REBOUND IAS15 epsilon")
    p.add_argument("--t-end", type=float, default=10.0)
    p.add_argument("--softening", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0, help="seed of the random preset")
    p.add_argument("--n-bodies", type=int, default=3, help="bodies of the random preset")
    p.add_argument("--policy", default="", help="weights of the learned policy (default: bundled)")
    p.add_argument("--out", default="", help="NPZ file for the trajectory")
    return p


def main(argv: list[str]) -> int:
    if argv and argv[0] == "train-policy":
        from backends.nbody.train_policy import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    cfg = RunConfig(
        preset=args.preset,
        integrator=args.integrator,
        eta=args.eta,
        dt=args.dt,
        tol=args.tol,
        t_end=args.t_end,
        aarseth=args.aarseth,
        softening=args.softening,
        seed=args.seed,
        n_bodies=args.n_bodies,
        policy=args.policy,
    )
    res = run(system_for(cfg), cfg)
    if args.out:
        save_result(args.out, res)
    print(res.summary())
    if res.status != "ok":
        raise UserError(res.status + (f"; history so far written to {args.out}" if args.out else ""))
    return 0
