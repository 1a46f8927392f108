"""What the trajectory panel computes, without Qt: scenes, forecasts, training jobs and export tables.

A :class:`Scene` is the test split of a leave-one-out fold (or one recording the user opened) with the raw
annotations of its recordings (to draw the bystanders of a window) and the scene's homography; a
:class:`Forecast` is every agent's samples with the best-of-K index and the scene metrics. Both are plain
arrays, so the panel model can hold them, and exports and tests can use them without a display.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.common import Progress, UserError
from backends.trajectory.baselines import constant_velocity, constant_velocity_samples
from backends.trajectory.data import (
    SCENES,
    STEP_SECONDS,
    Windows,
    load_homography,
    load_split,
    make_windows,
    read_csv_tracks,
    read_ethucy,
    scene_files,
)
from backends.trajectory.metrics import best_sample, min_ade_fde, summarize

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_ROOT = ROOT / "assets" / "trajectory" / "synthetic"
BUNDLED_WEIGHTS = ROOT / "assets" / "trajectory" / "eigentrajectory_synthetic.pt"
SHARED_ETHUCY = ROOT.parent / "shared" / "data" / "ethucy"
SHARED_HOMOGRAPHY = ROOT.parent / "shared" / "data" / "ethucy_homography"
MODELS = ("eigentrajectory", "cv20", "cv")
OBS_LEN = 8  # the last observed step of a window is index OBS_LEN - 1 of its frames


def resolve_data(data: str, scene: str) -> Path:
    """The dataset folder: 'auto' is the bundled synthetic crowd, or ../shared/data/ethucy for ETH/UCY."""
    if data and data != "auto":
        return Path(data).expanduser()
    return SYNTHETIC_ROOT if scene == "synthetic" else SHARED_ETHUCY


@dataclass(frozen=True)
class Scene:
    """Windows to forecast plus what draws them: raw rows (frame, ped, x, y) of each recording, homography."""

    windows: Windows
    recordings: tuple[np.ndarray, ...]
    homography: np.ndarray | None
    label: str  # the scene name, or the opened file's name
    opened: Path | None = None

    def bystanders(self, win: int) -> np.ndarray:
        """(n, 2) positions of everybody annotated at the last observed frame of window ``win``."""
        w = self.windows
        rows = self.recordings[int(w.source[win]) % len(self.recordings)]
        return rows[rows[:, 0] == w.frames[win, OBS_LEN - 1]][:, 2:4]


def load_scene(root: str | Path, scene: str) -> Scene:
    """The test split of ``scene`` under ``root`` (raises :class:`UserError` naming the folder)."""
    windows = load_split(root, scene, "test")
    recordings = tuple(read_ethucy(f).rows for f in scene_files(root, scene, "test"))
    H = None
    if scene in SCENES and SHARED_HOMOGRAPHY.is_dir():
        try:
            H = load_homography(SHARED_HOMOGRAPHY, scene)
        except UserError:
            H = None
    return Scene(windows, recordings, H, scene)


def open_tracks(path: str | Path) -> Scene:
    """One recording: ETH/UCY ``frame ped x y`` text, or CSV with columns frame, ped, x, y at 2.5 fps."""
    p = Path(path).expanduser()
    tracks = read_csv_tracks(p) if p.suffix.lower() == ".csv" else read_ethucy(p)
    w = make_windows(tracks)
    if w.num_windows == 0:
        raise UserError(
            f"{p}: no 20-step windows ({STEP_SECONDS} s steps) with >= 2 pedestrians present throughout"
        )
    return Scene(w, (tracks.rows,), None, p.name, p.resolve())


def bundled_model(k: int, anchors: int):
    """The EigenTrajectory weights shipped for the synthetic crowd, if they match ``k`` and ``anchors``."""
    from backends.trajectory.eigentrajectory import ETModel

    if not BUNDLED_WEIGHTS.is_file():
        return None
    try:
        m = ETModel.load(BUNDLED_WEIGHTS)
    except UserError:
        return None
    return m if (m.cfg.k, m.cfg.num_samples) == (k, anchors) else None


@dataclass(frozen=True)
class Forecast:
    """Samples (S, N, 12, 2) of every agent, the best sample per agent (N,), and the scene's metrics."""

    samples: np.ndarray
    best: np.ndarray
    metrics: dict
    model: str  # what produced the samples ("cv20 (fallback)" when EigenTrajectory is not trained)


def forecast(w: Windows, model: str, anchors: int, seed: int, et=None) -> Forecast:
    """Predict every agent of ``w`` with ``model``; EigenTrajectory without trained weights (``et`` None)
    falls back to CV-20 and says so in ``Forecast.model``."""
    if model not in MODELS:
        raise UserError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    label = model
    if model == "cv":
        samples = constant_velocity(w.obs)[None]
    elif model == "eigentrajectory" and et is not None:
        samples = et.predict(w)
    else:
        samples = constant_velocity_samples(w.obs, num_samples=anchors, seed=seed)
        label = model if model == "cv20" else "cv20 (fallback)"
    samples = np.asarray(samples, np.float32)
    return Forecast(samples, best_sample(samples, w.pred), summarize(samples, w.pred), label)


