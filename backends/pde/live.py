"""Live generators for an interactive caller (the PDE panel, scripts): a field simulation stepped forever with
paint requests applied between steps, light frames, and the Darcy recycling sequence.

The caller owns the simulation only while no generator runs: a generator is the one thread touching it, and
everything it yields is a fresh copy (the caller may keep frames while the next step runs).
"""

from __future__ import annotations

import math
import queue
import time
from dataclasses import dataclass

import numpy as np

from backends.common import Progress, UserError

from .base import FieldSim
from .fields import BurgersConfig, GrayScottConfig, HeatConfig, WaveConfig
from .models import make_simulation
from .ns import NSConfig

MODELS = ("navier-stokes", "gray-scott", "heat", "wave", "burgers", "darcy")
#: the fields each model can show (the first is the default view)
FIELD_NAMES = {
    "navier-stokes": ("vorticity", "dye", "speed", "streamfunction"),
    "gray-scott": ("v", "u"),
    "heat": ("temperature",),
    "wave": ("displacement", "velocity"),
    "burgers": ("u", "v", "speed"),
    "darcy": ("darcy-u", "darcy-a"),
}
DEFAULT_DT = {
    "navier-stokes": 2e-3,
    "gray-scott": 1.0,
    "heat": 1e-2,
    "wave": 5e-3,
    "burgers": 1e-3,
    "darcy": 1.0,
}
DEFAULT_INIT = {"navier-stokes": "grf", "heat": "random", "wave": "gaussian", "burgers": "random"}
IMEX_SCHEMES = ("cn-euler", "cn-heun", "if-rk4")
WAVE_SCHEMES = ("verlet", "rk4", "exact")
QUIVER_ARROWS = 24  # arrows per side of the subsampled velocity
DIAGNOSTICS_EVERY_S = 0.1  # diagnostics cost about one step: computed at 10 Hz while running
SPECTRUM_EVERY_S = 0.25


CONFIGS = {
    "navier-stokes": NSConfig,
    "gray-scott": GrayScottConfig,
    "heat": HeatConfig,
    "wave": WaveConfig,
    "burgers": BurgersConfig,
}


@dataclass(frozen=True)
class LiveConfig:
    """What builds a live simulation (the union of the models' options; each model reads its own)."""

    model: str = "navier-stokes"
    n: int = 256
    dt: float = 2e-3
    nu: float = 1e-3
    kappa: float = 1e-3
    c: float = 0.2
    scheme: str = "cn-heun"
    adaptive: bool = True
    forcing: str = "fno"
    init: str = "default"
    preset: str = "coral"
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"


def build_simulation(cfg: LiveConfig) -> FieldSim:
    """The backend simulation for ``cfg`` (raises UserError on bad input; Darcy is not a time simulation)."""
    if cfg.model == "darcy":
        raise UserError("darcy is solved as a sequence of systems (darcy_job), not stepped in time")
    return make_simulation(cfg.model, **simulation_kwargs(cfg))


def check_config(cfg: LiveConfig) -> None:
    """Raise the backend's UserError for a bad combination (grid size, stability, init) without building
    anything: the model's config dataclass checks itself."""
    if cfg.model == "darcy":
        return  # any grid size: the Darcy assembly is a sparse finite-difference matrix
    CONFIGS[cfg.model](**simulation_kwargs(cfg))


def simulation_kwargs(cfg: LiveConfig) -> dict:
    """The keyword arguments of ``cfg.model``'s config dataclass."""
    init = DEFAULT_INIT.get(cfg.model) if cfg.init == "default" else cfg.init
    common = {"n": cfg.n, "seed": cfg.seed, "dtype": cfg.dtype, "device": cfg.device}
    imex = cfg.scheme if cfg.scheme in IMEX_SCHEMES else "cn-heun"
    if cfg.model == "navier-stokes":
        kw = dict(
            common, nu=cfg.nu, dt=cfg.dt, scheme=imex, adaptive=cfg.adaptive, forcing=cfg.forcing, init=init
        )
    elif cfg.model == "gray-scott":
        kw = dict(common, preset=cfg.preset, dt=cfg.dt)
    elif cfg.model == "heat":
        kw = dict(common, kappa=cfg.kappa, dt=cfg.dt, scheme=imex, init=init)
    elif cfg.model == "wave":
        scheme = cfg.scheme if cfg.scheme in WAVE_SCHEMES else "rk4"
        kw = dict(common, c=cfg.c, dt=cfg.dt, scheme=scheme, init=init)
    else:
        kw = dict(common, dim=2, nu=cfg.nu, dt=cfg.dt, scheme=imex, init=init)
    return kw


