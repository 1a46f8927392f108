"""Qt-free state of the operator-learning panel: parameters, data set, trained weights, history, selection.

Views subscribe through ``self.events`` ("params", "restored", "stale" from the base; "data", "history",
"prediction", "sample" here) and draw only what this object holds. The long work (generation, training,
refinement) runs as backend generators in workers; :func:`train_with_previews` adds, after every epoch, the
test-set predictions and a *copy* of the weights, computed in the worker thread, so the GUI never touches a
network that is being trained.

A session holds the parameters, the history and the selection (JSON) and, as arrays, the data set (the test
part always, the training part when it is small), the prediction shown and the weights (state-dict tensors,
rebuilt from the model configuration on restore; nothing is pickled). So an export's sidecar reproduces the
figure, and Train/Refine continue from a restored session.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from backends.common import UserError
from backends.operator import data as opdata
from backends.operator.checkpoint import network_from_weights, tensor_state
from backends.operator.models import ModelConfig, OperatorModel
from backends.operator.rollout import MAX_STEPS as MAX_ROLLOUT
from backends.operator.rollout import RolloutConfig, RolloutStep
from backends.operator.train import EpochStats, TrainConfig, make_model, predict, rel_l2_per_sample, train
from backends.operator.zeroshot import ZeroShot
from panels.model import PanelModel, param, require_array, validate_params

PROBLEMS = ("darcy", "ns")
MODELS = ("fno", "tfno", "lsm", "fno3d")
MAX_HISTORY = 100_000
#: the zero-shot fine test set's seed is the form's seed plus this (samples apart from the training data)
ZEROSHOT_SEED_OFFSET = 7919
#: the training part of the data set goes into a session only up to this size (the test part always does)
MAX_SESSION_TRAIN_BYTES = 64 * 2**20
WEIGHT = "weight."  # prefix of the weight arrays in a session
DATA_FIELDS = ("problem", "n", "count", "seed", "nu", "steps", "n_test", "chunk")
NET_FIELDS = ("model", "modes", "width", "epochs", "lr", "batch_size", "refine_epochs")


@dataclass(frozen=True)
class OperatorParams:
    problem: str = param(
        "darcy", "Problem", choices=PROBLEMS, tooltip="darcy: a -> u; ns: 10 vorticity steps -> the rest"
    )
    n: int = param(32, "Resolution n", minimum=16, maximum=256)
    count: int = param(64, "Samples", minimum=2, maximum=20_000)
    seed: int = param(0, "Seed", minimum=0, maximum=10**6)
    nu: float = param(1e-3, "Viscosity nu (ns)", minimum=1e-6, maximum=1.0, log=True)
    steps: int = param(20, "Unit-time steps (ns)", minimum=11, maximum=200)
    n_test: int = param(8, "Test samples", minimum=1, maximum=10_000)
    model: str = param("fno", "Model", choices=MODELS, tooltip="fno3d: spatiotemporal FNO (Navier-Stokes)")
    modes: int = param(8, "Fourier modes", minimum=1, maximum=128)
    width: int = param(16, "Width", minimum=8, maximum=256)
    epochs: int = param(20, "Epochs", minimum=1, maximum=10_000)
    lr: float = param(5e-3, "Learning rate", minimum=1e-6, maximum=1.0, log=True)
    batch_size: int = param(16, "Batch size", minimum=1, maximum=1024)
    refine_epochs: int = param(3, "Refiner epochs", minimum=1, maximum=1000)
    refine_on: str = param(
        "test",
        "Refine on (ns)",
        choices=("test", "train"),
        tooltip="Navier-Stokes: fine-tune against the equation's residual on the test inputs (no targets used, "
        "as a solver would) or on the training inputs",
    )
    chunk: int = param(
        16,
        "Samples per chunk (Generate)",
        minimum=1,
        maximum=10_000,
        tooltip="Generate runs a pde-dataset batch study: one chunk per task",
    )
    rollout_steps: int = param(
        20,
        "Rollout steps (ns)",
        minimum=1,
        maximum=MAX_ROLLOUT,
        tooltip="unit-time steps the operator and the solver advance after the given ones",
    )
    sample: int = param(0, "Test sample", minimum=0, maximum=10_000)
    channel: int = param(0, "Output channel / step", minimum=0, maximum=1000)

    def model_config(self, train: opdata.OperatorData) -> ModelConfig:
        width = max(8, self.width // 8 * 8) if self.model == "lsm" else self.width  # lsm: 8 heads
        return ModelConfig(
            kind=self.model,
            in_channels=train.x.shape[1],
            out_channels=train.y.shape[1],
            modes=self.modes,
            width=width,
        )

    def train_config(self, refine: bool = False, epochs: int | None = None) -> TrainConfig:
        if refine:
            return TrainConfig(
                epochs=epochs or self.refine_epochs, batch_size=self.batch_size, lr=1e-3, schedule="none"
            )
        return TrainConfig(epochs=epochs or self.epochs, batch_size=self.batch_size, lr=self.lr)


@dataclass(frozen=True)
class Preview:
    """One epoch's statistics, the test predictions and a copy of the weights after it (safe across threads)."""

    stats: EpochStats
    prediction: np.ndarray
    config: ModelConfig
    weights: dict[str, torch.Tensor]
    high_k_error: float = math.nan  # test error above the median wavenumber (what Spectral-Refiner targets)


