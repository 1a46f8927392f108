"""Qt-free state of the operator-learning panel: parameters, data set, network, training history, selection.

Views subscribe with :meth:`OperatorLab.on` to plain-callback events ("params", "data", "history",
"prediction", "sample") and draw only what this object holds. The long work (generation, training,
refinement) runs as backend generators; :func:`train_with_previews` adds the test-set predictions of each
epoch, computed in the worker thread, so the GUI never touches a network that is being trained.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields, replace

import numpy as np

from backends.common import UserError, require
from backends.operator import data as opdata
from backends.operator.models import ModelConfig, OperatorModel
from backends.operator.train import EpochStats, TrainConfig, make_model, predict, rel_l2_per_sample, train

PROBLEMS = ("darcy", "ns")
MODELS = ("fno", "tfno", "lsm", "fno3d")
EVENTS = ("params", "data", "history", "prediction", "sample")
MAX_HISTORY = 100_000


@dataclass(frozen=True)
class OperatorParams:
    problem: str = "darcy"  # darcy | ns
    n: int = 32  # grid points per side, 16..256
    count: int = 64  # samples generated, 2..20000
    seed: int = 0
    nu: float = 1e-3  # ns viscosity
    steps: int = 20  # ns unit-time snapshots (10 given)
    model: str = "fno"
    modes: int = 8
    width: int = 16
    epochs: int = 20
    lr: float = 5e-3
    batch_size: int = 16
    n_test: int = 8
    refine_epochs: int = 3
    sample: int = 0  # shown test sample
    channel: int = 0  # shown output channel (ns: predicted time step)

    def __post_init__(self):
        require(self.problem in PROBLEMS, f"problem must be one of {', '.join(PROBLEMS)}")
        require(self.model in MODELS, f"model must be one of {', '.join(MODELS)}")
        require(16 <= self.n <= 256, f"n must be in 16..256, got {self.n}")
        require(2 <= self.count <= 20_000, f"count must be in 2..20000, got {self.count}")
        require(self.seed >= 0, f"seed must be >= 0, got {self.seed}")
        require(1e-6 <= self.nu <= 1.0, f"nu must be in [1e-6, 1], got {self.nu}")
        require(11 <= self.steps <= 200, f"steps must be in 11..200, got {self.steps}")
        require(1 <= self.modes <= 128 and 8 <= self.width <= 256, "modes must be in 1..128, width in 8..256")
        require(1 <= self.epochs <= 10_000 and 1 <= self.refine_epochs <= 1000, "epochs out of range")
        require(0 < self.lr <= 1, f"lr must be in (0, 1], got {self.lr}")
        require(1 <= self.batch_size <= 1024, f"batch size must be in 1..1024, got {self.batch_size}")
        require(1 <= self.n_test <= 10_000, f"test samples must be in 1..10000, got {self.n_test}")
        require(self.sample >= 0 and self.channel >= 0, "sample and channel must be >= 0")

    def model_config(self, train: opdata.OperatorData) -> ModelConfig:
        kind = self.model
        if kind == "lsm":
            width = max(8, self.width // 8 * 8)
        else:
            width = self.width
        return ModelConfig(
            kind=kind,
            in_channels=train.x.shape[1],
            out_channels=train.y.shape[1],
            modes=self.modes,
            width=width,
        )

    def train_config(self, refine: bool = False) -> TrainConfig:
        if refine:
            return TrainConfig(
                epochs=self.refine_epochs, batch_size=self.batch_size, lr=1e-3, schedule="none"
            )
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr)


@dataclass(frozen=True)
class Preview:
    """One epoch's statistics and the test-set predictions after it (copies, safe across threads)."""

    stats: EpochStats
    prediction: np.ndarray


def train_with_previews(
    net: OperatorModel, train_data, test_data, cfg: TrainConfig, refine: bool = False
) -> Iterator[Preview]:
    """The trainer (or the Spectral-Refiner) with the test predictions after every epoch."""
    from backends.operator.refine import refine as refine_gen

    gen = refine_gen(net, train_data, test_data, cfg) if refine else train(net, train_data, test_data, cfg)
    for stats in gen:
        yield Preview(stats, predict(net, test_data.x))
    return net


