"""The PDE panel's source of truth, Qt-free: parameters, the frame shown, the recording, histories, probes and
the Darcy sequence. The view, the plots and the exports read it and listen to its events; the panel feeds it
frames that the workers hand over (copies: nothing here is shared with a running simulation).

Events: ``params(changed)``, ``frame()`` (the shown frame changed), ``probe()``, ``line()``, ``darcy()``,
``reset()`` (a new run: recording and histories cleared), ``stale(why)``, ``restored()``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.common import UserError, memory_budget
from backends.pde.live import (
    DEFAULT_DT,
    FIELD_NAMES,
    IMEX_SCHEMES,
    MODELS,
    WAVE_SCHEMES,
    LiveConfig,
    check_config,
    state_shapes,
)
from backends.pde.probes import line_profile
from panels.model import PanelModel, param, require_array, validate_params

COLORMAPS = ("auto", "RdBu_r", "coolwarm", "viridis", "magma", "inferno", "cubehelix", "grays")
#: "default" is each model's usual start; the rest belong to some models only (the backend config says which)
INIT_CHOICES = (
    "default", "grf", "taylor-green", "turbulence", "zero", "random", "mode", "gaussian", "sine", "cole-hopf",
)  # fmt: skip
PRESETS = ("spots", "stripes", "mitosis", "coral", "worms", "maze", "holes", "solitons", "u-skate", "bubbles")
ALL_VIEWS = tuple(dict.fromkeys(v for names in FIELD_NAMES.values() for v in names))
FIELD_LABEL = {
    "vorticity": "vorticity ω",
    "dye": "dye concentration",
    "speed": "speed |u|",
    "streamfunction": "streamfunction ψ",
    "v": "chemical v (concentration)",
    "u": "u",
    "temperature": "temperature T",
    "displacement": "displacement u",
    "velocity": "velocity ∂u/∂t",
    "darcy-u": "pressure u (Darcy)",
    "darcy-a": "permeability a(x)",
}
#: model -> (tab/plot name, ((diagnostic key, axis label with units), ...)); all quantities are dimensionless
#: (unit periodic square, time in model units; Gray-Scott time in grid steps of dt)
HISTORIES = {
    "navier-stokes": (
        "Energy & enstrophy",
        (("energy", "energy ½⟨|u|²⟩ (dimensionless)"), ("enstrophy", "enstrophy ½⟨ω²⟩ (dimensionless)")),
    ),
    "gray-scott": (
        "Mean & variance of v",
        (("mean_v", "mean of v (concentration)"), ("var_v", "variance of v (concentration²)")),
    ),
    "heat": ("Variance of T", (("variance", "variance of T (temperature²)"),)),
    "wave": ("Wave energy", (("energy", "energy ½⟨u_t² + c²|∇u|²⟩ (dimensionless)"),)),
    "burgers": ("Kinetic energy", (("energy", "kinetic energy ½⟨|u|²⟩ (dimensionless)"),)),
    "darcy": ("History", ()),
}
SPECTRUM_MODELS = ("navier-stokes", "burgers", "heat", "wave")
SIGNED_VIEWS = ("vorticity", "streamfunction", "displacement", "velocity", "u", "v")
SIM_KEYS = (
    "model", "n", "dt", "nu", "kappa", "c", "scheme", "adaptive", "forcing", "init", "preset", "seed", "dtype",
    "device", "darcy_count", "darcy_recycle_k",
)  # fmt: skip
MAX_RECORD = 600  # frames kept for scrub / replay / video ...
RECORD_SHARE = 0.25  # ... within this share of the memory budget (Compute > Memory budget)
MAX_HISTORY = 20_000  # points per history curve (diagnostics, probe, line)
LINE_SAMPLES = 200  # samples along a line probe
DARCY_SCALARS = ("j", "index", "it_plain", "it_rec", "tot_plain", "tot_rec", "sec_plain", "sec_rec")


@dataclass(frozen=True)
class PDEParams:
    model: str = param("navier-stokes", "Model", choices=MODELS)
    n: int = param(
        256, "Grid n", minimum=16, maximum=1024, step=16, tooltip="grid points per side (2^a 3^b 5^c)"
    )
    dt: float = param(
        2e-3, "dt", minimum=1e-6, maximum=10.0, log=True, tooltip="time step (max when adaptive)"
    )
    nu: float = param(1e-3, "Viscosity nu", minimum=1e-7, maximum=10.0, log=True)
    kappa: float = param(1e-3, "Diffusivity kappa", minimum=1e-7, maximum=10.0, log=True, tooltip="heat")
    c: float = param(0.2, "Wave speed c", minimum=1e-4, maximum=10.0, log=True)
    scheme: str = param(
        "cn-heun",
        "Scheme",
        choices=IMEX_SCHEMES + WAVE_SCHEMES,
        tooltip="NS/Burgers/heat: cn-euler, cn-heun, if-rk4; wave: verlet, rk4, exact",
    )
    adaptive: bool = param(True, "CFL-adaptive dt")
    forcing: str = param("fno", "Forcing", choices=("fno", "kolmogorov", "none"))
    init: str = param("default", "Initial field", choices=INIT_CHOICES)
    preset: str = param("coral", "Gray-Scott preset", choices=PRESETS)
    steps_per_frame: int = param(1, "Steps / frame", minimum=1, maximum=1000)
    seed: int = param(0, "Seed", minimum=0, maximum=2**31 - 1)
    dtype: str = param("float32", "dtype", choices=("float32", "float64"))
    device: str = param("cpu", "Device", choices=("cpu", "cuda", "auto"))
    colormap: str = param(
        "auto",
        "Colormap",
        choices=COLORMAPS,
        tooltip="auto: diverging RdBu for signed fields, viridis otherwise",
    )
    limits: str = param("auto", "Colour limits", choices=("auto", "symmetric", "fixed"))
    vmin: float = param(-1.0, "Fixed min", minimum=-1e6, maximum=1e6)
    vmax: float = param(1.0, "Fixed max", minimum=-1e6, maximum=1e6)
    quiver: bool = param(False, "Velocity arrows")
    paint_target: str = param(
        "field",
        "Paint",
        choices=("field", "dye"),
        tooltip="field: vorticity / chemical v / temperature / displacement / u; dye: passive dye (NS)",
    )
    paint_amount: float = param(5.0, "Paint amount", minimum=-1e4, maximum=1e4, decimals=3)
    paint_radius: float = param(0.03, "Paint radius", minimum=0.002, maximum=0.5, decimals=3)
    record: bool = param(True, "Record frames")
    darcy_count: int = param(20, "Darcy systems", minimum=2, maximum=1000)
    darcy_recycle_k: int = param(16, "Recycle space k", minimum=0, maximum=200)
    view: str = param("vorticity", "Show", choices=ALL_VIEWS, form=False)

    def live_config(self) -> LiveConfig:
        """The backend's part of these parameters."""
        return LiveConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(LiveConfig)})


