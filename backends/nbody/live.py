"""What a live three-body run has produced so far, for a GUI or a notebook: a bounded recording that grows
chunk by chunk from :func:`backends.nbody.run.simulate`, and the synchronous drivers the panel's *Step* and
the CLI ``snapshot`` use. Pure numpy: no Qt here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.common import UserError, drain
from backends.nbody.core import System, energy, to_com_frame
from backends.nbody.ensemble import EnsembleConfig, EnsembleResult, escape_map
from backends.nbody.io import save_run
from backends.nbody.run import Chunk, RunConfig, simulate

#: the most samples a recording keeps (beyond it every other old sample is dropped; the span stays whole)
MAX_SAMPLES = 50_000
#: the most event-log lines kept (the oldest go first)
MAX_EVENTS = 2_000
#: integration steps per chunk of a synchronous advance (the panel's Step, the CLI snapshot)
STEPS_PER_CHUNK = 20


@dataclass
class Recording:
    """Samples of one run: t (T,), pos/vel (T, N, 3), energy (T,), dt (T,) plus counters and the event log.

    A new recording holds only the initial state (in the centre-of-mass frame, as :func:`simulate` integrates
    it), so a view shows the system before any run."""

    mass: np.ndarray
    t: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    energy: np.ndarray
    dt: np.ndarray
    steps: int = 0
    force_evals: int = 0
    status: str = ""
    events: list[str] = field(default_factory=list)

    @classmethod
    def initial(cls, system: System) -> Recording:
        pos, vel = to_com_frame(system.mass, system.pos, system.vel)
        e0 = energy(system.mass, pos, vel, system.eps**2)
        return cls(system.mass.copy(), np.zeros(1), pos[None], vel[None], np.array([e0]), np.zeros(1))

    def __len__(self) -> int:
        return len(self.t)

    @property
    def n_bodies(self) -> int:
        return len(self.mass)

    @property
    def t_last(self) -> float:
        return float(self.t[-1])

    def append(self, chunk: Chunk) -> None:
        """Add a chunk of :func:`simulate` (a chunk starting at t = 0 replaces the initial sample)."""
        if len(chunk.t):
            keep = len(self.t) if chunk.t[0] > self.t[-1] else int(np.searchsorted(self.t, chunk.t[0]))
            self.t = np.concatenate([self.t[:keep], chunk.t])
            self.pos = np.concatenate([self.pos[:keep], chunk.pos])
            self.vel = np.concatenate([self.vel[:keep], chunk.vel])
            self.energy = np.concatenate([self.energy[:keep], chunk.energy])
            self.dt = np.concatenate([self.dt[:keep], chunk.dt])
            if len(self.t) > MAX_SAMPLES:
                self._thin()
        self.steps, self.force_evals = int(chunk.steps), int(chunk.force_evals)
        self.events.extend(ev.text for ev in chunk.events)
        del self.events[:-MAX_EVENTS]

    def _thin(self) -> None:
        idx = np.r_[np.arange(0, len(self.t) - 1, 2), len(self.t) - 1]
        for name in ("t", "pos", "vel", "energy", "dt"):
            setattr(self, name, getattr(self, name)[idx])

    def frame_at(self, t: float) -> int:
        """Index of the last sample at or before time ``t``."""
        return int(np.clip(np.searchsorted(self.t, t, side="right") - 1, 0, len(self.t) - 1))

    def rel_energy_error(self) -> np.ndarray:
        e0 = self.energy[0]
        return (self.energy - e0) / (abs(e0) if e0 != 0 else 1.0)

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "t": self.t,
            "pos": self.pos,
            "vel": self.vel,
            "energy": self.energy,
            "dt": self.dt,
            "mass": self.mass,
        }

    def save(self, path: str | Path) -> Path:
        """The trajectory NPZ (the one writer, :func:`backends.nbody.io.save_run`)."""
        return save_run(
            path,
            t=self.t,
            pos=self.pos,
            vel=self.vel,
            mass=self.mass,
            energy=self.energy,
            dt=self.dt,
            steps=self.steps,
            force_evals=self.force_evals,
            status=self.status or "ok",
            events=self.events,
        )


class SyncRun:
    """A run advanced chunk by chunk on the caller's thread (the panel's *Step*; ``visual-lab snapshot``)."""

    def __init__(self, system: System, cfg: RunConfig, policy=None) -> None:
        self._gen = simulate(system, cfg, yield_every_steps=STEPS_PER_CHUNK, policy=policy)
        self.done = False

    def chunks(self, count: int) -> list[Chunk]:
        """Up to ``count`` further chunks (fewer when the run ends)."""
        out: list[Chunk] = []
        while len(out) < count and not self.done:
            try:
                out.append(next(self._gen).data)
            except StopIteration:
                self.done = True
        return out


def escape_map_now(n: int, t_end: float) -> EnsembleResult:
    """An ``n`` x ``n`` escape map computed on the caller's thread (tests, the CLI)."""
    if n < 1:
        raise UserError(f"escape map grid side must be >= 1, got {n}")
    return drain(escape_map(EnsembleConfig(nx=n, ny=n, t_end=t_end)))


def log_escape_time(res: EnsembleResult) -> tuple[np.ndarray, tuple[float, float]]:
    """log10 of the escape time (NaN where nothing escaped) and the colour limits that span it up to t_end:
    escape times spread over decades, so a linear scale leaves most of the map in the darkest colour."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lg = np.log10(np.where(res.escape_time > 0, res.escape_time, np.nan))
    hi = float(np.log10(res.t_end))
    finite = lg[np.isfinite(lg)]
    lo = float(finite.min()) if finite.size else hi - 1.0
    if lo >= hi:
        lo = hi - 1.0
    return lg, (lo, hi)
