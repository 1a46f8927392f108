"""FNO on our Darcy data at 85 x 85 (the FNO paper's setting: 1000 train / 100 test; paper: rel L2 0.0108).

Trains under a CPU-time budget (process CPU seconds, so other load on a shared machine does not count) and
a wall-time cap; prints the test error per epoch and a JSON summary line.

nice .venv/bin/python bench/operator_darcy85.py --data /tmp/darcy85.npz [--epochs 14] [--cpu-budget 1800]
(generate the data with: visual-lab run operator generate --model darcy --count 1100 --n 85 --out /tmp/darcy85.npz)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from backends.operator import checkpoint, data
from backends.operator.models import ModelConfig
from backends.operator.train import TrainConfig, evaluate, make_model, train


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--modes", type=int, default=12)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu-budget", type=float, default=1800.0, help="process CPU seconds")
    ap.add_argument("--wall-budget", type=float, default=4200.0, help="wall seconds")
    ap.add_argument("--save-weights", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    full = data.load(args.data)
    tr = full.subset(slice(0, args.n_train))
    te = full.subset(slice(len(full) - args.n_test, len(full)))
    cfg = ModelConfig(kind="fno", modes=args.modes, width=args.width)
    model = make_model(cfg, tr, 0)
    tc = TrainConfig(epochs=args.epochs, batch_size=20, lr=args.lr, schedule="cosine")
    c0, w0 = time.process_time(), time.perf_counter()
    last = None
    stopped = "epochs done"
    for s in train(model, tr, te, tc):
        last = s
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        print(f"epoch {s.epoch}: train {s.train_loss:.4f}, test rel L2 {s.test_l2:.4f}, cpu {cpu:.0f} s, "
              f"wall {wall:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        if cpu > args.cpu_budget:
            stopped = "cpu budget"
            break
        if wall > args.wall_budget:
            stopped = "wall budget"
            break
    ev = evaluate(model, te)
    if args.save_weights:
        checkpoint.save(args.save_weights, model, {"n_test": args.n_test, "resolution": tr.resolution})
    out = {
        "rel_l2": ev["rel_l2"],
        "resolution": ev["resolution"],
        "epochs_done": last.epoch if last else 0,
        "epochs_planned": args.epochs,
        "stopped": stopped,
        "cpu_seconds": time.process_time() - c0,
        "wall_seconds": time.perf_counter() - w0,
        "threads": args.threads,
        "n_train": len(tr),
        "n_test": len(te),
        "model": cfg.to_dict(),
        "lr": args.lr,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
