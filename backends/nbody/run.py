"""Run a system with a chosen integrator: a generator of snapshots, diagnostics, events and blow-up detection.

``simulate(system, cfg)`` yields :class:`backends.common.Progress` records whose ``data`` is a :class:`Chunk`
(the samples recorded since the previous yield) and returns a :class:`RunResult` with the whole history. A
blow-up (NaN or |dE/E| > 0.1) stops the run with ``result.status`` set to a message; the history is kept.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import numpy as np

from backends.common import Progress, UserError, drain
from backends.nbody.core import System, angular_momentum, energy, preset, to_com_frame
from backends.nbody.events import Event, EventDetector
from backends.nbody.integrators import IAS15, RK4, Hermite, Integrator, Leapfrog

INTEGRATORS = ("leapfrog", "rk4", "hermite", "highorder", "rebound", "learned")
BLOWUP_DE = 0.1
MAX_T_END = 1e6
MAX_STEPS = 20_000_000


@dataclass(frozen=True)
class RunConfig:
    """What to integrate and how. ``eta`` drives Hermite (and ``learned`` between decisions), ``dt`` the
    fixed-step methods, ``tol`` the high-order / REBOUND IAS15 epsilon."""

    preset: str = "figure8"
    integrator: str = "hermite"
    eta: float = 0.01
    dt: float = 1e-3
    tol: float = 1e-9
    t_end: float = 10.0
    aarseth: bool = False
    softening: float = 0.0
    seed: int = 0
    n_bodies: int = 3
    policy: str = ""  # weights file for the learned integrator ('' = the bundled policy)
    max_samples: int = 200_000  # history is thinned to at most this many samples (events still every step)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.integrator not in INTEGRATORS:
            raise UserError(f"unknown integrator {self.integrator!r}: choose one of {', '.join(INTEGRATORS)}")
        for name in ("eta", "dt", "tol", "t_end"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
                raise UserError(f"{name.replace('_', '-')} must be a finite number > 0, got {v}")
        if self.t_end > MAX_T_END:
            raise UserError(f"t-end {self.t_end:g} is absurd: at most {MAX_T_END:g} time units")
        if self.eta > 1:
            raise UserError(f"eta must be <= 1 (a fraction of the collision time), got {self.eta}")
        if self.tol >= 1e-2:
            raise UserError(f"tol must be < 1e-2, got {self.tol}")
        if self.integrator in ("leapfrog", "rk4") and self.t_end / self.dt > MAX_STEPS:
            raise UserError(
                f"t-end/dt = {self.t_end / self.dt:.3g} steps is too many (max {MAX_STEPS:g}): "
                f"increase dt or reduce t-end"
            )
        if self.softening < 0 or not math.isfinite(self.softening):
            raise UserError(f"softening must be >= 0, got {self.softening}")
        if not 2 <= self.n_bodies <= 64:
            raise UserError(f"n-bodies must be 2..64, got {self.n_bodies}")
        if self.max_samples < 2:
            raise UserError("max-samples must be >= 2")


@dataclass
class Chunk:
    """Samples recorded since the previous yield."""

    t: np.ndarray
    pos: np.ndarray
    vel: np.ndarray
    energy: np.ndarray
    dt: np.ndarray
    events: list[Event]
    steps: int
    force_evals: int


@dataclass
class RunResult:
    t: np.ndarray
    pos: np.ndarray  # (T, N, 3)
    vel: np.ndarray
    mass: np.ndarray
    energy: np.ndarray
    dt: np.ndarray  # step size that led to each sample (0 for the first)
    ang_mom: np.ndarray  # (T, 3)
    steps: int
    force_evals: int
    events: list[Event] = field(default_factory=list)
    status: str = "ok"
    integrator: str = ""
    wall_s: float = 0.0

    @property
    def rel_energy_error(self) -> np.ndarray:
        e0 = self.energy[0]
        return (self.energy - e0) / (abs(e0) if e0 != 0 else 1.0)

    @property
    def ang_mom_error(self) -> np.ndarray:
        return np.linalg.norm(self.ang_mom - self.ang_mom[0], axis=1)

    def summary(self) -> str:
        de = float(abs(self.rel_energy_error[-1])) if len(self.t) else float("nan")
        ev = (
            "; ".join(e.text for e in self.events if e.kind == "escape")
            or f"{sum(e.kind == 'close' for e in self.events)} close encounters"
        )
        fe = str(self.force_evals) if self.force_evals >= 0 else "n/a"
        line = (
            f"{self.integrator}: t={self.t[-1]:.6g} steps={self.steps} force_evals={fe} "
            f"|dE/E|={de:.3e} events: {ev}"
        )
        if self.status != "ok":
            line += f" [{self.status}]"
        return line


def make_integrator(cfg: RunConfig, system: System, policy=None) -> Integrator:
    """The integrator ``cfg`` names; ``policy`` (a :class:`backends.nbody.learned.Policy`, e.g. one trained in
    the panel) steers ``learned`` instead of the file ``cfg.policy``."""
    m, x, v, eps = system.mass, system.pos, system.vel, system.eps
    name = cfg.integrator
    if name == "leapfrog":
        return Leapfrog(m, x, v, eps, dt=cfg.dt)
    if name == "rk4":
        return RK4(m, x, v, eps, dt=cfg.dt)
    if name == "hermite":
        return Hermite(m, x, v, eps, eta=cfg.eta, criterion="aarseth" if cfg.aarseth else "collision")
    if name == "highorder":
        return IAS15(m, x, v, eps, tol=cfg.tol)
    if name == "rebound":
        from backends.nbody.reference import ReboundIAS15

        return ReboundIAS15(m, x, v, eps, tol=cfg.tol)
    if name == "learned":
        from backends.nbody.learned import LearnedHermite, load_policy

        return LearnedHermite(m, x, v, eps, policy=policy or load_policy(cfg.policy or None))
    raise UserError(f"unknown integrator {name!r}")


def system_for(cfg: RunConfig) -> System:
    return preset(cfg.preset, seed=cfg.seed, n=cfg.n_bodies, eps=cfg.softening)


def simulate(
    system: System | None,
    cfg: RunConfig,
    yield_every_s: float = 0.05,
    yield_every_steps: int | None = None,
    policy=None,
) -> Generator[Progress, None, RunResult]:
    """Integrate ``system`` (default: the config's preset) to ``cfg.t_end``; see the module docstring.
    ``policy``: an in-memory step-size policy for the ``learned`` integrator (default: ``cfg.policy``)."""
    if system is None:
        system = system_for(cfg)
    pos0, vel0 = to_com_frame(system.mass, system.pos, system.vel)
    system = system.copy_with(pos0, vel0)
    integ = make_integrator(cfg, system, policy)
    m, eps2 = system.mass, system.eps**2
    e0 = energy(m, integ.x, integ.v, eps2)
    escale = abs(e0) if e0 != 0 else 1.0
    det = EventDetector(m, integ.x)
    rec_dt = cfg.t_end / cfg.max_samples
    ts, xs, vs, es, dts, ls = (
        [0.0],
        [integ.x.copy()],
        [integ.v.copy()],
        [e0],
        [0.0],
        [angular_momentum(m, integ.x, integ.v)],
    )
    last_yield_idx, last_ev = 0, 0
    wall0 = last_wall = time.perf_counter()
    status = "ok"
    t_last_rec = 0.0

    def chunk() -> Chunk:
        sl = slice(last_yield_idx, len(ts))
        return Chunk(
            np.array(ts[sl]),
            np.array(xs[sl]),
            np.array(vs[sl]),
            np.array(es[sl]),
            np.array(dts[sl]),
            det.events[last_ev:],
            integ.steps,
            integ.force_evals,
        )

    while integ.t < cfg.t_end * (1 - 1e-15):
        try:
            with np.errstate(all="ignore"):
                h = integ.step(cfg.t_end - integ.t)
        except FloatingPointError as exc:
            status = f"blow-up at t={integ.t:.6g}: {exc}"
            break
        x, v = integ.x, integ.v
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(v))):
            status = (
                f"blow-up at t={integ.t:.6g}: NaN/inf in the state (history kept up to the last finite step)"
            )
            break
        e = energy(m, x, v, eps2)
        de = abs(e - e0) / escale
        det.check(integ.t, x, v)
        done = integ.t >= cfg.t_end * (1 - 1e-15)
        if integ.t - t_last_rec >= rec_dt or done or de > BLOWUP_DE:
            ts.append(integ.t)
            xs.append(x.copy())
            vs.append(v.copy())
            es.append(e)
            dts.append(h)
            ls.append(angular_momentum(m, x, v))
            t_last_rec = integ.t
        if de > BLOWUP_DE:
            status = f"blow-up at t={integ.t:.6g}: |dE/E| = {de:.3g} > {BLOWUP_DE}"
            break
        if integ.steps >= MAX_STEPS:
            status = f"stopped at t={integ.t:.6g}: more than {MAX_STEPS} steps"
            break
        now = time.perf_counter()
        due = (yield_every_steps and integ.steps % yield_every_steps == 0) or (
            not yield_every_steps and now - last_wall >= yield_every_s
        )
        if due and (len(ts) > last_yield_idx or len(det.events) > last_ev):
            c = chunk()
            last_yield_idx, last_ev, last_wall = len(ts), len(det.events), now
            yield Progress(min(integ.t / cfg.t_end, 1.0), f"t={integ.t:.4g} |dE/E|={de:.2e}", c)
    c = chunk()
    result = RunResult(
        np.array(ts),
        np.array(xs),
        np.array(vs),
        m.copy(),
        np.array(es),
        np.array(dts),
        np.array(ls),
        integ.steps,
        integ.force_evals,
        list(det.events),
        status,
        cfg.integrator,
        time.perf_counter() - wall0,
    )
    if len(c.t):
        yield Progress(min(integ.t / cfg.t_end, 1.0), status if status != "ok" else "done", c)
    return result


def run(system: System | None, cfg: RunConfig) -> RunResult:
    """Run :func:`simulate` to the end and return the result."""
    return drain(simulate(system, cfg, yield_every_s=math.inf))
