"""Navier-Stokes rollout: a trained operator and the pseudo-spectral solver advance side by side.

The operator maps the ``t_in`` given vorticity snapshots w(0..t_in-1) to the next ``t_out`` (time as channels,
the FNO convention; ``fno3d`` likewise). A rollout longer than ``t_out`` is **block-autoregressive**: the
last ``t_in`` frames known so far (given or predicted) are fed back and the next ``t_out`` predicted frames are
appended, so predictions are inputs from the second block on. The solver (:mod:`backends.pde.ns`, FNO forcing,
Crank-Nicolson/Heun with CFL-adaptive dt) starts from the last given snapshot w(t_in-1) at the data set's
resolution and viscosity and advances one unit of time per step.

:func:`rollout` yields one :class:`RolloutStep` per unit time: the given steps first (prediction = truth,
error 0), then every predicted step with the solver's field and the relative L2 error ||w_op - w_ns|| /
||w_ns||. It returns a :class:`Rollout` with the whole sequences. Stop at any yield.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from backends.common import require, require_finite

from .models import OperatorModel

MAX_STEPS = 500


@dataclass(frozen=True)
class RolloutConfig:
    steps: int = 40  # predicted unit-time steps after the given ones, 1..MAX_STEPS
    nu: float = 1e-3  # viscosity of the data set, (0, 1]
    dt: float = 1e-2  # largest solver time step (adaptive, CFL 0.5), (0, 0.1]
    device: str = "cpu"

    def __post_init__(self):
        require(1 <= self.steps <= MAX_STEPS, f"rollout steps must be in 1..{MAX_STEPS}, got {self.steps}")
        require(0 < self.nu <= 1, f"rollout nu must be in (0, 1], got {self.nu}")
        require(0 < self.dt <= 0.1, f"rollout dt must be in (0, 0.1], got {self.dt}")


@dataclass(frozen=True)
class RolloutStep:
    t: int  # unit time (0 = the first given snapshot)
    truth: np.ndarray  # (n, n) the solver's vorticity (the given snapshot while t < t_in)
    prediction: np.ndarray  # (n, n) the operator's (the given snapshot while t < t_in)
    rel_l2: float  # ||prediction - truth|| / ||truth||
    given: bool  # True for the t_in input snapshots
    seconds_solver: float  # wall time of the solver for this step
    seconds_operator: float  # wall time of the operator call that produced this step (its block's share)


@dataclass
class Rollout:
    times: np.ndarray  # (T,) int
    truth: np.ndarray  # (T, n, n)
    prediction: np.ndarray  # (T, n, n)
    rel_l2: np.ndarray  # (T,)
    t_in: int


def rel_l2(pred: np.ndarray, true: np.ndarray) -> float:
    num = np.linalg.norm(np.asarray(pred, np.float64) - true)
    den = np.linalg.norm(np.asarray(true, np.float64))
    return float(num / den) if den > 0 else float(num)


@torch.no_grad()
def _predict_block(model: OperatorModel, window: np.ndarray, device) -> np.ndarray:
    x = torch.as_tensor(window[None], dtype=torch.float32, device=device)
    return model(x)[0].cpu().numpy()


def rollout(model: OperatorModel, given: np.ndarray, cfg: RolloutConfig) -> Iterator[RolloutStep]:
    """Roll ``model`` out from ``given`` (t_in, n, n) for ``cfg.steps`` unit steps beside the solver."""
    from backends.pde.ns import NavierStokes2D, NSConfig

    given = np.asarray(given, np.float32)
    t_in, t_out = model.cfg.in_channels, model.cfg.out_channels
    require(given.ndim == 3, f"rollout: the given snapshots must be (t_in, n, n), got {given.shape}")
    require(
        given.shape[0] == t_in,
        f"rollout: the model takes {t_in} snapshots, {given.shape[0]} given",
    )
    require_finite("rollout initial vorticity", given)
    n = given.shape[-1]
    device = torch.device(cfg.device)
    was = model.training
    model.eval().to(device)
    sim = NavierStokes2D(
        NSConfig(n=n, nu=cfg.nu, dt=cfg.dt, scheme="cn-heun", adaptive=True, cfl=0.5, forcing="fno",
                 batch=1, dtype="float64", device=cfg.device),
        w0=given[-1][None].astype(np.float64),
    )  # fmt: skip
    frames = list(given)  # every frame known so far: given, then predicted
    truth, pred, errs = list(given), list(given), [0.0] * t_in
    try:
        for t in range(t_in):
            yield RolloutStep(t, given[t], given[t], 0.0, True, 0.0, 0.0)
        block: list[np.ndarray] = []
        op_share = 0.0
        for k in range(1, cfg.steps + 1):
            if not block:
                t0 = time.perf_counter()
                out = _predict_block(model, np.stack(frames[-t_in:]), device)
                block = list(out[: min(t_out, cfg.steps - k + 1)])
                op_share = (time.perf_counter() - t0) / len(block)
            p = block.pop(0)
            frames.append(p)
            t0 = time.perf_counter()
            sim.advance_to(float(k))
            w = sim.vorticity()[0].cpu().numpy().astype(np.float32)
            ts = time.perf_counter() - t0
            e = rel_l2(p, w)
            truth.append(w)
            pred.append(p)
            errs.append(e)
            yield RolloutStep(t_in - 1 + k, w, p, e, False, ts, op_share)
    finally:
        model.train(was)
    T = len(truth)
    return Rollout(np.arange(T), np.stack(truth), np.stack(pred), np.asarray(errs), t_in)


__all__ = ["RolloutConfig", "RolloutStep", "Rollout", "rollout", "rel_l2"]