def check_params(p: PDEParams, where: str = "params") -> None:
    """Combinations the per-field ranges cannot express (view of the model, scheme, grid size, stability)."""
    if p.view not in FIELD_NAMES[p.model]:
        raise UserError(
            f"{where}.view = {p.view!r} is not a field of {p.model}: {', '.join(FIELD_NAMES[p.model])}"
        )
    allowed = {"wave": WAVE_SCHEMES, "gray-scott": None, "darcy": None}.get(p.model, IMEX_SCHEMES)
    if allowed is not None and p.scheme not in allowed:
        raise UserError(f"{where}.scheme = {p.scheme!r} is not a {p.model} scheme: use {', '.join(allowed)}")
    try:
        check_config(p.live_config())
    except (UserError, ValueError, TypeError) as exc:
        raise UserError(f"{where}: {exc}") from None


def _finite_pair(value: Any, name: str) -> tuple[float, float]:
    """(x, y) in the unit square, or a UserError naming ``name`` and the value."""
    ok = isinstance(value, list | tuple) and len(value) == 2
    ok = ok and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if not ok or not all(0.0 <= float(v) <= 1.0 for v in value):
        raise UserError(f"{name} must be two numbers in [0, 1], got {value!r:.80}")
    return float(value[0]), float(value[1])


