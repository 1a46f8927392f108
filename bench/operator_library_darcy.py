"""Our trainer vs neuraloperator's own ``Trainer`` on the same FNO, data, epochs and optimiser settings.

A. The library's small Darcy set (../shared/data/operator, 1000 train / 50 test at 16x16, x a 0/1 mask):
   test relative L2 at 16x16. The library ships only 16x16 here, so zero-shot at 32x32 is measured in
B. our own Darcy (a in {3, 12}): 1000 train at 16x16, 50 test at 16x16 and at 32x32 (zero-shot).

Both sides: ``neuralop.models.FNO(n_modes=(8, 8), hidden_channels=24, projection_channel_ratio=2)`` (the
library example's model), batch 32, learning rate 1e-2 with weight decay 1e-4 and cosine annealing over the
epochs, H1 training loss; outputs normalised to unit Gaussian from the training set. Differences: the library
example does not normalise inputs and uses its AdamW; ours normalises inputs and uses Adam + L2-type decay.
Errors are computed by one function (mean per-sample relative L2, physical units) for both.

nice .venv/bin/python bench/operator_library_darcy.py [--epochs 15] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from backends.common import drain
from backends.operator import data
from backends.operator.models import ModelConfig
from backends.operator.train import TrainConfig, make_model, predict, rel_l2_per_sample, train

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "operator"


def library_run(tr: data.OperatorData, tests: dict, epochs: int, seed: int) -> tuple[dict, float]:
    from neuralop import H1Loss, LpLoss, Trainer
    from neuralop.data.datasets.tensor_dataset import TensorDataset
    from neuralop.data.transforms.data_processors import DefaultDataProcessor
    from neuralop.data.transforms.normalizers import UnitGaussianNormalizer
    from neuralop.models import FNO
    from neuralop.training import AdamW

    torch.manual_seed(seed)
    x, y = torch.as_tensor(tr.x), torch.as_tensor(tr.y)
    out_norm = UnitGaussianNormalizer(dim=[0, 2, 3])
    out_norm.fit(y)
    proc = DefaultDataProcessor(in_normalizer=None, out_normalizer=out_norm)
    model = FNO(n_modes=(8, 8), in_channels=1, out_channels=1, hidden_channels=24, projection_channel_ratio=2)
    loader = torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    test_loaders = {
        res: torch.utils.data.DataLoader(
            TensorDataset(torch.as_tensor(d.x), torch.as_tensor(d.y)), batch_size=32
        )
        for res, d in tests.items()
    }
    opt = AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    trainer = Trainer(model=model, n_epochs=epochs, device="cpu", data_processor=proc, verbose=False)
    t0 = time.perf_counter()
    trainer.train(
        train_loader=loader,
        test_loaders=test_loaders,
        optimizer=opt,
        scheduler=sched,
        regularizer=False,
        training_loss=H1Loss(d=2),
        eval_losses={"l2": LpLoss(d=2, p=2)},
    )
    seconds = time.perf_counter() - t0
    model.eval()
    errs = {}
    with torch.no_grad():
        for res, d in tests.items():
            out = out_norm.inverse_transform(model(torch.as_tensor(d.x))).numpy()
            errs[res] = float(rel_l2_per_sample(out, d.y).mean())
    return errs, seconds


def our_run(tr: data.OperatorData, tests: dict, epochs: int, seed: int) -> tuple[dict, float]:
    cfg = ModelConfig(kind="fno", modes=8, width=24)
    model = make_model(cfg, tr, seed)
    first = next(iter(tests.values()))
    tc = TrainConfig(
        epochs=epochs, batch_size=32, lr=1e-2, weight_decay=1e-4, schedule="cosine", loss="h1", seed=seed
    )
    t0 = time.perf_counter()
    drain(train(model, tr, first, tc))
    seconds = time.perf_counter() - t0
    return {
        res: float(rel_l2_per_sample(predict(model, d.x), d.y).mean()) for res, d in tests.items()
    }, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    results = {}
    if (SHARED / "darcy_train_16.pt").exists():
        tr, te = data.load_split(SHARED / "darcy_train_16.pt", SHARED / "darcy_test_16.pt")
        results["library set"] = {"ours": our_run(tr, {16: te}, args.epochs, args.seed)}
        results["library set"]["neuralop"] = library_run(tr, {16: te}, args.epochs, args.seed)
        print(json.dumps(results["library set"]), flush=True)
    else:
        print(f"skipped A: {SHARED} absent")
    full16 = drain(data.generate_darcy(16, 1050, seed=1))
    te32 = drain(data.generate_darcy(32, 50, seed=2))
    tr16, te16 = full16.subset(slice(0, 1000)), full16.subset(slice(1000, 1050))
    tests = {16: te16, 32: te32}
    results["our darcy"] = {"ours": our_run(tr16, tests, args.epochs, args.seed)}
    results["our darcy"]["neuralop"] = library_run(tr16, tests, args.epochs, args.seed)
    print(json.dumps(results["our darcy"]), flush=True)
    print("| data | pipeline | test 16x16 | zero-shot 32x32 | train s |")
    for name, r in results.items():
        for who, (errs, sec) in r.items():
            z = f"{errs[32]:.4f}" if 32 in errs else "-"
            print(f"| {name} | {who} | {errs[16]:.4f} | {z} | {sec:.0f} |")


if __name__ == "__main__":
    main()
