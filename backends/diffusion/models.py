"""Small torch models and their training: EDM denoiser, PFGM++ (finite D), stochastic interpolants.

Training is a generator: it yields :class:`backends.common.Progress` with a :class:`TrainSnapshot` every few
steps (so a GUI can draw the loss curve live and cancel at any yield) and returns the :class:`Trained` bundle.
A non-finite loss stops training with a ``UserError`` *after* restoring the last good weights, which the caller
keeps (``trainer.last``).
"""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from backends.common import Progress, UserError, drain, require
from backends.safeio import check_writable, load_weights, write_bytes

from .data import Dataset
from .edm import loss_weight, precond, sample_training_sigma
from .pfgmpp import sample_perturbation

FAMILIES = ("exact", "edm", "pfgmpp", "interpolant", "lightsb")
TRAINED_FAMILIES = ("edm", "pfgmpp", "interpolant")
PATHS = ("linear", "trig")


class FourierEmbedding(nn.Module):
    """Fixed random Fourier features of a scalar (noise level or time)."""

    def __init__(self, dim: int = 32, scale: float = 4.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        a = 2 * math.pi * c[:, None] * self.freqs[None]
        return torch.cat([torch.cos(a), torch.sin(a)], dim=1)


class MLP(nn.Module):
    """x (n, d) and a scalar condition (n,) -> (n, out). SiLU MLP with the embedding concatenated."""

    def __init__(
        self, dim: int, out: int, hidden: int = 128, depth: int = 3, emb: int = 32, scale: float = 4.0
    ):
        super().__init__()
        self.embed = FourierEmbedding(emb, scale)
        layers: list[nn.Module] = []
        width = dim + emb
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, out))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.embed(c)], dim=1))


