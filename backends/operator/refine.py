"""Spectral-Refiner (Cao, Wang, Brarda, Xu, Maxey, Li, Xu 2024): cheap fine-tuning of a trained FNO.

1. freeze every parameter of the trained operator;
2. replace the last spectral convolution by one **without frequency truncation** (all modes of the training
   grid), initialised with the trained low-mode weights and zeros above (the function is unchanged);
3. fine-tune only that layer with the negative Sobolev loss ``||e||_{H^-1}`` evaluated in Fourier space
   through Parseval (:func:`backends.operator.losses.rel_hminus1`).

The paper fine-tunes against a PDE-residual estimator; here the H^-1 misfit is taken against the training
targets (data-driven variant), which keeps the procedure model-agnostic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from .data import OperatorData
from .models import OperatorModel, SpatioTemporalFNO, last_spectral_conv, widen_last_conv
from .train import EpochStats, TrainConfig, train


def widen_for_refinement(model: OperatorModel, resolution: int) -> None:
    """Freeze the model, widen its last spectral conv to all ``resolution`` modes, unfreeze that layer."""
    cfg = model.cfg
    modes_t = 0
    if isinstance(model.net, SpatioTemporalFNO):
        modes_t = 2 * cfg.out_channels  # covers the (padded) time axis: no truncation in time either
    device = next(model.parameters()).device
    widen_last_conv(model.net, resolution, modes_t)
    model.cfg = replace(cfg, last_modes=resolution, last_modes_t=modes_t)
    for p in model.parameters():
        p.requires_grad_(False)
    conv = last_spectral_conv(model.net)
    conv.to(device)
    for p in conv.parameters():
        p.requires_grad_(True)


def refine(
    model: OperatorModel, train_data: OperatorData, test_data: OperatorData, cfg: TrainConfig
) -> Iterator[EpochStats]:
    """Spectral-Refiner fine-tuning; ``cfg.loss`` is forced to ``hminus1``. Yields per-epoch stats."""
    widen_for_refinement(model, train_data.resolution)
    cfg = replace(cfg, loss="hminus1")
    params = list(last_spectral_conv(model.net).parameters())
    return (yield from train(model, train_data, test_data, cfg, params=params))
