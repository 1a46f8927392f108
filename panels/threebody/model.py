"""The three-body panel's source of truth, Qt-free: parameters, the initial conditions, the run's recording,
the REBOUND reference curve, playback time, camera, the escape map and the DQN trained in the panel.

Views and plots listen to :attr:`ThreeBodyModel.events`:

- ``params(changed)``: parameters changed (the form follows);
- ``reset()``: a new initial state (preset, seed or a table edit) replaced the recording: everything redraws;
- ``history()``: a run appended samples (plots, slider);   ``frame()``: the playback time moved;
- ``reference()``: the REBOUND curve grew;   ``camera(source)``: the camera changed;
- ``ensemble()``: the escape map or its message changed;   ``training()``: rewards or the trained policy;
- ``dqn_study()``: a dqn-eval store was opened (its cost–accuracy table, :mod:`.dqn_study`);
- ``stale(why)``: the recording no longer matches the parameters (''= it does);   ``restored()``.

The session is this model's state (:meth:`state` + :meth:`arrays`): the recording shown, the escape map and
the trained weights go to the array file, so a sidecar reproduces the exported figure exactly.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from backends.common import UserError
from backends.nbody.core import PRESETS, System, preset
from backends.nbody.ensemble import EnsembleResult
from backends.nbody.live import MAX_SAMPLES, Recording
from backends.nbody.run import INTEGRATORS, RunConfig
from panels.model import PanelModel, config_to_dict, param, require_array, validate_params
from panels.threebody.dqn_study import TABLE_HEADER, SteppingRow, StoredEval, table_columns, table_summary
from panels.threebody.escape_study import METHOD, StoredMap, empty_map, map_summary, put_tile

CONTROLLERS = ("bundled", "trained")  # the DQN policy that steers the learned integrator
#: parameters that change how a run integrates (a recording made with other values is stale)
RUN_FIELDS = ("integrator", "eta", "dt", "tol", "t_end", "aarseth", "controller")
#: parameters that choose the initial conditions (a change replaces the recording at once)
SYSTEM_FIELDS = ("preset", "seed", "ics")
ENS_FIELDS = ("ens_n", "ens_t_end", "ens_tile")
ENS_ARRAYS = ("x", "y", "escape_time", "escaper", "status", "energy_error", "steps")
IC_COLUMNS = ("m", "x", "y", "z", "vx", "vy", "vz")
CAMERA_FIT = 2.6  # the view spans this many times the largest initial coordinate


@dataclass(frozen=True)
class ThreeBodyParams:
    preset: str = param("figure8", "Preset", choices=PRESETS)
    integrator: str = param("hermite", "Integrator", choices=INTEGRATORS)
    eta: float = param(
        0.01, "eta (Hermite)", minimum=1e-5, maximum=1.0, log=True, tooltip="dt = eta x collision time"
    )
    dt: float = param(1e-3, "dt (leapfrog, RK4)", minimum=1e-6, maximum=1.0, log=True)
    tol: float = param(1e-9, "tolerance (IAS15 eps)", minimum=1e-14, maximum=1e-3, log=True)
    t_end: float = param(50.0, "t_end [N-body units]", minimum=0.01, maximum=1e5, decimals=2)
    aarseth: bool = param(False, "Aarseth criterion")
    seed: int = param(0, "seed (random preset)", minimum=0, maximum=10**6)
    controller: str = param(
        "bundled",
        "step controller (learned)",
        choices=CONTROLLERS,
        tooltip="the DQN policy that picks eta for the 'learned' integrator: the bundled one, or one trained "
        "in the Learned stepping tab",
    )
    speed: float = param(2.0, "speed [t units / s]", minimum=0.01, maximum=1000.0, log=True)
    trail: int = param(2000, "trail [samples]", minimum=2, maximum=20000)
    compare_rebound: bool = param(True, "compare with REBOUND")
    ens_n: int = param(48, "grid side", minimum=2, maximum=200)
    ens_t_end: float = param(10.0, "t_end", minimum=0.1, maximum=1000.0, decimals=2)
    ens_tile: int = param(
        16,
        "tile side",
        minimum=1,
        maximum=200,
        tooltip="the map is computed as a batch study of tile x tile systems per chunk (as `visual-lab batch "
        "escape-map --tile`); tiles fill in as they finish",
    )
    train_episodes: int = param(30, "episodes", minimum=1, maximum=5000)
    #: custom initial conditions, rows (m, x, y, z, vx, vy, vz); () = the preset's
    ics: tuple = ()


@dataclass(frozen=True)
class Camera:
    """The 3D view's turntable camera. ``distance`` is the extent of the scene the view spans (vispy's scale
    factor; the eye sits at distance / (2 tan(fov / 2)) from the centre)."""

    azimuth: float = param(0.0, "azimuth [deg]", minimum=-360.0, maximum=360.0)
    elevation: float = param(70.0, "elevation [deg]", minimum=-90.0, maximum=90.0)
    distance: float = param(2.6, "distance", minimum=1e-6, maximum=1e9)
    center: tuple = (0.0, 0.0, 0.0)


#: the parameters that are the backend's RunConfig fields (taken from both dataclasses, never typed twice)
SHARED_RUN_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(ThreeBodyParams)
    if f.name in {g.name for g in dataclasses.fields(RunConfig)}
)


def check_ics(ics: Any, where: str = "ics") -> tuple:
    """Custom initial conditions as a tuple of 7-float rows, or a :class:`UserError` naming the problem."""
    if isinstance(ics, list | tuple) and len(ics) == 0:
        return ()
    try:
        arr = np.asarray(ics, dtype=float)
    except (TypeError, ValueError):
        raise UserError(
            f"{where} must be rows of 7 numbers (m, x, y, z, vx, vy, vz), got {ics!r:.80}"
        ) from None
    if arr.ndim != 2 or arr.shape[1] != 7:
        raise UserError(f"{where} must be rows of 7 numbers (m, x, y, z, vx, vy, vz), got shape {arr.shape}")
    try:
        System(arr[:, 0], arr[:, 1:4], arr[:, 4:7])
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    return tuple(tuple(float(v) for v in row) for row in arr)


def system_of(p: ThreeBodyParams) -> System:
    if p.ics:
        a = np.asarray(p.ics, float)
        return System(a[:, 0], a[:, 1:4], a[:, 4:7], name="custom")
    return preset(p.preset, seed=p.seed)


def run_label(p: ThreeBodyParams) -> str:
    """The integrator and its step parameter, as a legend names a run ("hermite eta=0.01")."""
    step = {
        "hermite": f"eta={p.eta:g}" + (" Aarseth" if p.aarseth else ""),
        "leapfrog": f"dt={p.dt:g}",
        "rk4": f"dt={p.dt:g}",
        "highorder": f"eps={p.tol:g}",
        "rebound": f"eps={p.tol:g}",
        "learned": f"{p.controller} policy",
    }[p.integrator]
    return f"{p.integrator} {step}"


def fitted_camera(system: System, old: Camera | None = None) -> Camera:
    """The camera framing ``system`` (keeps the viewing angles of ``old``)."""
    r = float(np.max(np.abs(system.pos))) if system.pos.size else 1.0
    old = old or Camera()
    return replace(old, distance=max(CAMERA_FIT * r, 1e-3), center=(0.0, 0.0, 0.0))


class ThreeBodyModel(PanelModel):
    key = "threebody"
    Params = ThreeBodyParams

    def __init__(self) -> None:
        super().__init__()
        self.system = system_of(self.params)
        self.rec = Recording.initial(self.system)
        self.ref = _empty_ref()
        self.time = 0.0
        self.camera = fitted_camera(self.system)
        self.message = ""  # the last run's summary line
        self.run_label = ""  # what produced the recording ('' = nothing run yet), e.g. "hermite eta=0.01"
        self.ensemble: EnsembleResult | None = None
        self.ens_message = "Press Compute escape map (grey: no escape, black: close encounter)"
        self.ens_stale = ""
        self.ens_store = ""  # the batch store the map shows ('' = none)
        self.ens_workload = None  # its backends.batch.EscapeMap (None: not a study's map)
        self.ens_tiles = (0, 0)  # tiles done, tiles in all
        self.rewards: list[float] = []
        self.policy = None  # a backends.nbody.learned.Policy trained in the panel
        self.train_message = "Run the 'learned' integrator with the bundled policy, or train a new one."
        # a dqn-eval store opened (File > Open study…): not part of the session, the store is its own record
        self.dqn_rows: list[SteppingRow] = []
        self.dqn_store = ""
        self.dqn_message = ""

    # -- parameters ---------------------------------------------------------------------------------------
    def set_params(self, **changes: Any) -> set[str]:
        if "ics" in changes:
            changes["ics"] = check_ics(changes["ics"], "ics")
        return super().set_params(**changes)

    def params_changed(self, changed: set[str]) -> None:
        if changed & {"preset", "seed"} and "ics" not in changed and self.params.ics:
            self.params = replace(self.params, ics=())  # a new preset replaces the custom table
        if changed & set(SYSTEM_FIELDS):
            self.reset_run()
        elif changed & set(RUN_FIELDS) and len(self.rec) > 1:
            self.mark_stale("settings changed since this run: press Restart run")
        if changed & set(ENS_FIELDS) and self.ensemble is not None:
            self.ens_stale = "grid or t_end changed: press Compute escape map"
            self.events.emit("ensemble")

    def set_ic(self, row: int, col: int, value: float) -> None:
        """Edit one entry of the initial-condition table (full precision kept for the others)."""
        if not (0 <= row < self.system.n and 0 <= col < len(IC_COLUMNS)):
            raise UserError(f"initial conditions: no entry ({row}, {col})")
        table = self.ic_table()
        table[row, col] = value
        self.set_params(ics=table)

    def ic_table(self) -> np.ndarray:
        """The initial conditions in effect as rows (m, x, y, z, vx, vy, vz)."""
        s = self.system
        return np.column_stack([s.mass, s.pos, s.vel])

    def run_config(self) -> RunConfig:
        """The backend's run configuration: every field the params share with :class:`RunConfig` (one list)."""
        p = self.params
        return RunConfig(**{name: getattr(p, name) for name in SHARED_RUN_FIELDS}, max_samples=MAX_SAMPLES)

    def run_policy(self):
        """The policy the learned integrator uses (None: the bundled file)."""
        if self.params.integrator != "learned" or self.params.controller == "bundled":
            return None
        if self.policy is None:
            raise UserError(
                "no trained policy yet: train one in the Learned stepping tab (or choose bundled)"
            )
        return self.policy

    def ens_workload_of_params(self):
        """The batch workload of the escape map the parameters describe (``visual-lab batch escape-map
        --grid N --t-end T --tile K``)."""
        from backends.batch.workloads import EscapeMap

        p = self.params
        return EscapeMap(grid=p.ens_n, t_end=float(p.ens_t_end), tile=p.ens_tile)

    # -- the run ------------------------------------------------------------------------------------------
    def reset_run(self, fit_camera: bool = True) -> None:
        """Back to the initial state of the current parameters: recording, reference, time, log (and the
        camera framing the new system)."""
        self.system = system_of(self.params)
        self.rec = Recording.initial(self.system)
        self.ref = _empty_ref()
        self.time = 0.0
        self.message = ""
        self.run_label = ""
        self.mark_stale("")
        self.events.emit("reset")
        if fit_camera:
            self.camera = fitted_camera(self.system, self.camera)
            self.events.emit("camera", source=None)

    def begin_run(self) -> tuple[System, RunConfig, Any]:
        """Validate what the next run uses and clear the old run; returns (system, config, policy)."""
        cfg, policy = self.run_config(), self.run_policy()
        self.reset_run(fit_camera=False)
        self.run_label = run_label(self.params)
        return self.system, cfg, policy

    def add_chunk(self, chunk) -> None:
        """A chunk of the run (from the worker's ``on_yield``; its arrays are the worker's copies)."""
        self.rec.append(chunk)
        self.events.emit("history")

    def add_reference(self, chunk) -> None:
        if not len(chunk.t):
            return
        if chunk.t[0] == 0.0:
            self.ref = _empty_ref()
            self.ref["e0"] = float(chunk.energy[0])
        e0 = self.ref["e0"]
        self.ref["t"] = np.concatenate([self.ref["t"], chunk.t])
        self.ref["de"] = np.concatenate([self.ref["de"], (chunk.energy - e0) / abs(e0 or 1.0)])
        self.ref["dt"] = np.concatenate([self.ref["dt"], chunk.dt])
        self.events.emit("reference")

    def finish_run(self, status: str, message: str) -> None:
        self.rec.status = status
        self.message = message
        self.events.emit("history")

    def set_time(self, t: float) -> None:
        t = float(np.clip(t, 0.0, self.rec.t_last))
        if t != self.time:
            self.time = t
            self.events.emit("frame")

    @property
    def frame(self) -> int:
        return self.rec.frame_at(self.time)

    def at_end(self) -> bool:
        return self.frame >= len(self.rec) - 1

    def set_camera(self, source: Any = None, **changes: Any) -> None:
        cam = validate_params(Camera, _camera_json(changes, "camera"), where="camera", base=self.camera)
        if cam != self.camera:
            self.camera = cam
            self.events.emit("camera", source=source)

    # -- escape map and learning --------------------------------------------------------------------------
    def set_ensemble(self, res: EnsembleResult | None, message: str = "") -> None:
        self.ensemble = res
        self.ens_stale = ""
        self.ens_message = message or (ensemble_summary(res) if res is not None else "")
        self.events.emit("ensemble")

    def set_ensemble_message(self, message: str) -> None:
        self.ens_message = message
        self.events.emit("ensemble")

    def show_study(self, stored: StoredMap, message: str = "") -> None:
        """Show a study's store (what it holds so far); later tiles arrive through :meth:`put_tiles`."""
        self.ens_store, self.ens_workload = str(stored.path), stored.workload
        self.ens_tiles = stored.tiles
        self.set_ensemble(stored.result, message or map_summary(stored.result, self.ens_tiles))

    def begin_study(self, workload, store: str, message: str) -> None:
        """An empty map of ``workload`` (its store is being opened): no old map stays on screen."""
        self.ens_store, self.ens_workload = str(store), workload
        self.ens_tiles = (0, len(workload.regions()))
        self.set_ensemble(empty_map(workload), message)

    def put_tiles(self, tiles: list[tuple[dict, dict]], message: str = "") -> None:
        """Finished chunks (region, arrays) of the study shown: drawn at once, one event for all of them."""
        if self.ensemble is None or self.ens_workload is None:
            return
        for region, arrays in tiles:
            put_tile(self.ensemble, region, arrays)
        self.ens_tiles = (self.ens_tiles[0] + len(tiles), self.ens_tiles[1])
        self.ens_message = message or map_summary(self.ensemble, self.ens_tiles)
        self.events.emit("ensemble")

    def set_rewards(self, rewards: list[float], message: str) -> None:
        self.rewards = [float(r) for r in rewards]
        self.train_message = message
        self.events.emit("training")

    def set_policy(self, policy, message: str) -> None:
        """Keep a policy trained in the panel; the learned integrator uses it when ``policy`` = trained."""
        self.policy = policy
        self.train_message = message
        self.events.emit("training")

    def show_dqn_study(self, stored: StoredEval, message: str = "") -> None:
        """Show a dqn-eval store's cost–accuracy table (row 0 the policy, then the fixed etas)."""
        self.dqn_rows, self.dqn_store = list(stored.rows), str(stored.path)
        self.dqn_message = message or table_summary(stored)
        self.events.emit("dqn_study")

    def dqn_columns(self) -> tuple[tuple[str, ...], list[np.ndarray]]:
        """The table shown, as CSV columns."""
        if not self.dqn_rows:
            raise UserError("no dqn-eval study yet: press File > Open study… and choose a dqn-eval store")
        return TABLE_HEADER, table_columns(self.dqn_rows)

    # -- sessions -----------------------------------------------------------------------------------------
    def state_keys(self) -> set[str]:
        return {"params", "camera", "time", "run", "ensemble", "rewards", "policy"}

    def state(self) -> dict:
        st = super().state()
        st["camera"] = config_to_dict(self.camera)
        st["time"] = float(self.time)
        st["run"] = {
            "steps": self.rec.steps,
            "force_evals": self.rec.force_evals,
            "status": self.rec.status,
            "events": list(self.rec.events),
            "message": self.message,
            "label": self.run_label,
            "stale": self.stale,
            "ref_e0": float(self.ref["e0"]),
        }
        st["rewards"] = list(self.rewards)
        if self.ensemble is not None:
            r = self.ensemble
            st["ensemble"] = {
                "t_end": r.t_end,
                "wall_s": r.wall_s,
                "method": r.method,
                "stale": self.ens_stale,
                "store": self.ens_store,
            }
        if self.policy is not None:
            st["policy"] = {"obs_dim": int(self.policy.obs_dim), "meta": _json_meta(self.policy.meta)}
        return st

    def arrays(self) -> dict[str, np.ndarray]:
        out = dict(self.rec.arrays())
        out.update({f"ref_{k}": self.ref[k] for k in ("t", "de", "dt")})
        if self.ensemble is not None:
            out.update({f"ens_{k}": np.asarray(getattr(self.ensemble, k)) for k in ENS_ARRAYS})
        if self.policy is not None:
            out.update({f"policy.{k}": v for k, v in self.policy.weights().items()})
        return out

    def validate_state(self, state: Any, arrays: dict[str, np.ndarray]) -> dict:
        staged = super().validate_state(state, arrays)
        p: ThreeBodyParams = staged["params"]
        where = self.key
        staged["params"] = replace(p, ics=check_ics(p.ics, f"{where}.params.ics"))
        system = system_of(staged["params"])
        cam = state.get("camera", {})
        staged["camera"] = validate_params(
            Camera, _camera_json(cam, f"{where}.camera"), where=f"{where}.camera"
        )
        run = state.get("run", {})
        if not isinstance(run, dict):
            raise UserError(f"{where}.run must be an object, got {run!r:.60}")
        rec = self._staged_recording(run, arrays, system, where)
        staged["rec"] = rec
        t = state.get("time", 0.0)
        if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t) or t < 0:
            raise UserError(f"{where}.time must be a finite number >= 0, got {t!r}")
        staged["time"] = min(float(t), rec.t_last)
        staged["message"] = _text(run.get("message", ""), f"{where}.run.message")
        staged["label"] = _text(run.get("label", ""), f"{where}.run.label")
        staged["stale"] = _text(run.get("stale", ""), f"{where}.run.stale")
        staged["ref"] = self._staged_reference(run, arrays, where)
        staged["ensemble"], staged["ens_stale"] = self._staged_ensemble(state.get("ensemble"), arrays, where)
        ens = state.get("ensemble") or {}
        staged["ens_store"] = _text(ens.get("store", ""), f"{where}.ensemble.store")
        rewards = state.get("rewards", [])
        if not isinstance(rewards, list) or not all(_finite_number(r) for r in rewards):
            raise UserError(f"{where}.rewards must be a list of finite numbers, got {rewards!r:.60}")
        staged["rewards"] = [float(r) for r in rewards]
        staged["policy"] = self._staged_policy(state.get("policy"), arrays, where)
        return staged

    def _staged_recording(self, run: dict, arrays: dict, system: System, where: str) -> Recording:
        if "t" not in arrays:  # a session without arrays: the initial state of its parameters
            return Recording.initial(system)
        t = require_array(arrays, "t", where=where, ndim=1)
        n = system.n
        pos = require_array(arrays, "pos", where=where, shape=(len(t), n, 3))
        vel = require_array(arrays, "vel", where=where, shape=(len(t), n, 3))
        energy = require_array(arrays, "energy", where=where, shape=(len(t),))
        dt = require_array(arrays, "dt", where=where, shape=(len(t),))
        mass = require_array(arrays, "mass", where=where, shape=(n,))
        if len(t) == 0 or np.any(np.diff(t) < 0):
            raise UserError(f"{where}: array 't' must be a non-empty, non-decreasing time axis")
        if not np.allclose(mass, system.mass):
            raise UserError(f"{where}: the recorded masses do not match the session's initial conditions")
        events = run.get("events", [])
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            raise UserError(f"{where}.run.events must be a list of text lines")
        counts = {k: run.get(k, 0) for k in ("steps", "force_evals")}
        for k, v in counts.items():
            if isinstance(v, bool) or not isinstance(v, int) or v < -1:
                raise UserError(f"{where}.run.{k} must be a whole number >= -1, got {v!r}")
        status = _text(run.get("status", ""), f"{where}.run.status")
        return Recording(
            mass, t, pos, vel, energy, dt, counts["steps"], counts["force_evals"], status, events
        )

    def _staged_reference(self, run: dict, arrays: dict, where: str) -> dict:
        ref = _empty_ref()
        if "ref_t" in arrays:
            ref["t"] = require_array(arrays, "ref_t", where=where, ndim=1)
            for k in ("de", "dt"):
                ref[k] = require_array(arrays, f"ref_{k}", where=where, shape=(len(ref["t"]),))
        e0 = run.get("ref_e0", 0.0)
        if not _finite_number(e0):
            raise UserError(f"{where}.run.ref_e0 must be a finite number, got {e0!r}")
        ref["e0"] = float(e0)
        return ref

    def _staged_ensemble(self, ens: Any, arrays: dict, where: str) -> tuple[EnsembleResult | None, str]:
        if ens is None:
            return None, ""
        if not isinstance(ens, dict) or set(ens) - {"t_end", "wall_s", "method", "stale", "store"}:
            raise UserError(f"{where}.ensemble must be an object with t_end, wall_s, method, stale, store")
        x = require_array(arrays, "ens_x", where=where, ndim=1)
        y = require_array(arrays, "ens_y", where=where, ndim=1)
        shape = (len(y), len(x))
        grids = {
            k: require_array(arrays, f"ens_{k}", where=where, shape=shape, finite=False)
            for k in ENS_ARRAYS[2:]
        }
        t_end, wall = ens.get("t_end"), ens.get("wall_s", 0.0)
        if not (_finite_number(t_end) and t_end > 0 and _finite_number(wall)):
            raise UserError(f"{where}.ensemble.t_end must be a number > 0, got {t_end!r}")
        res = EnsembleResult(
            x,
            y,
            **grids,
            t_end=float(t_end),
            wall_s=float(wall),
            method=_text(ens.get("method", ""), "method"),
        )
        return res, _text(ens.get("stale", ""), f"{where}.ensemble.stale")

    def _staged_policy(self, pol: Any, arrays: dict, where: str):
        if pol is None:
            return None
        if not isinstance(pol, dict) or not isinstance(pol.get("meta", {}), dict):
            raise UserError(f"{where}.policy must be an object with obs_dim and meta")
        obs = pol.get("obs_dim")
        if isinstance(obs, bool) or not isinstance(obs, int) or not 1 <= obs <= 10_000:
            raise UserError(f"{where}.policy.obs_dim must be a whole number in [1, 10000], got {obs!r}")
        weights = {k[len("policy.") :]: v for k, v in arrays.items() if k.startswith("policy.")}
        if not weights:
            raise UserError(f"{where}: the session's array file has no policy weights")
        from backends.nbody.learned import Policy

        return Policy.from_weights(obs, pol.get("meta", {}), weights)

    def apply_state(self, staged: dict) -> None:
        super().apply_state(staged)  # params (params_changed resets the run for a new system)
        self.params = staged["params"]  # exactly the session's (params_changed may have cleared its ics)
        self.system = system_of(self.params)
        self.rec = staged["rec"]
        self.ref = staged["ref"]
        self.time = staged["time"]
        self.camera = staged["camera"]
        self.message = staged["message"]
        self.run_label = staged["label"]
        self.ensemble, self.ens_stale = staged["ensemble"], staged["ens_stale"]
        if self.ensemble is not None:
            self.ens_message = ensemble_summary(self.ensemble)
        self.ens_store, self.ens_workload, self.ens_tiles = staged["ens_store"], None, (0, 0)
        self.rewards = staged["rewards"]
        self.policy = staged["policy"]
        self.stale = staged["stale"]
        for name in ("reset", "history", "reference", "frame", "ensemble", "training"):
            self.events.emit(name)
        self.events.emit("camera", source=None)
        self.events.emit("stale", why=self.stale)


