"""Datasets: 2-D toys, a Gaussian mixture with a closed-form score, user point sets, CSV files, 8x8 digits.

Every sampler takes ``(n, rng)`` with an explicit ``numpy.random.Generator`` and returns float32 ``(n, dim)``.
The 2-D toys are scaled to roughly unit spread so one set of noise levels fits them all.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.common import UserError, require

from .gmm import GaussianMixture

TOY_DATASETS = ("gmm", "8gaussians", "moons", "swissroll", "checkerboard", "rings")
DATASETS = (*TOY_DATASETS, "points", "csv", "digits")


def eight_gaussians_mixture() -> GaussianMixture:
    """Eight isotropic Gaussians (std 0.15) on a circle of radius 2."""
    ang = np.arange(8) * (2 * math.pi / 8)
    means = 2.0 * np.stack([np.cos(ang), np.sin(ang)], 1)
    covs = np.tile((0.15**2) * np.eye(2), (8, 1, 1))
    return GaussianMixture(np.full(8, 1 / 8), means, covs)


def toy_mixture() -> GaussianMixture:
    """A small anisotropic mixture with unequal weights: the reference for exact-denoiser tests."""
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[-1.2, -0.6], [1.3, 0.2], [0.0, 1.5]])

    def rot(a: float, s1: float, s2: float) -> np.ndarray:
        r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
        return r @ np.diag([s1**2, s2**2]) @ r.T

    covs = np.stack([rot(0.5, 0.5, 0.12), rot(-0.9, 0.35, 0.2), rot(0.0, 0.25, 0.25)])
    return GaussianMixture(weights, means, covs)


def _moons(n: int, rng: np.random.Generator) -> np.ndarray:
    n1 = n // 2
    n2 = n - n1
    t1 = rng.uniform(0, math.pi, n1)
    t2 = rng.uniform(0, math.pi, n2)
    a = np.stack([np.cos(t1), np.sin(t1)], 1)
    b = np.stack([1 - np.cos(t2), 0.5 - np.sin(t2)], 1)
    x = np.concatenate([a, b]) + rng.normal(0, 0.06, (n, 2))
    x = (x - np.array([0.5, 0.25])) * 1.4
    return x[rng.permutation(n)]


def _swissroll(n: int, rng: np.random.Generator) -> np.ndarray:
    t = 1.5 * math.pi * (1 + 2 * rng.uniform(0, 1, n))
    x = np.stack([t * np.cos(t), t * np.sin(t)], 1) + rng.normal(0, 0.4, (n, 2))
    return x / 6.0


def _checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    x1 = rng.uniform(-2, 2, n)
    x2_ = rng.uniform(0, 1, n) - rng.integers(0, 2, n) * 2.0
    x2 = x2_ + (np.floor(x1) % 2)
    return np.stack([x1, x2], 1)


def _rings(n: int, rng: np.random.Generator) -> np.ndarray:
    radii = np.array([0.5, 1.0, 1.5, 2.0])
    k = rng.choice(4, size=n, p=radii / radii.sum())
    a = rng.uniform(0, 2 * math.pi, n)
    r = radii[k] + rng.normal(0, 0.05, n)
    return np.stack([r * np.cos(a), r * np.sin(a)], 1)


def load_digits_array() -> np.ndarray:
    """scikit-learn's bundled 8x8 digits (1797 images) scaled to [-1, 1], shape (1797, 64)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - optional dependency
        raise UserError("the digits dataset needs scikit-learn (pip install scikit-learn)") from None
    x = load_digits().data.astype(np.float32)
    return x / 8.0 - 1.0


def load_digits_labels() -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().target.astype(np.int64)