def data_generator(p: OperatorParams) -> Iterator:
    """The backend generator that makes the data set ``p`` describes (ns: n rounded to a multiple of 16)."""
    if p.problem == "darcy":
        return opdata.generate_darcy(p.n, p.count, seed=p.seed, compare=True)
    n = p.n if p.n % 16 == 0 else 16 * round(p.n / 16)
    return opdata.generate_ns(
        n, p.count, nu=p.nu, steps=p.steps, t_in=10, seed=p.seed, batch=min(p.count, 64)
    )


def weights_copy(net: OperatorModel) -> dict[str, torch.Tensor]:
    """The network's tensors, cloned: the worker keeps training ``net`` while the GUI reads the copy."""
    return {k: v.clone() for k, v in tensor_state(net).items()}


def train_with_previews(
    net: OperatorModel,
    train_data,
    test_data,
    cfg: TrainConfig,
    refine: bool = False,
    refine_on: str = "train",
) -> Iterator[Preview]:
    """The trainer (or the Spectral-Refiner: the Navier-Stokes residual for our NS data, the H^-1 data misfit
    otherwise) with the test predictions and weights after every epoch."""
    from backends.operator.refine import DEFAULTS, default_objective
    from backends.operator.refine import refine as refine_gen

    if refine:
        objective = default_objective(train_data)
        lr, batch = DEFAULTS[objective]
        cfg = replace(cfg, lr=lr, batch_size=batch)
        inputs = test_data.x if objective == "residual" and refine_on == "test" else None
        gen = refine_gen(net, train_data, test_data, cfg, objective, inputs)
    else:
        gen = train(net, train_data, test_data, cfg)
    for stats in gen:
        pred = predict(net, test_data.x)
        high_k = opdata.high_frequency_error(pred, test_data.y)
        yield Preview(stats, pred, net.cfg, weights_copy(net), high_k)


