"""Scene edits (opacity threshold, max-scale clamp, crop box, SH-degree limit, random subsample) and colouring
by any per-Gaussian attribute with a legend."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from backends.common import UserError
from backends.splat.gaussians import SH_C0, Gaussians


@dataclass(frozen=True)
class EditConfig:
    min_opacity: float = 0.0  # drop Gaussians with opacity below this
    max_scale: float = 0.0  # clamp every axis scale to this (0 = off), in scene units
    crop_min: tuple[float, float, float] | None = None  # keep means inside [crop_min, crop_max]
    crop_max: tuple[float, float, float] | None = None
    sh_degree: int = 3  # keep SH up to this degree
    subsample: float = 1.0  # keep this random fraction
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_opacity <= 1.0:
            raise UserError(f"opacity threshold must be in [0, 1], got {self.min_opacity}")
        if not self.max_scale >= 0:
            raise UserError(f"max scale must be >= 0 (0 = off), got {self.max_scale}")
        if not 0 <= self.sh_degree <= 3:
            raise UserError(f"SH degree limit must be 0..3, got {self.sh_degree}")
        if not 0.0 < self.subsample <= 1.0:
            raise UserError(f"subsample fraction must be in (0, 1], got {self.subsample}")
        if (self.crop_min is None) != (self.crop_max is None):
            raise UserError("a crop box needs both a minimum and a maximum corner")
        if self.crop_min is not None and not np.all(np.asarray(self.crop_min) < np.asarray(self.crop_max)):
            raise UserError(f"crop box minimum {self.crop_min} must be below its maximum {self.crop_max}")

    @property
    def is_identity(self) -> bool:
        return self == EditConfig(sh_degree=self.sh_degree, seed=self.seed) and self.sh_degree >= 3


def apply_edits(g: Gaussians, cfg: EditConfig) -> Gaussians:
    keep = g.opacities >= cfg.min_opacity
    if cfg.crop_min is not None:
        lo, hi = np.asarray(cfg.crop_min, np.float32), np.asarray(cfg.crop_max, np.float32)
        keep &= np.all((g.means >= lo) & (g.means <= hi), axis=1)
    if cfg.subsample < 1.0:
        rng = np.random.default_rng(cfg.seed)
        keep &= rng.random(g.count) < cfg.subsample
    out = g.subset(np.nonzero(keep)[0])
    if cfg.max_scale > 0:
        out.scales = np.minimum(out.scales, np.float32(cfg.max_scale))
    if cfg.sh_degree < out.sh_degree:
        out = out.with_sh_degree(cfg.sh_degree)
    return out


# -- colour by attribute -----------------------------------------------------------------------------------
_VIRIDIS = np.array(
    [
        [0.267, 0.005, 0.329],
        [0.283, 0.141, 0.458],
        [0.254, 0.265, 0.530],
        [0.207, 0.372, 0.553],
        [0.164, 0.471, 0.558],
        [0.128, 0.567, 0.551],
        [0.135, 0.659, 0.518],
        [0.267, 0.749, 0.441],
        [0.478, 0.821, 0.318],
        [0.741, 0.873, 0.150],
        [0.993, 0.906, 0.144],
    ]
)
_TAB10 = np.array(
    [
        [0.122, 0.467, 0.706],
        [1.000, 0.498, 0.055],
        [0.173, 0.627, 0.173],
        [0.839, 0.153, 0.157],
        [0.580, 0.404, 0.741],
        [0.549, 0.337, 0.294],
        [0.890, 0.467, 0.761],
        [0.498, 0.498, 0.498],
        [0.737, 0.741, 0.133],
        [0.090, 0.745, 0.812],
    ]
)


def viridis(x: np.ndarray) -> np.ndarray:
    x = np.clip(np.nan_to_num(np.asarray(x, np.float64)), 0, 1) * (len(_VIRIDIS) - 1)
    i = np.minimum(x.astype(int), len(_VIRIDIS) - 2)
    f = (x - i)[..., None]
    return (_VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f).astype(np.float32)


def attribute_names(g: Gaussians) -> list[str]:
    names = ["colour", "opacity", "scale", "depth"]
    if g.is_4d:
        names.append("time")
    return names + sorted(g.extras)


def attribute_values(g: Gaussians, name: str, campos=None) -> np.ndarray:
    if name == "opacity":
        return g.opacities
    if name == "scale":
        return g.scales.max(axis=1)
    if name == "depth":
        c = np.zeros(3) if campos is None else np.asarray(campos)
        return np.linalg.norm(g.means - c, axis=1)
    if name == "time" and g.is_4d:
        return g.t
    if name in g.extras:
        return g.extras[name]
    raise UserError(f"unknown attribute {name!r}: choose one of {', '.join(attribute_names(g))}")


@dataclass(frozen=True)
class Legend:
    title: str
    kind: str  # "continuous" or "categorical"
    lo: float = 0.0
    hi: float = 1.0
    entries: tuple[tuple[str, tuple[float, float, float]], ...] = ()

    def swatches(self, n: int = 5) -> list[tuple[str, tuple[float, float, float]]]:
        if self.kind == "categorical":
            return list(self.entries)
        vals = np.linspace(self.lo, self.hi, n)
        cols = viridis(np.linspace(0, 1, n))
        return [(f"{v:.3g}", tuple(float(c) for c in col)) for v, col in zip(vals, cols, strict=True)]


def color_by(g: Gaussians, name: str, campos=None) -> tuple[Gaussians, Legend | None]:
    """The scene recoloured by ``name`` (SH degree 0) and its legend; 'colour' returns the scene unchanged."""
    if name == "colour":
        return g, None
    v = np.asarray(attribute_values(g, name, campos))
    if v.dtype.kind in "iub" and len(np.unique(v)) <= 32:
        cats = np.unique(v)
        lut = {c: _TAB10[i % len(_TAB10)] for i, c in enumerate(cats)}
        rgb = np.stack([lut[c] for c in cats])[np.searchsorted(cats, v)]
        legend = Legend(
            name, "categorical", entries=tuple((str(c), tuple(float(x) for x in lut[c])) for c in cats)
        )
    else:
        finite = v[np.isfinite(v)]
        lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
        hi = hi if hi > lo else lo + 1.0
        rgb = viridis((v - lo) / (hi - lo))
        legend = Legend(name, "continuous", float(lo), float(hi))
    out = replace(g, sh=((rgb - 0.5) / SH_C0)[:, None, :].astype(np.float32), extras=dict(g.extras))
    return out, legend
