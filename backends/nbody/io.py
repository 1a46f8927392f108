"""The one writer of three-body trajectories (NPZ), shared by the CLI and the panel, and its reader.

Keys: t, pos (T, N, 3), vel, mass, energy, dt, ang_mom (T, 3), steps, force_evals, status (str) and events
(a JSON list of the event-log lines). Written atomically: a temporary file in the same folder, flushed and
synced, then renamed over the target, so a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from backends.common import UserError
from backends.nbody.core import angular_momentum

RUN_KEYS = ("t", "pos", "vel", "mass", "energy", "dt", "ang_mom", "steps", "force_evals", "status", "events")


def ang_mom_history(mass: np.ndarray, pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
    """Total angular momentum (T, 3) of every sample of a history (pos, vel: (T, N, 3))."""
    if len(pos) == 0:
        return np.zeros((0, 3))
    return np.stack([angular_momentum(mass, x, v) for x, v in zip(pos, vel)])


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Compressed NPZ written to a temporary sibling, fsynced, then renamed over ``path``."""
    p = Path(path)
    if not p.parent.is_dir():
        raise UserError(f"cannot write {p}: folder {p.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def save_run(
    path: str | os.PathLike,
    *,
    t: np.ndarray,
    pos: np.ndarray,
    vel: np.ndarray,
    mass: np.ndarray,
    energy: np.ndarray,
    dt: np.ndarray,
    steps: int,
    force_evals: int,
    status: str,
    events: list[str],
    ang_mom: np.ndarray | None = None,
) -> Path:
    """Write a trajectory with every key of :data:`RUN_KEYS` (angular momentum computed when not given)."""
    if len(t) == 0:
        raise UserError("nothing to save yet: run the integration first")
    if ang_mom is None:
        ang_mom = ang_mom_history(mass, pos, vel)
    return write_npz_atomic(
        path,
        {
            "t": np.asarray(t, float),
            "pos": np.asarray(pos, float),
            "vel": np.asarray(vel, float),
            "mass": np.asarray(mass, float),
            "energy": np.asarray(energy, float),
            "dt": np.asarray(dt, float),
            "ang_mom": np.asarray(ang_mom, float),
            "steps": np.int64(steps),
            "force_evals": np.int64(force_evals),
            "status": np.str_(status),
            "events": np.str_(json.dumps([str(e) for e in events])),
        },
    )


def save_result(path: str | os.PathLike, res) -> Path:
    """Write a :class:`backends.nbody.run.RunResult`."""
    return save_run(
        path,
        t=res.t,
        pos=res.pos,
        vel=res.vel,
        mass=res.mass,
        energy=res.energy,
        dt=res.dt,
        steps=res.steps,
        force_evals=res.force_evals,
        status=res.status,
        events=[e.text for e in res.events],
        ang_mom=res.ang_mom,
    )


def load_run(path: str | os.PathLike) -> dict:
    """Read a trajectory written by :func:`save_run` (no pickles); ``events`` comes back as a list of str."""
    with np.load(path, allow_pickle=False) as d:
        missing = [k for k in RUN_KEYS if k not in d.files]
        if missing:
            raise UserError(f"{path}: not a three-body trajectory (missing {', '.join(missing)})")
        out = {k: d[k] for k in RUN_KEYS}
    out["status"] = str(out["status"])
    out["events"] = json.loads(str(out["events"]))
    return out
