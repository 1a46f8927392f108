"""Headless CLI: ``visual-lab run threebody --preset figure8 --integrator hermite --eta 0.01 --t-end 100
--out run.npz`` writes t, pos, vel, mass, energy, steps, force_evals (+ dt, events) and prints one summary line.
``visual-lab run threebody train-policy ...`` trains the learned time-stepping policy instead."""

from __future__ import annotations

from backends.common import UserError
from backends.nbody.core import PRESETS
from backends.nbody.io import save_result
from backends.nbody.run import INTEGRATORS, MAX_STEPS, MAX_T_END, RunConfig, run, system_for
from backends.options import ArgParser, Bound, check
from backends.safeio import check_writable

# The documented range of every numeric option (docs/options.md is generated from this table); RunConfig
# checks the combinations (t-end / dt steps for the fixed-step integrators).
BOUNDS = {
    "eta": Bound(0, 1, open_lo=True, note="fraction of the collision time"),
    "dt": Bound(1e-9, 1e3, note=f"and t-end / dt <= {MAX_STEPS:,} steps for leapfrog / rk4"),
    "tol": Bound(1e-16, 1e-2, note="IAS15 epsilon"),
    "t_end": Bound(0, MAX_T_END, open_lo=True, note="time units"),
    "softening": Bound(0, 1e3),
    "seed": Bound(0, 2**63 - 1),
    "n_bodies": Bound(2, 64),
}
MEMORY = (
    "the trajectory is recorded at most `max_samples` (2,000) times: `2,000 x n_bodies x 6 x 8` bytes "
    "(under 7 MB for 64 bodies); fixed-step runs are capped at 20,000,000 steps (t-end / dt)."
)


def build_parser() -> ArgParser:
    p = ArgParser(prog="visual-lab run threebody", description="Integrate a three-body (N-body) system.")
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
    parser = build_parser()
    args = check(parser.parse_args(argv), BOUNDS, parser)
    if args.out:
        check_writable(
            args.out, suffixes=(".npz",), inputs=[args.policy] if args.policy else (), what="--out"
        )
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
