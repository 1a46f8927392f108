"""Train / evaluate the learned time-stepping DQN.

python -m backends.nbody.train_policy --episodes 200 --out assets/nbody/dqn_policy.pt
python -m backends.nbody.train_policy --reward final --lam 0.005 --gamma 1 --episodes 3000 --out p.pt
python -m backends.nbody.train_policy --evaluate --policy assets/nbody/dqn_policy.pt --n-systems 60
visual-lab run threebody train-policy --episodes 200 --out policy.pt
"""

from __future__ import annotations

import sys
import time

import numpy as np

from backends.common import UserError, drain
from backends.nbody.learned import (
    ACTIONS,
    DEFAULT_POLICY,
    FEATURES,
    REWARDS,
    EnvConfig,
    TrainConfig,
    evaluate_runs,
    load_policy,
    train,
)
from backends.options import ArgParser, Bound, check

# The documented range of every numeric option (docs/options.md is generated from this table).
BOUNDS = {
    "episodes": Bound(1, 1_000_000, note="about 0.1-1 s each"),
    "seed": Bound(0, 2**63 - 1),
    "threads": Bound(1, 256),
    "n_systems": Bound(1, 100_000, note="evaluation systems, each run with 11 step rules"),
    "w_energy": Bound(0, 1e6),
    "lam": Bound(0, 1e3, note="cost per force evaluation"),
    "lam_range": Bound(1e-9, 1e3, note="both ends; LOW < HIGH"),
    "gamma": Bound(0, 1),
    "buffer": Bound(1, 10_000_000, note="replay transitions, about 100 bytes each"),
    "lr": Bound(0, 1, open_lo=True),
    "batch": Bound(1, 65_536),
    "updates_per_step": Bound(1, 1000),
    "set_lam": Bound(0, 1e3),
    "first_seed": Bound(0, 2**63 - 1),
}
MEMORY = "the replay buffer holds `buffer` transitions of a few hundred bytes (5,000 by default: about 1 MB)."


def build_parser() -> ArgParser:
    ap = ArgParser(
        prog="visual-lab run threebody train-policy", description="DQN for the Hermite step parameter"
    )
    ap.add_argument("--episodes", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(DEFAULT_POLICY))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--evaluate", action="store_true", help="evaluate --policy against every fixed eta")
    ap.add_argument("--policy", default="")
    ap.add_argument("--n-systems", type=int, default=20)
    ap.add_argument("--w-energy", type=float, default=1.0)
    ap.add_argument("--reward", default="cumulative", help=f"one of {', '.join(REWARDS)}")
    ap.add_argument(
        "--lam",
        type=float,
        default=None,
        help="cost per force evaluation (--reward final; default 0.005); with --evaluate: the lambda a "
        "lambda-conditioned policy is run at (default: the one stored in it)",
    )
    ap.add_argument(
        "--lam-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("LOW", "HIGH"),
        help="train one network for all lambda in [LOW, HIGH] (lambda becomes an input); --lam is stored",
    )
    ap.add_argument("--gamma", type=float, default=0.9)
    ap.add_argument("--features", default="basic", help=f"observation: one of {', '.join(FEATURES)}")
    ap.add_argument("--buffer", type=int, default=5000)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--all-actions", action="store_true", help="store all 10 actions at every visited state")
    ap.add_argument("--updates-per-step", type=int, default=1)
    ap.add_argument(
        "--set-lam",
        type=float,
        default=None,
        help="store this lambda in the lambda-conditioned --policy and write it to --out (no training)",
    )
    ap.add_argument("--first-seed", type=int, default=10**9, help="first evaluation seed (held out: >= 1e9)")
    return ap


