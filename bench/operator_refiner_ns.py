"""Spectral-Refiner on a small Navier-Stokes set: error above the median wavenumber before/after fine-tuning.

Data: our solver, nu = 1e-3, FNO forcing, n x n, frames ``--frame-dt`` apart (``--steps`` + 1 of them), the
first 10 given, the rest predicted by a spatiotemporal FNO (fno3d). Train it for ``--epochs``; then refine
copies of the trained model (``--variants``): the last spectral conv widened to every spatial mode, all else
frozen, fine-tuned for ``--refine-steps`` optimiser steps against the H^-1 norm of the Navier-Stokes residual
(on the test inputs, no targets, or on the training inputs) or against the H^-1 misfit to the training targets.
Reports the test relative L2, the relative error carried by wavenumbers above the median, and each
refinement's wall time as a share of the training's (same run, same machine).

nice .venv/bin/python bench/operator_refiner_ns.py --data /tmp/ns32f.npz --frame-dt 0.25 --steps 29 --epochs 20
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time

import torch

from backends.common import drain
from backends.operator import data
from backends.operator.models import ModelConfig
from backends.operator.refine import DEFAULTS, refine
from backends.operator.train import TrainConfig, evaluate, make_model, predict, train


def _error_spectrum(pred, true) -> list[float]:
    """Share of the squared error in each integer |k| shell (where the error sits: low modes or truncated)."""
    _, e = data.energy_spectrum(pred - true)
    return [round(float(v), 4) for v in e / e.sum()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--count", type=int, default=120)
    ap.add_argument("--n-test", type=int, default=20)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--refine-steps", type=int, default=40, help="optimiser steps of each refinement")
    ap.add_argument("--refine-lr", type=float, default=0, help="0: the objective's default (refine.DEFAULTS)")
    ap.add_argument("--refine-batch", type=int, default=0, help="0: the objective's default")
    ap.add_argument("--modes", type=int, default=8, help="neuralop n_modes per spatial axis (8: |k| <= 4)")
    ap.add_argument("--modes-t", type=int, default=6)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--frame-dt", type=float, default=1.0, help="time between frames of generated data")
    ap.add_argument(
        "--variants",
        default="residual-test,residual-train,hminus1",
        help="refinements of copies of the trained model: residual-test (the paper's residual on the "
        "test inputs, no targets), residual-train, hminus1 (data misfit)",
    )
    ap.add_argument("--out", default=None, help="also write the JSON here")
    ap.add_argument("--data", default=None, help="reuse an NPZ written by a previous run")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    if args.data and os.path.exists(args.data):
        ds = data.load(args.data)
    else:
        ds = drain(
            data.generate_ns(
                args.n, args.count, nu=1e-3, steps=args.steps, t_in=10, batch=40, frame_dt=args.frame_dt
            )
        )
        if args.data:
            data.save_npz(args.data, ds)
    print(f"data: {len(ds)} sequences at {ds.resolution}^2, {ds.x.shape[1]} given -> {ds.y.shape[1]} predicted, "
          f"{ds.meta.get('seconds', 0):.0f} s", flush=True)  # fmt: skip
    tr, te = ds.subset(slice(0, len(ds) - args.n_test)), ds.subset(slice(len(ds) - args.n_test, len(ds)))
    cfg = ModelConfig(
        kind="fno3d", in_channels=ds.x.shape[1], out_channels=ds.y.shape[1], modes=args.modes, width=args.width,
        modes_t=args.modes_t,
    )  # fmt: skip
    model = make_model(cfg, tr, 0)
    t0 = time.perf_counter()
    for s in train(
        model, tr, te, TrainConfig(epochs=args.epochs, batch_size=10, lr=args.lr, schedule="cosine")
    ):
        if s.epoch % 5 == 0 or s.epoch == args.epochs:
            print(f"epoch {s.epoch}: test rel L2 {s.test_l2:.4f}", flush=True)
    t_train = time.perf_counter() - t0
    before = _scores(model, te)
    print(f"trained: rel L2 {before['rel_l2']:.4f}, above the median k {before['hf']:.4g} "
          f"({before['hf'] / before['rel_l2']:.0%} of it); error energy per |k| shell {before['error_spectrum']}",
          flush=True)  # fmt: skip
    runs = {}
    for variant in args.variants.split(","):
        objective, _, on = variant.partition("-")
        m = copy.deepcopy(model)
        inputs = te.x if on == "test" else None
        lr, bs = args.refine_lr or DEFAULTS[objective][0], args.refine_batch or DEFAULTS[objective][1]
        epochs = max(1, round(args.refine_steps * bs / len(te.x if on == "test" else tr.x)))
        t0 = time.perf_counter()
        tc = TrainConfig(epochs=epochs, batch_size=bs, lr=lr, schedule="none")
        for s in refine(m, tr, te, tc, objective=objective, inputs=inputs):
            print(
                f"{variant} epoch {s.epoch}: loss {s.train_loss:.4g}, test rel L2 {s.test_l2:.4f}", flush=True
            )
        seconds = time.perf_counter() - t0
        after = _scores(m, te) | {"seconds": seconds, "cost_ratio": seconds / t_train, "epochs": epochs,
                                  "batch": bs, "lr": lr}  # fmt: skip
        print(f"{variant}: rel L2 {before['rel_l2']:.4f} -> {after['rel_l2']:.4f}, above the median k "
              f"{before['hf']:.4g} -> {after['hf']:.4g} (x{after['hf'] / before['hf']:.2f}), "
              f"{seconds:.0f} s = {after['cost_ratio']:.1%} of training", flush=True)  # fmt: skip
        runs[variant] = after
    out = {
        "n": ds.resolution, "frame_dt": ds.meta.get("frame_dt", 1.0), "modes": args.modes,
        "modes_t": args.modes_t, "width": args.width, "train": len(tr), "test": len(te), "epochs": args.epochs,
        "refine_steps": args.refine_steps, "before": before, "refined": runs,
        "median_wavenumber": data.median_wavenumber(ds.resolution), "train_seconds": t_train,
    }  # fmt: skip
    print(json.dumps(out))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(out, f, indent=1)


def _scores(model, te) -> dict:
    pred = predict(model, te.x)
    return {"rel_l2": evaluate(model, te)["rel_l2"], "hf": data.high_frequency_error(pred, te.y),
            "error_spectrum": _error_spectrum(pred, te.y)}  # fmt: skip


if __name__ == "__main__":
    main()
