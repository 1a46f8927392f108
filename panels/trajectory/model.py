"""The trajectory panel's Qt-free source of truth: parameters, the scene shown, its forecast, the window,
the focused pedestrian, the camera, trained EigenTrajectory models and the training in progress.

The view, the plots, the exports and the session all read this model; widgets and the worker write it (on
the GUI thread). A session holds the parameters, the window, the focus, the camera, a file opened with
File > Open, and the weights of the EigenTrajectory model the figure uses (as arrays, never pickle), so the
sidecar of an export reproduces its image.

Events: ``params``, ``restored``, ``stale`` (base), ``scene`` (new data or a load error), ``forecast``,
``frame`` (window or focus), ``camera``, ``training`` (history of the run in progress or of the model shown),
``sweep`` (the scene sweep table; not part of the session: its store keeps it).
"""

from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.common import UserError
from backends.trajectory.data import SCENES, STEP_SECONDS, world_to_image
from backends.trajectory.live import (
    MODELS,
    Forecast,
    Scene,
    agent_metrics,
    bundled_model,
    forecast,
    load_scene,
    model_from_state,
    model_state,
    open_tracks,
    resolve_data,
)
from panels.model import PanelModel, param
from panels.trajectory.sweep import SceneSweep

MAX_MODELS = 8  # trained EigenTrajectory models kept (one per data/scene/k/anchors/seed), oldest dropped
PICK_RADIUS_M = 1.0  # a click selects the nearest agent within this distance (metres; ~30 px in image mode)
PICK_RADIUS_PX = 30.0


@dataclass(frozen=True)
class TrajectoryParams:
    data: str = param(
        "auto",
        "Dataset folder",
        kind="text",
        tooltip="'auto' = bundled synthetic crowd, or ../shared/data/ethucy for ETH/UCY scenes; "
        "or a folder with <scene>/train|val|test/*.txt",
    )
    scene: str = param("synthetic", "Scene (held out)", choices=("synthetic",) + SCENES)
    model: str = param("eigentrajectory", "Model", choices=MODELS)
    k: int = param(6, "ET rank k", minimum=1, maximum=16)
    anchors: int = param(20, "Anchors / samples", minimum=1, maximum=50)
    seed: int = param(0, "Seed", minimum=0, maximum=10**6)
    epochs: int = param(20, "Training epochs", minimum=1, maximum=500)
    sweep_seeds: int = param(
        3, "Sweep seeds", minimum=1, maximum=100, tooltip="training seeds per scene of 'Sweep scenes x seeds'"
    )
    image_coords: bool = param(
        False,
        "Image pixels (homography)",
        tooltip="draw in the scene video's pixel coordinates through ethucy_homography/<scene>/H.txt",
    )


@dataclass
class Training:
    """The run in progress: which model it trains, its history so far and a copy of its best weights."""

    key: tuple
    cfg: Any
    history: Any = None  # TrainSnapshot of the last epoch that reached the GUI thread
    best_state: dict | None = None  # cloned tensors, never written by the worker after it yielded them


