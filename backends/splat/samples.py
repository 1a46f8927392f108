"""Generated sample scenes shipped in ``assets/splat/`` (run ``python -m backends.splat.samples``).

* ``sample_3d.ply``: a small static 3D scene (torus, sphere, cubes on a floor disc) with a ``material`` label.
* ``dynamic_4d.ply``: a 4D scene over t in [0, 1] in the format of ``docs/splat_4d_ply.md``: a ball that
  moves, a ring that spins (time slices with tangential velocity, cross-faded by their time extent), a
  cube that appears and a pyramid that disappears, on a static floor.

Axes follow the 3DGS/OpenCV habit: y points down, so the floor sits at y = +1 and "up" is -y.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from backends.splat.gauss4d import as_4d, from_covariance_4d, moving_covariance
from backends.splat.gaussians import SH_C0, Gaussians, concat, quat_to_rotmat
from backends.splat.io import write_ply

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "splat"
SAMPLE_3D = ASSETS / "sample_3d.ply"
SAMPLE_4D = ASSETS / "dynamic_4d.ply"


def _part(points, normals, color, size, rng, material, flat=0.25, jitter=0.03, opacity=0.9) -> Gaussians:
    """Disc-like Gaussians on a surface: thin along the normal, coloured with a little noise."""
    n = len(points)
    z = np.asarray(normals, np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    a = np.where(np.abs(z[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]])
    x = np.cross(z, a)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.cross(z, x)
    from backends.splat.gaussians import rotmat_to_quat

    q = rotmat_to_quat(np.stack([x, y, z], axis=2))
    col = np.clip(np.asarray(color, np.float64)[None] + rng.normal(0, jitter, (n, 3)), 0.02, 0.98)
    scales = np.stack([np.full(n, size), np.full(n, size), np.full(n, size * flat)], 1)
    return Gaussians(
        means=points,
        scales=scales,
        quats=q,
        opacities=np.full(n, opacity),
        sh=((col - 0.5) / SH_C0)[:, None],
        extras={"material": np.full(n, material, np.int32)},
    )


def _sphere(center, radius, n, rng):
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return np.asarray(center) + radius * d, d


def _torus(center, big, small, n, rng):
    u, v = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 2 * np.pi, n)
    ring = np.stack([np.cos(u), np.zeros(n), np.sin(u)], 1)
    nrm = np.cos(v)[:, None] * ring + np.sin(v)[:, None] * np.array([0, -1.0, 0])
    return np.asarray(center) + big * ring + small * nrm, nrm


def _cube(center, half, n, rng):
    face = rng.integers(0, 6, n)
    axis, sign = face // 2, np.where(face % 2, 1.0, -1.0)
    p = rng.uniform(-half, half, (n, 3))
    p[np.arange(n), axis] = sign * half
    nrm = np.zeros((n, 3))
    nrm[np.arange(n), axis] = sign
    return np.asarray(center) + p, nrm


def _disc(center, radius, n, rng):
    r = radius * np.sqrt(rng.uniform(0, 1, n))
    a = rng.uniform(0, 2 * np.pi, n)
    p = np.stack([r * np.cos(a), np.zeros(n), r * np.sin(a)], 1) + np.asarray(center)
    return p, np.tile([0, -1.0, 0], (n, 1))


def make_3d(seed: int = 0) -> Gaussians:
    rng = np.random.default_rng(seed)
    parts = [
        _part(*_disc((0, 1.0, 0), 2.2, 3000, rng), (0.55, 0.55, 0.5), 0.045, rng, 0, jitter=0.05),
        _part(*_torus((-0.8, 0.2, 0), 0.55, 0.2, 1800, rng), (0.85, 0.35, 0.15), 0.045, rng, 1),
        _part(*_sphere((0.9, 0.35, -0.2), 0.55, 1800, rng), (0.2, 0.45, 0.85), 0.05, rng, 2),
        _part(*_cube((0.1, 0.7, 1.0), 0.3, 900, rng), (0.3, 0.75, 0.3), 0.045, rng, 3),
        _part(*_cube((0.2, 0.75, -1.2), 0.25, 700, rng), (0.9, 0.8, 0.2), 0.04, rng, 3),
    ]
    g = concat(parts, block_key="part")
    g.source = "sample_3d.ply"
    return g


def make_4d(seed: int = 1) -> Gaussians:
    rng = np.random.default_rng(seed)
    floor = as_4d(_part(*_disc((0, 1.0, 0), 2.4, 3000, rng), (0.5, 0.5, 0.48), 0.045, rng, 0, jitter=0.05))
    pieces = [floor]

    def dyn(g3: Gaussians, velocity, mu_t, sigma_t, material):
        cov4 = moving_covariance(g3.covariances().astype(np.float64), velocity, sigma_t)
        m4 = np.concatenate(
            [g3.means, np.broadcast_to(np.asarray(mu_t, np.float64), (g3.count,))[:, None]], 1
        )
        return from_covariance_4d(
            m4, cov4, g3.opacities, g3.sh, {"material": np.full(g3.count, material, np.int32)}
        )

    # 1. a ball moving from x = -1.6 to x = +1.6 over t in [0, 1], mean defined at t = 0.5
    ball = _part(*_sphere((0, 0.55, 0.9), 0.4, 1400, rng), (0.9, 0.2, 0.2), 0.045, rng, 1)
    pieces.append(
        dyn(ball, np.tile([3.2, 0, 0], (ball.count, 1)), 0.5, 2.0, 1)
    )  # sigma_t 2: visible all along
    # 2. a spinning ring: 16 time slices of one turn, each moving tangentially, cross-faded in time
    slices, omega = 16, 2 * np.pi
    base = _part(*_torus((0, 0, 0), 0.6, 0.12, 550, rng), (0.2, 0.6, 0.95), 0.04, rng, 2)
    for k in range(slices + 1):
        tk = k / slices
        ang = omega * tk
        rot = quat_to_rotmat(np.array([[np.cos(ang / 2), 0, 0, np.sin(ang / 2)]]))[0]  # about z (ring axis)
        center = np.array([0.0, -0.4, -0.8])
        p = base.means @ rot.T
        from backends.splat.gaussians import rotmat_to_quat

        q = rotmat_to_quat(rot[None] @ quat_to_rotmat(base.quats))  # each splat turns with the ring
        g3 = Gaussians(means=p + center, scales=base.scales, quats=q, opacities=base.opacities, sh=base.sh)
        vel = np.cross(np.array([0, 0, omega]), p)
        pieces.append(dyn(g3, vel, tk, 0.5 / slices, 2))
    # 3. a cube appearing around t = 0.75 and 4. a pyramid disappearing after t = 0.25
    cube = _part(*_cube((1.3, 0.65, -0.6), 0.3, 800, rng), (0.3, 0.8, 0.3), 0.045, rng, 3)
    pieces.append(dyn(cube, np.zeros((cube.count, 3)), 0.8, 0.15, 3))
    pts, nrm = _cube((-1.3, 0.65, -0.6), 0.3, 800, rng)
    h = (0.95 - pts[:, 1]) / 0.6  # taper to a pyramid
    pts[:, [0, 2]] = (pts[:, [0, 2]] - [-1.3, -0.6]) * np.clip(h, 0.05, 1)[:, None] + [-1.3, -0.6]
    pyr = _part(pts, nrm, (0.95, 0.75, 0.15), 0.045, rng, 4)
    pieces.append(dyn(pyr, np.zeros((pyr.count, 3)), 0.1, 0.15, 4))
    g = concat([as_4d(p) for p in pieces])
    g.source = "dynamic_4d.ply"
    return g


def main(argv: list[str] | None = None) -> int:
    out = Path(argv[0]) if argv else ASSETS
    out.mkdir(parents=True, exist_ok=True)
    for name, g in (("sample_3d.ply", make_3d()), ("dynamic_4d.ply", make_4d())):
        p = write_ply(out / name, g)
        print(f"wrote {p} ({g.count} Gaussians, {p.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
