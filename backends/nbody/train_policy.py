"""Train / evaluate the learned time-stepping DQN.

python -m backends.nbody.train_policy --episodes 200 --out assets/nbody/dqn_policy.pt
python -m backends.nbody.train_policy --evaluate --policy assets/nbody/dqn_policy.pt --n-systems 20
visual-lab run threebody train-policy --episodes 200 --out policy.pt
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from backends.common import UserError
from backends.nbody.learned import ACTIONS, DEFAULT_POLICY, TrainConfig, evaluate_runs, load_policy, train


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UserError(f"{self.prog}: {message}")


def main(argv: list[str]) -> int:
    ap = _Parser(
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
    ap.add_argument("--reward", default="cumulative", help="cumulative or interval energy term")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.evaluate:
        pol = load_policy(args.policy or None)
        seeds = range(10**9, 10**9 + args.n_systems)  # never seen in training
        rows = []
        for k, eta in enumerate(ACTIONS):
            rows.append((f"fixed eta={eta:.2e}", evaluate_runs(None, seeds, fixed=k)))
        rows.append(("DQN policy", evaluate_runs(pol, seeds)))
        print(f"held-out random systems: {args.n_systems}, t_end=1, decisions every 0.1")
        print(
            "| stepping | mean log10 final abs(dE/E) | mean final abs(dE/E) | mean force evaluations "
            "| blow-ups | geo-mean eta |"
        )
        print("|---|---|---|---|---|---|")
        for name, d in rows:
            lg, ar = np.mean(np.log10(d["de"])), np.mean(d["de"])
            et = np.exp(np.mean(np.log(d["etas"])))
            print(f"| {name} | {lg:.2f} | {ar:.1e} | {np.mean(d['evals']):.0f} | {d['blown']} | {et:.2e} |")
        return 0
    from backends.nbody.learned import EnvConfig

    cfg = TrainConfig(
        episodes=args.episodes, seed=args.seed, env=EnvConfig(w_energy=args.w_energy, reward=args.reward)
    )
    t0 = time.perf_counter()
    gen = train(cfg)
    while True:
        try:
            ep, r, _ = next(gen)
            if ep % 10 == 0 or ep == cfg.episodes:
                print(f"episode {ep}: reward {r:.3f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        except StopIteration as stop:
            pol = stop.value
            break
    out = pol.save(args.out)
    print(f"trained {cfg.episodes} episodes in {time.perf_counter() - t0:.0f} s -> {out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
