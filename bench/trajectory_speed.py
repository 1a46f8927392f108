"""Inference speed on whole ETH/UCY test scenes: EigenTrajectory vs constant velocity, same run, as ratios.

    nice .venv/bin/python bench/trajectory_speed.py [--weights /tmp/et_weights] [--threads 1]

For each held-out scene: ms per 20-step window (all agents of the window predicted jointly, 20 samples)
for CV (1 sample), CV-20 (heading noise) and EigenTrajectory (weights from --weights/eigentrajectory_<scene>.pt,
or the bundled synthetic model when absent: the speed does not depend on the trained values). Best of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

from backends.trajectory.baselines import constant_velocity, constant_velocity_samples
from backends.trajectory.data import SCENES, load_split
from backends.trajectory.eigentrajectory import ETModel

ROOT = Path(__file__).resolve().parents[1]


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ethucy"))
    ap.add_argument("--weights", default="/tmp/et_weights")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}"
    )
    print(
        f"{'scene':6s} {'windows':>7s} {'agents':>7s} {'CV ms/win':>10s} {'CV20 ms/win':>12s} "
        f"{'ET ms/win':>10s} {'ET/CV20':>8s} {'ET/CV':>8s}"
    )
    for scene in SCENES:
        w = load_split(args.data, scene, "test")
        wp = Path(args.weights) / f"eigentrajectory_{scene}.pt"
        model = ETModel.load(
            wp if wp.is_file() else ROOT / "assets" / "trajectory" / "eigentrajectory_synthetic.pt"
        )
        model.predict(w.subset(range(min(5, w.num_windows))))  # warm-up
        t_cv = best_of(lambda w=w: constant_velocity(w.obs), args.repeat)
        t_cv20 = best_of(lambda w=w: constant_velocity_samples(w.obs), args.repeat)
        t_et = best_of(lambda w=w, model=model: model.predict(w), args.repeat)
        n = w.num_windows
        print(
            f"{scene:6s} {n:7d} {w.num_agents:7d} {1e3 * t_cv / n:10.4f} {1e3 * t_cv20 / n:12.4f} "
            f"{1e3 * t_et / n:10.3f} {t_et / t_cv20:8.1f} {t_et / t_cv:8.0f}"
        )


if __name__ == "__main__":
    main()
