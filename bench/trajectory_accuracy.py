"""ETH/UCY leave-one-out accuracy and training time: EigenTrajectory vs constant velocity, same run.

    nice .venv/bin/python bench/trajectory_accuracy.py --epochs 40 --out /tmp/trajectory_accuracy.json

Writes per-scene minADE/minFDE (best of 20), single-sample ADE/FDE, training seconds and inference ms per
window. Runs single-threaded (torch.set_num_threads(1)) so it can share the machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from backends.trajectory.cli import evaluate_scene
from backends.trajectory.data import SCENES

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ethucy"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--scenes", default=",".join(SCENES))
    ap.add_argument("--save-weights", default=None)
    ap.add_argument("--out", default="/tmp/trajectory_accuracy.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for s in args.scenes.split(","):
        r = {"scene": s}
        for model in ("cv", "cv20", "eigentrajectory"):
            t = time.perf_counter()
            res = evaluate_scene(
                args.data,
                s,
                model,
                epochs=args.epochs,
                save_dir=Path(args.save_weights) if args.save_weights else None,
            )
            res["wall_seconds"] = time.perf_counter() - t
            r[model] = res
            print(
                f"{s:6s} {model:16s} minADE {res['minADE']:.3f} minFDE {res['minFDE']:.3f} "
                f"ADE {res['ADE']:.3f} FDE {res['FDE']:.3f}  {res['infer_ms_per_window']:.3f} ms/window"
                + (f"  train {res['train_seconds']:.0f} s" if "train_seconds" in res else ""),
                flush=True,
            )
        rows.append(r)
        Path(args.out).write_text(json.dumps({"epochs": args.epochs, "rows": rows}, indent=2))
    for model in ("cv", "cv20", "eigentrajectory"):
        a = [np.mean([r[model][m] for r in rows]) for m in ("minADE", "minFDE", "ADE", "FDE")]
        print(f"AVG    {model:16s} minADE {a[0]:.3f} minFDE {a[1]:.3f} ADE {a[2]:.3f} FDE {a[3]:.3f}")
    meta = {
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread",
        "epochs": args.epochs,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
