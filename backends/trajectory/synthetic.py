"""A seeded synthetic crowd from the social-force model (Helbing & Molnár 1995; Helbing et al. 2000).

Pedestrians enter a rectangular plaza at its four sides and walk to a goal on the opposite side; a few
stand still in small groups (so the static branch of EigenTrajectory has data). Each walker relaxes to its
desired velocity ``v0 * e`` with time constant ``tau`` and is pushed by the others with
``A exp((r_ij - d_ij) / B) n_ij`` (anisotropic with weight ``lam`` for people behind). Integration is
semi-implicit Euler at ``dt``; positions are written every 0.4 s as ETH/UCY rows (frame step 10).

``python -m backends.trajectory.synthetic`` regenerates the bundled ``assets/trajectory/synthetic``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.common import UserError
from backends.trajectory.data import Tracks


@dataclass(frozen=True)
class CrowdConfig:
    width: float = 16.0  # m
    height: float = 12.0  # m
    steps: int = 400  # recorded 0.4 s steps
    spawn_rate: float = 0.9  # new walkers per second
    standing_groups: int = 2
    v0_mean: float = 1.3  # m/s
    v0_std: float = 0.2
    tau: float = 0.5  # s
    A: float = 2.1  # m/s^2
    B: float = 0.3  # m
    radius: float = 0.3  # m (body radius)
    lam: float = 0.35  # anisotropy
    dt: float = 0.1  # s integration step
    seed: int = 0

    def validate(self) -> None:
        for name in ("width", "height", "spawn_rate", "v0_mean", "tau", "B", "radius", "dt"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise UserError(f"{name} must be > 0, got {v}")
        if self.steps < 20:
            raise UserError(f"steps must be >= 20 (one 8+12 window), got {self.steps}")
        if 0.4 / self.dt != round(0.4 / self.dt):
            raise UserError(f"dt must divide 0.4 s, got {self.dt}")


def simulate_crowd(cfg: CrowdConfig = CrowdConfig(), name: str = "synthetic") -> Tracks:
    """Run the social-force crowd and return its recorded tracks (frame, ped, x, y)."""
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    sub = int(round(0.4 / cfg.dt))
    W, H = cfg.width, cfg.height
    pos = np.zeros((0, 2))
    vel = np.zeros((0, 2))
    goal = np.zeros((0, 2))
    v0 = np.zeros(0)
    static = np.zeros(0, bool)
    ids = np.zeros(0, int)
    next_id = 1
    # standing groups: 2-3 people chatting, they stay for the whole recording
    for _ in range(cfg.standing_groups):
        c = rng.uniform([0.25 * W, 0.25 * H], [0.75 * W, 0.75 * H])
        n = int(rng.integers(2, 4))
        ang = rng.uniform(0, 2 * np.pi) + np.arange(n) * 2 * np.pi / n
        p = c + 0.45 * np.stack([np.cos(ang), np.sin(ang)], axis=1)
        pos = np.vstack([pos, p])
        vel = np.vstack([vel, np.zeros((n, 2))])
        goal = np.vstack([goal, p])
        v0 = np.r_[v0, np.zeros(n)]
        static = np.r_[static, np.ones(n, bool)]
        ids = np.r_[ids, np.arange(next_id, next_id + n)]
        next_id += n
    rows = []
    total = cfg.steps * sub
    warm = 30 * sub  # fill the plaza before recording
    for it in range(-warm, total):
        # spawn
        for _ in range(rng.poisson(cfg.spawn_rate * cfg.dt)):
            side = int(rng.integers(4))
            u, g = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)
            if side == 0:
                p, q = (0.0, u * H), (W, g * H)
            elif side == 1:
                p, q = (W, u * H), (0.0, g * H)
            elif side == 2:
                p, q = (u * W, 0.0), (g * W, H)
            else:
                p, q = (u * W, H), (g * W, 0.0)
            p, q = np.array(p), np.array(q)
            if len(pos) and np.min(np.linalg.norm(pos - p, axis=1)) < 2 * cfg.radius + 0.1:
                continue
            speed = max(0.5, rng.normal(cfg.v0_mean, cfg.v0_std))
            e = (q - p) / np.linalg.norm(q - p)
            pos = np.vstack([pos, p])
            vel = np.vstack([vel, speed * e])
            goal = np.vstack([goal, q])
            v0 = np.r_[v0, speed]
            static = np.r_[static, False]
            ids = np.r_[ids, next_id]
            next_id += 1
        if len(pos) == 0:
            continue
        # driving force
        d_goal = goal - pos
        dist_goal = np.linalg.norm(d_goal, axis=1, keepdims=True)
        e = np.where(dist_goal > 1e-9, d_goal / np.maximum(dist_goal, 1e-9), 0.0)
        f = (v0[:, None] * e - vel) / cfg.tau
        # pairwise repulsion
        diff = pos[:, None, :] - pos[None, :, :]
        d = np.linalg.norm(diff, axis=-1)
        np.fill_diagonal(d, np.inf)
        n_ij = diff / np.maximum(d, 1e-9)[..., None]
        mag = cfg.A * np.exp((2 * cfg.radius - d) / cfg.B)
        speed = np.linalg.norm(vel, axis=1, keepdims=True)
        heading = np.where(speed > 1e-6, vel / np.maximum(speed, 1e-6), e)
        cos_phi = -np.einsum("ijk,ik->ij", n_ij, heading)
        w = cfg.lam + (1 - cfg.lam) * (1 + cos_phi) / 2
        f = f + np.sum((mag * w)[..., None] * n_ij, axis=1)
        f[static] = -vel[static] / cfg.tau + np.sum((mag * w)[static][..., None] * n_ij[static], axis=1) * 0.2
        vel = vel + cfg.dt * f
        sp = np.linalg.norm(vel, axis=1, keepdims=True)
        vmax = np.maximum(1.3 * v0[:, None], 0.3)
        vel = np.where(sp > vmax, vel * vmax / np.maximum(sp, 1e-9), vel)
        pos = pos + cfg.dt * vel
        # leave at the goal or outside the plaza
        out = (~static) & (
            (np.linalg.norm(goal - pos, axis=1) < 0.5)
            | (pos[:, 0] < -1)
            | (pos[:, 0] > W + 1)
            | (pos[:, 1] < -1)
            | (pos[:, 1] > H + 1)
        )
        if out.any():
            keep = ~out
            pos, vel, goal = pos[keep], vel[keep], goal[keep]
            v0, static, ids = v0[keep], static[keep], ids[keep]
        if it >= 0 and (it + 1) % sub == 0:
            frame = 10 * ((it + 1) // sub - 1)
            jitter = rng.normal(0, 0.01, pos.shape)  # annotation noise (1 cm)
            for i in range(len(pos)):
                rows.append((frame, ids[i], pos[i, 0] + jitter[i, 0], pos[i, 1] + jitter[i, 1]))
    if not rows:
        raise UserError("the synthetic crowd is empty: raise spawn_rate or steps")
    arr = np.asarray(rows, dtype=np.float64)
    arr[:, 2:] = np.round(arr[:, 2:], 4)
    return Tracks(name, arr[np.argsort(arr[:, 0], kind="stable")])


def write_ethucy(tracks: Tracks, path: Path) -> Path:
    from backends.safeio import write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_text(path, "".join(f"{f:.1f}\t{p:.1f}\t{x:.4f}\t{y:.4f}\n" for f, p, x, y in tracks.rows))


ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "trajectory" / "synthetic"
SPLIT_SEEDS = {"train": (11, 700), "val": (12, 200), "test": (13, 250)}


def write_bundled(root: Path = ASSET_DIR) -> list[Path]:
    """Write the bundled crowd as a leave-one-out style folder ``root/synthetic/{train,val,test}``."""
    out = []
    for phase, (seed, steps) in SPLIT_SEEDS.items():
        tr = simulate_crowd(CrowdConfig(seed=seed, steps=steps), name=f"crowd_{phase}")
        out.append(write_ethucy(tr, root / "synthetic" / phase / f"crowd_{phase}.txt"))
    return out


WEIGHTS = ASSET_DIR.parent / "eigentrajectory_synthetic.pt"


def train_bundled_weights(epochs: int = 15, path: Path = WEIGHTS) -> Path:
    """Train the small EigenTrajectory the panel shows by default on the bundled crowd (seed 0)."""
    import torch

    from backends.trajectory.data import load_split
    from backends.trajectory.eigentrajectory import ETConfig, run_training

    torch.set_num_threads(1)
    root = ASSET_DIR
    tr, va = load_split(root, "synthetic", "train"), load_split(root, "synthetic", "val")
    model = run_training(ETConfig(epochs=epochs, hidden=64, static_dist=0.2, seed=0), tr, va)
    return model.save(path)


if __name__ == "__main__":
    import sys

    for p in write_bundled():
        print(p, p.stat().st_size, "bytes")
    if "--weights" in sys.argv:
        w = train_bundled_weights()
        print(w, w.stat().st_size, "bytes")
