"""Live jobs for an interactive front end: training, sampling, the NFE sweep and the digits inverse problems.

Each job is a generator (yield :class:`backends.common.Progress`, return the result) that owns every torch
module it touches: models cross threads only as :class:`Weights`, plain numpy arrays copied from a state dict,
and are rebuilt inside the job that uses them. So a caller may keep, show and save what a job handed over while
the job goes on training its own copy.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from backends.common import Progress, UserError, require

from .data import Dataset, load_digits_array
from .dds import InverseProblem, box_mask, masked_rmse, random_mask, solve
from .lightsb import LightSB, LightSBConfig, fit_lightsb
from .models import TRAINED_FAMILIES, Interpolant, TrainConfig, Trained, Trainer, build_net, load_trained
from .pipeline import (
    LABELS,
    CurvePoint,
    Generative,
    SampleConfig,
    exact_model,
    from_trained,
    generate,
    nfe_curves,
)
from .samplers import SampleResult

DIGITS_ASSET = Path(__file__).resolve().parents[2] / "assets" / "diffusion" / "digits_edm.pt"
INVERSE_KINDS = ("none", "inpaint box", "inpaint random", "denoise")
INVERSE_DIGITS = 16  # digits shown per inverse problem


@dataclass(frozen=True)
class Weights:
    """A trained model as plain arrays (a state dict) plus what rebuilds it: what jobs hand over and sessions save."""

    family: str  # edm | pfgmpp | interpolant | lightsb
    dim: int
    config: dict  # TrainConfig (or LightSBConfig) fields
    sigma_data: float
    dataset: str
    state: dict[str, np.ndarray]
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass(frozen=True)
class TrainUpdate:
    """What training hands over every few steps: the loss history and a copy of the weights so far."""

    step: int
    losses: np.ndarray
    weights: Weights | None


def _state_arrays(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def weights_of(tr: Trained) -> Weights:
    """Copy a :class:`Trained` bundle's weights out of its (possibly still training) module."""
    require(tr.net is not None and tr.config is not None, f"model family {tr.family!r} has no weights")
    return Weights(
        tr.family,
        tr.dim,
        asdict(tr.config),
        float(tr.sigma_data),
        tr.dataset,
        _state_arrays(tr.net),
        np.asarray(tr.losses, float).copy(),
    )


def _load(module: torch.nn.Module, state: dict[str, np.ndarray]) -> None:
    try:
        module.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}, strict=True)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise UserError(f"the weights do not fit their model: {str(exc).splitlines()[0]}") from None


def generative(w: Weights) -> Generative:
    """A fresh model rebuilt from ``w`` (its own modules: safe to use in one job while others run)."""
    if w.family == "lightsb":
        cfg = LightSBConfig(**w.config)
        lsb = LightSB(w.dim, cfg)
        _load(lsb, w.state)
        return Generative("lightsb", w.dim, lsb=lsb, source=_normal_source(w.dim), losses=w.losses)
    require(w.family in TRAINED_FAMILIES, f"unknown model family {w.family!r}")
    cfg = TrainConfig(**w.config)
    net = build_net(w.family, w.dim, cfg, w.sigma_data)
    _load(net, w.state)
    net.eval()
    return from_trained(Trained(w.family, w.dim, net, cfg, w.losses, w.sigma_data, w.dataset))


