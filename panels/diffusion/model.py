"""The diffusion panel's Qt-free source of truth: parameters, drawn points, trained weights, the sample shown.

Everything that determines the figure lives here and is saved with a session: the parameters, the user's
drawn point set, the trained weights (a state dict as numpy arrays, rebuilt with the model config), the loss
history, the sampled trajectory and the frame shown, the camera, the NFE sweep and the inverse-problem columns.
Views and plots listen to the events below and never keep their own copy.

Events (besides ``params``, ``stale`` and ``restored``): ``dataset`` (the target samples changed), ``weights``,
``losses``, ``result`` (a new trajectory), ``frame``, ``curves``, ``model_reset`` (the model or its data changed:
training and sweeps of the old one are void) and ``resample`` (a parameter changed that a cheap new sample shows
at once: the panel samples in a task).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from backends.common import UserError
from backends.diffusion.data import DATASETS, Dataset, make_dataset
from backends.diffusion.lightsb import LightSBConfig
from backends.diffusion.live import INVERSE_KINDS, InverseResult, Weights, bundled_digits, generative
from backends.diffusion.models import FAMILIES, PATHS, Interpolant, TrainConfig
from backends.diffusion.pipeline import ALL_SAMPLERS, LABELS, CurvePoint, SampleConfig
from backends.diffusion.samplers import SampleResult
from panels.model import PanelModel, param, require_array

MAX_LOSSES = 200_000  # loss history kept (the newest steps)
MAX_TRAJ_VALUES = 20_000_000  # floats of trajectory kept (80 MB); longer flows keep every k-th state
TARGET_SEED_OFFSET = 7  # the target samples drawn under the particles use seed + 7 (not the sampling noise)
# a trained model no longer applies when these change; a new seed only draws new noise (and resumes training)
MODEL_KEYS = frozenset({"dataset", "csv_path", "model", "D", "path", "gamma"})
RESAMPLE_KEYS = frozenset({"sampler", "nfe", "count", "churn", "eps", "inverse", "seed"})
NET_LIMITS = {"hidden": 4096, "depth": 64, "components": 4096}  # sizes a session's weights may declare
SAMPLING = "sampling..."  # the stale marker while a resample runs (cleared by its result)
NOT_RESAMPLED = "the parameters changed after this sample: press Sample"
SWEEP_KEYS = frozenset({"churn", "eps"})  # the sweep was run with these: changing them makes it stale


@dataclass(frozen=True)
class DiffusionParams:
    dataset: str = param("swissroll", "Dataset", choices=DATASETS)
    csv_path: str = param("", "CSV file", tooltip="points for the 'csv' dataset (File > Open)")
    model: str = param(
        "edm",
        "Model",
        choices=FAMILIES,
        tooltip="exact: closed-form mixture denoiser (gmm, 8gaussians); lightsb: Light Schrodinger bridge",
    )
    train_steps: int = param(2000, "Training steps", minimum=1, maximum=200_000, step=500)
    sampler: str = param("heun", "Sampler", choices=ALL_SAMPLERS)
    nfe: int = param(35, "NFE", minimum=1, maximum=1000, tooltip="model evaluations per sample")
    count: int = param(5000, "Particles", minimum=10, maximum=200_000, step=1000)
    D: float = param(
        128.0,
        "PFGM++ D",
        minimum=0.01,
        maximum=1e9,
        log=True,
        tooltip="D -> inf is EDM; small D = heavy tails",
    )
    eps: float = param(
        0.5,
        "epsilon",
        minimum=1e-4,
        maximum=100.0,
        log=True,
        tooltip="interpolant SDE eps(t) = eps (1-t); LightSB entropic eps",
    )
    path: str = param("linear", "Interpolant path", choices=PATHS)
    gamma: float = param(0.0, "Interpolant gamma a", minimum=0.0, maximum=10.0, step=0.1)
    churn: float = param(0.0, "Heun churn", minimum=0.0, maximum=100.0, step=1.0)
    seed: int = param(0, "Seed", minimum=0, maximum=2**31 - 2)
    sweep_seeds: int = param(
        3, "NFE sweep seeds", minimum=1, maximum=100, tooltip="repetitions per (sampler, NFE): error bars"
    )
    inverse: str = param(
        "none",
        "Digits inverse problem",
        choices=INVERSE_KINDS,
        tooltip="digits: DDS (Tweedie -> CG -> DDIM) vs DPS guidance at equal NFE",
    )
    lines: bool = param(False, "Trajectory lines")
    target: bool = param(True, "Show target samples")
    autozoom: bool = param(True, "Auto-zoom (heavy tails)")


def _num(x: float) -> float | None:
    """Strict JSON: non-finite numbers become null."""
    return float(x) if math.isfinite(x) else None


class DiffusionModel(PanelModel):
    key = "diffusion"
    Params = DiffusionParams

    def __init__(self) -> None:
        super().__init__()
        self.points = np.zeros((0, 2), np.float32)  # the user's drawn point set (dataset 'points')
        self.weights: Weights | None = None  # the trained model (a copy handed over by the training job)
        self.losses = np.zeros(0)
        self.loss_start = 0  # training step of losses[0] (the history keeps the newest MAX_LOSSES)
        self.result: SampleResult | None = None  # the flow shown (trajectory float32)
        self.evals = np.zeros(0, np.int64)  # model evaluation of each kept trajectory state
        self.sampler_shown = ""  # the sampler that made ``result`` (titles describe what is drawn)
        self.inverse: InverseResult | None = None
        self.frame = 0.0  # fractional index into the trajectory
        self.camera: tuple[float, float, float, float] | None = None  # (x, y, w, h), when not auto-zoomed
        self.curves: list[CurvePoint] = []
        self.curves_about = ""  # which model/dataset the sweep describes
        self.curve_spread: dict[tuple[str, int], float] = {}  # (sampler, nfe) -> std of sliced W2 over seeds
        self._dataset: Dataset | None = None
        self._target: np.ndarray | None = None

    # -- derived data ---------------------------------------------------------------------------------------
    def dataset(self) -> Dataset:
        """The target distribution (built on first use; a UserError says what is missing)."""
        if self._dataset is None:
            p = self.params
            if p.dataset == "points" and len(self.points) == 0:
                raise UserError("dataset 'points': draw points first (Shift + drag on the view)")
            self._dataset = make_dataset(
                p.dataset, csv_path=p.csv_path or None, points=self.points if len(self.points) else None
            )
        return self._dataset

    def target(self) -> np.ndarray | None:
        """Samples of the data drawn under the particles (None when the dataset cannot be built yet)."""
        if self._target is None:
            try:
                ds = self.dataset()
            except UserError:
                return None
            rng = np.random.default_rng(self.params.seed + TARGET_SEED_OFFSET)
            self._target = ds.sample(min(5000, max(self.params.count, 500)), rng)
        return self._target

    def is_image(self) -> bool:
        return self.params.dataset == "digits"

    def train_config(self) -> TrainConfig:
        p = self.params
        hidden = 256 if p.dataset == "digits" else 128
        return TrainConfig(
            family=p.model, steps=p.train_steps, hidden=hidden, D=p.D, path=p.path, gamma=p.gamma, seed=p.seed
        )

    def lightsb_config(self, steps: int | None = None) -> LightSBConfig:
        p = self.params
        return LightSBConfig(eps=p.eps, steps=steps or p.train_steps, seed=p.seed)

    def sample_config(self, count: int | None = None) -> SampleConfig:
        p = self.params
        return SampleConfig(
            sampler=p.sampler, nfe=p.nfe, count=count or p.count, seed=p.seed, churn=p.churn, eps=p.eps
        )

    def interpolant(self) -> Interpolant:
        return Interpolant(self.params.path, self.params.gamma)

    def can_sample(self) -> bool:
        """A model to sample is at hand without training (weights, the exact model, the bundled digits)."""
        p = self.params
        if self.weights is not None or p.model == "exact":  # exact on a non-mixture dataset says why on use
            return True
        return p.dataset == "digits" and p.model == "edm" and self.load_bundled()

    def load_bundled(self) -> bool:
        """Use the bundled digits EDM weights when the digits + EDM are chosen and nothing is trained."""
        p = self.params
        if self.weights is None and p.dataset == "digits" and p.model == "edm":
            w = bundled_digits()
            if w is not None:
                self.set_weights(w)
                self.set_losses(w.losses)
        return self.weights is not None

    @property
    def last_frame(self) -> int:
        return 0 if self.result is None else len(self.result.trajectory) - 1

    def eval_at(self, frame: float) -> float:
        """The model evaluation a (fractional) frame shows (frames are thinned for very long flows)."""
        if len(self.evals) == 0:
            return frame
        i = min(int(frame), len(self.evals) - 1)
        j = min(i + 1, len(self.evals) - 1)
        return float(self.evals[i] + (frame - i) * (self.evals[j] - self.evals[i]))

    def frame_label(self) -> str:
        """The read-out above the view: what is drawn (the sampler that made it, not the form's choice)."""
        if self.result is None:
            return ""
        last = self.evals[-1] if len(self.evals) else self.last_frame
        if self.inverse is not None:
            return (
                f"input | DDS (Tweedie, CG, DDIM) | DPS | truth   step {self.eval_at(self.frame):.1f}/{last}"
            )
        name = LABELS.get(self.sampler_shown, self.sampler_shown)
        return f"{name} | eval {self.eval_at(self.frame):.1f}/{last} | NFE {self.result.nfe}"

    # -- changes (GUI thread) ---------------------------------------------------------------------------------
    def add_points(self, pts: np.ndarray, jitter: float = 0.03) -> None:
        """Add points (and four jittered copies each, so a stroke becomes a thin density) to the drawn set;
        the model trained on the old set no longer applies."""
        pts = np.asarray(pts, np.float32).reshape(-1, 2)
        if not np.all(np.isfinite(pts)):
            raise UserError("drawn points must be finite")
        rng = np.random.default_rng(len(self.points))
        extra = np.repeat(pts, 4, axis=0) + rng.normal(0, jitter, (4 * len(pts), 2))
        self.points = np.concatenate([self.points, pts, extra.astype(np.float32)])
        if self.params.dataset == "points":
            self._forget_data()
            self._forget_model("the drawn points changed: press Train")

    def clear_points(self) -> None:
        self.points = np.zeros((0, 2), np.float32)
        if self.params.dataset == "points":
            self._forget_data()
            self._forget_model("the drawn points changed: draw, then press Train")

    def set_weights(self, w: Weights | None) -> None:
        self.weights = w
        self.events.emit("weights")

    def set_losses(self, losses: np.ndarray, start: int = 0) -> None:
        losses = np.asarray(losses, float)
        if len(losses) > MAX_LOSSES:
            start += len(losses) - MAX_LOSSES
            losses = losses[-MAX_LOSSES:]
        self.losses, self.loss_start = losses.copy(), int(start)
        self.events.emit("losses")

    def show_result(self, res: SampleResult, sampler: str, inverse: InverseResult | None = None) -> None:
        """Show a new flow (at its last frame); long trajectories keep every k-th state (and the last)."""
        traj = np.asarray(res.trajectory, np.float32)
        keep = np.arange(len(traj))
        if traj.size > MAX_TRAJ_VALUES:
            stride = math.ceil(traj.size / MAX_TRAJ_VALUES)
            keep = np.unique(np.r_[np.arange(0, len(traj), stride), len(traj) - 1])
            traj = np.ascontiguousarray(traj[keep])
        self.result = SampleResult(
            np.asarray(res.samples), traj, int(res.nfe), np.asarray(res.bad, bool), res.message
        )
        self.evals = keep.astype(np.int64)
        self.sampler_shown = sampler
        self.inverse = inverse
        self.frame = float(self.last_frame)
        self.mark_stale("")
        self.events.emit("result")
        self.events.emit("frame")

    def set_frame(self, f: float) -> None:
        if self.result is None or not math.isfinite(f):
            return
        f = float(min(max(f, 0.0), self.last_frame))
        if f != self.frame:
            self.frame = f
            self.events.emit("frame")

    def set_curves(self, points: list[CurvePoint], about: str | None = None) -> None:
        p = self.params
        self.curves = list(points)
        self.curve_spread = {}
        self.curves_about = (f"{p.model} on {p.dataset}" if about is None else about) if self.curves else ""
        self.events.emit("curves")

    def put_curve_points(self, new: list[tuple[CurvePoint, float]], about: str) -> None:
        """Add (or replace) points of a sweep study as its chunks land, each with its spread over seeds."""
        order = {s: i for i, s in enumerate(ALL_SAMPLERS)}
        keep = {(c.sampler, c.nfe): c for c in self.curves}
        for pt, sd in new:
            keep[(pt.sampler, pt.nfe)] = pt
            self.curve_spread[(pt.sampler, pt.nfe)] = sd
        self.curves = sorted(keep.values(), key=lambda c: (order[c.sampler], c.nfe))
        self.curves_about = about
        self.events.emit("curves")

    def params_changed(self, changed: set[str]) -> None:
        p = self.params
        if changed & {"dataset", "csv_path", "seed", "count"}:
            self._forget_data()
        if changed & MODEL_KEYS or (p.model == "lightsb" and "eps" in changed):
            self._forget_model("model or data changed: press Train")
        elif changed & SWEEP_KEYS and self.curves:
            self.set_curves([])
        shown = self.result is not None or self.weights is not None
        if changed & (MODEL_KEYS | RESAMPLE_KEYS) and shown and self.can_sample():
            if self.result is not None:
                self.mark_stale(SAMPLING)
            self.events.emit("resample")  # cheap with a model at hand: the panel samples at once

    def _forget_data(self) -> None:
        self._dataset = None
        self._target = None
        self.events.emit("dataset")

    def _forget_model(self, why: str) -> None:
        self.events.emit("model_reset")  # jobs still training or sweeping the old model must stop
        self.set_weights(None)
        self.set_losses(np.zeros(0))
        self.set_curves([])
        if self.result is not None:
            self.mark_stale(why)

    # -- sessions -----------------------------------------------------------------------------------------
    def state_keys(self) -> set[str]:
        return {"params", "frame", "camera", "weights", "result", "inverse", "curves", "stale", "loss_start"}

    def state(self) -> dict:
        st = super().state()
        w, res, inv = self.weights, self.result, self.inverse
        st["frame"] = self.frame
        st["camera"] = None if self.camera is None else [float(v) for v in self.camera]
        st["loss_start"] = self.loss_start
        st["stale"] = self.stale
        st["weights"] = (
            None
            if w is None
            else {"family": w.family, "dim": w.dim, "config": w.config, "sigma_data": w.sigma_data,
                  "dataset": w.dataset, "names": sorted(w.state)}
        )  # fmt: skip
        st["result"] = (
            None if res is None else {"nfe": res.nfe, "message": res.message, "sampler": self.sampler_shown}
        )
        st["inverse"] = (
            None if inv is None else {"kind": inv.kind, "rmse_dds": inv.rmse_dds, "rmse_dps": inv.rmse_dps}
        )
        st["curves"] = {
            "about": self.curves_about,
            "points": [
                [c.sampler, c.nfe, _num(c.sw), _num(c.floor)]
                + (
                    [_num(self.curve_spread[(c.sampler, c.nfe)])]
                    if (c.sampler, c.nfe) in self.curve_spread
                    else []
                )
                for c in self.curves
            ],
        }
        return st

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"points": self.points, "losses": self.losses}
        if self.weights is not None:
            out.update({f"weights.{k}": v for k, v in self.weights.state.items()})
        if self.result is not None:
            out.update(
                samples=self.result.samples,
                traj=self.result.trajectory,
                bad=self.result.bad,
                evals=self.evals,
            )
        if self.inverse is not None:
            inv = self.inverse
            out.update(inverse_truth=inv.truth, inverse_measured=inv.measured, inverse_dps=inv.dps)
        return out

    def validate_state(self, state: Any, arrays: dict[str, np.ndarray]) -> dict:
        staged = super().validate_state(state, arrays)
        where = self.key
        staged["frame"] = _number(state.get("frame", 0.0), f"{where}.frame", 0.0, 1e6)
        cam = state.get("camera")
        if cam is not None:
            if not (isinstance(cam, list) and len(cam) == 4):
                raise UserError(f"{where}.camera must be [x, y, width, height] or null, got {cam!r:.60}")
            cam = tuple(_number(v, f"{where}.camera", -1e12, 1e12) for v in cam)
            if cam[2] <= 0 or cam[3] <= 0:
                raise UserError(f"{where}.camera width and height must be > 0, got {list(cam)}")
        staged["camera"] = cam
        staged["loss_start"] = int(_number(state.get("loss_start", 0), f"{where}.loss_start", 0, 1e12))
        stale = state.get("stale", "")
        if not isinstance(stale, str):
            raise UserError(f"{where}.stale must be text, got {stale!r:.60}")
        staged["stale"] = stale
        if not arrays:  # parameters and view only (no array file): applied as if typed into the form
            return staged
        pts = require_array(arrays, "points", where=where, ndim=2) if "points" in arrays else np.zeros((0, 2))
        if pts.shape[1] != 2 and len(pts):
            raise UserError(f"{where}: array 'points' must have 2 columns, has {pts.shape[1]}")
        staged["points"] = pts.astype(np.float32).reshape(-1, 2)
        losses = (
            require_array(arrays, "losses", where=where, ndim=1, finite=False) if "losses" in arrays else []
        )
        staged["losses"] = np.asarray(losses, float)
        staged["weights"] = self._validate_weights(state.get("weights"), arrays)
        staged["result"] = self._validate_result(state.get("result"), arrays)
        staged["inverse"] = self._validate_inverse(state.get("inverse"), arrays)
        w = staged["weights"]
        if w is not None and w.family != staged["params"].model:
            raise UserError(
                f"{where}: weights of a {w.family!r} model, but params.model is {staged['params'].model!r}"
            )
        staged["curves"] = _validate_curves(state.get("curves", {"about": "", "points": []}), where)
        return staged

    def _validate_weights(self, meta: Any, arrays: dict[str, np.ndarray]) -> Weights | None:
        where = f"{self.key}.weights"
        if meta is None:
            return None
        keys = {"family", "dim", "config", "sigma_data", "dataset", "names"}
        if not isinstance(meta, dict) or set(meta) != keys:
            raise UserError(f"{where} must be an object with keys {', '.join(sorted(keys))}")
        if meta["family"] not in ("edm", "pfgmpp", "interpolant", "lightsb"):
            raise UserError(
                f"{where}.family must be edm, pfgmpp, interpolant or lightsb; got {meta['family']!r}"
            )
        if not isinstance(meta["names"], list) or not all(isinstance(n, str) for n in meta["names"]):
            raise UserError(f"{where}.names must be a list of names")
        dim = int(_number(meta["dim"], f"{where}.dim", 1, 4096))
        sigma = _number(meta["sigma_data"], f"{where}.sigma_data", 1e-6, 1e6)
        if not isinstance(meta["config"], dict) or not isinstance(meta["dataset"], str):
            raise UserError(f"{where}: config must be an object and dataset a name")
        for k, hi in NET_LIMITS.items():  # a network is built from the config before the arrays are checked
            if k in meta["config"]:
                _number(meta["config"][k], f"{where}.config.{k}", 1, hi)
        state = {n: require_array(arrays, f"weights.{n}", where=where) for n in meta["names"]}
        w = Weights(meta["family"], dim, dict(meta["config"]), sigma, meta["dataset"], state)
        try:
            generative(w)  # the arrays must fit the network the config builds
        except TypeError as exc:
            raise UserError(f"{where}.config: {exc}") from None
        return w

    def _validate_result(self, meta: Any, arrays: dict[str, np.ndarray]) -> tuple | None:
        where = f"{self.key}.result"
        if meta is None:
            return None
        if not isinstance(meta, dict) or set(meta) != {"nfe", "message", "sampler"}:
            raise UserError(f"{where} must be an object with keys message, nfe, sampler")
        if meta["sampler"] not in ALL_SAMPLERS:
            raise UserError(
                f"{where}.sampler must be one of {', '.join(ALL_SAMPLERS)}; got {meta['sampler']!r}"
            )
        if not isinstance(meta["message"], str):
            raise UserError(f"{where}.message must be text")
        nfe = int(_number(meta["nfe"], f"{where}.nfe", 0, 1e6))
        traj = require_array(arrays, "traj", where=where, ndim=3, finite=False).astype(np.float32)
        samples = require_array(arrays, "samples", where=where, ndim=2, finite=False)
        bad = require_array(arrays, "bad", where=where, ndim=1).astype(bool)
        evals = require_array(arrays, "evals", where=where, ndim=1).astype(np.int64)
        n, d = traj.shape[1:]
        if len(traj) == 0 or samples.shape != (n, d) or bad.shape != (n,) or evals.shape != (len(traj),):
            raise UserError(f"{where}: arrays traj {traj.shape}, samples, bad and evals do not agree")
        res = SampleResult(samples, traj, nfe, bad, meta["message"])
        return res, evals, meta["sampler"]

    def _validate_inverse(self, meta: Any, arrays: dict[str, np.ndarray]) -> InverseResult | None:
        where = f"{self.key}.inverse"
        if meta is None:
            return None
        if not isinstance(meta, dict) or set(meta) != {"kind", "rmse_dds", "rmse_dps"}:
            raise UserError(f"{where} must be an object with keys kind, rmse_dds, rmse_dps")
        if meta["kind"] not in INVERSE_KINDS[1:]:
            raise UserError(
                f"{where}.kind must be one of {', '.join(INVERSE_KINDS[1:])}; got {meta['kind']!r}"
            )
        cols = [
            require_array(arrays, f"inverse_{k}", where=where, ndim=2) for k in ("truth", "measured", "dps")
        ]
        if len({c.shape for c in cols}) != 1:
            raise UserError(f"{where}: the truth, measured and DPS arrays differ in shape")
        rm = [_number(meta[k], f"{where}.{k}", 0, 1e6) for k in ("rmse_dds", "rmse_dps")]
        return InverseResult(meta["kind"], *cols, *rm)

    def apply_state(self, staged: dict) -> None:
        self.camera = staged["camera"]
        if "points" not in staged:  # parameters only: what they invalidate goes, as after a form edit
            old, self.params = self.params, staged["params"]
            self.params_changed(
                {f.name for f in fields(old) if getattr(old, f.name) != getattr(self.params, f.name)}
            )
            self.set_frame(staged["frame"])
            return
        self.params = staged["params"]  # restored as saved: nothing is invalidated by the load itself
        self.points = staged["points"]
        self._forget_data()
        self.set_weights(staged["weights"])
        self.set_losses(staged["losses"], staged["loss_start"])
        self.curves_about, self.curves, self.curve_spread = staged["curves"]
        self.events.emit("curves")
        self.result, self.inverse = None, staged["inverse"]
        if staged["result"] is not None:
            res, evals, sampler = staged["result"]
            self.result, self.evals, self.sampler_shown = res, evals, sampler
        self.events.emit("result")
        self.frame = float(min(staged["frame"], self.last_frame))
        self.stale = NOT_RESAMPLED if staged["stale"] == SAMPLING else staged["stale"]  # no resample runs now
        self.events.emit("stale", why=self.stale)
        self.events.emit("frame")