def frame_bytes(frame: dict) -> int:
    vel = frame.get("velocity") or ()
    return sum(a.nbytes for a in frame["fields"].values()) + sum(a.nbytes for a in vel)


class PDEModel(PanelModel):
    key = "pde"
    Params = PDEParams

    def __init__(self) -> None:
        super().__init__()
        self.current: dict | None = None  # the frame shown: t, step, fields, velocity, diagnostics, spectrum
        self.frames: list[dict] = []  # the recording (bounded): scrub, replay, video
        self.shown = -1  # index of ``current`` in ``frames``
        self.sim_state: dict[str, np.ndarray] | None = None  # the solver's latest state (to continue a run)
        self.hist: dict[str, list[float]] = {"t": []}
        self.probe: tuple[float, float] = (0.5, 0.5)
        self.probe_hist: list[tuple[float, float]] = []
        self.line: tuple[tuple[float, float], tuple[float, float]] | None = None
        self.line_hist: list[tuple[float, np.ndarray]] = []
        self.darcy: dict | None = None
        self.darcy_totals: list[tuple[int, int, int]] = []
        #: True while a session is applied (listeners then wait for ``restored`` instead of resetting the run)
        self.restoring = False

    # -- parameters ---------------------------------------------------------------------------------------
    def set_params(self, **changes: Any) -> set[str]:
        """Validated changes; a new model also takes its usual dt, initial field, scheme, grid and view
        (unless given), so switching models never lands on a combination that cannot run."""
        model = changes.get("model", self.params.model)
        if model != self.params.model and model in MODELS:
            defaults = {"dt": DEFAULT_DT[model], "init": "default", "view": FIELD_NAMES[model][0]}
            if model == "wave":
                defaults["scheme"] = "rk4"
            elif self.params.scheme not in IMEX_SCHEMES:
                defaults["scheme"] = "cn-heun"
            defaults["n"] = 64 if model == "darcy" else max(self.params.n, 64)
            if (
                "dt" not in changes
            ):  # the usual dt, halved until the model is stable on this grid (wave, fine n)
                defaults["dt"] = self._stable_dt(defaults | changes)
            changes = defaults | changes
        check_params(validate_params(PDEParams, changes, base=self.params))
        return super().set_params(**changes)

    def _stable_dt(self, changes: dict[str, Any]) -> float:
        dt = changes["dt"]
        for _ in range(20):
            try:
                check_params(validate_params(PDEParams, changes | {"dt": dt}, base=self.params))
                return dt
            except UserError:
                dt /= 2
        return changes["dt"]  # another problem than dt: set_params reports it

    def params_changed(self, changed: set[str]) -> None:
        if "view" in changed:
            self._recompute_probes()

    def sim_changed(self, changed: set[str]) -> bool:
        """True when ``changed`` parameters make the current run obsolete (the panel then resets it)."""
        return bool(changed & set(SIM_KEYS))

    # -- the run ------------------------------------------------------------------------------------------
    def reset_run(self, frame: dict | None, stale: str = "") -> None:
        """Start over: forget the recording, histories and Darcy results; show ``frame`` (the initial state)."""
        self.current, self.frames, self.shown, self.sim_state = None, [], -1, None
        self.hist = {"t": []}
        self.probe_hist, self.line_hist = [], []
        self.darcy, self.darcy_totals = None, []
        self.events.emit("reset")
        if frame is not None:
            self.record(frame)
        else:
            self.events.emit("frame")
        self.mark_stale(stale)

    def record(self, frame: dict) -> None:
        """Show a new frame (a worker's copy) and add it to the recording and histories."""
        prev = self.frames[-1] if self.frames else None
        state = frame.pop("state", None)
        if state is not None:
            self.sim_state = state
        if frame["diagnostics"] is None:  # throttled live frame: carry the last values forward
            frame["diagnostics"] = dict(prev["diagnostics"]) if prev else {}
        else:
            self._append_history(frame)
        if frame["spectrum"] is None and prev is not None:  # and the time it describes
            frame["spectrum"], frame["spectrum_t"] = prev["spectrum"], prev.get("spectrum_t", prev["t"])
        self._probe_value(frame)
        self._line_value(frame)
        if self.params.record or not self.frames:
            self.frames.append(frame)
            total, budget = sum(frame_bytes(f) for f in self.frames), RECORD_SHARE * memory_budget()
            while len(self.frames) > MAX_RECORD or (total > budget and len(self.frames) > 1):
                total -= frame_bytes(self.frames.pop(0))
        else:
            self.frames[-1] = frame
        self.current, self.shown = frame, len(self.frames) - 1
        self.mark_stale("")
        self.events.emit("frame")

    def _append_history(self, frame: dict) -> None:
        h = self.hist
        h["t"].append(frame["t"])
        for k, v in frame["diagnostics"].items():
            h.setdefault(k, [math.nan] * (len(h["t"]) - 1)).append(float(v))
        for k in h:
            if len(h[k]) < len(h["t"]):
                h[k].append(math.nan)
            del h[k][:-MAX_HISTORY]

    def show_frame(self, i: int) -> None:
        """Show recorded frame ``i`` (scrub / replay)."""
        if 0 <= i < len(self.frames) and i != self.shown:
            self.current, self.shown = self.frames[i], i
            self.events.emit("frame")

    def record_darcy(self, data: dict) -> None:
        self.darcy = data
        self.darcy_totals.append((data["j"] + 1, data["tot_plain"], data["tot_rec"]))
        self.mark_stale("")
        self.events.emit("darcy")

    # -- probes -------------------------------------------------------------------------------------------
    def set_probe(self, x: float, y: float) -> None:
        self.probe = _finite_pair((x, y), "probe")
        self._recompute_probes(line=False)
        self.events.emit("probe")

    def set_line(self, p0, p1) -> None:
        """Probe the viewed field along p0 -> p1 (unit coordinates) for every recorded frame."""
        self.line = (_finite_pair(p0, "line start"), _finite_pair(p1, "line end"))
        self._recompute_probes(probe=False)
        self.events.emit("line")

    def _recompute_probes(self, probe: bool = True, line: bool = True) -> None:
        if probe:
            self.probe_hist = []
        if line:
            self.line_hist = []
        for fr in self.frames:
            if probe:
                self._probe_value(fr)
            if line:
                self._line_value(fr)

    def _probe_value(self, frame: dict) -> None:
        f = frame["fields"].get(self.params.view)
        if f is not None:
            n = f.shape[0]
            i, j = int(self.probe[1] * n) % n, int(self.probe[0] * n) % n
            self.probe_hist.append((frame["t"], float(f[i, j])))
            del self.probe_hist[:-MAX_HISTORY]

    def _line_value(self, frame: dict) -> None:
        f = frame["fields"].get(self.params.view)
        if self.line is not None and f is not None:
            self.line_hist.append((frame["t"], line_profile(f, *self.line, num=LINE_SAMPLES)[1]))
            del self.line_hist[:-MAX_RECORD]

    def paint_args(self, x: float, y: float) -> tuple | None:
        """``FieldSim.paint`` arguments for a click at (x, y), or None (Darcy cannot be painted)."""
        p = self.params
        if p.model == "darcy":
            return None
        target = {"navier-stokes": "dye" if p.paint_target == "dye" else "vorticity", "gray-scott": "v"}
        amount = p.paint_amount if p.model != "gray-scott" else min(abs(p.paint_amount), 1.0)
        return (float(x), float(y), amount, p.paint_radius, target.get(p.model))

    # -- what is drawn ------------------------------------------------------------------------------------
    def display(self, frame: dict | None = None) -> tuple[np.ndarray | None, str]:
        """The field shown (of ``frame``, default the current one) and its label."""
        p = self.params
        if p.model == "darcy":
            if self.darcy is None:
                return None, ""
            return self.darcy["a" if p.view == "darcy-a" else "u"], FIELD_LABEL[p.view]
        frame = frame if frame is not None else self.current
        if frame is None or p.view not in frame["fields"]:
            return None, ""
        return frame["fields"][p.view], FIELD_LABEL.get(p.view, p.view)

    def cmap_and_clim(self, f: np.ndarray) -> tuple[str, tuple[float, float]]:
        """Colormap name and colour limits for field ``f`` (robust percentiles unless fixed)."""
        p = self.params
        signed = p.view in SIGNED_VIEWS and p.model not in ("gray-scott", "darcy")
        cmap = p.colormap if p.colormap != "auto" else ("RdBu_r" if signed else "viridis")
        if p.limits == "fixed":
            clim = (p.vmin, p.vmax) if p.vmax > p.vmin else (p.vmin, p.vmin + 1.0)
        elif p.model == "darcy":
            clim = (float(np.nanmin(f)), float(np.nanmax(f)) or 1.0)
        else:
            clim = nice_limits(f, symmetric=(p.limits == "symmetric" or (signed and p.limits == "auto")))
        if clim[1] <= clim[0]:
            clim = (clim[0] - 0.5, clim[0] + 0.5)
        span = clim[1] - clim[0]
        lo, hi = (0.0 if abs(c) < 1e-6 * span else float(c) for c in clim)  # no "6.7e-20" labels
        return cmap, (lo, hi)

    def title(self, frame: dict | None = None) -> str:
        p = self.params
        if p.model == "darcy":
            d = self.darcy
            if d is None:
                return "Darcy -div(a grad u) = 1: no solve yet"
            return f"Darcy -div(a grad u) = 1, system {d['j'] + 1}: {FIELD_LABEL[p.view]}"
        fr = frame if frame is not None else self.current
        if fr is None:
            return f"{p.model}: no data yet"
        dd = fr["diagnostics"] or {}
        extra = "  ".join(f"{k} {dd[k]:.3g}" for k in ("energy", "enstrophy", "cfl") if k in dd)
        return f"{p.model}  t = {fr['t']:.4g}  step {fr['step']}   {extra}".rstrip()

    def history(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """(plot name, ((key, label with units), ...)) of what the history plot shows for this model."""
        return HISTORIES[self.params.model]

    # -- sessions -----------------------------------------------------------------------------------------
    def state_keys(self) -> set[str]:
        return {"params", "probe", "line", "t", "step", "spectrum_t", "diagnostics", "darcy", "stale"}

    def state(self) -> dict:
        s = super().state()
        fr = self.current
        s["probe"] = list(self.probe)
        s["line"] = [list(self.line[0]), list(self.line[1])] if self.line is not None else None
        s["stale"] = self.stale
        if fr is not None:
            s["t"], s["step"] = float(fr["t"]), int(fr["step"])
            if "spectrum_t" in fr:
                s["spectrum_t"] = float(fr["spectrum_t"])
            s["diagnostics"] = {k: float(v) for k, v in (fr["diagnostics"] or {}).items() if math.isfinite(v)}
        if self.darcy is not None:
            s["darcy"] = {k: self.darcy[k] for k in DARCY_SCALARS}
        return s

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        fr = self.current
        if fr is not None:
            out |= {f"field_{k}": v for k, v in fr["fields"].items()}
            if fr.get("velocity") is not None:
                out["velocity_u"], out["velocity_v"] = fr["velocity"]
            if fr.get("spectrum") is not None:
                out["spectrum_k"], out["spectrum_E"] = fr["spectrum"]
        if self.sim_state is not None:
            out |= {f"sim_{k}": np.asarray(v) for k, v in self.sim_state.items()}
        if self.hist["t"]:
            out |= {f"hist_{k}": np.asarray(v, float) for k, v in self.hist.items()}
        if self.probe_hist:
            out["probe_hist"] = np.asarray(self.probe_hist, float)
        if self.line_hist:
            out["line_t"] = np.array([h[0] for h in self.line_hist])
            out["line_values"] = np.stack([h[1] for h in self.line_hist])
        if self.darcy is not None:
            d = self.darcy
            out |= {"darcy_a": d["a"], "darcy_u": d["u"], "darcy_res_plain": d["res_plain"]}
            out |= {"darcy_res_rec": d["res_rec"], "darcy_totals": np.asarray(self.darcy_totals, float)}
        return out

    def validate_state(self, state: Any, arrays: dict[str, np.ndarray]) -> Any:
        staged = super().validate_state(state, arrays)
        p = staged["params"]
        check_params(p, where=f"{self.key}.params")
        where = self.key
        staged["probe"] = _finite_pair(state.get("probe", list(self.probe)), f"{where}.probe")
        line = state.get("line")
        staged["line"] = None if line is None else self._check_line(line, f"{where}.line")
        stale = state.get("stale", "")
        if not isinstance(stale, str):
            raise UserError(f"{where}.stale must be text, got {stale!r:.60}")
        staged["stale"] = stale
        fields = {k[6:]: v for k, v in arrays.items() if k.startswith("field_")}
        staged["frame"] = self._check_frame(state, arrays, fields, p) if fields else None
        staged["sim"] = self._check_sim(arrays, p) if staged["frame"] is not None else None
        staged["hist"] = self._check_hist(arrays)
        staged["probe_hist"] = self._check_table(arrays, "probe_hist", 2)
        staged["line_hist"] = self._check_line_hist(arrays)
        staged["darcy"] = self._check_darcy(state, arrays, p)
        return staged

    @staticmethod
    def _check_line(line: Any, where: str):
        if not isinstance(line, list | tuple) or len(line) != 2:
            raise UserError(f"{where} must be [[x0, y0], [x1, y1]] or null, got {line!r:.80}")
        return (_finite_pair(line[0], where), _finite_pair(line[1], where))

    def _check_frame(self, state: dict, arrays: dict, fields: dict, p: PDEParams) -> dict:
        where = self.key
        unknown = sorted(set(fields) - set(FIELD_NAMES[p.model]))
        if unknown or p.model == "darcy":
            raise UserError(f"{where}: array 'field_{(unknown or ['?'])[0]}' is not a field of {p.model}")
        shown = {k: require_array(arrays, f"field_{k}", where=where, shape=(p.n, p.n)) for k in fields}
        t, step, diag = state.get("t", 0.0), state.get("step", 0), state.get("diagnostics", {})
        spec_t = state.get("spectrum_t", t)
        for name, value in (("t", t), ("spectrum_t", spec_t)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise UserError(f"{where}.{name} must be a finite number, got {value!r:.60}")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise UserError(f"{where}.step must be a whole number >= 0, got {step!r:.60}")
        if not isinstance(diag, dict) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in diag.values()
        ):
            raise UserError(f"{where}.diagnostics must map names to finite numbers, got {diag!r:.80}")
        vel = None
        if "velocity_u" in arrays or "velocity_v" in arrays:
            vu = require_array(arrays, "velocity_u", where=where, ndim=2)
            vel = (vu, require_array(arrays, "velocity_v", where=where, shape=vu.shape))
        spec = None
        if "spectrum_k" in arrays or "spectrum_E" in arrays:
            k = require_array(arrays, "spectrum_k", where=where, ndim=1)
            spec = (k, require_array(arrays, "spectrum_E", where=where, shape=k.shape))
        fields32 = {k: np.asarray(v, np.float32) for k, v in shown.items()}
        return {"t": float(t), "step": step, "fields": fields32, "velocity": vel, "diagnostics": dict(diag),
                "spectrum": spec, "spectrum_t": float(spec_t)}  # fmt: skip

    def _check_sim(self, arrays: dict, p: PDEParams) -> dict | None:
        names = {k[4:] for k in arrays if k.startswith("sim_")}
        if not names:
            return None
        out = {}
        for name, shape in state_shapes(p.live_config()).items():
            out[name] = require_array(arrays, f"sim_{name}", where=self.key, shape=shape)
        for name in ("t", "steps", "dt"):  # scalars (the session file may store them as 1-element arrays)
            value = require_array(arrays, f"sim_{name}", where=self.key)
            if value.size != 1:
                raise UserError(
                    f"{self.key}: array 'sim_{name}' must hold one number, has shape {value.shape}"
                )
            out[name] = value.reshape(())
        return out

    def _check_hist(self, arrays: dict) -> dict[str, list[float]]:
        names = [k for k in arrays if k.startswith("hist_")]
        if not names:
            return {"t": []}
        t = require_array(arrays, "hist_t", where=self.key, ndim=1)
        return {
            k[5:]: require_array(arrays, k, where=self.key, shape=t.shape, finite=False).tolist()
            for k in names
        }

    def _check_table(self, arrays: dict, name: str, cols: int) -> list[tuple]:
        if name not in arrays:
            return []
        rows = require_array(arrays, name, where=self.key, shape=(None, cols), finite=False)
        return [tuple(float(v) for v in r) for r in rows]

    def _check_line_hist(self, arrays: dict) -> list[tuple[float, np.ndarray]]:
        if "line_t" not in arrays and "line_values" not in arrays:
            return []
        t = require_array(arrays, "line_t", where=self.key, ndim=1)
        vals = require_array(
            arrays, "line_values", where=self.key, shape=(len(t), LINE_SAMPLES), finite=False
        )
        return list(zip(t.tolist(), vals))

    def _check_darcy(self, state: dict, arrays: dict, p: PDEParams) -> dict | None:
        info = state.get("darcy")
        if info is None:
            return None
        where = f"{self.key}.darcy"
        if not isinstance(info, dict) or set(info) != set(DARCY_SCALARS):
            raise UserError(f"{where} must hold {', '.join(DARCY_SCALARS)}, got {info!r:.80}")
        for k, v in info.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise UserError(f"{where}.{k} must be a number >= 0, got {v!r:.60}")
        d = dict(info)
        for k in ("a", "u"):
            d[k] = require_array(arrays, f"darcy_{k}", where=where, shape=(p.n, p.n))
        for k in ("res_plain", "res_rec"):
            d[k] = require_array(arrays, f"darcy_{k}", where=where, ndim=1, finite=False)
        totals = require_array(arrays, "darcy_totals", where=where, shape=(None, 3))
        return {"data": d, "totals": [tuple(int(v) for v in r) for r in totals]}

    def apply(self, staged: Any) -> None:
        self.restoring = True
        try:
            super().apply(staged)
        finally:
            self.restoring = False

    def apply_state(self, staged: Any) -> None:
        super().apply_state(staged)
        self.probe, self.line = staged["probe"], staged["line"]
        frame = staged["frame"]
        self.current, self.frames = frame, [frame] if frame is not None else []
        self.shown = len(self.frames) - 1
        self.sim_state = staged["sim"]
        self.hist = staged["hist"]
        self.probe_hist, self.line_hist = staged["probe_hist"], staged["line_hist"]
        darcy = staged["darcy"]
        self.darcy = None if darcy is None else darcy["data"]
        self.darcy_totals = [] if darcy is None else darcy["totals"]
        self.stale = staged["stale"]
        self.events.emit("stale", why=self.stale)


def nice_limits(a: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """Robust colour limits from the 1st/99th percentiles of the finite values."""
    a = np.asarray(a)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(a, [1, 99]) if a.size > 100 else (a.min(), a.max())
    if symmetric:
        m = max(abs(lo), abs(hi)) or 1.0
        return (-float(m), float(m))
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return (float(lo) - 0.5, float(lo) + 0.5)
    return (float(lo), float(hi))