@dataclass
class RolloutState:
    """The rollout being shown: one entry per unit time, appended as the worker yields them."""

    sample: int  # the test sample whose given snapshots started it
    t_in: int
    steps: list[RolloutStep] = field(default_factory=list)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(times, truth (T, n, n), prediction (T, n, n), rel_l2)."""
        return (
            np.array([s.t for s in self.steps], int),
            np.stack([s.truth for s in self.steps]),
            np.stack([s.prediction for s in self.steps]),
            np.array([s.rel_l2 for s in self.steps], float),
        )

    def limits(self) -> tuple[float, float]:
        """One colour scale for the whole rollout (solver, operator and difference), so a video does not
        flicker: the range of every field so far."""
        lo = min(min(float(s.truth.min()), float(s.prediction.min()), float((s.prediction - s.truth).min()))
                 for s in self.steps)  # fmt: skip
        hi = max(max(float(s.truth.max()), float(s.prediction.max()), float((s.prediction - s.truth).max()))
                 for s in self.steps)  # fmt: skip
        return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


@dataclass
class StudyProgress:
    """Counts of a Generate study as its chunks land (the store is the data; this is the status line)."""

    store: str
    total_chunks: int
    total_samples: int
    samples: int = 0
    chunks: int = 0
    failed: int = 0
    compute_s: float = 0.0  # the chunks' compute time on the workers, summed
    iterations: int = 0  # Darcy: recycled CG iterations of the samples done
    where: str = ""

    def line(self) -> str:
        out = (
            f"Generate ({self.where}): {self.samples}/{self.total_samples} samples, "
            f"{self.chunks}/{self.total_chunks} chunks, {self.compute_s:.1f} s of solver time"
        )
        if self.iterations:
            out += f", recycled CG {self.iterations / max(self.samples, 1):.1f} iterations per system"
        return out + (f", {self.failed} chunks failed" if self.failed else "")


def rollout_nu(data: opdata.OperatorData, fallback: float) -> float:
    """The viscosity the data were made with (generator or store metadata), else the form's."""
    nu = data.meta.get("nu")
    return float(nu) if isinstance(nu, int | float) and 0 < nu <= 1 else fallback


def _json_meta(meta: dict) -> dict:
    """The data set's notes that survive JSON (numbers and text), for the summary line after a restore."""
    return {
        k: v
        for k, v in meta.items()
        if isinstance(v, str | int | bool) or (isinstance(v, float) and math.isfinite(v))
    }


def _finite_or_none(v: float) -> float | None:
    """Strict JSON has no NaN/Infinity: a diverged epoch's loss is written as null."""
    return v if math.isfinite(v) else None


