"""Training: one generator, :func:`train`, yields an :class:`EpochStats` per epoch (GUI worker and CLI alike).

Adam with weight decay, a cosine or step learning-rate schedule, mini-batches shuffled by a seeded
generator, the loss on normalised outputs (as neuraloperator's data processor trains), the test error as
relative L2 on physical outputs. Deterministic for a seed on the CPU.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from backends.common import require

from .data import OperatorData, UnitGaussian
from .losses import LOSSES, rel_l2
from .models import ModelConfig, OperatorModel

SCHEDULES = ("cosine", "step", "none")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50  # 1..100000
    batch_size: int = 20  # 1..4096
    lr: float = 1e-3  # (0, 1]
    weight_decay: float = 1e-4  # [0, 1)
    schedule: str = "cosine"  # cosine (to 0 over the epochs) | step | none
    step_size: int = 100  # step schedule: epochs between decays, 1..100000
    gamma: float = 0.5  # step schedule: decay factor, (0, 1]
    loss: str = "l2"  # l2 | h1 | hminus1
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        require(1 <= self.epochs <= 100_000, f"--epochs must be in 1..100000, got {self.epochs}")
        require(1 <= self.batch_size <= 4096, f"--batch-size must be in 1..4096, got {self.batch_size}")
        require(0 < self.lr <= 1, f"--lr must be in (0, 1], got {self.lr}")
        require(0 <= self.weight_decay < 1, f"--weight-decay must be in [0, 1), got {self.weight_decay}")
        require(self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}")
        require(1 <= self.step_size <= 100_000, f"--step-size must be in 1..100000, got {self.step_size}")
        require(0 < self.gamma <= 1, f"--gamma must be in (0, 1], got {self.gamma}")
        require(self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        require(0 <= self.seed < 2**63, f"--seed must be in 0..2^63-1, got {self.seed}")
        require(
            self.device in ("cpu", "cuda", "auto"), f"--device must be cpu, cuda or auto, got {self.device!r}"
        )
        if self.device == "cuda":
            require(torch.cuda.is_available(), "--device cuda: no CUDA device is available")

    @property
    def torch_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    epochs: int
    train_loss: float  # the objective (normalised outputs), mean over batches
    test_l2: float  # mean relative L2 over the test set, physical outputs
    lr: float
    seconds: float  # this epoch's training time (the test evaluation excluded)
    elapsed: float  # total wall time so far

    def to_dict(self) -> dict:
        return asdict(self)


def make_model(cfg: ModelConfig, train: OperatorData, seed: int = 0) -> OperatorModel:
    """Seeded initialisation, normalisers fitted on the training set."""
    require(
        train.x.shape[1] == cfg.in_channels,
        f"data has {train.x.shape[1]} input channels, model {cfg.in_channels}",
    )
    require(
        train.y.shape[1] == cfg.out_channels,
        f"data has {train.y.shape[1]} output channels, model {cfg.out_channels}",
    )
    torch.manual_seed(seed)
    model = OperatorModel(cfg)
    nx, ny = UnitGaussian.fit(train.x), UnitGaussian.fit(train.y)
    model.set_normalisers(nx.mean, nx.std, ny.mean, ny.std)
    return model


@torch.no_grad()
def predict(model: OperatorModel, x: np.ndarray, batch_size: int = 32, device=None) -> np.ndarray:
    device = device or next(model.parameters()).device
    was = model.training
    model.eval()
    out = [
        model(torch.as_tensor(x[i : i + batch_size], device=device)).cpu().numpy()
        for i in range(0, len(x), batch_size)
    ]
    model.train(was)
    return np.concatenate(out)


def rel_l2_per_sample(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    e = (pred - true).reshape(len(true), -1).astype(np.float64)
    t = true.reshape(len(true), -1).astype(np.float64)
    return np.sqrt((e**2).sum(1) / (t**2).sum(1))


def evaluate(model: OperatorModel, data: OperatorData, batch_size: int = 32) -> dict:
    """Mean relative L2 over the samples of ``data``, with the resolution (what ``eval`` writes)."""
    pred = predict(model, data.x, batch_size)
    errs = rel_l2_per_sample(pred, data.y)
    return {"rel_l2": float(errs.mean()), "resolution": data.resolution, "count": len(data)}


def train(
    model: OperatorModel,
    train_data: OperatorData,
    test_data: OperatorData,
    cfg: TrainConfig,
    params: Iterable[torch.nn.Parameter] | None = None,
) -> Iterator[EpochStats]:
    """Train ``model`` (all parameters, or ``params``); yields per-epoch stats, returns the list of them."""
    device = cfg.torch_device
    model.to(device)
    x = model.encode_x(torch.as_tensor(train_data.x, device=device))
    y = model.encode_y(torch.as_tensor(train_data.y, device=device))
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    elif cfg.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    else:
        sched = None
    loss_fn = LOSSES[cfg.loss]
    gen = torch.Generator().manual_seed(cfg.seed)
    n = len(train_data)
    history: list[EpochStats] = []
    t_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total, batches = 0.0, 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            if len(idx) < 2 and n > 1 and cfg.batch_size > 1:
                continue  # BatchNorm (LSM) cannot train on a batch of one
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model.net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        lr = opt.param_groups[0]["lr"]
        if sched is not None:
            sched.step()
        seconds = time.perf_counter() - t0
        test = evaluate(model, test_data)["rel_l2"]
        stats = EpochStats(
            epoch, cfg.epochs, total / max(batches, 1), test, lr, seconds, time.perf_counter() - t_start
        )
        history.append(stats)
        yield stats
    model.eval()
    return history


__all__ = [
    "TrainConfig",
    "EpochStats",
    "make_model",
    "predict",
    "evaluate",
    "train",
    "rel_l2",
    "rel_l2_per_sample",
]
