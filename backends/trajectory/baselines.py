"""Constant-velocity baselines (Schöller et al., RA-L 2020, "What the Constant Velocity Model Can Teach Us
About Pedestrian Motion Prediction"): the last observed displacement repeated over the horizon (CVM, "OUR"),
and K samples whose heading is rotated by N(0, sigma = 25 deg) (CVM-S, "OUR-S"). Sample 0 of ``cv20`` is
the unrotated prediction so that its single-sample ADE/FDE equals CV."""

from __future__ import annotations

import numpy as np


def constant_velocity(obs: np.ndarray, pred_len: int = 12) -> np.ndarray:
    """(N, pred_len, 2) from (N, obs_len, 2)."""
    obs = np.asarray(obs, dtype=np.float64)
    v = obs[:, -1] - obs[:, -2]
    steps = np.arange(1, pred_len + 1)[None, :, None]
    return obs[:, -1:, :] + steps * v[:, None, :]


def constant_velocity_samples(
    obs: np.ndarray, pred_len: int = 12, num_samples: int = 20, angle_std_deg: float = 25.0, seed: int = 0
) -> np.ndarray:
    """(K, N, pred_len, 2): heading-noise samples; sample 0 has no noise."""
    obs = np.asarray(obs, dtype=np.float64)
    rng = np.random.default_rng(seed)
    n = obs.shape[0]
    theta = np.deg2rad(rng.normal(0.0, angle_std_deg, size=(num_samples, n)))
    theta[0] = 0.0
    v = obs[:, -1] - obs[:, -2]
    c, s = np.cos(theta), np.sin(theta)
    vx = c * v[None, :, 0] - s * v[None, :, 1]
    vy = s * v[None, :, 0] + c * v[None, :, 1]
    vr = np.stack([vx, vy], axis=-1)  # (K, N, 2)
    steps = np.arange(1, pred_len + 1)[None, None, :, None]
    return obs[None, :, -1:, :] + steps * vr[:, :, None, :]
