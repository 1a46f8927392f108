"""4D Gaussians (Yang et al. 2023; Duan et al. 2024): xyzt means, 4D covariances, slicing at time t.

A 4D rotation is a pair of unit quaternions (q_l, q_r) acting as p -> q_l p q_r on the quaternion
p = t + x i + y j + z k (the time coordinate is the real part). With q_r = conj(q_l) this is the ordinary
3D rotation of q_l on (x, y, z) that leaves t alone, so a 3DGS Gaussian with rotation q is the 4D Gaussian
(q_l, q_r) = (q, conj q) with no space-time coupling. Covariance: S4 = R4 diag(sx, sy, sz, st)^2 R4^T in
(x, y, z, t) order. Slicing at time t (conditioning the 4D normal on t):

    mean_3D = mu_xyz + S_xt / S_tt (t - mu_t)
    cov_3D  = S_xyz - S_xt S_tx / S_tt
    opacity = o exp(-1/2 (t - mu_t)^2 / S_tt)
"""

from __future__ import annotations

import numpy as np

from backends.common import UserError
from backends.splat.gaussians import Gaussians, as_4d  # noqa: F401 - as_4d is part of this API


def left_matrix(q: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz -> (N, 4, 4) matrix of p -> q p in the (w, x, y, z) basis."""
    a, b, c, d = (q[..., i] for i in range(4))
    return np.stack(
        [
            np.stack([a, -b, -c, -d], -1),
            np.stack([b, a, -d, c], -1),
            np.stack([c, d, a, -b], -1),
            np.stack([d, -c, b, a], -1),
        ],
        -2,
    )


def right_matrix(q: np.ndarray) -> np.ndarray:
    """(N, 4) wxyz -> (N, 4, 4) matrix of p -> p q in the (w, x, y, z) basis."""
    p, q1, r, s = (q[..., i] for i in range(4))
    return np.stack(
        [
            np.stack([p, -q1, -r, -s], -1),
            np.stack([q1, p, s, -r], -1),
            np.stack([r, -s, p, q1], -1),
            np.stack([s, r, -q1, p], -1),
        ],
        -2,
    )


_PERM = np.array([1, 2, 3, 0])  # (x, y, z, t) <- (w=t, x, y, z)


def rotation_4d(ql: np.ndarray, qr: np.ndarray) -> np.ndarray:
    """(N, 4, 4) rotation in (x, y, z, t) coordinates."""
    ql = np.asarray(ql, np.float64)
    qr = np.asarray(qr, np.float64)
    ql = ql / np.linalg.norm(ql, axis=-1, keepdims=True)
    qr = qr / np.linalg.norm(qr, axis=-1, keepdims=True)
    m = left_matrix(ql) @ right_matrix(qr)  # wxyz basis
    return m[:, _PERM][:, :, _PERM]


def covariance_4d(g: Gaussians) -> np.ndarray:
    """(N, 4, 4) space-time covariances in (x, y, z, t) order."""
    if not g.is_4d:
        raise UserError("scene is not 4D (no t / scale_t / rot_r properties)")
    r = rotation_4d(g.quats, g.quats_r)
    s = np.concatenate([g.scales.astype(np.float64), g.scale_t.astype(np.float64)[:, None]], 1)
    m = r * s[:, None, :]
    return m @ np.swapaxes(m, 1, 2)


def slice_at(g: Gaussians, t: float, min_opacity: float = 0.0):
    """Condition every 4D Gaussian on time ``t``: returns (means (N,3), covs (N,3,3), opacities (N,))."""
    if not g.is_4d:
        return g.means, g.covariances(), g.opacities
    cov = covariance_4d(g)
    s_tt = np.maximum(cov[:, 3, 3], 1e-30)
    s_xt = cov[:, :3, 3]
    dt = float(t) - g.t.astype(np.float64)
    means = g.means.astype(np.float64) + s_xt / s_tt[:, None] * dt[:, None]
    covs = cov[:, :3, :3] - s_xt[:, :, None] * s_xt[:, None, :] / s_tt[:, None, None]
    opac = g.opacities.astype(np.float64) * np.exp(-0.5 * dt * dt / s_tt)
    return means.astype(np.float32), covs.astype(np.float32), opac.astype(np.float32)


def time_range(g: Gaussians) -> tuple[float, float]:
    """A playback interval: the 0.5-99.5 percentiles of the time means mu_t (0..1 for static scenes);
    when all mu_t coincide, mu_t +- the median temporal sigma."""
    if not g.is_4d:
        return 0.0, 1.0
    st = np.sqrt(covariance_4d(g)[:, 3, 3])
    dynamic = st < 1e5
    if not dynamic.any():
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(g.t[dynamic], [0.5, 99.5]))
    if hi - lo < 1e-6:
        s = float(np.median(st[dynamic]))
        lo, hi = lo - s, hi + s
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


# -- building 4D Gaussians from a covariance -----------------------------------------------------------
def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        -1,
    )


def quaternion_pair(m_xyzt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4, 4) rotations in (x, y, z, t) order -> (q_l, q_r) with p -> q_l p q_r (t = real part)."""
    from backends.splat.gaussians import rotmat_to_quat

    inv = np.argsort(_PERM)
    m = np.asarray(m_xyzt, np.float64)[:, inv][:, :, inv]  # to the (w, x, y, z) basis
    one = m[:, :, 0]  # M(1) = q_l q_r
    conj_one = one * np.array([1, -1, -1, -1])
    r3 = np.empty((len(m), 3, 3))
    for i in range(3):  # M(e_i) conj(M(1)) = q_l e_i conj(q_l): the 3D rotation of q_l
        r3[:, :, i] = _qmul(m[:, :, 1 + i], conj_one)[:, 1:]
    ql = rotmat_to_quat(r3)
    qr = _qmul(ql * np.array([1, -1, -1, -1]), one)
    return ql.astype(np.float32), qr.astype(np.float32)


def from_covariance_4d(means4: np.ndarray, cov4: np.ndarray, opacities, sh, extras=None) -> Gaussians:
    """4D Gaussians with given (x, y, z, t) means and 4x4 covariances (eigen-decomposed into R4 and scales)."""
    cov4 = np.asarray(cov4, np.float64)
    lam, vec = np.linalg.eigh(cov4)
    neg = np.linalg.det(vec) < 0
    vec[neg, :, 0] *= -1
    ql, qr = quaternion_pair(vec)
    s = np.sqrt(np.maximum(lam, 1e-20))
    means4 = np.asarray(means4, np.float64)
    return Gaussians(
        means=means4[:, :3],
        scales=s[:, :3],
        quats=ql,
        opacities=opacities,
        sh=sh,
        extras=extras or {},
        t=means4[:, 3],
        scale_t=s[:, 3],
        quats_r=qr,
    )


def moving_covariance(cov3: np.ndarray, velocity: np.ndarray, sigma_t) -> np.ndarray:
    """4x4 covariance whose slice at t has covariance ``cov3`` and mean moving with ``velocity``."""
    n = len(cov3)
    st2 = np.broadcast_to(np.asarray(sigma_t, np.float64) ** 2, (n,))
    v = np.asarray(velocity, np.float64)
    out = np.zeros((n, 4, 4))
    out[:, :3, :3] = cov3 + st2[:, None, None] * v[:, :, None] * v[:, None, :]
    out[:, :3, 3] = out[:, 3, :3] = st2[:, None] * v
    out[:, 3, 3] = st2
    return out