class TrajectoryModel(PanelModel):
    key = "trajectory"
    Params = TrajectoryParams

    def __init__(self) -> None:
        super().__init__()
        self.kmeans_init = 10  # k-means restarts for the anchors of a training run (tests lower it)
        self.scene: Scene | None = None
        self.error = ""  # why no scene is shown
        self.forecast: Forecast | None = None
        self.window = 0
        self.focus: float | None = None  # pedestrian id in focus (kept across windows while present)
        self.camera: tuple[float, float, float, float] | None = None  # x, y, width, height (view units)
        self.models: OrderedDict[tuple, Any] = OrderedDict()
        self.training: Training | None = None
        self.sweep: SceneSweep | None = None  # the scene sweep table (a study's finished chunks)
        self._load()
        self._predict()

    # -- derived ----------------------------------------------------------------------------------------
    @property
    def windows(self):
        return None if self.scene is None else self.scene.windows

    @property
    def num_windows(self) -> int:
        return 0 if self.scene is None else self.scene.windows.num_windows

    def data_root(self) -> Path:
        return resolve_data(self.params.data, self.params.scene)

    def model_key(self, p: TrajectoryParams | None = None) -> tuple:
        p = p or self.params
        return (str(resolve_data(p.data, p.scene)), p.scene, p.k, p.anchors, p.seed)

    def et_model(self):
        """The EigenTrajectory model for the current settings (trained here, from a session, or bundled)."""
        key = self.model_key()
        m = self.models.get(key)
        if m is None and self.params.scene == "synthetic" and self.params.data == "auto":
            m = bundled_model(self.params.k, self.params.anchors)
            if m is not None:
                self._keep(key, m)
        return m

    def image_mode(self) -> bool:
        return bool(self.params.image_coords and self.scene is not None and self.scene.homography is not None)

    def to_view(self, xy: np.ndarray) -> np.ndarray:
        """World metres -> the drawing's units (image pixels through the homography in image mode)."""
        xy = np.asarray(xy, dtype=np.float64)
        return world_to_image(self.scene.homography, xy) if self.image_mode() else xy

    def focus_index(self, win: int | None = None) -> int | None:
        """Global agent index of the focused pedestrian in window ``win`` (default: the current one)."""
        w = self.windows
        if w is None or self.focus is None or not self.num_windows:
            return None
        sl = w.window(self.window if win is None else win)
        hit = np.nonzero(w.ped_ids[sl] == self.focus)[0]
        return sl.start + int(hit[0]) if len(hit) else None

    def focus_metrics(self) -> tuple[float, float] | None:
        i = self.focus_index()
        if i is None or self.forecast is None:
            return None
        return agent_metrics(self.forecast, self.windows, i)

    def title(self, win: int | None = None) -> str:
        """The figure's title: what is drawn (scene, model, window, time, agents, focused pedestrian)."""
        w = self.windows
        if w is None or self.forecast is None or not self.num_windows:
            return f"no data: {self.error}" if self.error else "no data"
        win = self.window if win is None else win
        sl = w.window(win)
        frame = w.frames[win, 7]
        text = (
            f"{self.scene.label} · {self.forecast.model} · window {win + 1}/{w.num_windows} · frame "
            f"{frame:g} (t = {win * STEP_SECONDS:.1f} s) · {sl.stop - sl.start} agents"
        )
        i = self.focus_index(win)
        if i is not None:
            ade, fde = agent_metrics(self.forecast, w, i)
            text += f" · focus ped {self.focus:g}: minADE {ade:.2f} m, minFDE {fde:.2f} m"
        return text

    # -- parameters ---------------------------------------------------------------------------------------
    def params_changed(self, changed: set[str]) -> None:
        if changed & {"data", "scene"}:
            self._load()
        elif "image_coords" in changed:
            self.fit_camera()
        if changed & {"data", "scene", "model", "k", "anchors", "seed"}:
            self._predict()

    def _load(self) -> None:
        try:
            scene = load_scene(self.data_root(), self.params.scene)
        except UserError as exc:
            self._set_scene(None, str(exc))
            return
        self._set_scene(scene)

    def _set_scene(self, scene: Scene | None, error: str = "") -> None:
        self.scene, self.error = scene, error
        self.forecast = None
        self.window, self.focus = 0, None
        self.events.emit("scene")
        self.fit_camera()

    def open_path(self, path: str | Path) -> None:
        """Show one recording the user opened (File > Open); raises :class:`UserError` when unusable."""
        self._set_scene(open_tracks(path))
        self._predict()

    # -- forecasts ------------------------------------------------------------------------------------------
    def _predict(self) -> None:
        w = self.windows
        if w is None:
            self.forecast = None
            self.mark_stale("")
        else:
            p = self.params
            et = self.et_model() if p.model == "eigentrajectory" else None
            self.forecast = forecast(w, p.model, p.anchors, p.seed, et)
            fallback = p.model == "eigentrajectory" and et is None
            self.mark_stale(
                f"no trained EigenTrajectory for k={p.k}, {p.anchors} anchors, seed {p.seed}: showing CV-20; "
                "press Train EigenTrajectory"
                if fallback
                else ""
            )
        self.events.emit("forecast")
        self.events.emit("training")

    # -- scene sweep (the panel runs the studies; these run on the GUI thread) ------------------------------
    def set_sweep(self, sweep: SceneSweep | None) -> None:
        self.sweep = sweep
        self.events.emit("sweep")

    def put_sweep_chunks(
        self, chunks: list[tuple[int, dict]], baseline_scenes: list[str] | None = None
    ) -> None:
        """Finished chunks of the sweep (or, with ``baseline_scenes``, of the constant-velocity baseline)."""
        if self.sweep is None:
            return
        for index, arrays in chunks:
            if baseline_scenes is None:
                self.sweep.put(index, arrays)
            else:
                self.sweep.put_baseline(baseline_scenes, index, arrays)
        self.events.emit("sweep")

    # -- window, focus, camera -------------------------------------------------------------------------------
    def set_window(self, win: int) -> None:
        if not 0 <= int(win) < max(self.num_windows, 1):
            raise UserError(f"window must be in 0..{max(self.num_windows - 1, 0)}, got {win}")
        if int(win) != self.window:
            self.window = int(win)
            self.events.emit("frame")

    def step(self, steps: int = 1) -> None:
        """Move ``steps`` windows on, wrapping at the end of the scene."""
        if self.num_windows:
            self.set_window((self.window + int(steps)) % self.num_windows)

    def set_focus(self, ped: float | None) -> None:
        """Focus pedestrian ``ped`` (its id) or clear the focus (None)."""
        ped = None if ped is None else float(ped)
        if ped != self.focus:
            self.focus = ped
            self.events.emit("frame")

    def focus_agent(self, index: int | None) -> None:
        """Focus the agent with global index ``index`` of the current windows (None clears)."""
        self.set_focus(None if index is None else float(self.windows.ped_ids[int(index)]))

    def pick(self, point: tuple[float, float]) -> float | None:
        """Focus the agent of the current window nearest to ``point`` (view units), or clear the focus when
        nobody is within the pick radius. Returns the focused pedestrian id."""
        w = self.windows
        if w is None or not self.num_windows:
            return None
        sl = w.window(self.window)
        d = np.linalg.norm(self.to_view(w.obs[sl, -1]) - np.asarray(point, float)[None], axis=1)
        radius = PICK_RADIUS_PX if self.image_mode() else PICK_RADIUS_M
        i = int(np.argmin(d)) if len(d) else -1
        self.set_focus(float(w.ped_ids[sl.start + i]) if i >= 0 and d[i] < radius else None)
        return self.focus

    def set_camera(self, rect) -> None:
        rect = tuple(float(v) for v in rect)
        if rect != self.camera:
            self.camera = rect
            self.events.emit("camera")

    def fit_rect(self) -> tuple[float, float, float, float]:
        """(x, y, width, height) framing the 1st..99th percentile of every track of the scene, with a margin."""
        w = self.windows
        if w is None or w.num_agents == 0:
            return (0.0, 0.0, 1.0, 1.0)
        pts = self.to_view(np.concatenate([w.obs.reshape(-1, 2), w.pred.reshape(-1, 2)]))
        lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
        pad = 0.08 * (hi - lo).max() + (15.0 if self.image_mode() else 0.5)
        return (lo[0] - pad, lo[1] - pad, hi[0] - lo[0] + 2 * pad, hi[1] - lo[1] + 2 * pad)

    def fit_camera(self) -> None:
        self.set_camera(self.fit_rect())

    # -- training (the panel runs the job; these run on the GUI thread) -----------------------------------
    def et_config(self):
        """The training config the next run uses (validated)."""
        from backends.trajectory.eigentrajectory import STATIC_DIST, ETConfig

        p = self.params
        cfg = ETConfig(
            k=p.k,
            num_samples=p.anchors,
            seed=p.seed,
            epochs=p.epochs,
            static_dist=STATIC_DIST.get(p.scene, 0.2),
            kmeans_init=self.kmeans_init,
        )
        cfg.validate()
        return cfg

    def training_started(self, cfg) -> tuple:
        self.training = Training(self.model_key(), cfg)
        self.events.emit("training")
        return self.training.key

    def training_progress(self, snap) -> None:
        """An epoch finished: keep its history and the best weights so far (copies the worker never writes)."""
        if self.training is not None:
            self.training.history = dataclasses.replace(snap, model=None)  # never the live network
            if snap.best_state is not None:
                self.training.best_state = snap.best_state
            self.events.emit("training")

    def training_finished(self, key: tuple, et) -> None:
        self.training = None
        if et is not None:
            self._keep(key, et)
        if key == self.model_key():
            self._predict()
        else:
            self.events.emit("training")

    def training_stopped(self) -> str:
        """Stop keeps the best epoch that reached the GUI thread (built from its copied weights)."""
        t, self.training = self.training, None
        if t is None or t.best_state is None:
            self.events.emit("training")
            return "training stopped before its first epoch ended"
        from backends.trajectory.eigentrajectory import EigenTrajectoryNet, ETModel

        net = EigenTrajectoryNet(t.cfg)
        net.load_state_dict(t.best_state)
        self._keep(t.key, ETModel(t.cfg, net, t.history))
        if t.key == self.model_key():
            self._predict()
        return f"training stopped after {t.history.epoch} epochs; best epoch kept"

    def set_et_model(self, et) -> None:
        """Use ``et`` for the current settings (e.g. weights loaded from a file) and forecast with it."""
        if (et.cfg.k, et.cfg.num_samples) != (self.params.k, self.params.anchors):
            raise UserError(
                f"the model has k={et.cfg.k}, {et.cfg.num_samples} anchors; the panel is set to "
                f"k={self.params.k}, {self.params.anchors} anchors"
            )
        self._keep(self.model_key(), et)
        self._predict()

    def _keep(self, key: tuple, et) -> None:
        self.models[key] = et
        self.models.move_to_end(key)
        while len(self.models) > MAX_MODELS:
            self.models.popitem(last=False)

    def shown_history(self):
        """The training curve that belongs to the settings: the run in progress, else the model's own."""
        if self.training is not None and self.training.key == self.model_key():
            return self.training.history
        m = self.models.get(self.model_key())
        return None if m is None else m.history

    # -- sessions ---------------------------------------------------------------------------------------------
    def state_keys(self) -> set[str]:
        return {"params", "window", "focus", "camera", "opened", "et"}

    def state(self) -> dict:
        st = super().state()
        st.update(
            window=int(self.window),
            focus=self.focus,
            camera=None if self.camera is None else list(self.camera),
            opened=None if self.scene is None or self.scene.opened is None else str(self.scene.opened),
        )
        et = self._shown_et()
        st["et"] = None if et is None else model_state(et)[0]
        return st

    def arrays(self) -> dict[str, np.ndarray]:
        et = self._shown_et()
        return {} if et is None else model_state(et)[1]

    def _shown_et(self):
        if self.params.model != "eigentrajectory":
            return None
        return self.models.get(self.model_key())

    def validate_state(self, state: Any, arrays: dict[str, np.ndarray]) -> Any:
        staged = super().validate_state(state, arrays)
        p = staged["params"]
        where = self.key
        opened = state.get("opened")
        if opened is not None and not isinstance(opened, str):
            raise UserError(f"{where}.opened must be a file path or null, got {opened!r:.60}")
        try:
            scene = open_tracks(opened) if opened else load_scene(resolve_data(p.data, p.scene), p.scene)
        except UserError as exc:
            name = "opened" if opened else "params.data/scene"
            raise UserError(f"{where}.{name}: {exc}") from None
        window = state.get("window", 0)
        n = scene.windows.num_windows
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window < n:
            raise UserError(f"{where}.window must be a whole number in 0..{n - 1}, got {window!r:.60}")
        focus = state.get("focus")
        if focus is not None and (
            isinstance(focus, bool) or not isinstance(focus, int | float) or not math.isfinite(focus)
        ):
            raise UserError(f"{where}.focus must be a pedestrian id or null, got {focus!r:.60}")
        camera = state.get("camera")
        if camera is not None:
            ok = isinstance(camera, list) and len(camera) == 4
            ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in camera)
            ok = ok and all(math.isfinite(v) for v in camera) and camera[2] > 0 and camera[3] > 0
            if not ok:
                raise UserError(
                    f"{where}.camera must be [x, y, width, height] (finite, sizes > 0), got {camera!r:.80}"
                )
            camera = tuple(float(v) for v in camera)
        et, info = None, state.get("et")
        if info is not None and not isinstance(info, dict):
            raise UserError(f"{where}.et must be an object or null, got {info!r:.60}")
        if info is not None and arrays:  # as every model: a state without its arrays file (e.g.
            # ``restore(state())`` in code) keeps the weights the app has for these settings
            et = model_from_state(info, arrays, f"{where}.et")
            if (et.cfg.k, et.cfg.num_samples) != (p.k, p.anchors):
                raise UserError(f"{where}.et: the saved model's k/anchors differ from the params")
        staged.update(scene=scene, window=window, focus=None if focus is None else float(focus))
        staged.update(camera=camera, et=et)
        return staged

    def apply_state(self, staged: Any) -> None:
        self.params = staged["params"]
        if staged["et"] is not None:
            self._keep(self.model_key(), staged["et"])
        self.scene, self.error = staged["scene"], ""
        self.window, self.focus = staged["window"], staged["focus"]
        if staged["camera"] is None:
            self.fit_camera()
        else:
            self.camera = staged["camera"]
        self._predict()
        self.events.emit("scene")
        self.events.emit("camera")
        self.events.emit("frame")