def ensemble_summary(res: EnsembleResult) -> str:
    """The result line of a map: the ensemble's own for a timed in-process map, a study map's otherwise."""
    return res.summary() if res.method != METHOD and res.wall_s > 0 else map_summary(res)


def _empty_ref() -> dict:
    return {"t": np.zeros(0), "de": np.zeros(0), "dt": np.zeros(0), "e0": 0.0}


def _finite_number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v)


def _text(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise UserError(f"{where} must be text, got {v!r:.60}")
    return v


def _camera_json(cam: Any, where: str) -> dict:
    """Camera keys checked beyond their ranges: ``center`` must be three finite numbers."""
    if not isinstance(cam, dict):
        raise UserError(f"{where} must be an object, got {cam!r:.60}")
    cam = dict(cam)
    if "center" in cam:
        c = cam["center"]
        if not isinstance(c, list | tuple) or len(c) != 3 or not all(_finite_number(v) for v in c):
            raise UserError(f"{where}.center must be three finite numbers, got {c!r:.60}")
        cam["center"] = tuple(float(v) for v in c)
    return cam


def _json_meta(meta: dict) -> dict:
    """A policy's metadata as strict JSON (tuples to lists; non-finite numbers refused)."""
    import json

    def clean(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            v = dataclasses.asdict(v)
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return v.item()
        return v

    out = clean(meta)
    json.dumps(out, allow_nan=False)
    return out