class EDMDenoiser(nn.Module):
    """``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)``; also the PFGM++ denoiser (sigma = r / sqrt(D))."""

    def __init__(self, dim: int, sigma_data: float, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.sigma_data = float(sigma_data)
        self.F = MLP(dim, dim, hidden, depth, scale=1.0)

    def forward(self, x: torch.Tensor, sigma) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in, c_noise = precond(sigma[:, None], self.sigma_data)
        f = self.F((c_in * x).float(), c_noise[:, 0].float()).to(x.dtype)
        return c_skip * x + c_out * f


# -- stochastic interpolants ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interpolant:
    """``x_t = alpha(t) x0 + beta(t) x1 + gamma(t) z``, x0 ~ N(0, I), x1 ~ data, z ~ N(0, I) (Albergo et al.).

    ``linear``: alpha = 1 - t, beta = t (conditional OT / rectified flow; the kinetic-optimal path as the data
    variance vanishes); ``trig``: alpha = cos(pi t / 2), beta = sin(pi t / 2). ``gamma(t) = sqrt(a t (1 - t))``.
    """

    path: str = "linear"
    a: float = 0.0  # latent noise amplitude

    def coeffs(self, t: torch.Tensor):
        """alpha, beta, gamma and their time derivatives."""
        if self.path == "linear":
            al, be, dal, dbe = 1 - t, t, -torch.ones_like(t), torch.ones_like(t)
        elif self.path == "trig":
            h = 0.5 * math.pi
            al, be = torch.cos(h * t), torch.sin(h * t)
            dal, dbe = -h * torch.sin(h * t), h * torch.cos(h * t)
        else:
            raise UserError(f"unknown interpolant path {self.path!r}; choose linear or trig")
        if self.a > 0:
            g = torch.sqrt(self.a * t * (1 - t))
            dg = self.a * (1 - 2 * t) / (2 * torch.clamp(g, min=1e-12))
        else:
            g, dg = torch.zeros_like(t), torch.zeros_like(t)
        return al, be, g, dal, dbe, dg

    def fields_from_x1(self, x: torch.Tensor, t: torch.Tensor, x1_hat: torch.Tensor):
        """Velocity and score from E[x1 | x_t] (exact because the noise part alpha x0 + gamma z is Gaussian)."""
        al, be, g, dal, dbe, dg = self.coeffs(t)
        s2 = al * al + g * g
        n_hat = x - be * x1_hat  # E[alpha x0 + gamma z | x_t]
        v = dal * al / s2 * n_hat + dbe * x1_hat + dg * g / s2 * n_hat
        return v, -n_hat / s2


class InterpolantNet(nn.Module):
    """Two heads: velocity b(t, x) and eta(t, x) = E[n / |n|_std | x_t]; score = -eta / sqrt(alpha^2 + gamma^2)."""

    def __init__(self, dim: int, interp: Interpolant, hidden: int = 128, depth: int = 3):
        super().__init__()
        self.interp = interp
        self.dim = dim
        self.F = MLP(dim, 2 * dim, hidden, depth, scale=1.0)

    def forward(self, x: torch.Tensor, t) -> tuple[torch.Tensor, torch.Tensor]:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        out = self.F(x.float(), t.float()).to(x.dtype)
        v, eta = out[:, : self.dim], out[:, self.dim :]
        al, _, g, *_ = self.interp.coeffs(t[:, None])
        return v, -eta / torch.sqrt(al * al + g * g)


class MixtureInterpolant:
    """Exact velocity and score of an interpolant whose data distribution is a Gaussian mixture."""

    def __init__(self, mixture, interp: Interpolant):
        self.mixture, self.interp = mixture, interp

    def __call__(self, x: torch.Tensor, t):
        tt = torch.as_tensor(float(t), dtype=x.dtype)
        al, be, g, *_ = self.interp.coeffs(tt)
        x1 = self.mixture.posterior_mean(x, float(be), float(torch.sqrt(al * al + g * g)))
        return self.interp.fields_from_x1(x, tt, x1)


# -- training ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    family: str = "edm"  # edm | pfgmpp | interpolant
    steps: int = 3000
    batch: int = 512
    lr: float = 3e-3
    hidden: int = 128
    depth: int = 3
    D: float = 128.0  # PFGM++ augmentation dimension
    path: str = "linear"  # interpolant path
    gamma: float = 0.0  # interpolant latent noise amplitude a in gamma(t) = sqrt(a t (1 - t))
    p_mean: float = -1.2
    p_std: float = 1.2
    seed: int = 0
    report_every: int = 25

    def __post_init__(self):
        require(
            self.family in TRAINED_FAMILIES,
            f"cannot train model family {self.family!r}; trainable: {', '.join(TRAINED_FAMILIES)}",
        )
        require(self.steps >= 1, f"training steps must be >= 1, got {self.steps}")
        require(self.batch >= 2, f"batch must be >= 2, got {self.batch}")
        require(self.lr > 0 and math.isfinite(self.lr), f"learning rate must be > 0, got {self.lr}")
        require(self.hidden >= 4 and self.depth >= 1, "network needs hidden >= 4 and depth >= 1")
        require(math.isfinite(self.D) and self.D > 0, f"PFGM++ D must be > 0, got {self.D}")
        require(self.path in PATHS, f"unknown interpolant path {self.path!r}; choose linear or trig")
        require(self.gamma >= 0, f"interpolant gamma amplitude must be >= 0, got {self.gamma}")


@dataclass(frozen=True)
class TrainSnapshot:
    step: int
    losses: np.ndarray  # per-step loss so far


@dataclass
class Trained:
    """A trained (or exact) model with everything needed to sample from it and to save it."""

    family: str
    dim: int
    net: nn.Module | None
    config: TrainConfig | None = None
    losses: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sigma_data: float = 0.5
    dataset: str = ""

    def save(self, path: str | Path) -> Path:
        """Tensors, numbers and strings only, so :func:`load_trained` reads it with ``weights_only=True``."""
        require(self.net is not None, f"model family {self.family!r} has no weights to save")
        p = check_writable(path, suffixes=(".pt",), what="weights")
        buf = io.BytesIO()
        torch.save(
            {
                "family": self.family,
                "dim": int(self.dim),
                "config": asdict(self.config),
                "state_dict": self.net.state_dict(),
                "losses": torch.as_tensor(np.asarray(self.losses, np.float64)),
                "sigma_data": float(self.sigma_data),
                "dataset": self.dataset,
                "format": WEIGHTS_FORMAT,
            },
            buf,
        )
        return write_bytes(p, buf.getvalue())


WEIGHTS_FORMAT = "visual-lab-diffusion-2"  # -1 held a numpy array, which only a full unpickle can read


def build_net(family: str, dim: int, cfg: TrainConfig, sigma_data: float) -> nn.Module:
    if family in ("edm", "pfgmpp"):
        return EDMDenoiser(dim, sigma_data, cfg.hidden, cfg.depth)
    return InterpolantNet(dim, Interpolant(cfg.path, cfg.gamma), cfg.hidden, cfg.depth)


def load_trained(path: str | Path) -> Trained:
    """Weights written by :meth:`Trained.save`, read with ``weights_only=True`` (a file cannot run code)."""
    p = Path(path).expanduser()
    blob = load_weights(p, "diffusion weights")
    require(
        isinstance(blob, dict) and blob.get("format") == WEIGHTS_FORMAT,
        f"{p} is not a Visual Lab diffusion weights file (format {WEIGHTS_FORMAT})",
    )
    try:
        cfg = TrainConfig(**blob["config"])
        dim, sigma_data = int(blob["dim"]), float(blob["sigma_data"])
        require(1 <= dim <= 4096, f"{p}: data dimension {dim} out of range 1..4096")
        require(math.isfinite(sigma_data) and sigma_data > 0, f"{p}: sigma_data {sigma_data} is not > 0")
        net = build_net(blob["family"], dim, cfg, sigma_data)
        net.load_state_dict(blob["state_dict"])
        losses = np.asarray(blob["losses"], np.float64)
    except UserError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        msg = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{p}: diffusion weights do not match this version ({msg})") from None
    net.eval()
    return Trained(blob["family"], dim, net, cfg, losses, sigma_data, str(blob.get("dataset", "")))


def _loss(
    family: str, net: nn.Module, y: torch.Tensor, cfg: TrainConfig, gen: torch.Generator
) -> torch.Tensor:
    n, dim = y.shape
    if family in ("edm", "pfgmpp"):
        sigma = sample_training_sigma(n, gen, cfg.p_mean, cfg.p_std)
        if family == "edm":
            noise = torch.randn(y.shape, generator=gen) * sigma[:, None]
        else:
            noise = sample_perturbation(n, dim, sigma, cfg.D, gen)
        d = net(y + noise, sigma)
        w = loss_weight(sigma, net.sigma_data)
        return (w[:, None] * (d - y) ** 2).mean()
    interp = net.interp
    t = torch.rand(n, generator=gen) * (1 - 2e-3) + 1e-3
    x0 = torch.randn(y.shape, generator=gen)
    z = torch.randn(y.shape, generator=gen)
    al, be, g, dal, dbe, dg = interp.coeffs(t[:, None])
    xt = al * x0 + be * y + g * z
    out = net.F(xt, t)
    v, eta = out[:, :dim], out[:, dim:]
    target_v = dal * x0 + dbe * y + dg * z
    target_eta = (al * x0 + g * z) / torch.sqrt(al * al + g * g)
    return ((v - target_v) ** 2).mean() + ((eta - target_eta) ** 2).mean()


class Adam:
    """Plain Adam (Kingma & Ba) on a parameter list. torch.optim.Adam costs seconds to import on first use
    (it pulls in torch._dynamo); this keeps a panel's first training step instant. Same update rule."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        c1 = 1 - self.b1**self.t
        c2 = 1 - self.b2**self.t
        ps = [p for p in self.params if p.grad is not None]
        if not ps:
            return
        idx = [i for i, p in enumerate(self.params) if p.grad is not None]
        g = [p.grad for p in ps]
        m = [self.m[i] for i in idx]
        v = [self.v[i] for i in idx]
        torch._foreach_mul_(m, self.b1)
        torch._foreach_add_(m, g, alpha=1 - self.b1)
        torch._foreach_mul_(v, self.b2)
        torch._foreach_addcmul_(v, g, g, value=1 - self.b2)
        denom = torch._foreach_div(v, c2)
        torch._foreach_sqrt_(denom)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(ps, m, denom, value=-self.lr / c1)


class Trainer:
    """Holds the model across (resumable, cancellable) training runs; ``last`` is the latest good bundle."""

    def __init__(self, dataset: Dataset, cfg: TrainConfig, device: str | torch.device = "cpu"):
        self.dataset, self.cfg, self.device = dataset, cfg, torch.device(device)
        torch.manual_seed(cfg.seed)
        self.sigma_data = max(dataset.std(), 1e-3)
        self.net = build_net(cfg.family, dataset.dim, cfg, self.sigma_data).to(self.device)
        self.opt = Adam(self.net.parameters(), lr=cfg.lr)
        self.losses: list[float] = []
        self.last = self._bundle()

    def _bundle(self) -> Trained:
        return Trained(
            self.cfg.family,
            self.dataset.dim,
            self.net,
            self.cfg,
            np.asarray(self.losses, float),
            self.sigma_data,
            self.dataset.name,
        )

    def run(self, steps: int | None = None) -> Iterator[Progress]:
        cfg = self.cfg
        steps = cfg.steps if steps is None else steps
        gen = torch.Generator().manual_seed(cfg.seed + len(self.losses))
        rng = np.random.default_rng(cfg.seed + len(self.losses))
        if self.dataset.points is not None:  # a finite set: train on it directly
            pool = torch.as_tensor(self.dataset.points, dtype=torch.float32, device=self.device)
        else:  # a fresh pool of samples, reused across the steps of this run
            pool = torch.as_tensor(
                self.dataset.sample(min(max(steps * cfg.batch, cfg.batch), 200_000), rng), device=self.device
            )
        pool_n = len(pool)
        good = copy.deepcopy(self.net.state_dict())
        self.net.train()
        start = len(self.losses)
        total = start + steps
        # cosine decay of the learning rate over this run, ending at 5 % of the initial rate
        for k in range(steps):
            self.opt.lr = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * k / steps)))
            idx = torch.randint(0, pool_n, (cfg.batch,), generator=gen)
            loss = _loss(cfg.family, self.net, pool[idx], cfg, gen)
            lv = float(loss.detach())
            if not math.isfinite(lv):
                self.net.load_state_dict(good)
                self.net.eval()
                self.last = self._bundle()
                raise UserError(
                    f"training diverged at step {len(self.losses) + 1} (loss {lv}); kept the weights "
                    f"from step {len(self.losses)}: lower the learning rate"
                )
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.losses.append(lv)
            if (k + 1) % cfg.report_every == 0 or k + 1 == steps:
                good = copy.deepcopy(self.net.state_dict())
                self.net.eval()
                self.last = self._bundle()
                self.net.train()
                yield Progress(
                    (k + 1) / steps,
                    f"training step {len(self.losses)}/{total}, loss {lv:.4f}",
                    TrainSnapshot(len(self.losses), np.asarray(self.losses, float)),
                )
        self.net.eval()
        self.last = self._bundle()
        return self.last


def train(dataset: Dataset, cfg: TrainConfig, device: str | torch.device = "cpu") -> Iterator[Progress]:
    """Generator: train a fresh model; yields progress with :class:`TrainSnapshot`; returns :class:`Trained`."""
    trainer = Trainer(dataset, cfg, device)
    return (yield from trainer.run())


def train_to_end(dataset: Dataset, cfg: TrainConfig, device: str | torch.device = "cpu") -> Trained:
    return drain(train(dataset, cfg, device))
