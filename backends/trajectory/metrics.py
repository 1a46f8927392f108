"""Displacement metrics in metres: best-of-K minADE/minFDE and single-sample ADE/FDE.

``samples`` is (K, N, T, 2), ``gt`` is (N, T, 2). As in Social-GAN and EigenTrajectory
(``utils/metrics.py``), minADE and minFDE pick their best sample independently per agent, and the
scene number is the mean over all agents of the scene's windows.
"""

from __future__ import annotations

import numpy as np


def displacement(samples: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(K, N, T) Euclidean errors."""
    s = np.asarray(samples, dtype=np.float64)
    if s.ndim == 3:
        s = s[None]
    return np.linalg.norm(s - np.asarray(gt, dtype=np.float64)[None], axis=-1)


def min_ade_fde(samples: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-agent (N,) minADE and minFDE over the K samples."""
    d = displacement(samples, gt)
    return d.mean(axis=-1).min(axis=0), d[..., -1].min(axis=0)


def best_sample(samples: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N,) index of the sample with the lowest ADE per agent (used to highlight the best prediction)."""
    return displacement(samples, gt).mean(axis=-1).argmin(axis=0)


def summarize(samples: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """minADE/minFDE over all K samples and ADE/FDE of sample 0 (the model's single best guess)."""
    ade, fde = min_ade_fde(samples, gt)
    d0 = displacement(np.asarray(samples)[:1], gt)[0]
    return {
        "minADE": float(ade.mean()),
        "minFDE": float(fde.mean()),
        "ADE": float(d0.mean()),
        "FDE": float(d0[:, -1].mean()),
        "agents": int(len(ade)),
        "samples": int(np.shape(samples)[0]),
    }
