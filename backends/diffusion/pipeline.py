"""One entry point for sampling from any model family, used by the CLI, the panel and the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from backends.common import Progress, UserError, require

from .data import Dataset
from .flows import sample_interpolant_ode, sample_interpolant_sde, time_grid
from .gmm import MixtureDenoiser
from .lightsb import LightSB
from .metrics import metric_with_floor, sliced_wasserstein
from .models import Interpolant, MixtureInterpolant, Trained
from .pfgmpp import sample_prior
from .samplers import SAMPLER_LABELS, SAMPLERS, SampleResult, check_finite, run_sampler

EDM_SAMPLERS = tuple(SAMPLERS)
FAMILY_SAMPLERS: dict[str, tuple[str, ...]] = {
    "exact": (*EDM_SAMPLERS, "ode", "sde"),
    "edm": EDM_SAMPLERS,
    "pfgmpp": ("euler", "heun", "dpmpp2m", "ddim"),  # deterministic ODE samplers (the SDE is Gaussian-only)
    "interpolant": ("ode", "sde"),
    "lightsb": ("bridge",),
}
ALL_SAMPLERS = (*EDM_SAMPLERS, "ode", "sde", "bridge")
LABELS = {
    **SAMPLER_LABELS,
    "ode": "Interpolant ODE (Heun)",
    "sde": "Interpolant SDE (EM)",
    "bridge": "LightSB bridge (exact)",
}


@dataclass(frozen=True)
class SampleConfig:
    sampler: str = "heun"
    nfe: int = 35
    count: int = 5000
    seed: int = 0
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    churn: float = 0.0  # Heun S_churn
    eta: float = 0.0  # DDIM
    eps: float = 0.5  # interpolant SDE eps(t) = eps (1 - t)

    def __post_init__(self):
        require(
            self.sampler in ALL_SAMPLERS,
            f"unknown sampler {self.sampler!r}; choose one of {', '.join(ALL_SAMPLERS)}",
        )
        require(self.nfe >= 1, f"NFE must be >= 1, got {self.nfe}")
        require(1 <= self.count <= 2_000_000, f"count must be in 1..2000000, got {self.count}")
        require(
            0 < self.sigma_min < self.sigma_max and math.isfinite(self.sigma_max),
            f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}",
        )
        require(math.isfinite(self.eps) and self.eps > 0, f"epsilon must be > 0, got {self.eps}")
        require(self.churn >= 0 and self.eta >= 0, "churn and eta must be >= 0")


@dataclass
class Generative:
    """A model ready to sample: a denoiser (EDM/PFGM++/exact), interpolant fields, or a LightSB bridge."""

    family: str
    dim: int
    denoiser: Callable | None = None
    fields: Callable | None = None
    D: float | None = None  # PFGM++ augmentation dimension (None: Gaussian prior)
    lsb: LightSB | None = None
    source: Callable[[int, np.random.Generator], np.ndarray] | None = None
    trained: Trained | None = None
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def samplers(self) -> tuple[str, ...]:
        return FAMILY_SAMPLERS[self.family]


def exact_model(dataset: Dataset, interp: Interpolant | None = None) -> Generative:
    if dataset.mixture is None:
        raise UserError(
            f"the exact model needs a Gaussian-mixture dataset (gmm, 8gaussians), not "
            f"{dataset.name!r}: train a model instead"
        )
    interp = interp or Interpolant("linear", 0.0)
    return Generative(
        "exact",
        dataset.dim,
        denoiser=MixtureDenoiser(dataset.mixture),
        fields=MixtureInterpolant(dataset.mixture, interp),
    )


def from_trained(tr: Trained) -> Generative:
    if tr.family in ("edm", "pfgmpp"):
        return Generative(
            tr.family,
            tr.dim,
            denoiser=tr.net,
            D=tr.config.D if tr.family == "pfgmpp" else None,
            trained=tr,
            losses=tr.losses,
        )
    if tr.family == "interpolant":
        return Generative(tr.family, tr.dim, fields=tr.net, trained=tr, losses=tr.losses)
    raise UserError(f"unknown trained family {tr.family!r}")


def generate(
    model: Generative, cfg: SampleConfig, return_trajectory: bool = False, device: str | torch.device = "cpu"
) -> SampleResult:
    """Draw ``cfg.count`` samples (and optionally the whole trajectory) with ``cfg.sampler``."""
    if cfg.sampler not in model.samplers:
        raise UserError(
            f"sampler {cfg.sampler!r} does not apply to model {model.family!r}; use one of "
            f"{', '.join(model.samplers)}"
        )
    gen = torch.Generator().manual_seed(cfg.seed)
    dtype = torch.float64 if model.family in ("exact", "lightsb") else torch.float32
    n, d = cfg.count, model.dim
    if cfg.sampler in EDM_SAMPLERS:
        x0 = sample_prior(n, d, cfg.sigma_max, model.D, gen, dtype=dtype).to(device)
        kw = {}
        if cfg.sampler == "heun":
            kw["s_churn"] = cfg.churn
        if cfg.sampler == "ddim":
            kw["eta"] = cfg.eta if model.family != "pfgmpp" else 0.0
        with torch.no_grad():
            return run_sampler(
                cfg.sampler,
                model.denoiser,
                x0,
                cfg.nfe,
                sigma_min=cfg.sigma_min,
                sigma_max=cfg.sigma_max,
                rho=cfg.rho,
                generator=gen,
                return_trajectory=return_trajectory,
                **kw,
            )
    if cfg.sampler in ("ode", "sde"):
        x0 = torch.randn(n, d, generator=gen, dtype=dtype).to(device)
        steps = max(1, cfg.nfe // 2) if cfg.sampler == "ode" else cfg.nfe
        ts = time_grid(steps)
        if cfg.sampler == "ode":
            out = sample_interpolant_ode(model.fields, x0, ts, return_trajectory=return_trajectory)
            nfe = 2 * steps
        else:
            out = sample_interpolant_sde(
                model.fields, x0, ts, eps=cfg.eps, generator=gen, return_trajectory=return_trajectory
            )
            nfe = steps
    else:  # LightSB
        x0 = torch.as_tensor(model.source(n, np.random.default_rng(cfg.seed)), dtype=torch.float64)
        out = model.lsb.sample_bridge(x0, cfg.nfe, gen, return_trajectory=return_trajectory)
        nfe = cfg.nfe
    x, traj = out if return_trajectory else (out, None)
    xs = x.detach().cpu().numpy()
    bad = check_finite(xs)
    msg = f"{int(bad.sum())} of {n} particles became NaN/inf: use more steps" if bad.any() else ""
    return SampleResult(xs, None if traj is None else traj.detach().cpu().numpy(), nfe, bad, msg)


def truth_sampler(dataset: Dataset) -> Callable[[int, int], np.ndarray]:
    return lambda n, seed: dataset.sample(n, np.random.default_rng(seed))


@dataclass(frozen=True)
class CurvePoint:
    sampler: str
    nfe: int
    sw: float
    floor: float


def nfe_curves(
    model: Generative,
    dataset: Dataset,
    base: SampleConfig,
    nfes=(3, 5, 9, 17, 33, 65),
    samplers: tuple[str, ...] | None = None,
    count: int = 2000,
) -> Iterator[Progress]:
    """Generator: sliced W2 (with its noise floor) vs NFE for every applicable sampler; yields partial lists."""
    samplers = samplers or model.samplers
    truth = truth_sampler(dataset)
    points: list[CurvePoint] = []
    total = len(samplers) * len(nfes)
    for s in samplers:
        for k in nfes:
            cfg = SampleConfig(**{**base.__dict__, "sampler": s, "nfe": int(k), "count": count})
            res = generate(model, cfg)
            if res.ok:
                sw, floor = metric_with_floor(res.samples, truth, sliced_wasserstein, repeats=3)
            else:
                sw, floor = math.inf, math.nan
            points.append(CurvePoint(s, res.nfe, sw, floor))
            yield Progress(len(points) / total, f"{LABELS[s]} NFE {res.nfe}: SW {sw:.4f}", list(points))
    return points
