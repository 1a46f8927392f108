"""Real spherical harmonics up to degree 3 with the constants and sign conventions of the 3DGS code."""

from __future__ import annotations

import numpy as np

SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)


def sh_basis(dirs, degree: int, xp=np):
    """(N, 3) unit directions -> (N, (degree+1)^2) basis values (works for numpy and torch via ``xp``)."""
    x, y, z = dirs[:, 0], dirs[:, 1], dirs[:, 2]
    cols = [xp.ones_like(x) * SH_C0]
    if degree >= 1:
        cols += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        cols += [
            SH_C2[0] * xy,
            SH_C2[1] * yz,
            SH_C2[2] * (2 * zz - xx - yy),
            SH_C2[3] * xz,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        cols += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * xy * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return xp.stack(cols, 1) if xp is np else xp.stack(cols, dim=1)


def eval_sh_colors(sh: np.ndarray, means: np.ndarray, campos: np.ndarray, degree: int | None = None):
    """View-dependent colour 0.5 + sum_k c_k Y_k(dir), clamped at 0 (3DGS ``computeColorFromSH``)."""
    k = sh.shape[1]
    deg = int(round(np.sqrt(k))) - 1 if degree is None else min(degree, int(round(np.sqrt(k))) - 1)
    if deg == 0:
        return np.maximum(SH_C0 * sh[:, 0] + 0.5, 0.0).astype(np.float32)
    d = means.astype(np.float64) - np.asarray(campos, np.float64)[None]
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    basis = sh_basis(d, deg)  # (N, K')
    col = np.einsum("nk,nkc->nc", basis, sh[:, : (deg + 1) ** 2].astype(np.float64)) + 0.5
    return np.maximum(col, 0.0).astype(np.float32)


# Sign of each SH basis function under (x, y, z) -> (x, -y, -z) (parity in y + z of its monomials).
SH_FLIP_YZ = np.array([1, -1, -1, 1, -1, 1, 1, -1, 1, -1, 1, -1, -1, 1, -1, 1], np.float32)