def main(argv: list[str]) -> int:
    ap = build_parser()
    args = check(ap.parse_args(argv), BOUNDS, ap)
    if args.lam_range and not args.lam_range[0] < args.lam_range[1]:
        raise UserError(f"--lam-range {args.lam_range[0]:g} {args.lam_range[1]:g}: LOW must be < HIGH")
    if not args.evaluate:
        from backends.safeio import check_writable

        check_writable(args.out, suffixes=(".pt",), inputs=[args.policy] if args.policy else (), what="--out")
    import torch

    torch.set_num_threads(args.threads)
    if args.set_lam is not None:
        pol = load_policy(args.policy or None)
        pol.lam = args.set_lam
        print(f"lambda {args.set_lam:g} stored -> {pol.save(args.out)}")
        return 0
    if args.evaluate:
        pol = load_policy(args.policy or None)
        if args.lam is not None:
            pol.lam = args.lam
        seeds = range(args.first_seed, args.first_seed + args.n_systems)  # >= 1e9: never seen in training
        env_cfg = EnvConfig(features=pol.features)
        rows = []
        for k, eta in enumerate(ACTIONS):
            rows.append((f"fixed eta={eta:.2e}", evaluate_runs(None, seeds, env_cfg, fixed=k)))
        rows.append(("DQN policy", evaluate_runs(pol, seeds, env_cfg)))
        at = f", policy at lambda={pol.lam:g}" if pol.lam is not None else ""
        print(f"random systems {seeds.start}..{seeds.stop - 1}, t_end=1, decisions every 0.1{at}")
        print(
            "| stepping | mean log10 final abs(dE/E) | mean final abs(dE/E) | mean force evaluations "
            "| blow-ups | geo-mean eta |"
        )
        print("|---|---|---|---|---|---|")
        for name, d in rows:
            lg, ar = np.mean(np.log10(d["de"])), np.mean(d["de"])
            et = np.exp(np.mean(np.log(d["etas"])))
            print(f"| {name} | {lg:.2f} | {ar:.1e} | {np.mean(d['evals']):.0f} | {d['blown']} | {et:.2e} |")
        print(paired_verdict(rows[:-1], rows[-1][1]))
        return 0
    cfg = TrainConfig(
        episodes=args.episodes,
        seed=args.seed,
        gamma=args.gamma,
        lr=args.lr,
        buffer=args.buffer,
        batch=args.batch,
        all_actions=args.all_actions,
        updates_per_step=args.updates_per_step,
        lam_range=tuple(args.lam_range) if args.lam_range else None,
        env=EnvConfig(
            w_energy=args.w_energy,
            reward=args.reward,
            cost_per_eval=0.005 if args.lam is None else args.lam,
            features=args.features,
        ),
    )
    t0 = time.perf_counter()

    def report(item) -> None:
        ep, r, _ = item
        if ep % 10 == 0 or ep == cfg.episodes:
            print(f"episode {ep}: reward {r:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)

    pol = drain(train(cfg), report)
    out = pol.save(args.out)
    print(f"trained {cfg.episodes} episodes in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


def paired_verdict(fixed_rows, pol: dict) -> str:
    """Paired (same systems) differences of mean log10 |dE/E|, policy minus each fixed eta costing >= the
    policy, with standard errors. The binding comparison for "beats the fixed line" is the cheapest of those
    (the nearest fixed value of equal or higher cost); the dearer ones are more accurate still."""
    cost = float(np.mean(pol["evals"]))
    dearer = [(float(np.mean(d["evals"])), name, d) for name, d in fixed_rows if np.mean(d["evals"]) >= cost]
    if not dearer:
        return f"no fixed eta costs >= {cost:.0f} evaluations: nothing to beat"
    lines = []
    for c, name, d in sorted(dearer, key=lambda z: z[0]):
        diff = np.log10(pol["de"]) - np.log10(d["de"])
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        lines.append(f"  vs {name} ({c:.0f} evals): {diff.mean():+.2f} +- {se:.2f} (paired, log10)")
    near = sorted(dearer, key=lambda z: z[0])[0]
    diff0 = np.mean(np.log10(pol["de"]) - np.log10(near[2]["de"]))
    head = "beats" if diff0 < 0 else "does NOT beat"
    return (
        f"policy ({cost:.0f} evaluations) {head} the nearest fixed eta of equal or higher cost, {near[1]} "
        f"({near[0]:.0f} evaluations), in mean log10 |dE/E|:\n" + "\n".join(lines)
    )


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
