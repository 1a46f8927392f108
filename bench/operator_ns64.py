"""Navier-Stokes nu = 1e-3 at 64 x 64, 10 given -> 40 predicted unit-time snapshots (the FNO paper's setting;
its FNO-3D 0.0086 and FNO-2D 0.0128 with 1,000 training sequences), under a time budget.

Data from our solver (``visual-lab run operator generate --model ns --n 64 --steps 49 --t-in 10``: frames
t = 0..49, x = the first 10, y = the other 40). Model: the spatiotemporal FNO (``fno3d``: a 3D neuraloperator
FNO over (x, y, t), the FNO paper's FNO-3D: 8 spatial / 8 time modes per side, width 20), trained with the
relative L2 loss and a one-cycle schedule whose length is planned from a few timed steps to fill ``--budget``.
The score is the paper's: mean over test sequences of the relative L2 error of the whole predicted (t, x, y)
block.

    nice .venv/bin/python bench/operator_ns64.py --data /tmp/ns64.npz --n-test 100 --budget 3600
    (data: visual-lab run operator generate --model ns --count 1100 --n 64 --steps 49 --t-in 10 \\
           --out /tmp/ns64.npz)
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from backends.operator import checkpoint, data  # noqa: E402
from backends.operator.models import ModelConfig  # noqa: E402
from backends.operator.train import TrainConfig, batch_starts, evaluate, make_model, step_seconds, train  # noqa: E402
from bench.operator_common import report  # noqa: E402

CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="NPZ or Zarr store of NS sequences (x: 10 frames, y: 40)")
    ap.add_argument("--n-train", type=int, default=0, help="0: every sample not held out")
    ap.add_argument("--n-test", type=int, default=100)
    ap.add_argument("--budget", type=float, default=1800.0, help="seconds for planning + training")
    ap.add_argument("--clock", default="wall", choices=list(CLOCKS), help="wall, or this process's CPU")
    ap.add_argument("--epochs", type=int, default=0, help="fixed epochs instead of planning (0: plan)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=10)
    ap.add_argument("--modes", type=int, default=16, help="neuralop n_modes: 16 = the paper's 8 per side")
    ap.add_argument("--modes-t", type=int, default=16, help="time modes (neuralop count; paper 8 per side)")
    ap.add_argument("--width", type=int, default=20)
    ap.add_argument(
        "--model", default="fno3d", choices=["fno3d", "fno"],
        help="fno3d: the paper's FNO-3D; fno: a 2D FNO with the 10 given frames in and the 40 predicted frames "
             "out as channels (much cheaper per step on a CPU)",
    )  # fmt: skip
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-weights", default=None)
    ap.add_argument("--out", default=None, help="also write the summary JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clock = CLOCKS[args.clock]
    load0 = os.getloadavg()[0]
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {load0:.1f}", flush=True)
    full = data.load(args.data)
    n_tr = args.n_train or len(full) - args.n_test
    tr, te = full.subset(slice(0, n_tr)), full.subset(slice(len(full) - args.n_test, len(full)))
    print(f"data: {len(tr)} train / {len(te)} test at {tr.resolution}^2, {tr.x.shape[1]} -> {tr.y.shape[1]}")
    cfg = ModelConfig(
        kind=args.model, in_channels=tr.x.shape[1], out_channels=tr.y.shape[1], modes=args.modes,
        modes_t=args.modes_t, width=args.width,
    )  # fmt: skip
    model = make_model(cfg, tr, 0)
    w0, k0 = time.perf_counter(), clock()
    costs = {}
    epochs = args.epochs
    if not epochs:
        step = step_seconds(model, tr.x, tr.y, args.batch_size, "l2", clock)
        e0 = clock()
        evaluate(model, te)
        t_eval = clock() - e0
        epoch_s = len(batch_starts(len(tr), args.batch_size)) * step + t_eval
        epochs = max(1, int((0.95 * args.budget - (clock() - k0)) // epoch_s))
        costs = {"step_s": step, "eval_s": t_eval, "epoch_s": epoch_s, "calibration_s": clock() - k0}
    print(f"plan: {epochs} epochs; {costs}", flush=True)
    tc = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=args.lr, schedule="onecycle")
    c0 = time.process_time()
    last, stopped, history = None, "epochs done", []
    for s in train(model, tr, te, tc):
        last = s
        wall = time.perf_counter() - w0
        history.append({"epoch": s.epoch, "test_l2": s.test_l2, "train_loss": s.train_loss, "wall_s": wall})
        print(f"epoch {s.epoch}: train {s.train_loss:.4f}, test rel L2 {s.test_l2:.4f}, wall {wall:.0f} s, "
              f"cpu {time.process_time() - c0:.0f} s, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        if clock() - k0 > args.budget:
            stopped = f"{args.clock} budget"
            break
    ev = evaluate(model, te)
    if args.save_weights:
        checkpoint.save(args.save_weights, model, {"n_test": args.n_test, "resolution": tr.resolution})
    report(
        args, ev=ev, last=last, epochs=epochs, stopped=stopped, w0=w0, c0=c0, load0=load0, tr=tr, te=te,
        cfg=cfg, tc=tc, costs=costs, history=history,
        t_in=int(tr.x.shape[1]),
        t_out=int(tr.y.shape[1]),
    )  # fmt: skip


if __name__ == "__main__":
    main()