class OperatorLab(PanelModel):
    """The panel's model. Mutate only through its methods so listeners hear about every change."""

    key = "operator"
    Params = OperatorParams

    def __init__(self) -> None:
        super().__init__()
        self.data: opdata.OperatorData | None = None
        self.train_data: opdata.OperatorData | None = None
        self.test_data: opdata.OperatorData | None = None
        self.net_config: ModelConfig | None = None
        self.weights: dict[str, torch.Tensor] | None = None  # GUI-owned copy; never trained in place
        self.history: list[EpochStats] = []
        self.prediction: np.ndarray | None = None  # (n_test, C_out, n, n)
        self.source = ""  # where the data came from (file name or "generated")
        self.rollout: RolloutState | None = None
        self.zeroshot: ZeroShot | None = None
        self.study: StudyProgress | None = None

    # -- parameters --------------------------------------------------------------------------------------
    def set_params(self, **changes: Any) -> set[str]:
        """Validate ranges (base) and the combination with the data shown, then apply (all or nothing)."""
        staged = validate_params(OperatorParams, changes, base=self.params)
        self._check_selection(staged, self.test_data)
        return super().set_params(**changes)

    @staticmethod
    def _check_selection(p: OperatorParams, test: opdata.OperatorData | None, where: str = "") -> None:
        if test is None:
            return
        if p.sample >= len(test):
            raise UserError(f"{where}sample = {p.sample} is out of range [0, {len(test) - 1}] (test samples)")
        if p.channel >= test.y.shape[1]:
            raise UserError(f"{where}channel = {p.channel} is out of range [0, {test.y.shape[1] - 1}]")

    def params_changed(self, changed: set[str]) -> None:
        if changed & {"sample", "channel"}:
            self.events.emit("sample")
        if self.data is not None and self.source == "generated" and changed & set(DATA_FIELDS):
            self.mark_stale("the data parameters changed: press Generate")
        elif self.weights is not None and changed & {"model", "modes", "width"}:
            self.mark_stale("the network parameters changed: press Train")

    def select(self, sample: int | None = None, channel: int | None = None) -> None:
        """Select a test sample/channel, clamped to the data shown."""
        if self.test_data is None:
            return
        s = self.params.sample if sample is None else sample
        c = self.params.channel if channel is None else channel
        s = int(np.clip(s, 0, len(self.test_data) - 1))
        c = int(np.clip(c, 0, self.test_data.y.shape[1] - 1))
        self.set_params(sample=s, channel=c)

    # -- data --------------------------------------------------------------------------------------------
    def set_data(self, ds: opdata.OperatorData, source: str = "generated") -> None:
        n_test = min(self.params.n_test, len(ds) - 1)
        if n_test < 1:
            raise UserError("a data set needs at least 2 samples (train and test)")
        self._set_split(ds.subset(slice(0, len(ds) - n_test)), ds.subset(slice(len(ds) - n_test, len(ds))))
        self.data, self.source = ds, source
        self.net_config, self.weights, self.history, self.prediction = None, None, [], None
        self.clear_derived()
        self.mark_stale("")
        self.events.emit("data")
        self.events.emit("history")
        self.params = dataclasses.replace(self.params, sample=0, channel=0)
        self.events.emit("params", changed={"sample", "channel"})
        self.events.emit("sample")
        self.events.emit("prediction")

    def _set_split(self, train_part: opdata.OperatorData | None, test_part: opdata.OperatorData) -> None:
        self.train_data, self.test_data = train_part, test_part

    def new_network(self) -> OperatorModel:
        """A freshly initialised network for a worker to train (the GUI keeps no reference to it)."""
        if self.train_data is None:
            raise UserError("no training data: press Generate or open a data set first")
        cfg = self.params.model_config(self.train_data)
        if cfg.kind == "fno3d" and self.train_data.kind == "darcy":
            raise UserError(
                "fno3d is the spatiotemporal FNO for Navier-Stokes sequences: pick fno, tfno or lsm"
            )
        net = make_model(cfg, self.train_data, self.params.seed)
        self.history = []
        self.clear_derived()
        self.events.emit("history")
        return net

    def network(self) -> OperatorModel | None:
        """A GUI-side network built from the current weights (a new object each call; None before training)."""
        if self.weights is None:
            return None
        return network_from_weights(self.net_config, self.weights, "operator")

    def set_network(self, net: OperatorModel) -> None:
        """Show a network loaded from a checkpoint: its weights are copied, its predictions computed."""
        if self.test_data is None:
            raise UserError("open a data set before loading weights")
        if (
            net.cfg.in_channels != self.test_data.x.shape[1]
            or net.cfg.out_channels != self.test_data.y.shape[1]
        ):
            raise UserError("these weights do not fit the data set's channels")
        self.net_config, self.weights, self.history = net.cfg, weights_copy(net), []
        self.clear_derived()
        self.mark_stale("")
        self.events.emit("history")
        self.set_prediction(predict(net, self.test_data.x))

    # -- training ----------------------------------------------------------------------------------------
    def add_preview(self, p: Preview) -> None:
        self.history.append(p.stats)
        del self.history[:-MAX_HISTORY]
        self.net_config, self.weights = p.config, p.weights
        self.mark_stale("")
        self.events.emit("history")
        self.set_prediction(p.prediction)

    def set_prediction(self, pred: np.ndarray | None) -> None:
        self.prediction = pred
        self.events.emit("prediction")

    # -- what the views draw -----------------------------------------------------------------------------
    def sample_fields(self, sample: int | None = None) -> dict[str, np.ndarray] | None:
        """input, truth, prediction (or None) and error of a test sample (default: the selected one) and the
        selected channel."""
        if self.test_data is None:
            return None
        s, c = self.params.sample if sample is None else sample, self.params.channel
        truth = self.test_data.y[s, c]
        out = {"input": self.test_data.x[s, -1], "truth": truth, "prediction": None, "error": None}
        if self.prediction is not None and len(self.prediction) == len(self.test_data):
            out["prediction"] = self.prediction[s, c]
            out["error"] = self.prediction[s, c] - truth
        return out

    def spectra(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """(k, E_truth, E_prediction) shell spectra over the test set, selected channel."""
        if self.test_data is None:
            return None
        c = self.params.channel
        k, et = opdata.energy_spectrum(self.test_data.y[:, c])
        ep = None if self.prediction is None else opdata.energy_spectrum(self.prediction[:, c])[1]
        return k, et, ep

    def test_errors(self) -> np.ndarray | None:
        if self.prediction is None or self.test_data is None:
            return None
        return rel_l2_per_sample(self.prediction, self.test_data.y)

    def summary(self) -> str:
        if self.test_data is None:
            return "no data: generate a set or open one (NPZ, neuraloperator .pt, Zarr)"
        t = self.test_data
        n_train = 0 if self.train_data is None else len(self.train_data)
        line = (
            f"{t.kind} from {self.source}: {n_train + len(t)} samples at {t.resolution}x{t.resolution} "
            f"({n_train} train / {len(t)} test), {t.x.shape[1]} -> {t.y.shape[1]} ch"
        )
        m = t.meta
        if "iterations_recycled" in m and "iterations_pcg" in m:
            line += (
                f"; recycled CG {m['iterations_recycled']} iterations in {m['seconds_recycled']:.1f} s vs "
                f"plain PCG {m['iterations_pcg']} in {m['seconds_pcg']:.1f} s "
                f"(x{m['iterations_pcg'] / max(m['iterations_recycled'], 1):.2f} fewer iterations)"
            )
        elif "iterations_per_system" in m:
            line += f"; recycled CG {m['iterations_per_system']:.1f} iterations per system (plain CG not run)"
        errs = self.test_errors()
        if errs is not None:
            line += f"; test rel L2 {errs.mean():.4f}"
        return line

    def metrics_columns(self) -> tuple[list[str], list[np.ndarray]]:
        names = [f.name for f in fields(EpochStats)]
        cols = [np.array([getattr(h, n) for h in self.history], dtype=float) for n in names]
        return names, cols

    # -- rollout, zero-shot, studies ----------------------------------------------------------------------
    def clear_derived(self) -> None:
        """Forget the rollout and the zero-shot result (new data or a new network make them stale)."""
        self.rollout, self.zeroshot = None, None
        self.events.emit("rollout")
        self.events.emit("zeroshot")

    def rollout_job(self) -> tuple[OperatorModel, np.ndarray, RolloutConfig]:
        """(network, given snapshots, config) for a rollout of the selected test sample; starts a new rollout."""
        t = self.test_data
        if t is None or t.kind != "ns":
            raise UserError("a rollout needs Navier-Stokes data: set problem = ns and press Generate")
        net = self.network()
        if net is None:
            raise UserError("no trained model: press Train (or load weights) first")
        s = self.params.sample
        cfg = RolloutConfig(steps=self.params.rollout_steps, nu=rollout_nu(t, self.params.nu))
        self.rollout = RolloutState(s, t.x.shape[1])
        self.events.emit("rollout")
        return net, t.x[s], cfg

    def add_rollout_step(self, step: RolloutStep) -> None:
        if self.rollout is not None:
            self.rollout.steps.append(step)
            self.events.emit("rollout")

    def rollout_fields(self, k: int | None = None) -> dict[str, np.ndarray] | None:
        """solver, operator and difference at rollout step ``k`` (default: the latest)."""
        r = self.rollout
        if r is None or not r.steps:
            return None
        s = r.steps[-1 if k is None else int(np.clip(k, 0, len(r.steps) - 1))]
        return {"solver": s.truth, "operator": s.prediction, "difference": s.prediction - s.truth, "t": s.t}

    def zeroshot_job(self) -> tuple[str, int, int, dict]:
        """(kind, n, samples, keywords) of the fine test set :func:`backends.operator.zeroshot.fine_test_set`
        makes for the data shown (the test-set size, a seed of its own)."""
        t = self.test_data
        if t is None or self.weights is None:
            raise UserError("zero-shot needs a trained model: press Generate, then Train")
        if t.kind not in ("darcy", "ns"):
            raise UserError("zero-shot data are generated for darcy or ns data; this set is generic")
        kw = {"seed": self.params.seed + ZEROSHOT_SEED_OFFSET}
        if t.kind == "ns":
            kw.update(
                nu=rollout_nu(t, self.params.nu), steps=t.x.shape[1] + t.y.shape[1] - 1, t_in=t.x.shape[1]
            )
        return t.kind, t.resolution, len(t), kw

    def set_zeroshot(self, zs: ZeroShot | None) -> None:
        self.zeroshot = zs
        self.events.emit("zeroshot")

    def zeroshot_fields(self, sample: int | None = None) -> tuple[dict, dict] | None:
        """input, truth, prediction, error of one zero-shot sample at n and at the fine resolution (the
        selected channel; the sample clamped to the fine set)."""
        z = self.zeroshot
        if z is None:
            return None
        s = int(np.clip(self.params.sample if sample is None else sample, 0, len(z.fine) - 1))
        c = min(self.params.channel, z.fine.y.shape[1] - 1)

        def row(d: opdata.OperatorData, pred: np.ndarray) -> dict:
            return {
                "input": d.x[s, -1],
                "truth": d.y[s, c],
                "prediction": pred[s, c],
                "error": pred[s, c] - d.y[s, c],
            }

        return row(z.coarse, z.pred_coarse), row(z.fine, z.pred_fine)

    def begin_study(self, store: str, total_chunks: int, total_samples: int, where: str) -> None:
        self.study = StudyProgress(store, total_chunks, total_samples, where=where)
        self.events.emit("study")

    def add_study_chunks(self, results, sizes: dict[int, int]) -> None:
        """Count finished chunks (``ChunkResult``s; ``sizes`` = samples per chunk index)."""
        st = self.study
        if st is None:
            return
        for r in results:
            if r.error is not None:
                st.failed += 1
                continue
            st.chunks += 1
            st.samples += sizes[r.index]
            st.compute_s += r.seconds
            if "iterations" in r.arrays:
                st.iterations += int(np.asarray(r.arrays["iterations"]).sum())
        self.events.emit("study")

    # -- sessions ----------------------------------------------------------------------------------------
    def state_keys(self) -> set[str]:
        return {"params", "history", "data", "network"}

    def state(self) -> dict:
        st = super().state()
        st["history"] = [{k: _finite_or_none(v) for k, v in h.to_dict().items()} for h in self.history]
        t = self.test_data
        st["data"] = (
            None if t is None else {"kind": t.kind, "source": self.source, "meta": _json_meta(t.meta)}
        )
        st["network"] = None if self.net_config is None else self.net_config.to_dict()
        return st

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.test_data is not None:
            out["test_x"], out["test_y"] = self.test_data.x, self.test_data.y
            tr = self.train_data
            if tr is not None and tr.x.nbytes + tr.y.nbytes <= MAX_SESSION_TRAIN_BYTES:
                out["train_x"], out["train_y"] = tr.x, tr.y
        if self.prediction is not None:
            out["prediction"] = self.prediction
        for k, v in (self.weights or {}).items():
            out[WEIGHT + k] = v.numpy()
        return out

    def validate_state(self, state: Any, arrays: dict[str, np.ndarray]) -> dict:
        """Everything checked before anything changes. Without arrays (a state dict alone) the parameters,
        history and selection are restored and the data and network shown stay."""
        staged = super().validate_state(state, arrays)
        w = "operator"
        staged["history"] = self._check_history(state.get("history", []))
        data = state.get("data")
        if data is not None:
            if not isinstance(data, dict) or set(data) - {"kind", "source", "meta"}:
                raise UserError(f"{w}.data must be an object with kind, source and meta; got {data!r:.80}")
            kind, source, meta = data.get("kind"), data.get("source", ""), data.get("meta", {})
            if not isinstance(kind, str) or not isinstance(source, str) or not isinstance(meta, dict):
                raise UserError(f"{w}.data: kind and source must be text, meta an object; got {data!r:.80}")
        cfg = None
        if state.get("network") is not None:
            try:
                cfg = ModelConfig.from_dict(state["network"])
            except UserError as exc:
                raise UserError(f"{w}.network: {exc}") from None
        staged["keep"] = not arrays
        if not arrays:
            self._check_selection(staged["params"], self.test_data, where=f"{w}.params.")
            return staged
        staged.update(data=None, train=None, source="", prediction=None, network=None, weights=None)
        test = None
        if data is not None:
            tx = require_array(arrays, "test_x", where=w, ndim=4)
            ty = require_array(arrays, "test_y", where=w, ndim=4)
            try:
                test = opdata.OperatorData(
                    tx.astype(np.float32), ty.astype(np.float32), kind, _json_meta(meta)
                )
                train_part = None
                if "train_x" in arrays:
                    trx = require_array(arrays, "train_x", where=w, ndim=4)
                    tr_y = require_array(arrays, "train_y", where=w, ndim=4)
                    train_part = opdata.OperatorData(trx.astype(np.float32), tr_y.astype(np.float32), kind)
            except UserError as exc:
                raise UserError(f"{w}: session data: {exc}") from None
            if train_part is not None and (
                train_part.x.shape[1:] != test.x.shape[1:] or train_part.y.shape[1:] != test.y.shape[1:]
            ):
                raise UserError(f"{w}: arrays train_x/train_y do not match test_x/test_y in channels or grid")
            staged.update(data=test, train=train_part, source=source)
        self._check_selection(staged["params"], test, where=f"{w}.params.")
        if "prediction" in arrays:
            if test is None:
                raise UserError(f"{w}: the session has a prediction but no data")
            pred = require_array(arrays, "prediction", where=w, shape=test.y.shape)
            staged["prediction"] = pred.astype(np.float32)
        if cfg is not None:
            if test is not None and (cfg.in_channels, cfg.out_channels) != (test.x.shape[1], test.y.shape[1]):
                raise UserError(
                    f"{w}.network: {cfg.in_channels} -> {cfg.out_channels} channels do not fit the data"
                )
            weights = {k[len(WEIGHT) :]: a for k, a in arrays.items() if k.startswith(WEIGHT)}
            net = network_from_weights(cfg, weights, w)
            staged["network"], staged["weights"] = cfg, weights_copy(net)
        return staged

    @staticmethod
    def _check_history(hist: Any) -> list[EpochStats]:
        if not isinstance(hist, list):
            raise UserError(f"operator.history must be a list, got {hist!r:.60}")
        names = [f.name for f in fields(EpochStats)]
        out = []
        for i, h in enumerate(hist):
            if not isinstance(h, dict) or sorted(h) != sorted(names):
                raise UserError(f"operator.history[{i}] must have the keys {', '.join(names)}; got {h!r:.80}")
            for k, v in h.items():
                if isinstance(v, bool) or not isinstance(v, int | float | None):
                    raise UserError(f"operator.history[{i}].{k} must be a number or null, got {v!r}")
            out.append(EpochStats(**{k: math.nan if v is None else v for k, v in h.items()}))
        return out

    def apply_state(self, staged: dict) -> None:
        super().apply_state(staged)
        self.history = staged["history"]
        if staged["keep"]:
            self.events.emit("history")
            return
        test = staged["data"]
        if test is None:
            self.data = self.train_data = self.test_data = None
        else:
            train_part = staged["train"]
            self.data = (
                test
                if train_part is None
                else opdata.OperatorData(
                    np.concatenate([train_part.x, test.x]),
                    np.concatenate([train_part.y, test.y]),
                    test.kind,
                    test.meta,
                )
            )
            self._set_split(train_part, test)
        self.source = staged["source"]
        self.prediction = staged["prediction"]
        self.net_config, self.weights = staged["network"], staged["weights"]
        self.rollout, self.zeroshot = None, None
        self.mark_stale("")
        for event in ("data", "history", "sample", "prediction", "rollout", "zeroshot"):
            self.events.emit(event)