def _number(v: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise UserError(f"{where} must be a finite number in [{lo:g}, {hi:g}], got {v!r:.60}")
    return float(v)


def _validate_curves(data: Any, where: str) -> tuple[str, list[CurvePoint], dict[tuple[str, int], float]]:
    if not isinstance(data, dict) or set(data) != {"about", "points"} or not isinstance(data["about"], str):
        raise UserError(f"{where}.curves must be an object with keys about and points")
    points, spread = [], {}
    for row in data["points"] if isinstance(data["points"], list) else [None]:
        ok = isinstance(row, list) and len(row) in (4, 5) and row[0] in ALL_SAMPLERS
        if not ok:
            raise UserError(
                f"{where}.curves.points: each point is [sampler, nfe, sw, floor(, spread)], got {row!r:.60}"
            )
        if len(row) == 5:
            sd = math.nan if row[4] is None else _number(row[4], f"{where}.curves spread", 0, 1e12)
            spread[(row[0], int(_number(row[1], f"{where}.curves nfe", 1, 1e6)))] = sd
        nfe = int(_number(row[1], f"{where}.curves nfe", 1, 1e6))
        sw, floor = (math.inf if row[2] is None else _number(row[2], f"{where}.curves sw", 0, 1e12),
                     math.nan if row[3] is None else _number(row[3], f"{where}.curves floor", 0, 1e12))  # fmt: skip
        points.append(CurvePoint(row[0], nfe, sw, floor))
    return data["about"], points, spread