def load_csv_points(path: str | Path) -> np.ndarray:
    """Numeric CSV of points, one row each, >= 2 columns; a header row is allowed. Clear errors otherwise."""
    from backends.safeio import read_text

    p = Path(path).expanduser()
    require(p.is_file(), f"CSV file {p} does not exist")
    rows: list[list[float]] = []
    width = None
    text = read_text(p, "CSV file", max_bytes=MAX_CSV_BYTES)
    reader = csv.reader(text.splitlines())
    for lineno, row in _csv_rows(reader, p):
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        try:
            vals = [float(c) for c in cells]
        except ValueError:
            if not rows and lineno == 1:  # header row
                continue
            raise UserError(f"{p.name}, line {lineno}: non-numeric value in {','.join(cells)!r}") from None
        if width is None:
            width = len(vals)
            require(width >= 2, f"{p.name}, line {lineno}: need at least 2 columns (x, y), got {width}")
            require(
                width <= MAX_DIM,
                f"{p.name}, line {lineno}: {width} columns, more than the {MAX_DIM} dimensions supported",
            )
        elif len(vals) != width:
            raise UserError(f"{p.name}, line {lineno}: expected {width} columns, got {len(vals)}")
        if not all(math.isfinite(v) for v in vals):
            raise UserError(f"{p.name}, line {lineno}: NaN or infinity is not a valid coordinate")
        if any(abs(v) > MAX_ABS for v in vals):
            raise UserError(f"{p.name}, line {lineno}: coordinate beyond +-{MAX_ABS:g} (rescale the data)")
        rows.append(vals)
    require(len(rows) >= 2, f"{p.name}: need at least 2 numeric rows, got {len(rows)}")
    pts = np.asarray(rows, dtype=np.float32)
    check_spread(pts, p.name)
    return pts


MAX_DIM = 256  # point dimensions (the digits are 64-D)
MAX_ABS = 1e6  # |coordinate|: float32 training and distances stay accurate below it
MAX_CSV_BYTES = 512 * 2**20


def _csv_rows(reader, p: Path):
    try:
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        raise UserError(f"{p.name}, line {reader.line_num}: malformed CSV ({exc})") from None


def check_spread(pts: np.ndarray, what: str) -> None:
    """A point set whose points are all identical has no spread to learn (and a zero data scale)."""
    if float(np.max(np.ptp(pts, axis=0))) == 0.0:
        raise UserError(f"{what}: all {len(pts)} points are identical; a distribution needs spread")


@dataclass(frozen=True)
class Dataset:
    """A named target distribution. ``mixture`` is set when the density is a known Gaussian mixture."""

    name: str
    dim: int
    points: np.ndarray | None = None  # finite set (points, csv, digits): sampled with replacement
    mixture: GaussianMixture | None = None

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        require(n >= 1, f"sample count must be >= 1, got {n}")
        if self.mixture is not None:
            return self.mixture.sample(n, rng).astype(np.float32)
        if self.points is not None:
            return self.points[rng.integers(0, len(self.points), n)].astype(np.float32)
        fn = {"moons": _moons, "swissroll": _swissroll, "checkerboard": _checkerboard, "rings": _rings}
        return fn[self.name](n, rng).astype(np.float32)

    @property
    def is_image(self) -> bool:
        return self.name == "digits"

    def std(self) -> float:
        """Overall data standard deviation (sigma_data for EDM preconditioning)."""
        x = self.sample(4000, np.random.default_rng(12345)) if self.points is None else self.points
        return float(np.sqrt(np.mean((x - x.mean(0)) ** 2)))


def make_dataset(
    name: str, *, points: np.ndarray | None = None, csv_path: str | Path | None = None
) -> Dataset:
    """Build a dataset by name; ``points`` for 'points', ``csv_path`` for 'csv'."""
    require(name in DATASETS, f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if name == "gmm":
        return Dataset(name, 2, mixture=toy_mixture())
    if name == "8gaussians":
        return Dataset(name, 2, mixture=eight_gaussians_mixture())
    if name == "digits":
        return Dataset(name, 64, points=load_digits_array())
    if name == "points":
        require(points is not None, "dataset 'points' needs a point set (draw one or pass an array)")
        pts = np.asarray(points, dtype=np.float32)
        require(pts.ndim == 2 and pts.shape[1] >= 1, f"point set must be (n, dim), got shape {pts.shape}")
        require(len(pts) >= 2, f"point set needs at least 2 points, got {len(pts)}")
        require(bool(np.all(np.isfinite(pts))), "point set contains NaN or infinity")
        require(
            pts.shape[1] <= MAX_DIM, f"point set has {pts.shape[1]} dimensions, at most {MAX_DIM} supported"
        )
        require(bool(np.all(np.abs(pts) <= MAX_ABS)), f"point set has coordinates beyond +-{MAX_ABS:g}")
        check_spread(pts, "point set")
        return Dataset(name, pts.shape[1], points=pts)
    if name == "csv":
        require(csv_path is not None and str(csv_path) != "", "dataset 'csv' needs a file (--csv PATH)")
        pts = load_csv_points(csv_path)
        return Dataset(name, pts.shape[1], points=pts)
    return Dataset(name, 2)
