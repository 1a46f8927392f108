"""Spectral-Refiner (Cao, Brarda, Li, Xi 2024): cheap fine-tuning of a trained FNO.

1. freeze every parameter of the trained operator;
2. replace the last spectral convolution by one **without frequency truncation** (all modes of the grid),
   initialised with the trained low-mode weights and zeros above (the function is unchanged);
3. fine-tune only that layer with a negative Sobolev (H^-1) loss evaluated in Fourier space (Parseval).

Two objectives for step 3:

- ``residual`` (the paper's, Navier-Stokes only): the H^-1 norm of the vorticity equation's residual of the
  predicted trajectory (:mod:`backends.operator.residual`), relative to the H^-1 norm of the given frames'
  time derivative. It needs no targets, so it can refine on the training inputs or on the very inputs to be
  predicted (test-time refinement, as a solver would), and it weights high-wavenumber errors through the
  viscous and advective terms instead of discounting them;
- ``hminus1`` (data-driven, any operator): the relative H^-1 norm of the misfit to the training targets
  (:func:`backends.operator.losses.rel_hminus1`). It damps wavenumber k by 1/(1 + 4 pi^2 k^2), so it mostly
  corrects low modes; ``docs/benchmarks/operator.md`` measures both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import torch

from backends.common import UserError, require

from .data import OperatorData
from .models import (
    OperatorModel,
    SpatioTemporalFNO,
    features_before_last_block,
    last_block_and_projection,
    last_spectral_conv,
    widen_last_conv,
)
from .residual import NSResidual, Residual, input_scale
from .train import EpochStats, TrainConfig, batch_starts, train

OBJECTIVES = ("residual", "hminus1")


def widen_for_refinement(model: OperatorModel, resolution: int) -> None:
    """Freeze the model, widen its last spectral conv to all ``resolution`` modes in space, and unfreeze that
    layer's spectral weights (its bias, a constant offset, stays as trained).

    fno3d keeps its trained time modes: the truncation that matters here is the spatial one (the high
    wavenumbers), and widening time too would triple the cost of every refinement step."""
    cfg = model.cfg
    modes_t = min(cfg.modes_t, cfg.out_channels) if isinstance(model.net, SpatioTemporalFNO) else 0
    device = next(model.parameters()).device
    widen_last_conv(model.net, resolution, modes_t)
    model.cfg = replace(cfg, last_modes=resolution, last_modes_t=modes_t)
    for p in model.parameters():
        p.requires_grad_(False)
    conv = last_spectral_conv(model.net)
    conv.to(device)
    for p in conv.parameters():
        p.requires_grad_(p.is_complex())


def equation_of(data: OperatorData) -> NSResidual:
    """The equation a Navier-Stokes data set was generated from (its ``nu`` and ``frame_dt``)."""
    if data.kind != "ns" or "nu" not in data.meta:
        raise UserError("the residual objective needs a Navier-Stokes data set written by our generator "
                        "(with nu in its metadata); use --objective hminus1 for other data")  # fmt: skip
    return NSResidual(nu=float(data.meta["nu"]), frame_dt=float(data.meta.get("frame_dt", 1.0)))


def default_objective(data: OperatorData) -> str:
    return "residual" if data.kind == "ns" and "nu" in data.meta else "hminus1"


#: learning rate and batch size that worked per objective (docs/benchmarks/operator.md, section 3)
DEFAULTS = {"residual": (5e-3, 5), "hminus1": (1e-3, 10)}


def refine(
    model: OperatorModel,
    train_data: OperatorData,
    test_data: OperatorData,
    cfg: TrainConfig,
    objective: str = "hminus1",
    inputs: np.ndarray | None = None,
) -> Iterator[EpochStats]:
    """Spectral-Refiner fine-tuning; yields per-epoch stats (the test error always against the targets).

    ``residual`` refines on ``inputs`` (default: the training inputs; pass ``test_data.x`` to refine on the
    inputs to be predicted); ``hminus1`` fits the training targets."""
    require(objective in OBJECTIVES, f"--objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if objective == "residual":
        eq = equation_of(train_data)
        x = train_data.x if inputs is None else inputs
        return (yield from _refine_residual(model, x, test_data, cfg, eq))
    widen_for_refinement(model, train_data.resolution)
    cfg = replace(cfg, loss="hminus1")
    params = [p for p in last_spectral_conv(model.net).parameters() if p.requires_grad]
    return (yield from train(model, train_data, test_data, cfg, params=params))


def _refine_residual(
    model: OperatorModel, x: np.ndarray, test_data: OperatorData, cfg: TrainConfig, eq: NSResidual
) -> Iterator[EpochStats]:
    require(x.shape[1] >= 2, "the residual objective needs at least 2 given frames")
    device = cfg.torch_device
    model.to(device)
    widen_for_refinement(model, x.shape[-1])
    res = Residual(eq, x.shape[-1], device)
    given = torch.as_tensor(x, device=device)
    with torch.no_grad():
        scale = input_scale(res, given, model.cfg.out_channels)
    params = [p for p in last_spectral_conv(model.net).parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(cfg.seed)
    t_start, history = time.perf_counter(), []
    n = len(given)
    start = given.shape[1]
    features = _feature_source(model, given, cfg.batch_size)
    inputs_are_test = x is test_data.x
    test_given = given if inputs_are_test else torch.as_tensor(test_data.x, device=device)
    test_features = features if inputs_are_test else _feature_source(model, test_given, cfg.batch_size)
    test_y = torch.as_tensor(test_data.y, device=device)
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total, batches = 0.0, 0
        for i in batch_starts(n, cfg.batch_size):
            idx = perm[i : i + cfg.batch_size]
            opt.zero_grad(set_to_none=True)
            pred = model.decode_y(last_block_and_projection(model.net, features(idx)))
            w = torch.cat([given[idx], pred], 1)
            loss = (res.norm_sq(w, start) / scale[idx]).sqrt().mean()
            loss.backward()
            opt.step()
            total += float(loss.detach())
            batches += 1
        seconds = time.perf_counter() - t0
        test = _test_error(model, test_features, test_y, cfg.batch_size)
        stats = EpochStats(epoch, cfg.epochs, total / max(batches, 1), test, cfg.lr, seconds,
                           time.perf_counter() - t_start)  # fmt: skip
        history.append(stats)
        yield stats
    model.eval()
    return history


@torch.no_grad()
def _test_error(model: OperatorModel, features, y: torch.Tensor, batch_size: int) -> float:
    """Mean relative L2 over the test set, running only the refined head on the frozen features."""
    model.eval()
    errs = []
    for i in range(0, len(y), batch_size):
        idx = torch.arange(i, min(i + batch_size, len(y)), device=y.device)
        pred = model.decode_y(last_block_and_projection(model.net, features(idx)))
        e, t = (pred - y[idx]).flatten(1).double(), y[idx].flatten(1).double()
        errs.append((e.pow(2).sum(1) / t.pow(2).sum(1)).sqrt())
    return float(torch.cat(errs).mean())


def _feature_source(model: OperatorModel, given: torch.Tensor, batch_size: int, cap_bytes: float = 2**30):
    """idx -> the frozen features entering the last layer: computed once for all inputs when they fit in
    ``cap_bytes``, else per batch (either way no gradient flows through the frozen layers)."""

    @torch.no_grad()
    def compute(idx):
        return features_before_last_block(model.net, model.encode_x(given[idx]))

    one = compute(torch.arange(1, device=given.device))
    if one.numel() * one.element_size() * len(given) > cap_bytes:
        return compute
    cached = torch.cat([compute(torch.arange(i, min(i + batch_size, len(given)), device=given.device))
                        for i in range(0, len(given), batch_size)])  # fmt: skip
    return lambda idx: cached[idx]