class OperatorLab:
    """The panel's model. Mutate only through its methods so listeners hear about every change."""

    def __init__(self, params: OperatorParams | None = None):
        self.params = params or OperatorParams()
        self.data: opdata.OperatorData | None = None
        self.train_data: opdata.OperatorData | None = None
        self.test_data: opdata.OperatorData | None = None
        self.net: OperatorModel | None = None
        self.history: list[EpochStats] = []
        self.prediction: np.ndarray | None = None  # (n_test, C_out, n, n)
        self.source = ""  # where the data came from (file name or "generated")
        self._listeners: dict[str, list[Callable[[], None]]] = {e: [] for e in EVENTS}

    # -- events ------------------------------------------------------------------------------------------
    def on(self, event: str, callback: Callable[[], None]) -> None:
        require(event in EVENTS, f"unknown event {event!r}")
        self._listeners[event].append(callback)

    def _emit(self, event: str) -> None:
        for cb in list(self._listeners[event]):
            cb()

    # -- parameters --------------------------------------------------------------------------------------
    def set_params(self, **changes) -> None:
        """Validate the whole new parameter set, then apply it (all or nothing)."""
        new = replace(self.params, **changes)
        old = self.params
        self.params = new
        self._emit("params")
        if (new.sample, new.channel) != (old.sample, old.channel):
            self._emit("sample")

    def select(self, sample: int | None = None, channel: int | None = None) -> None:
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
        require(n_test >= 1, "a data set needs at least 2 samples (train and test)")
        self.data, self.source = ds, source
        self.train_data = ds.subset(slice(0, len(ds) - n_test))
        self.test_data = ds.subset(slice(len(ds) - n_test, len(ds)))
        self.net, self.history, self.prediction = None, [], None
        self._emit("data")
        self._emit("history")
        self.select(0, 0)
        self._emit("prediction")

    def new_network(self) -> OperatorModel:
        require(self.train_data is not None, "generate or open a data set first")
        cfg = self.params.model_config(self.train_data)
        if cfg.kind == "fno3d" and self.train_data.kind == "darcy":
            raise UserError(
                "fno3d is the spatiotemporal FNO for Navier-Stokes sequences: pick fno, tfno or lsm"
            )
        self.net = make_model(cfg, self.train_data, self.params.seed)
        self.history = []
        self._emit("history")
        return self.net

    def set_network(self, net: OperatorModel) -> None:
        require(self.test_data is not None, "open a data set before loading weights")
        require(
            net.cfg.in_channels == self.test_data.x.shape[1]
            and net.cfg.out_channels == self.test_data.y.shape[1],
            "these weights do not fit the data set's channels",
        )
        self.net, self.history = net, []
        self._emit("history")
        self.set_prediction(predict(net, self.test_data.x))

    # -- training ----------------------------------------------------------------------------------------
    def add_preview(self, p: Preview) -> None:
        self.history.append(p.stats)
        del self.history[:-MAX_HISTORY]
        self._emit("history")
        self.set_prediction(p.prediction)

    def set_prediction(self, pred: np.ndarray | None) -> None:
        self.prediction = pred
        self._emit("prediction")

    # -- what the views draw -----------------------------------------------------------------------------
    def sample_fields(self) -> dict[str, np.ndarray] | None:
        """input, truth, prediction (or None) and error of the selected test sample and channel."""
        if self.test_data is None:
            return None
        s, c = self.params.sample, self.params.channel
        truth = self.test_data.y[s, c]
        inp = self.test_data.x[s, -1]
        out = {"input": inp, "truth": truth, "prediction": None, "error": None}
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
        if self.data is None:
            return "no data: generate a set or open one (NPZ, neuraloperator .pt, Zarr)"
        s = self.data.summary()
        line = (
            f"{s['kind']} from {self.source}: {s['count']} samples at {s['resolution']}x{s['resolution']} "
            f"({len(self.train_data)} train / {len(self.test_data)} test), {s['in_channels']} -> {s['out_channels']} ch"
        )
        m = self.data.meta
        if "iterations_recycled" in m and "iterations_pcg" in m:
            line += (
                f"; recycled CG {m['iterations_recycled']} iterations in {m['seconds_recycled']:.1f} s vs "
                f"plain PCG {m['iterations_pcg']} in {m['seconds_pcg']:.1f} s "
                f"(x{m['iterations_pcg'] / max(m['iterations_recycled'], 1):.2f} fewer iterations)"
            )
        errs = self.test_errors()
        if errs is not None:
            line += f"; test rel L2 {errs.mean():.4f}"
        return line

    def metrics_columns(self) -> tuple[list[str], list[np.ndarray]]:
        names = [f.name for f in fields(EpochStats)]
        cols = [np.array([getattr(h, n) for h in self.history], dtype=float) for n in names]
        return names, cols

    # -- sessions ----------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"params": asdict(self.params), "history": [h.to_dict() for h in self.history]}

    def restore(self, state: dict) -> None:
        """Validate everything first, then apply (all or nothing). Data and weights are not part of it."""
        if not isinstance(state, dict):
            raise UserError("operator session state must be an object")
        params = state.get("params", {})
        known = {f.name for f in fields(OperatorParams)}
        if not isinstance(params, dict) or set(params) - known:
            raise UserError(f"operator session: unknown parameters {sorted(set(params) - known)}")
        new = replace(OperatorParams(), **params)
        try:
            hist = [EpochStats(**h) for h in state.get("history", [])]
        except TypeError as e:
            raise UserError(f"operator session: bad training history ({e})") from None
        self.params, self.history = new, hist
        self._emit("params")
        self._emit("history")