def snapshot(
    sim: FieldSim,
    *,
    velocity: bool = True,
    diagnostics: bool = True,
    spectrum: bool = True,
    state: bool = True,
) -> dict:
    """A frame of copies: every field (float32), and optionally the subsampled velocity, diagnostics, the
    spectrum and the solver state (:meth:`FieldSim.save_state`, to continue exactly from this frame)."""
    fields = {name: sim.field(name).astype(np.float32) for name in sim.field_names}
    vel = sim.velocity() if velocity else None
    if vel is not None:
        s = max(1, vel[0].shape[0] // QUIVER_ARROWS)
        vel = (vel[0][::s, ::s].astype(np.float32), vel[1][::s, ::s].astype(np.float32))
    spec = sim.spectrum() if spectrum else None
    return {
        "t": float(sim.t),
        "step": int(sim.steps),
        "fields": fields,
        "velocity": vel,
        "diagnostics": dict(sim.diagnostics()) if diagnostics else None,
        "spectrum": None if spec is None else (np.array(spec[0]), np.array(spec[1])),
        "state": sim.save_state() if state else None,
    }


def live_frames(sim: FieldSim, steps_per_frame: int, paints: queue.SimpleQueue):
    """Step ``sim`` forever; yield ``Progress(None, message, frame)`` after every chunk (an open-ended run has
    no fraction). ``paints`` holds ``sim.paint`` argument tuples queued by another thread, applied here between
    steps. Frames always carry the subsampled velocity (two FFTs, far cheaper than a step), so arrows can be
    switched on at any time. Diagnostics and the spectrum are throttled (frames in between carry None). A
    blow-up raises after the last good frame was yielded."""
    last_diag = last_spec = -math.inf
    while True:
        while True:
            try:
                args = paints.get_nowait()
            except queue.Empty:
                break
            sim.paint(*args)
        sim.step(steps_per_frame)
        now = time.perf_counter()
        diag, spec = now - last_diag >= DIAGNOSTICS_EVERY_S, now - last_spec >= SPECTRUM_EVERY_S
        last_diag = now if diag else last_diag
        last_spec = now if spec else last_spec
        frame = snapshot(sim, diagnostics=diag, spectrum=spec)
        yield Progress(None, f"{sim.model}: t = {sim.t:.4g}, step {sim.steps}", frame)


def darcy_job(count: int, n: int, k: int, seed: int):
    """A Darcy sequence solved with plain PCG and with recycling; yields per-system Progress frames."""
    from .darcy import RecyclingCG, assemble, darcy_coefficients, embed, pcg, similarity_order

    if count < 1:
        raise UserError(f"darcy count must be at least 1, got {count}")
    a = darcy_coefficients(n, count, seed=seed)
    order = similarity_order(a)
    solver = RecyclingCG(k, 2 * k, 1e-10)
    tot_p = tot_r = 0
    t_p = t_r = 0.0
    for j, i in enumerate(order):
        A, b = assemble(a[i])
        _, ip, _, _ = pcg(A, b, tol=1e-10)
        xr, ir = solver.solve(A, b)
        tot_p += ip.iterations
        tot_r += ir.iterations
        t_p += ip.seconds
        t_r += ir.seconds
        yield Progress(
            (j + 1) / count,
            f"Darcy {j + 1}/{count}: PCG {ip.iterations} it, recycled {ir.iterations} it",
            {
                "a": a[i].astype(np.float32),
                "u": embed(xr, n).astype(np.float32),
                "index": int(i),
                "j": j,
                "res_plain": np.asarray(ip.residuals, float),
                "res_rec": np.asarray(ir.residuals, float),
                "it_plain": ip.iterations,
                "it_rec": ir.iterations,
                "tot_plain": tot_p,
                "tot_rec": tot_r,
                "sec_plain": t_p,
                "sec_rec": t_r,
            },
        )
    return {"tot_plain": tot_p, "tot_rec": tot_r}


def state_shapes(cfg: LiveConfig) -> dict[str, tuple[int | None, ...]]:
    """The array shapes :meth:`FieldSim.save_state` writes for ``cfg`` (None: either; NS gains a dye channel
    when dye is painted). Sessions check a saved state against these before anything changes."""
    n = cfg.n
    if cfg.model == "darcy":
        return {}
    if cfg.model == "gray-scott":
        return {"u": (1, n, n), "v": (1, n, n)}
    channels = {"navier-stokes": None, "heat": 1, "wave": 2, "burgers": 2}[cfg.model]
    return {"s": (1, channels, n, n // 2 + 1, 2)}