def _normal_source(dim: int):
    def src(n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((n, dim))

    return src


def model_for(weights: Weights | None, dataset: Dataset, family: str, interp: Interpolant) -> Generative:
    """The model to sample: the closed-form one for ``exact``, else rebuilt from ``weights``."""
    if family == "exact":
        return exact_model(dataset, interp)
    require(weights is not None, "train a model first (or choose model 'exact' on gmm / 8gaussians)")
    return generative(weights)


def bundled_digits() -> Weights | None:
    """The bundled digits EDM model (assets/diffusion/digits_edm.pt), or None when it is missing."""
    return weights_of(load_trained(DIGITS_ASSET)) if DIGITS_ASSET.exists() else None


# -- jobs ---------------------------------------------------------------------------------------------------
def train_job(
    dataset: Dataset, cfg: TrainConfig, steps: int, start: Weights | None = None
) -> Iterator[Progress]:
    """Train ``steps`` steps (continuing from ``start`` when it is the same family); yields
    :class:`TrainUpdate` with a copy of the weights at every report; returns the final :class:`Weights`.
    A diverging loss raises ``UserError`` after the last good weights were handed over."""
    trainer = Trainer(dataset, cfg)
    if start is not None and start.family == cfg.family and start.dim == dataset.dim:
        _load(trainer.net, start.state)
        trainer.losses = list(np.asarray(start.losses, float))
    yield Progress(0.0, "training...", TrainUpdate(len(trainer.losses), np.asarray(trainer.losses), None))
    for item in trainer.run(steps):
        snap = item.data
        yield Progress(
            item.fraction, item.message, TrainUpdate(snap.step, snap.losses, weights_of(trainer.last))
        )
    return weights_of(trainer.last)


def lightsb_job(dataset: Dataset, cfg: LightSBConfig) -> Iterator[Progress]:
    """Fit LightSB from N(0, I) to the data; yields :class:`TrainUpdate` (losses); returns :class:`Weights`."""
    fit = fit_lightsb(_normal_source(dataset.dim), dataset.sample, dataset.dim, cfg)
    while True:
        try:
            p = next(fit)
        except StopIteration as stop:
            model, losses = stop.value
            break
        yield Progress(p.fraction, p.message, TrainUpdate(len(p.data), p.data, None))
    return Weights("lightsb", dataset.dim, asdict(cfg), 1.0, dataset.name, _state_arrays(model), losses)


def sample_job(model: Generative, cfg: SampleConfig) -> Iterator[Progress]:
    """Sample ``cfg.count`` particles with their whole trajectory."""
    yield Progress(None, f"sampling {cfg.count} particles with {LABELS[cfg.sampler]}...")
    return generate(model, cfg, return_trajectory=True)


@dataclass(frozen=True)
class InverseResult:
    """DDS and DPS on the same measured digits: the side-by-side view's columns and their errors."""

    kind: str
    truth: np.ndarray
    measured: np.ndarray
    dps: np.ndarray
    rmse_dds: float
    rmse_dps: float


def inverse_job(model: Generative, kind: str, nfe: int, seed: int) -> Iterator[Progress]:
    """DDS (Tweedie, CG, DDIM) against DPS guidance on 16 digits at equal NFE; returns
    ``(SampleResult of DDS with its trajectory, InverseResult)``."""
    require(kind in INVERSE_KINDS[1:], f"unknown inverse problem {kind!r}")
    require(model.denoiser is not None, "the inverse problems need an EDM denoiser (model 'edm')")
    yield Progress(None, f"solving {kind} with DDS and DPS at NFE {nfe}...")
    rng = np.random.default_rng(seed)
    digits = load_digits_array()
    truth = digits[rng.choice(len(digits), INVERSE_DIGITS, replace=False)]
    if kind == "denoise":
        prob = InverseProblem("denoise", None, sigma_y=0.5)
    else:
        mask = box_mask() if kind == "inpaint box" else random_mask(64, 0.5, rng)
        prob = InverseProblem("inpaint", mask, sigma_y=0.01)
    y = prob.measure(truth, rng)
    dds = solve(model.denoiser, prob, y, method="dds", nfe=nfe, seed=seed, return_trajectory=True)
    dps = solve(model.denoiser, prob, y, method="dps", nfe=nfe, seed=seed)
    shown = y if prob.mask is None else np.where(prob.mask > 0.5, y, -1.0)
    res = SampleResult(dds.x, dds.trajectory, dds.nfe, np.zeros(len(dds.x), bool))
    inv = InverseResult(
        kind,
        truth,
        shown,
        dps.x,
        float(masked_rmse(dds.x, truth, prob.mask)),
        float(masked_rmse(dps.x, truth, prob.mask)),
    )
    return res, inv


def sweep_nfes(dim: int) -> tuple[int, ...]:
    """The NFEs of the sweep: fewer for the 64-D digits (each point costs more)."""
    return (3, 5, 9, 17, 33, 65) if dim <= 2 else (5, 9, 17, 33)


def curves_job(model: Generative, dataset: Dataset, cfg: SampleConfig) -> Iterator[Progress]:
    """Sliced W2 vs NFE for every sampler of ``model`` (yields the partial list of :class:`CurvePoint`)."""
    return (yield from nfe_curves(model, dataset, cfg, sweep_nfes(dataset.dim)))


def state_at(traj: np.ndarray, frame: float) -> np.ndarray:
    """The particles at a fractional frame: linear interpolation between recorded states."""
    i = min(int(math.floor(frame)), len(traj) - 1)
    w = frame - i
    if w <= 1e-9 or i + 1 >= len(traj):
        return traj[i]
    with np.errstate(invalid="ignore", over="ignore"):
        return (1 - w) * traj[i] + w * traj[i + 1]


__all__ = [
    "CurvePoint",
    "DIGITS_ASSET",
    "INVERSE_KINDS",
    "InverseResult",
    "TrainUpdate",
    "Weights",
    "bundled_digits",
    "curves_job",
    "generative",
    "inverse_job",
    "lightsb_job",
    "model_for",
    "sample_job",
    "state_at",
    "sweep_nfes",
    "train_job",
    "weights_of",
]
