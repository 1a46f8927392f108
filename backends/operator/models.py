"""Neural operators: FNO and TFNO from neuraloperator, a spatiotemporal FNO, and Latent Spectral Models.

Every model is wrapped in :class:`OperatorModel`, which holds the channel-wise unit-Gaussian normalisers as
buffers, so a checkpoint maps physical inputs to physical outputs at any resolution.

- ``fno`` / ``tfno``: ``neuralop.models.FNO`` / ``TFNO`` (Tucker, rank 0.1) with ``n_modes=(modes, modes)``,
  ``hidden_channels=width``, ``n_layers=layers``, grid positional embedding, the library's defaults otherwise.
- ``fno3d``: the FNO paper's spatiotemporal FNO for Navier-Stokes (Li et al. 2021, "FNO-3D"): the ``t_in``
  given snapshots are channels, repeated along a time axis of length ``t_out``; a 3D ``neuralop`` FNO over
  (x, y, t) with ``n_modes=(modes, modes, modes_t)`` outputs one channel, read back as ``t_out`` snapshots.
  The time axis is not periodic, so it is zero-padded by ``time_padding`` (fraction) as the paper pads it.
- ``lsm``: Latent Spectral Models (Wu et al., ICML 2023), written from the paper: lift (a, x, y) to
  ``width`` channels; a U-shaped hierarchy of ``levels`` scales (U-Net double 3x3 conv + BatchNorm + ReLU,
  max-pool down, bilinear up, channels doubling to ``width * 2^(levels-1)``, halved at the last level as the
  paper's bilinear variant); at every scale the skip features pass a **neural spectral block**: the map is
  cut into ``patch x patch`` patches; in each patch ``tokens`` learnable latent tokens gather the pixels by
  cross-attention (8 heads; the "deep to latent" projection), the tokens are transformed by a learned
  combination of the trigonometric basis ``sin(pi m z / K), cos(pi m z / K)``, m = 0..K-1, K = ``basis``,
  applied channel-wise (plus a residual), and the pixels read the tokens back by cross-attention (plus a
  residual). The input is zero-padded to a multiple of ``patch * 2^(levels-1)``. The paper's Darcy setting
  is width 64, basis 12, tokens 4, patch 6, five levels; ours defaults to width 32, basis 12, tokens 4,
  patch 4, four levels for CPU budgets. Attention is scaled dot-product (the reference omits 1/sqrt(d)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn as nn
import torch.nn.functional as F

from backends.common import UserError, require

KINDS = ("fno", "tfno", "fno3d", "lsm")


@dataclass(frozen=True)
class ModelConfig:
    kind: str = "fno"
    in_channels: int = 1
    out_channels: int = 1
    modes: int = 12  # Fourier modes kept per spatial axis (fno, tfno, fno3d)
    width: int = 32  # hidden channels
    layers: int = 4  # Fourier layers (fno, tfno, fno3d)
    modes_t: int = 8  # fno3d: Fourier modes along time
    time_padding: float = 0.25  # fno3d: zero padding of the time axis, as a fraction
    basis: int = 12  # lsm: trigonometric basis size K
    tokens: int = 4  # lsm: latent tokens per patch
    patch: int = 4  # lsm: patch side
    levels: int = 4  # lsm: scales of the U-shaped hierarchy
    last_modes: int = 0  # Spectral-Refiner: modes of the widened last spectral conv (0 = as ``modes``)
    last_modes_t: int = 0  # Spectral-Refiner, fno3d: time modes of the widened last conv

    def __post_init__(self):
        require(self.kind in KINDS, f"--model must be one of {', '.join(KINDS)}, got {self.kind!r}")
        require(1 <= self.in_channels <= 256, f"in_channels must be in 1..256, got {self.in_channels}")
        require(1 <= self.out_channels <= 256, f"out_channels must be in 1..256, got {self.out_channels}")
        require(1 <= self.modes <= 512, f"--modes must be in 1..512, got {self.modes}")
        require(2 <= self.width <= 512, f"--width must be in 2..512, got {self.width}")
        require(1 <= self.layers <= 16, f"--layers must be in 1..16, got {self.layers}")
        require(1 <= self.modes_t <= 256, f"--modes-t must be in 1..256, got {self.modes_t}")
        require(0 <= self.time_padding <= 1, f"time_padding must be in [0, 1], got {self.time_padding}")
        require(1 <= self.basis <= 64, f"--basis must be in 1..64, got {self.basis}")
        require(1 <= self.tokens <= 64, f"--tokens must be in 1..64, got {self.tokens}")
        require(1 <= self.patch <= 32, f"--patch must be in 1..32, got {self.patch}")
        require(2 <= self.levels <= 6, f"--levels must be in 2..6, got {self.levels}")
        require(0 <= self.last_modes <= 1024, f"last_modes must be in 0..1024, got {self.last_modes}")
        require(0 <= self.last_modes_t <= 512, f"last_modes_t must be in 0..512, got {self.last_modes_t}")
        if self.kind == "lsm":
            require(
                self.width % 8 == 0, f"lsm needs --width divisible by 8 (8 attention heads), got {self.width}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        if not isinstance(d, dict):
            raise UserError("model config must be a JSON object")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        require(not unknown, f"model config has unknown keys {sorted(unknown)}")
        for k, v in d.items():
            want = str if k == "kind" else (float if k == "time_padding" else int)
            ok = isinstance(v, want) or (want is float and isinstance(v, int))
            require(ok and not isinstance(v, bool), f"model config {k} must be {want.__name__}, got {v!r}")
        return cls(**d)


def build_network(cfg: ModelConfig) -> nn.Module:
    """The bare network of ``cfg`` (normalised inputs -> normalised outputs)."""
    net = _build_network(cfg)
    if cfg.last_modes:
        widen_last_conv(net, cfg.last_modes, cfg.last_modes_t)
    return net


def _build_network(cfg: ModelConfig) -> nn.Module:
    if cfg.kind in ("fno", "tfno"):
        from neuralop.models import FNO, TFNO

        cls = FNO if cfg.kind == "fno" else TFNO
        return cls(
            n_modes=(cfg.modes, cfg.modes),
            in_channels=cfg.in_channels,
            out_channels=cfg.out_channels,
            hidden_channels=cfg.width,
            n_layers=cfg.layers,
        )
    if cfg.kind == "fno3d":
        return SpatioTemporalFNO(cfg)
    return LSM2d(cfg)


class OperatorModel(nn.Module):
    """A network plus its unit-Gaussian normalisers: ``forward`` maps physical x to physical y."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.net = build_network(cfg)
        self.register_buffer("x_mean", torch.zeros(cfg.in_channels))
        self.register_buffer("x_std", torch.ones(cfg.in_channels))
        self.register_buffer("y_mean", torch.zeros(cfg.out_channels))
        self.register_buffer("y_std", torch.ones(cfg.out_channels))

    @staticmethod
    def _b(v: torch.Tensor, ndim: int) -> torch.Tensor:
        return v.view(1, -1, *([1] * (ndim - 2)))

    def set_normalisers(self, x_mean, x_std, y_mean, y_std) -> None:
        for name, v in zip(("x_mean", "x_std", "y_mean", "y_std"), (x_mean, x_std, y_mean, y_std)):
            getattr(self, name).copy_(torch.as_tensor(v, dtype=torch.float32))

    def encode_x(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self._b(self.x_mean, x.ndim)) / (self._b(self.x_std, x.ndim) + 1e-7)

    def encode_y(self, y: torch.Tensor) -> torch.Tensor:
        return (y - self._b(self.y_mean, y.ndim)) / (self._b(self.y_std, y.ndim) + 1e-7)

    def decode_y(self, y: torch.Tensor) -> torch.Tensor:
        return y * (self._b(self.y_std, y.ndim) + 1e-7) + self._b(self.y_mean, y.ndim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode_y(self.net(self.encode_x(x)))


def last_spectral_conv(net: nn.Module) -> nn.Module:
    """The last spectral convolution of an FNO-family network (fno, tfno, fno3d)."""
    return _fno_of(net).fno_blocks.convs[-1]


def widen_last_conv(net: nn.Module, modes: int, modes_t: int = 0) -> None:
    """Replace the last spectral convolution by a dense one keeping ``modes`` per spatial axis (and
    ``modes_t`` along time for fno3d), with the old weights in the low modes and zeros elsewhere, so the
    widened network computes the same function until it is trained (Spectral-Refiner, Cao et al. 2024)."""
    from neuralop.layers.spectral_convolution import SpectralConv

    fno = net.fno if isinstance(net, SpatioTemporalFNO) else net
    convs = fno.fno_blocks.convs
    old = convs[-1]
    n_modes = [modes] * old.order
    if isinstance(net, SpatioTemporalFNO):
        n_modes[-1] = modes_t or 2 * net.t_out
    new = SpectralConv(old.in_channels, old.out_channels, n_modes, bias=old.bias is not None)
    w_old = old.weight.to_tensor() if hasattr(old.weight, "to_tensor") else old.weight
    w_new = torch.zeros(new.weight.shape, dtype=w_old.dtype)
    if any(a < b for a, b in zip(w_new.shape, w_old.shape)):
        raise UserError(f"widened modes {tuple(n_modes)} must not be fewer than the trained ones")
    # dims before the last are fft-shifted (zero frequency at the centre): align the centres
    idx = [slice(None), slice(None)]
    for a, b in zip(w_new.shape[2:-1], w_old.shape[2:-1]):
        off = a // 2 - b // 2
        idx.append(slice(off, off + b))
    idx.append(slice(0, w_old.shape[-1]))
    with torch.no_grad():
        w_new[tuple(idx)] = w_old.detach()
        new.weight.tensor.copy_(w_new) if hasattr(new.weight, "tensor") else new.weight.copy_(w_new)
        if old.bias is not None:
            new.bias.copy_(old.bias)
    convs[-1] = new


def _fno_of(net: nn.Module):
    fno = net.fno if isinstance(net, SpatioTemporalFNO) else net
    if getattr(fno, "fno_blocks", None) is None:
        raise UserError("this model has no spectral convolutions to refine (use fno, tfno or fno3d)")
    return fno


def features_before_last_block(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The FNO's hidden state entering its last Fourier layer, for normalised inputs ``x``.

    With everything but the last layer frozen (Spectral-Refiner) this is a constant of the input, so the
    refinement computes it once and runs only :func:`last_block_and_projection` per step."""
    fno = _fno_of(net)
    if isinstance(net, SpatioTemporalFNO):
        x = x.unsqueeze(-1).expand(*x.shape, net.t_out)
    if fno.positional_embedding is not None:
        x = fno.positional_embedding(x)
    x = fno.lifting(x)
    if fno.domain_padding is not None:
        x = fno.domain_padding.pad(x)
    for i in range(fno.n_layers - 1):
        x = fno.fno_blocks(x, i)
    return x


def last_block_and_projection(net: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """The rest of the forward pass after :func:`features_before_last_block` (normalised outputs)."""
    fno = _fno_of(net)
    h = fno.fno_blocks(h, fno.n_layers - 1)
    if fno.domain_padding is not None:
        h = fno.domain_padding.unpad(h)
    h = fno.projection(h)
    return h[:, 0].permute(0, 3, 1, 2) if isinstance(net, SpatioTemporalFNO) else h


# -- spatiotemporal FNO ---------------------------------------------------------------------------------------
class SpatioTemporalFNO(nn.Module):
    """(B, t_in, n, n) -> (B, t_out, n, n) through a 3D FNO over (x, y, t); ``out_channels`` is t_out."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        from neuralop.models import FNO

        self.t_out = cfg.out_channels
        self.fno = FNO(
            n_modes=(cfg.modes, cfg.modes, min(cfg.modes_t, cfg.out_channels)),
            in_channels=cfg.in_channels,
            out_channels=1,
            hidden_channels=cfg.width,
            n_layers=cfg.layers,
            domain_padding=[0.0, 0.0, cfg.time_padding] if cfg.time_padding > 0 else None,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(-1).expand(*x.shape, self.t_out)
        return self.fno(x)[:, 0].permute(0, 3, 1, 2)


# -- Latent Spectral Models -----------------------------------------------------------------------------------
class _DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, mid: int | None = None):
        mid = mid or cout
        super().__init__(
            nn.Conv2d(cin, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class NeuralSpectralBlock(nn.Module):
    """Patchify; latent tokens attend to pixels; trigonometric-basis transition; pixels attend to tokens."""

    def __init__(self, width: int, basis: int, tokens: int, patch: int, heads: int = 8):
        super().__init__()
        self.width, self.patch, self.heads = width, patch, heads
        self.register_buffer("freqs", math.pi * torch.arange(basis, dtype=torch.float32) / basis)
        self.weights = nn.Parameter(torch.rand(width, 2 * basis) / width)
        self.latent = nn.Parameter(torch.rand(heads, tokens, width // heads) / width)
        self.to_kv = nn.Conv2d(width, 2 * width, 1)
        self.to_q = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        p, h = self.patch, self.heads
        nh, nw = H // p, W // p
        xp = x.reshape(B, C, nh, p, nw, p).permute(0, 2, 4, 1, 3, 5).reshape(B * nh * nw, C, p, p)
        P, L = xp.shape[0], p * p
        # (1) deep -> latent: the tokens are queries over the patch's pixels
        kv = self.to_kv(xp).reshape(P, 2, h, C // h, L).permute(1, 0, 2, 4, 3)  # (2, P, h, L, C/h)
        lat = self.latent.unsqueeze(0).expand(P, -1, -1, -1)
        tok = F.scaled_dot_product_attention(lat, kv[0], kv[1]) + lat  # (P, h, T, C/h)
        z = tok.permute(0, 1, 3, 2).reshape(P, C, -1)  # (P, C, T)
        # (2) latent transition in the trigonometric basis, channel-wise, with a residual
        arg = z.unsqueeze(-1) * self.freqs
        z = torch.einsum("pctm,cm->pct", torch.cat([arg.sin(), arg.cos()], -1), self.weights) + z
        # (3) latent -> deep: pixels are queries over the tokens
        tok = z.reshape(P, h, C // h, -1).permute(0, 1, 3, 2)  # (P, h, T, C/h)
        q = self.to_q(xp).reshape(P, h, C // h, L).permute(0, 1, 3, 2)
        out = F.scaled_dot_product_attention(q, tok, tok).permute(0, 1, 3, 2).reshape(P, C, p, p) + xp
        return out.reshape(B, nh, nw, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, C, H, W)


class LSM2d(nn.Module):
    """Latent Spectral Model for 2D fields (see the module docstring for the configuration)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w, L = cfg.width, cfg.levels
        self.cfg = cfg
        self.multiple = cfg.patch * 2 ** (L - 1)
        chans = [w * 2**i for i in range(L)]
        chans[-1] //= 2  # bilinear variant: the bottom level keeps the channels of the one above
        self.lift = nn.Conv2d(cfg.in_channels + 2, w, 1)
        self.inc = _DoubleConv(w, w)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), _DoubleConv(chans[i - 1], chans[i])) for i in range(1, L)
        )
        self.blocks = nn.ModuleList(NeuralSpectralBlock(c, cfg.basis, cfg.tokens, cfg.patch) for c in chans)
        ups = []
        for i in range(L - 1, 0, -1):  # input: upsampled level i concatenated with the level i-1 skip
            cin = chans[i] + chans[i - 1]
            cout = chans[i - 1] // 2 if i > 1 else w
            ups.append(_DoubleConv(cin, cout, cin // 2))
            chans[i - 1] = cout  # the next up sees this output
        self.ups = nn.ModuleList(ups)
        self.outc = nn.Conv2d(w, w, 1)
        self.proj = nn.Sequential(nn.Conv2d(w, 128, 1), nn.GELU(), nn.Conv2d(128, cfg.out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        gy = torch.linspace(0, 1, H, device=x.device, dtype=x.dtype).view(1, 1, H, 1).expand(B, 1, H, W)
        gx = torch.linspace(0, 1, W, device=x.device, dtype=x.dtype).view(1, 1, 1, W).expand(B, 1, H, W)
        x = self.lift(torch.cat([x, gy, gx], 1))
        m = self.multiple
        ph, pw = (-H) % m, (-W) % m
        x = F.pad(x, [0, pw, 0, ph])
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        skips = [blk(s) for blk, s in zip(self.blocks, skips)]
        x = skips[-1]
        for up, skip in zip(self.ups, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
            x = up(torch.cat([skip, x], 1))
        x = self.outc(x)[..., :H, :W]
        return self.proj(x)
