"""The common simulation API every PDE model follows, the IMEX time steppers, and the run generator."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from backends.common import Progress, UserError

#: model name -> short description (the CLI and the panel list them)
MODELS = {
    "navier-stokes": "2D incompressible Navier-Stokes (vorticity), pseudo-spectral",
    "gray-scott": "Gray-Scott reaction-diffusion",
    "heat": "heat equation (1D or 2D), spectral",
    "wave": "wave equation (1D or 2D), spectral",
    "burgers": "viscous Burgers (1D or 2D), pseudo-spectral",
}

SCHEMES = ("cn-euler", "cn-heun", "if-rk4")


@dataclass
class Frame:
    """One snapshot for the GUI / a dataset: the display field (numpy, first batch element) and diagnostics."""

    t: float
    step: int
    field: np.ndarray
    diagnostics: dict[str, float]
    velocity: tuple[np.ndarray, np.ndarray] | None = None
    extra: dict = field(default_factory=dict)


class BlowUp(UserError):
    """Raised when a field becomes NaN/inf or explodes; the history computed before is kept by the caller."""


class FieldSim:
    """Base class: a time-dependent field on the periodic unit square (or interval).

    Subclasses set ``model``, ``t``, ``steps``, ``dt`` and implement :meth:`_step`, :meth:`field`,
    :meth:`diagnostics`. Optional: :meth:`velocity`, :meth:`spectrum`, :meth:`paint`.
    """

    model = ""
    dim = 2
    field_names: tuple[str, ...] = ("u",)
    paint_targets: tuple[str, ...] = ()
    symmetric = False  # diverging colormap by default
    #: attributes holding the evolving state (tensors): what :meth:`save_state`/:meth:`load_state` copy
    state_attrs: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.t = 0.0
        self.steps = 0
        self.dt = 0.0
        self.blown_up: str | None = None

    # -- stepping ----------------------------------------------------------------------------------------
    def step(self, k: int = 1) -> None:
        """Advance k time steps; raises :class:`BlowUp` (state kept at the last good step)."""
        if self.blown_up:
            raise BlowUp(self.blown_up)
        for _ in range(int(k)):
            self._step()
        self.check()

    def advance_to(self, t_end: float, max_steps: int = 10_000_000) -> None:
        """Step until ``t >= t_end`` landing exactly on it (the last step is shortened)."""
        n = 0
        while self.t < t_end - 1e-12 * max(1.0, abs(t_end)):
            self._step_capped(t_end - self.t)
            n += 1
            if n % 50 == 0:
                self.check()
            if n > max_steps:
                raise UserError(f"more than {max_steps} steps needed to reach t = {t_end}")
        self.check()

    def current_dt(self) -> float:
        return self.dt

    def _step(self, dt: float | None = None) -> None:
        raise NotImplementedError

    def _step_capped(self, cap: float) -> None:
        """One step of min(dt, cap) (used to land exactly on a target time)."""
        self._step(min(self.current_dt(), cap))

    def state_tensors(self) -> list[torch.Tensor]:
        return []

    def save_state(self) -> dict[str, np.ndarray]:
        """Copies of the evolving state (complex spectra as real (..., 2) arrays) with ``t``, ``steps`` and
        ``dt``: enough to continue this run exactly later (sessions save it; :meth:`load_state` reads it)."""
        out = {"t": np.float64(self.t), "steps": np.int64(self.steps), "dt": np.float64(self.dt)}
        for name in self.state_attrs:
            a = getattr(self, name).detach().cpu()
            out[name] = (torch.view_as_real(a) if a.is_complex() else a).numpy().copy()
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        """Continue from :meth:`save_state` output of a simulation with the same config (checked first)."""
        new = {}
        for name in self.state_attrs:
            cur = getattr(self, name)
            if name not in arrays:
                raise UserError(f"{self.model} state: missing array {name!r}")
            a = np.asarray(arrays[name])
            want = tuple(torch.view_as_real(cur).shape) if cur.is_complex() else tuple(cur.shape)
            if a.ndim != len(want) or a.shape[:1] + a.shape[2:] != want[:1] + want[2:] or a.dtype.kind != "f":
                raise UserError(f"{self.model} state: array {name!r} has shape {a.shape}, expected {want}")
            if not np.all(np.isfinite(a)):
                raise UserError(f"{self.model} state: array {name!r} contains NaN or infinity")
            real = (
                torch.tensor(a).to(self.device, cur.real.dtype).contiguous()
            )  # a copy: painting is in place
            new[name] = torch.view_as_complex(real) if cur.is_complex() else real
        for name, value in new.items():
            setattr(self, name, value)
        self.t, self.steps = float(arrays["t"]), int(arrays["steps"])
        self.dt = float(arrays.get("dt", self.dt))
        self.blown_up = None
        self._state_loaded()

    def _state_loaded(self) -> None:
        """Hook: rebuild what depends on the state's layout (e.g. a dye channel) after :meth:`load_state`."""

    def check(self) -> None:
        for s in self.state_tensors():
            if not bool(torch.isfinite(s).all()):
                self.blown_up = (
                    f"{self.model}: the field became NaN/inf at t = {self.t:.6g} (step {self.steps}); "
                    "reduce dt, raise the viscosity/diffusivity, or turn on adaptive dt"
                )
                raise BlowUp(self.blown_up)

    # -- views -------------------------------------------------------------------------------------------
    def field(self, name: str | None = None) -> np.ndarray:
        raise NotImplementedError

    def velocity(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None

    def diagnostics(self) -> dict[str, float]:
        return {}

    def spectrum(self) -> tuple[np.ndarray, np.ndarray] | None:
        return None

    def paint(
        self, x: float, y: float, amount: float, radius: float = 0.05, target: str | None = None
    ) -> None:
        raise UserError(f"{self.model} cannot be painted")

    def frame(self) -> Frame:
        return Frame(self.t, self.steps, self.field().copy(), self.diagnostics(), self.velocity())


class SpectralIMEX:
    """IMEX steppers for ``ds/dt = L s + N(s)`` with diagonal (Fourier) L.

    * ``cn-euler``: Crank-Nicolson for L, forward Euler for N (the FNO data generator; 1st order in N).
    * ``cn-heun``: Crank-Nicolson + Heun (explicit trapezoid) predictor-corrector: 2nd order overall
      (``s* = CN-Euler(s)``; ``s' = [(1 + dt L/2) s + dt (N(s) + N(s*)) / 2] / (1 - dt L/2)``).
    * ``if-rk4``: integrating-factor RK4 (Lawson). The linear part is integrated *exactly* by
      ``exp(L dt)`` and classical RK4 is applied to ``exp(-L t) N``. We chose it over an additive IMEX-RK4
      (e.g. Kennedy-Carpenter ARK4(3)6L) and over ETDRK4 because (1) with L diagonal in Fourier space the
      exponential is free, so stiffness from viscosity disappears with no implicit solves, (2) it is exact
      for linear problems (Taylor-Green decays to round-off, heat modes are exact), (3) it is 4th order with
      the RK4 stability region for advection (|lambda dt| < 2.8 on the imaginary axis), and (4) unlike
      ETDRK4 it needs no phi-functions and no contour integrals, which are fragile in float32. Its weakness
      (error constants grow when ``|L| dt`` is large for strongly nonlinear modes) is harmless at the
      CFL-limited dt used for advection-dominated flows.
    """

    scheme = "cn-heun"

    def _init_imex(self, L: torch.Tensor, nonlinear: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self._L = L
        self._N = nonlinear
        self._cache_dt: float | None = None

    def _coeffs(self, dt: float):
        if self._cache_dt != dt:
            L = self._L
            if self.scheme == "if-rk4":
                self._c = (torch.exp(L * dt), torch.exp(L * (dt / 2)))
            else:
                self._c = ((1 + 0.5 * dt * L), 1.0 / (1 - 0.5 * dt * L))
            self._cache_dt = dt
        return self._c

    def imex_step(self, s: torch.Tensor, dt: float, n0: torch.Tensor | None = None) -> torch.Tensor:
        """One step of size dt; ``n0 = N(s)`` may be passed when already computed (adaptive dt)."""
        N = self._N
        if self.scheme == "if-rk4":
            E, E2 = self._coeffs(dt)
            k1 = N(s) if n0 is None else n0
            k2 = N(E2 * (s + 0.5 * dt * k1))
            k3 = N(E2 * s + 0.5 * dt * k2)
            k4 = N(E * s + dt * E2 * k3)
            return E * s + (dt / 6.0) * (E * k1 + 2.0 * E2 * (k2 + k3) + k4)
        A, Binv = self._coeffs(dt)
        n0 = N(s) if n0 is None else n0
        As = A * s
        pred = (As + dt * n0) * Binv
        if self.scheme == "cn-euler":
            return pred
        return (As + (0.5 * dt) * (n0 + N(pred))) * Binv


def check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise UserError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")


def run(
    sim: FieldSim,
    t_end: float,
    frames: int = 50,
    *,
    wall_budget: float | None = None,
    keep_fields: bool = True,
) -> Iterator[Progress]:
    """Advance ``sim`` to ``t_end`` and yield ``Progress(fraction, message, Frame)`` ``frames`` times.

    Returns the list of frames. A blow-up raises :class:`BlowUp` after every good frame has been yielded.
    """
    if not (math.isfinite(t_end) and t_end > sim.t):
        raise UserError(f"t_end must be > current time {sim.t:g}, got {t_end}")
    if frames < 1:
        raise UserError(f"frames must be >= 1, got {frames}")
    t0 = sim.t
    out = [sim.frame()]
    yield Progress(0.0, f"{sim.model}: t = {sim.t:.4g}", out[0])
    start = time.perf_counter()
    for i in range(1, frames + 1):
        target = t0 + (t_end - t0) * i / frames
        sim.advance_to(target)
        fr = sim.frame()
        if not keep_fields:
            fr.field = fr.field[:0]
        out.append(fr)
        yield Progress(i / frames, f"{sim.model}: t = {sim.t:.4g}, step {sim.steps}", fr)
        if wall_budget is not None and time.perf_counter() - start > wall_budget:
            break
    return out