def agent_metrics(fc: Forecast, w: Windows, agent: int) -> tuple[float, float]:
    """(minADE, minFDE) in metres of one agent (global index) over its samples."""
    ade, fde = min_ade_fde(fc.samples[:, agent : agent + 1], w.pred[agent : agent + 1])
    return float(ade[0]), float(fde[0])


def train_job(cfg, root: Path, scene: str) -> Iterator[Progress]:
    """Worker generator: load the fold's train/val splits, then train EigenTrajectory on one thread."""
    from backends.trajectory.eigentrajectory import train_eigentrajectory

    yield Progress(0.0, f"loading {scene} train/val splits")
    train, val = load_split(root, scene, "train"), load_split(root, scene, "val")
    return (yield from train_eigentrajectory(cfg, train, val))


# -- export tables ------------------------------------------------------------------------------------------
WINDOW_CSV_HEADER = "window,frame,ped,sample,step,x_m,y_m"


def window_table(w: Windows, samples: np.ndarray, win: int) -> np.ndarray:
    """Rows (window, last observed frame, ped, sample, step, x, y) of one window; sample -1 is the truth."""
    sl = w.window(win)
    samp, gt, peds = samples[:, sl], w.pred[sl], w.ped_ids[sl]
    S, n, T, _ = samp.shape
    frame = w.frames[win, OBS_LEN - 1]
    si, ai, ti = (a.ravel() for a in np.meshgrid(np.arange(S), np.arange(n), np.arange(T), indexing="ij"))
    gi, gti = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(T), indexing="ij"))
    pred_rows = np.c_[np.full(len(si), win), np.full(len(si), frame), peds[ai], si, ti + 1, samp[si, ai, ti]]
    gt_rows = np.c_[np.full(len(gi), win), np.full(len(gi), frame), peds[gi], -np.ones(len(gi)), gti + 1]
    return np.concatenate([pred_rows, np.c_[gt_rows, gt[gi, gti]]])


# -- trained weights in a session (arrays, never pickle) ------------------------------------------------------
WEIGHT_PREFIX = "et."
#: sizes of a network a session may describe (the bundled model: hidden 64, 4 heads, 2 layers, k 6, 20 samples)
NET_SIZE_LIMITS = {
    "hidden": 4096,
    "heads": 64,
    "layers": 16,
    "k": 48,
    "num_samples": 100,
    "obs_len": 64,
    "pred_len": 64,
}


def history_dict(h) -> dict | None:
    """A training history as strict JSON (NaN, e.g. validation minFDE without a validation split, -> None)."""
    if h is None:
        return None

    def nums(values) -> list:
        return [float(v) if np.isfinite(v) else None for v in values]

    return {
        "epoch": int(h.epoch),
        "epochs": int(h.epochs),
        "train_loss": nums(h.train_loss),
        "val_minade": nums(h.val_minade),
        "val_minfde": nums(h.val_minfde),
        "seconds": float(h.seconds),
    }


def model_state(et) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON part, arrays) of a trained EigenTrajectory: its config, history and every weight/buffer."""
    from dataclasses import asdict

    arrays = {WEIGHT_PREFIX + k: v.detach().cpu().numpy().copy() for k, v in et.net.state_dict().items()}
    return {"config": asdict(et.cfg), "history": history_dict(et.history)}, arrays


def model_from_state(info, arrays: dict[str, np.ndarray], where: str):
    """Rebuild the model :func:`model_state` saved; a :class:`UserError` naming ``where`` when it does not fit."""
    import torch

    from backends.trajectory.eigentrajectory import EigenTrajectoryNet, ETConfig, ETModel, TrainSnapshot

    if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
        raise UserError(f"{where} must be an object with a 'config' object")
    conf = info["config"]
    for name, top in NET_SIZE_LIMITS.items():  # before building anything: a session must not allocate wildly
        v = conf.get(name, 1)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= top:
            raise UserError(f"{where}.config.{name} must be a whole number in 1..{top}, got {v!r:.40}")
    try:
        cfg = ETConfig(**conf)
        cfg.validate()
    except (TypeError, ValueError, ArithmeticError) as exc:  # UserError is a ValueError
        raise UserError(f"{where}.config: {exc}") from None
    net = EigenTrajectoryNet(cfg)
    names = set(net.state_dict())
    have = {k[len(WEIGHT_PREFIX) :] for k in arrays if k.startswith(WEIGHT_PREFIX)}
    if have != names:
        missing = sorted(names - have) or sorted(have - names)
        raise UserError(f"{where}: the session's weights do not match its config (e.g. {missing[0]!r})")
    state = {}
    for k in names:
        a = np.asarray(arrays[WEIGHT_PREFIX + k])
        if a.dtype.kind != "f" or not np.all(np.isfinite(a)):
            raise UserError(f"{where}: weight {k!r} is not a finite float array")
        state[k] = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    try:
        net.load_state_dict(state)
    except RuntimeError:
        raise UserError(f"{where}: the session's weights have other shapes than its config") from None
    hist = info.get("history")
    snap = None
    if hist is not None:
        try:
            snap = TrainSnapshot(
                int(hist["epoch"]),
                int(hist["epochs"]),
                *(
                    [float("nan") if v is None else float(v) for v in hist[key]]
                    for key in ("train_loss", "val_minade", "val_minfde")
                ),
                float(hist["seconds"]),
            )
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{where}.history is malformed") from None
    return ETModel(cfg, net, snap)
