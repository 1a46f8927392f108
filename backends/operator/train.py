"""Training: one generator, :func:`train`, yields an :class:`EpochStats` per epoch (GUI worker and CLI alike).

Adam with weight decay, a cosine, step or one-cycle learning-rate schedule, mini-batches shuffled by a seeded
generator, the loss on normalised outputs (as neuraloperator's data processor trains), the test error as
relative L2 on physical outputs. Deterministic for a seed on the CPU.

Budget recipe (``coarse_epochs``): the FNO is discretisation-invariant, so the first epochs may train on the
grid subsampled by ``coarse_stride`` (every other node of an 85 x 85 grid is the 43 x 43 grid of the same
functions), about ``coarse_stride**2`` times cheaper per step; the last epochs train at full resolution, and
the test error is always measured at full resolution. With the ``onecycle`` schedule (linear warm-up, cosine
decay, stepped per batch) the learning rate spans both phases.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

import numpy as np
import torch

from backends.common import require

from .data import OperatorData, UnitGaussian
from .losses import LOSSES, rel_l2
from .models import ModelConfig, OperatorModel

SCHEDULES = ("cosine", "step", "none", "onecycle")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50  # 1..100000
    batch_size: int = 20  # 1..4096
    lr: float = 1e-3  # (0, 1]
    weight_decay: float = 1e-4  # [0, 1)
    schedule: str = "cosine"  # cosine (to 0 over the epochs) | step | none | onecycle (per batch)
    step_size: int = 100  # step schedule: epochs between decays, 1..100000
    gamma: float = 0.5  # step schedule: decay factor, (0, 1]
    loss: str = "l2"  # l2 | h1 | hminus1
    seed: int = 0
    device: str = "cpu"
    warmup: float = 0.1  # onecycle: fraction of the steps warming up from lr/25 (at least 2), [0.01, 0.5]
    coarse_epochs: int = 0  # the first epochs on the grid subsampled by coarse_stride, 0..epochs-1
    coarse_stride: int = 2  # subsampling of the coarse epochs, 2..8 (node grids: n -> (n-1)/s + 1)

    def __post_init__(self):
        require(1 <= self.epochs <= 100_000, f"--epochs must be in 1..100000, got {self.epochs}")
        require(1 <= self.batch_size <= 4096, f"--batch-size must be in 1..4096, got {self.batch_size}")
        require(0 < self.lr <= 1, f"--lr must be in (0, 1], got {self.lr}")
        require(0 <= self.weight_decay < 1, f"--weight-decay must be in [0, 1), got {self.weight_decay}")
        require(self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}")
        require(1 <= self.step_size <= 100_000, f"--step-size must be in 1..100000, got {self.step_size}")
        require(0 < self.gamma <= 1, f"--gamma must be in (0, 1], got {self.gamma}")
        require(self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        require(0.01 <= self.warmup <= 0.5, f"--warmup must be in [0.01, 0.5], got {self.warmup}")
        require(
            0 <= self.coarse_epochs < self.epochs,
            f"--coarse-epochs must be in 0..epochs-1 = {self.epochs - 1}, got {self.coarse_epochs}",
        )
        require(2 <= self.coarse_stride <= 8, f"--coarse-stride must be in 2..8, got {self.coarse_stride}")
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


def step_seconds(model: OperatorModel, x: np.ndarray, y: np.ndarray, batch_size: int, loss: str = "l2",
                 clock=time.perf_counter, steps: int = 3) -> float:  # fmt: skip
    """Median seconds of one optimiser step on ``batch_size`` samples of (x, y), measured on a copy of
    ``model`` (the model itself is untouched): for planning epochs under a time budget."""
    m = copy.deepcopy(model).train()
    opt = torch.optim.Adam(m.parameters(), lr=1e-4)
    xb, yb = m.encode_x(torch.as_tensor(x[:batch_size])), m.encode_y(torch.as_tensor(y[:batch_size]))
    times = []
    for _ in range(steps + 1):  # the first step warms up (allocations, FFT plans) and is not counted
        t0 = clock()
        opt.zero_grad(set_to_none=True)
        LOSSES[loss](m.net(xb), yb).backward()
        opt.step()
        times.append(clock() - t0)
    return float(np.median(times[1:]))


def batch_starts(n: int, batch_size: int) -> list[int]:
    """Start indices of the mini-batches; a trailing batch of one is dropped (BatchNorm, LSM, cannot train
    on it) unless it is the only sample or the batch size is one."""
    starts = list(range(0, n, batch_size))
    if n > 1 and batch_size > 1 and n - starts[-1] < 2:
        starts.pop()
    return starts


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
    n = len(train_data)
    if cfg.coarse_epochs:
        s = cfg.coarse_stride
        require(
            train_data.resolution >= 8 * s,
            f"--coarse-stride {s}: the {train_data.resolution}-point grid is too small to subsample",
        )
        x_coarse, y_coarse = x[..., ::s, ::s], y[..., ::s, ::s]
    params = [p for p in (model.parameters() if params is None else params) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    batches_per_epoch = len(batch_starts(n, cfg.batch_size))
    per_step = None
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    elif cfg.schedule == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.step_size, gamma=cfg.gamma)
    elif cfg.schedule == "onecycle":
        sched = None
        total_steps = cfg.epochs * batches_per_epoch
        if total_steps >= 3:  # fewer steps: the learning rate stays at lr
            # at least 2 warm-up steps and 1 decay step (OneCycleLR divides by each phase's length)
            pct = min(max(cfg.warmup, 2 / total_steps), (total_steps - 1) / total_steps)
            per_step = torch.optim.lr_scheduler.OneCycleLR(
                opt, max_lr=cfg.lr, total_steps=total_steps, pct_start=pct, anneal_strategy="cos",
                cycle_momentum=False, div_factor=25.0, final_div_factor=1e4,
            )  # fmt: skip
    else:
        sched = None
    loss_fn = LOSSES[cfg.loss]
    gen = torch.Generator().manual_seed(cfg.seed)
    history: list[EpochStats] = []
    t_start = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        xe, ye = (x_coarse, y_coarse) if epoch <= cfg.coarse_epochs else (x, y)
        perm = torch.randperm(n, generator=gen).to(device)
        total, batches = 0.0, 0
        for i in batch_starts(n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model.net(xe[idx]), ye[idx])
            loss.backward()
            opt.step()
            if per_step is not None and per_step.last_epoch + 1 < per_step.total_steps:
                per_step.step()
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
    "batch_starts",
    "step_seconds",
    "rel_l2",
    "rel_l2_per_sample",
]
