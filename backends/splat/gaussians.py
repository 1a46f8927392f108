"""The Gaussian-splat scene model: 3D Gaussians (3DGS) with optional 4D (xyzt) extension.

Conventions (those of the INRIA 3DGS code and gsplat):

* ``means`` (N, 3) world positions; ``scales`` (N, 3) *linear* standard deviations (the .ply stores log);
  ``quats`` (N, 4) unit quaternions in (w, x, y, z) order; ``opacities`` (N,) in [0, 1] (the .ply stores
  the logit); ``sh`` (N, K, 3) spherical-harmonic coefficients, K = (degree + 1)^2, coefficient-major, so
  ``sh[:, 0]`` is the .ply ``f_dc`` and the base colour is ``0.5 + SH_C0 * sh[:, 0]``.
* 4D Gaussians (Yang et al. 2023, "Real-time photorealistic dynamic scene representation"): a time mean
  ``t``, a time scale ``scale_t`` and a right quaternion ``quats_r``; see :mod:`backends.splat.gauss4d`.
* ``extras`` holds any other per-Gaussian property (a material label, a block index, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from backends.common import UserError

SH_C0 = 0.28209479177387814


def sh_degree_for(k: int) -> int:
    deg = int(round(np.sqrt(k))) - 1
    if (deg + 1) ** 2 != k or not 0 <= deg <= 3:
        raise UserError(f"{k} spherical-harmonic coefficients per channel is not a degree 0-3 set")
    return deg


MAX_COORD = 1e15  # scene units; beyond it float32 squares overflow and bounds become infinite


def normalize_quats(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float32)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    bad = ~(n[..., 0] > 1e-12)
    out = q / np.where(n > 1e-12, n, 1.0)
    if np.any(bad):
        out[bad] = (1.0, 0.0, 0.0, 0.0)
    return out.astype(np.float32)


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz unit quaternions -> (N, 3, 3) rotation matrices (the 3DGS ``build_rotation``)."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    r = np.empty(q.shape[:-1] + (3, 3))
    r[..., 0, 0] = 1 - 2 * (y * y + z * z)
    r[..., 0, 1] = 2 * (x * y - w * z)
    r[..., 0, 2] = 2 * (x * z + w * y)
    r[..., 1, 0] = 2 * (x * y + w * z)
    r[..., 1, 1] = 1 - 2 * (x * x + z * z)
    r[..., 1, 2] = 2 * (y * z - w * x)
    r[..., 2, 0] = 2 * (x * z - w * y)
    r[..., 2, 1] = 2 * (y * z + w * x)
    r[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return r


def rotmat_to_quat(r: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices -> (N, 4) wxyz unit quaternions with w >= 0."""
    r = np.asarray(r, dtype=np.float64).reshape(-1, 3, 3)
    tr = np.trace(r, axis1=1, axis2=2)
    q = np.empty((len(r), 4))
    # four branches (Shepperd), pick the numerically best per row
    cands = np.stack([tr, r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], axis=1)
    best = np.argmax(cands, axis=1)
    for i in range(len(r)):
        m = r[i]
        b = best[i]
        if b == 0:
            s = np.sqrt(max(tr[i] + 1.0, 1e-12)) * 2
            q[i] = (0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s)
        elif b == 1:
            s = np.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 1e-12)) * 2
            q[i] = ((m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s)
        elif b == 2:
            s = np.sqrt(max(1.0 + m[1, 1] - m[0, 0] - m[2, 2], 1e-12)) * 2
            q[i] = ((m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s)
        else:
            s = np.sqrt(max(1.0 + m[2, 2] - m[0, 0] - m[1, 1], 1e-12)) * 2
            q[i] = ((m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s)
    q *= np.where(q[:, :1] < 0, -1.0, 1.0)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


@dataclass
class Gaussians:
    """A scene of N Gaussians (see the module docstring for the conventions)."""

    means: np.ndarray
    scales: np.ndarray
    quats: np.ndarray
    opacities: np.ndarray
    sh: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    t: np.ndarray | None = None
    scale_t: np.ndarray | None = None
    quats_r: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        self.means = np.ascontiguousarray(self.means, dtype=np.float32).reshape(-1, 3)
        n = len(self.means)
        self.scales = np.ascontiguousarray(self.scales, dtype=np.float32).reshape(n, 3)
        self.quats = np.ascontiguousarray(self.quats, dtype=np.float32).reshape(n, 4)
        self.opacities = np.ascontiguousarray(self.opacities, dtype=np.float32).reshape(n)
        sh = np.asarray(self.sh, dtype=np.float32)
        if sh.ndim == 2:
            sh = sh.reshape(n, 1, 3)
        self.sh = np.ascontiguousarray(sh)
        if self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise UserError(f"SH array of shape {self.sh.shape} does not match {n} Gaussians")
        sh_degree_for(self.sh.shape[1])
        for k, v in list(self.extras.items()):
            self.extras[k] = np.asarray(v).reshape(n)
        if self.t is not None:
            self.t = np.asarray(self.t, dtype=np.float32).reshape(n)
            self.scale_t = np.asarray(
                self.scale_t if self.scale_t is not None else np.full(n, 1e6), dtype=np.float32
            ).reshape(n)
            qr = self.quats_r
            if qr is None:  # no time coupling: right quaternion = conj(left)
                qr = self.quats * np.array([1, -1, -1, -1], np.float32)
            self.quats_r = np.asarray(qr, dtype=np.float32).reshape(n, 4)

    # -- basic properties --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.means)

    @property
    def count(self) -> int:
        return len(self.means)

    @property
    def sh_degree(self) -> int:
        return sh_degree_for(self.sh.shape[1])

    @property
    def is_4d(self) -> bool:
        return self.t is not None

    def base_colors(self) -> np.ndarray:
        """(N, 3) view-independent colour 0.5 + SH_C0 * f_dc, clamped at 0 as the rasterizer does."""
        return np.maximum(0.5 + SH_C0 * self.sh[:, 0], 0.0).astype(np.float32)

    def covariances(self) -> np.ndarray:
        """(N, 3, 3) world covariances R S S^T R^T."""
        r = quat_to_rotmat(self.quats)
        m = r * self.scales.astype(np.float64)[:, None, :]
        return (m @ np.swapaxes(m, 1, 2)).astype(np.float32)

    def nbytes(self) -> int:
        total = sum(a.nbytes for a in (self.means, self.scales, self.quats, self.opacities, self.sh))
        return total + sum(v.nbytes for v in self.extras.values())

    def validate(self, what: str = "scene") -> None:
        """Raise UserError naming the first problem (and the first Gaussian with it): non-finite or absurd
        positions (beyond 1e15), zero, negative, non-finite or absurd scales, non-finite opacities, colours or
        rotations. A reader validates what it returns, so nothing downstream sees such values."""
        if self.count == 0:
            raise UserError(f"{what} holds no Gaussians")

        def first_bad(bad: np.ndarray, field: str, problem: str, values: np.ndarray) -> None:
            if bad.any():
                i = int(np.argmax(bad))
                raise UserError(
                    f"{what}: Gaussian {i} has {problem} {field} {np.asarray(values[i]).tolist()} "
                    f"({int(bad.sum()):,} Gaussians in all)"
                )

        with np.errstate(invalid="ignore", over="ignore"):
            first_bad(~np.all(np.isfinite(self.means), axis=1), "position", "a NaN or infinite", self.means)
            first_bad(
                np.any(np.abs(self.means) > MAX_COORD, axis=1), "position", "an absurd (> 1e15)", self.means
            )
            first_bad(
                ~np.all(np.isfinite(self.scales) & (self.scales > 0), axis=1),
                "scale",
                "a zero, negative or non-finite",
                self.scales,
            )
            first_bad(np.any(self.scales > MAX_COORD, axis=1), "scale", "an absurd (> 1e15)", self.scales)
            first_bad(~np.isfinite(self.opacities), "opacity", "a NaN", self.opacities)
            first_bad(
                ~np.all(np.isfinite(self.sh.reshape(self.count, -1)), axis=1),
                "colour (SH)",
                "a NaN",
                self.sh[:, 0],
            )
            first_bad(~np.all(np.isfinite(self.quats), axis=1), "rotation", "a NaN", self.quats)
            if self.t is not None:
                first_bad(~np.isfinite(self.t), "time t", "a NaN or infinite", self.t)
                first_bad(
                    ~(np.isfinite(self.scale_t) & (self.scale_t > 0)),
                    "scale_t",
                    "a zero or non-finite",
                    self.scale_t,
                )

    def subset(self, idx: np.ndarray) -> Gaussians:
        """The Gaussians selected by an index or boolean mask (a copy)."""
        idx = np.asarray(idx)
        return Gaussians(
            means=self.means[idx],
            scales=self.scales[idx],
            quats=self.quats[idx],
            opacities=self.opacities[idx],
            sh=self.sh[idx],
            extras={k: v[idx] for k, v in self.extras.items()},
            t=None if self.t is None else self.t[idx],
            scale_t=None if self.scale_t is None else self.scale_t[idx],
            quats_r=None if self.quats_r is None else self.quats_r[idx],
            source=self.source,
        )

    def with_sh_degree(self, degree: int) -> Gaussians:
        """Truncate (or zero-pad) the SH coefficients to ``degree``."""
        if not 0 <= degree <= 3:
            raise UserError(f"SH degree must be 0..3, got {degree}")
        k = (degree + 1) ** 2
        sh = self.sh[:, :k]
        if sh.shape[1] < k:
            sh = np.concatenate([sh, np.zeros((self.count, k - sh.shape[1], 3), np.float32)], axis=1)
        return replace(self, sh=sh.copy(), extras=dict(self.extras))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.means.min(axis=0), self.means.max(axis=0)

    def robust_center_radius(self) -> tuple[np.ndarray, float]:
        """A camera target and distance scale that ignore far-away floaters (5th-95th percentiles)."""
        lo, hi = np.percentile(self.means, [5, 95], axis=0)
        center = 0.5 * (lo + hi)
        radius = float(np.linalg.norm(hi - lo) * 0.5) or 1.0
        return center.astype(np.float64), radius


def as_4d(g: Gaussians, scale_t: float = 1e6) -> Gaussians:
    """A 3D scene as a static 4D one (q_r = conj(q_l), huge time scale): slicing returns it unchanged."""
    if g.is_4d:
        return g
    n = g.count
    return Gaussians(
        means=g.means,
        scales=g.scales,
        quats=g.quats,
        opacities=g.opacities,
        sh=g.sh,
        extras=dict(g.extras),
        t=np.zeros(n, np.float32),
        scale_t=np.full(n, scale_t, np.float32),
        quats_r=g.quats * np.array([1, -1, -1, -1], np.float32),
        source=g.source,
    )


def concat(scenes: list[Gaussians], block_key: str = "block") -> Gaussians:
    """Several scenes as one, with an integer ``extras[block_key]`` naming where each Gaussian came from."""
    if not scenes:
        raise UserError("no scenes to combine")
    k = max(s.sh.shape[1] for s in scenes)
    deg = sh_degree_for(k)
    parts = [s.with_sh_degree(deg) for s in scenes]
    keys = set.intersection(*(set(s.extras) for s in parts)) if parts else set()
    any4d = any(s.is_4d for s in parts)

    def cat(get):
        return np.concatenate([get(s) for s in parts])

    extras = {key: cat(lambda s, key=key: s.extras[key]) for key in keys if key != block_key}
    extras[block_key] = np.concatenate([np.full(s.count, i, np.int32) for i, s in enumerate(parts)])
    out = Gaussians(
        means=cat(lambda s: s.means),
        scales=cat(lambda s: s.scales),
        quats=cat(lambda s: s.quats),
        opacities=cat(lambda s: s.opacities),
        sh=cat(lambda s: s.sh),
        extras=extras,
        source=" + ".join(s.source for s in parts),
    )
    if any4d:
        p4 = [as_4d(s) for s in parts]
        out.t = np.concatenate([s.t for s in p4])
        out.scale_t = np.concatenate([s.scale_t for s in p4])
        out.quats_r = np.concatenate([s.quats_r for s in p4])
    return out
