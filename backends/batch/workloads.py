"""The workloads a study can run. Each is a frozen dataclass: its fields are the study's parameters, its
``run_chunk(index, seed)`` a pure function that calls the domain backend (no physics is re-implemented here).

* :class:`EscapeMap` (``escape-map``): a grid of three-body systems cut into tiles, each tile one
  :func:`backends.nbody.ensemble.escape_map` call (the compiled IAS15 ensemble, one thread per chunk).
* :class:`DarcyDataset` (``pde-dataset --model darcy``): FNO-style Darcy pairs, each chunk a sequence of
  similar systems solved by recycled CG (:func:`backends.pde.darcy.generate_dataset`).

* :class:`NfeSweep` (``nfe-sweep``): diffusion samplers x NFE x seeds on an exact mixture model.
* :class:`TrajectorySweep` (``trajectory-sweep``): EigenTrajectory (or a baseline) over scenes x seeds.
* :class:`DqnEval` (``dqn-eval``): the learned step-size policy against every fixed eta on held-out systems.
* :class:`NavierStokesDataset`, :class:`GrayScottDataset` (``pde-dataset --model navier-stokes|gray-scott``):
  batched spectral / finite-difference simulations (:mod:`backends.pde`), one batch per chunk.

PDE data sets follow one layout (the operator-learning reader relies on it): ``x`` the inputs and ``y`` the
outputs, dims ``('sample', 'y', 'x')``, or ``('sample', 't_in', 'y', 'x')`` / ``('sample', 't_out', 'y', 'x')``
for sequences (time on axis 1), plus extra arrays.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.batch.store import ArraySpec, chunk_slices
from backends.common import UserError, drain

MAX_GRID = 20_000  # per side: 4e8 systems, far beyond a day on 1,000 workers


def _check_int(name: str, value: int, lo: int, hi: int) -> None:
    if not isinstance(value, int) or not lo <= value <= hi:
        raise UserError(f"{name} must be a whole number {lo}..{hi}, got {value!r}")


def _check_range(name: str, r: tuple[float, float]) -> None:
    if len(r) != 2 or not all(math.isfinite(v) for v in r) or not r[0] < r[1] or max(map(abs, r)) > 1e3:
        raise UserError(f"{name} must be MIN,MAX with MIN < MAX, finite, |value| <= 1000, got {r}")


@dataclass(frozen=True)
class EscapeMap:
    """Escape-time map of the Pythagorean-style three-body grid (see :mod:`backends.nbody.ensemble`)."""

    grid: int = 100  # systems per side (x); 1..MAX_GRID
    grid_y: int = 0  # systems along y (0: same as grid)
    t_end: float = 10.0  # (0, 1e4]
    tile: int = 50  # systems per tile side (one chunk = tile x tile systems); 1..2000
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)
    name = "escape-map"

    def __post_init__(self) -> None:
        _check_int("--grid", self.grid, 1, MAX_GRID)
        _check_int("--grid-y", self.grid_y, 0, MAX_GRID)
        _check_int("--tile", self.tile, 1, 2000)
        if not (math.isfinite(self.t_end) and 0 < self.t_end <= 1e4):
            raise UserError(f"--t-end must be in (0, 10000], got {self.t_end}")
        _check_range("--x-range", self.x_range)
        _check_range("--y-range", self.y_range)
        self.ensemble_config(0, 0, 1, 1)  # the ensemble's own validation, before any work

    @property
    def shape(self) -> tuple[int, int]:
        return (self.grid_y or self.grid, self.grid)

    def ensemble_config(self, r0: int, c0: int, r1: int, c1: int):
        """The ensemble of the tile rows r0:r1, columns c0:c1: a sub-rectangle of the full grid."""
        from backends.nbody.ensemble import EnsembleConfig

        ny, nx = self.shape
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        dx, dy = (x1 - x0) / nx, (y1 - y0) / ny
        return EnsembleConfig(
            nx=c1 - c0,
            ny=r1 - r0,
            x_range=(x0 + c0 * dx, x0 + c1 * dx),
            y_range=(y0 + r0 * dy, y0 + r1 * dy),
            t_end=float(self.t_end),
            threads=1,  # Dask workers are the parallelism; one numba thread each keeps chunks independent
        )

    def params(self) -> dict:
        p = dataclasses.asdict(self)
        p["x_range"], p["y_range"] = list(self.x_range), list(self.y_range)
        ens = dataclasses.asdict(self.ensemble_config(0, 0, 1, 1))
        p["ensemble"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in ens.items()
                         if k not in ("nx", "ny", "x_range", "y_range")}  # fmt: skip
        return p

    def outputs(self) -> list[ArraySpec]:
        ny, nx = self.shape
        t = (min(self.tile, ny), min(self.tile, nx))
        grid = [
            ("escape_time", "float64", float("nan")),
            ("escaper", "int8", -1),
            ("status", "int8", 0),
            ("energy_error", "float64", float("nan")),
            ("steps", "int32", 0),
            ("redone", "bool", False),
            ("r_min", "float64", float("nan")),
        ]
        out = [ArraySpec(n, ("y", "x"), (ny, nx), t, d, f) for n, d, f in grid]
        out += [
            ArraySpec("x", ("x",), (nx,), (t[1],), "float64", float("nan")),
            ArraySpec("y", ("y",), (ny,), (t[0],), "float64", float("nan")),
        ]
        return out

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        ny, nx = self.shape
        out = []
        for ry, rx in chunk_slices((ny, nx), (min(self.tile, ny), min(self.tile, nx))):
            reg = {s.name: (ry, rx) for s in self.outputs() if s.dims == ("y", "x")}
            reg.update(x=(rx,), y=(ry,))
            out.append(reg)
        return out

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        from backends.nbody.ensemble import escape_map

        ry, rx = self.regions()[index]["status"]
        res = drain(escape_map(self.ensemble_config(ry.start, rx.start, ry.stop, rx.stop)))
        arrays = {
            "escape_time": res.escape_time,
            "escaper": res.escaper,
            "status": res.status,
            "energy_error": res.energy_error,
            "steps": res.steps,
            "redone": res.redone,
            "r_min": res.r_min if res.r_min is not None else np.full(res.status.shape, np.nan),
            "x": res.x,
            "y": res.y,
        }
        dtypes = {s.name: s.dtype for s in self.outputs()}
        return {k: np.asarray(v).astype(dtypes[k]) for k, v in arrays.items()}


@dataclass(frozen=True)
class DarcyDataset:
    """FNO Darcy pairs (a -> u) on an n x n grid; a chunk is ``chunk`` similar systems solved in sequence with
    Krylov recycling (the recycle space lives inside the chunk, so chunks stay independent)."""

    count: int = 100  # samples, 1..10^7
    n: int = 64  # grid nodes per side, 16..1024
    chunk: int = 32  # samples per chunk, 1..10^4
    tol: float = 1e-10  # relative residual, (0, 1e-2]
    recycle_k: int = 16
    recycle_m: int = 32
    name = "pde-dataset"
    model = "darcy"

    def __post_init__(self) -> None:
        _check_int("--count", self.count, 1, 10_000_000)
        _check_int("--n", self.n, 16, 1024)
        _check_int("--chunk", self.chunk, 1, 10_000)
        if not (math.isfinite(self.tol) and 0 < self.tol <= 1e-2):
            raise UserError(f"--tol must be in (0, 0.01], got {self.tol}")
        _check_int("--recycle-k", self.recycle_k, 0, 200)
        _check_int("--recycle-m", self.recycle_m, 0, 400)

    def params(self) -> dict:
        return {"model": self.model, **dataclasses.asdict(self)}

    def outputs(self) -> list[ArraySpec]:
        c, n = min(self.chunk, self.count), self.n
        field = ("sample", "y", "x")
        return [
            ArraySpec("x", field, (self.count, n, n), (c, n, n), "float64", 0.0),
            ArraySpec("y", field, (self.count, n, n), (c, n, n), "float64", 0.0),
            ArraySpec("iterations", ("sample",), (self.count,), (c,), "int32", 0),
        ]

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        return [
            {"x": (s, slice(None), slice(None)), "y": (s, slice(None), slice(None)), "iterations": (s,)}
            for (s,) in chunk_slices((self.count,), (min(self.chunk, self.count),))
        ]

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        from backends.pde.darcy import DarcyConfig, generate_dataset

        (s,) = self.regions()[index]["iterations"]
        cfg = DarcyConfig(
            n=self.n, count=s.stop - s.start, seed=seed, tol=self.tol,
            recycle_k=self.recycle_k, recycle_m=self.recycle_m,
        )  # fmt: skip
        out = drain(generate_dataset(cfg, compare=False))
        return {"x": out["a"], "y": out["u"], "iterations": out["iterations"].astype("int32")}


class _SequenceDataset:
    """Shared by the time-dependent PDE data sets: a chunk is one batched simulation of ``chunk`` samples
    (initial conditions from the chunk seed), sampled every ``frame_dt`` from t = 0; x = the first ``t_in``
    frames, y = the next ``t_out``: dims ('sample', 't_in', 'y', 'x') and ('sample', 't_out', 'y', 'x'), time
    on axis 1 (the FNO convention). The two time dimensions are named apart because xarray requires one
    length per dimension name in a data set, and t_in and t_out differ in general."""

    def _check_sequence(self) -> None:
        _check_int("--count", self.count, 1, 10_000_000)
        _check_int("--n", self.n, 16, 1024)
        _check_int("--chunk", self.chunk, 1, 10_000)
        _check_int("--t-in", self.t_in, 1, 1000)
        _check_int("--t-out", self.t_out, 1, 1000)
        if not (math.isfinite(self.frame_dt) and 0 < self.frame_dt <= 1e4):
            raise UserError(f"--frame-dt must be in (0, 10000], got {self.frame_dt}")

    def params(self) -> dict:
        return {"model": self.model, **dataclasses.asdict(self)}

    def outputs(self) -> list[ArraySpec]:
        c, n = min(self.chunk, self.count), self.n
        return [
            ArraySpec("x", ("sample", "t_in", "y", "x"), (self.count, self.t_in, n, n), (c, self.t_in, n, n),
                      "float64", 0.0),
            ArraySpec("y", ("sample", "t_out", "y", "x"), (self.count, self.t_out, n, n),
                      (c, self.t_out, n, n), "float64", 0.0),
        ]  # fmt: skip

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        full = (slice(None),) * 3
        return [
            {"x": (s, *full), "y": (s, *full)}
            for (s,) in chunk_slices((self.count,), (min(self.chunk, self.count),))
        ]

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        import torch

        (s, *_) = self.regions()[index]["x"]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the same arithmetic in every process, whatever its thread count
        try:
            sim, read = self._simulation(s.stop - s.start, seed)
            frames = [read(sim)]
            for k in range(1, self.t_in + self.t_out):
                sim.advance_to(k * self.frame_dt)
                frames.append(read(sim))
        finally:
            torch.set_num_threads(threads)
        seq = np.stack(frames, axis=1)  # (samples, t, n, n)
        return {"x": seq[:, : self.t_in], "y": seq[:, self.t_in :]}


@dataclass(frozen=True)
class NavierStokesDataset(_SequenceDataset):
    """2D Navier-Stokes vorticity on the unit torus with the FNO forcing, GRF initial vorticity (FNO data)."""

    count: int = 100
    n: int = 64
    chunk: int = 16
    nu: float = 1e-3  # viscosity, (0, 1]
    dt: float = 1e-3  # time step, (0, frame_dt]
    frame_dt: float = 1.0  # time between frames (FNO: unit time)
    t_in: int = 10
    t_out: int = 10
    name = "pde-dataset"
    model = "navier-stokes"

    def __post_init__(self) -> None:
        self._check_sequence()
        if not (math.isfinite(self.nu) and 0 < self.nu <= 1):
            raise UserError(f"--nu must be in (0, 1], got {self.nu}")
        if not (math.isfinite(self.dt) and 0 < self.dt <= self.frame_dt):
            raise UserError(f"--dt must be in (0, --frame-dt = {self.frame_dt}], got {self.dt}")

    def _simulation(self, batch: int, seed: int):
        from backends.pde.ns import NavierStokes2D, NSConfig

        cfg = NSConfig(n=self.n, nu=self.nu, dt=self.dt, batch=batch, seed=seed, dtype="float64", init="grf")
        return NavierStokes2D(cfg), lambda sim: sim.vorticity().detach().cpu().numpy().copy()


@dataclass(frozen=True)
class GrayScottDataset(_SequenceDataset):
    """Gray-Scott reaction-diffusion, v field, random square seeds (Pearson 1993 presets)."""

    count: int = 100
    n: int = 64
    chunk: int = 16
    preset: str = "coral"
    frame_dt: float = 250.0  # time between frames (grid units, dt = 1)
    t_in: int = 1
    t_out: int = 4
    name = "pde-dataset"
    model = "gray-scott"

    def __post_init__(self) -> None:
        from backends.pde.fields import GRAY_SCOTT_PRESETS

        self._check_sequence()
        if self.preset not in GRAY_SCOTT_PRESETS:
            raise UserError(f"--preset must be one of {', '.join(GRAY_SCOTT_PRESETS)}, got {self.preset!r}")

    def _simulation(self, batch: int, seed: int):
        from backends.pde.fields import GrayScott, GrayScottConfig

        cfg = GrayScottConfig(n=self.n, preset=self.preset, batch=batch, seed=seed, dtype="float64")
        return GrayScott(cfg), lambda sim: sim.v.detach().cpu().numpy().copy()


def _sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).expanduser().read_bytes()).hexdigest()


def _pinned_file(option: str, path: str, sha: str) -> str:
    """The SHA-256 of a file a study depends on; refused when it is missing or changed since ``sha``."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{option} {p}: no such file")
    now = _sha256(p)
    if sha and sha != now:
        raise UserError(
            f"{option} {p}: changed since the study began (SHA-256 {now[:12]}..., was {sha[:12]}...)"
        )
    return now


# NfeSweep parameters added after its first stores: recorded only when set (older stores then still resume)
NFE_EXTENSIONS = {"weights": "", "weights_sha256": "", "csv": "", "csv_sha256": "", "churn": 0.0, "eps": 0.5,
                  "path": "linear", "gamma": 0.0}  # fmt: skip


@dataclass(frozen=True)
class NfeSweep:
    """Diffusion samplers x NFE x seeds: sliced W2 to fresh ground-truth sets and its noise floor, as in
    :func:`backends.diffusion.pipeline.nfe_curves`. One chunk per (sampler, NFE); the repetitions use seeds
    ``seed + k``, the same for every sampler (paired comparisons).

    The model is the exact mixture denoiser of ``dataset`` (no training, so the error is the sampler's own), or,
    with ``weights``, a trained model saved by the diffusion panel or ``Trained.save`` (EDM, PFGM++,
    interpolant): its SHA-256 is a parameter, so a store always names the weights it measured, and the chunks
    (which load the file) refuse a changed file. ``csv`` is the point file of dataset 'csv'. The extension
    parameters (weights, csv, churn, eps, path, gamma) are recorded only when set, so older stores resume."""

    samplers: tuple[str, ...] = ("euler", "heun", "ddim", "dpmpp2m", "em")
    nfes: tuple[int, ...] = (3, 5, 9, 17, 33, 65)
    seeds: int = 4  # repetitions, 1..1000
    count: int = 2000  # samples per run, 10..10^6
    dataset: str = "gmm"  # a known mixture (gmm, 8gaussians) for the exact model; any dataset with weights
    seed: int = 0
    weights: str = ""  # a trained model's .pt file ('' = the exact model)
    weights_sha256: str = ""  # filled in from the file; a store's value must match the file on resume
    csv: str = ""  # points of dataset 'csv'
    csv_sha256: str = ""
    churn: float = 0.0  # Heun S_churn, [0, 100]
    eps: float = 0.5  # interpolant SDE eps(t) = eps (1 - t), [1e-4, 100]
    path: str = "linear"  # interpolant path of the exact model's ode/sde samplers
    gamma: float = 0.0  # interpolant gamma, [0, 10]
    name = "nfe-sweep"

    def __post_init__(self) -> None:
        from backends.diffusion.data import DATASETS
        from backends.diffusion.models import PATHS

        _check_int("--seeds", self.seeds, 1, 1000)
        _check_int("--count", self.count, 10, 1_000_000)
        _check_int("--seed", self.seed, 0, 2**32 - 1)
        if not self.nfes or any(not isinstance(k, int) or not 1 <= k <= 1000 for k in self.nfes):
            raise UserError(f"--nfe values must be whole numbers 1..1000, got {list(self.nfes)}")
        for opt, v, lo, hi in (("--churn", self.churn, 0.0, 100.0), ("--eps", self.eps, 1e-4, 100.0),
                               ("--gamma", self.gamma, 0.0, 10.0)):  # fmt: skip
            if not (isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi):
                raise UserError(f"{opt} must be in [{lo:g}, {hi:g}], got {v!r}")
        if self.path not in PATHS:
            raise UserError(f"--path must be one of {', '.join(PATHS)}, got {self.path!r}")
        allowed = DATASETS if self.weights else ("gmm", "8gaussians")
        if self.dataset not in allowed or self.dataset == "points":
            what = (
                "a dataset name other than 'points'"
                if self.weights
                else "gmm or 8gaussians (a known mixture)"
            )
            raise UserError(f"--dataset must be {what}, got {self.dataset!r}")
        if (self.dataset == "csv") != bool(self.csv):
            raise UserError("--csv FILE goes with --dataset csv (and only with it)")
        if self.csv:
            object.__setattr__(self, "csv_sha256", _pinned_file("--csv", self.csv, self.csv_sha256))
        if self.weights:
            object.__setattr__(
                self, "weights_sha256", _pinned_file("--weights", self.weights, self.weights_sha256)
            )
        ok = self.model_samplers()
        bad = [x for x in self.samplers if x not in ok]
        if bad or not self.samplers or len(set(self.samplers)) != len(self.samplers):
            raise UserError(
                f"--samplers must be distinct names from {', '.join(ok)}, got {list(self.samplers)}"
            )

    def model_samplers(self) -> tuple[str, ...]:
        """The samplers that apply to the model (the family's, from the weights file's header)."""
        from backends.diffusion.pipeline import FAMILY_SAMPLERS

        return FAMILY_SAMPLERS[self._trained().family if self.weights else "exact"]

    def _trained(self):
        from backends.diffusion.models import load_trained

        return load_trained(self.weights)

    def model(self):
        """The model the chunks sample (weights loaded with ``weights_only=True``) and the dataset."""
        from backends.diffusion.data import make_dataset
        from backends.diffusion.models import Interpolant
        from backends.diffusion.pipeline import exact_model, from_trained

        data = make_dataset(self.dataset, csv_path=self.csv or None)
        if not self.weights:
            return exact_model(data, Interpolant(self.path, self.gamma)), data
        _pinned_file("--weights", self.weights, self.weights_sha256)
        gen = from_trained(self._trained())
        if gen.dim != data.dim:
            raise UserError(
                f"--weights {self.weights}: a {gen.dim}-D model, but {self.dataset} is {data.dim}-D"
            )
        return gen, data

    def params(self) -> dict:
        p = dataclasses.asdict(self)
        p["samplers"], p["nfes"] = list(self.samplers), list(self.nfes)
        for k, default in NFE_EXTENSIONS.items():
            if p[k] == default:
                del p[k]
        return p

    def outputs(self) -> list[ArraySpec]:
        shape = (len(self.samplers), len(self.nfes), self.seeds)
        dims = ("sampler", "nfe", "rep")
        return [
            ArraySpec("sw", dims, shape, (1, 1, self.seeds), "float64", float("nan")),
            ArraySpec("floor", dims, shape, (1, 1, self.seeds), "float64", float("nan")),
            ArraySpec("nfe_used", ("sampler", "nfe"), shape[:2], (1, 1), "int32", 0),
        ]

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        out = []
        for i in range(len(self.samplers)):
            for j in range(len(self.nfes)):
                si, sj = slice(i, i + 1), slice(j, j + 1)
                out.append(
                    {"sw": (si, sj, slice(None)), "floor": (si, sj, slice(None)), "nfe_used": (si, sj)}
                )
        return out

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        import torch

        from backends.diffusion.metrics import metric_with_floor, sliced_wasserstein
        from backends.diffusion.pipeline import SampleConfig, generate, truth_sampler

        i, j = divmod(index, len(self.nfes))
        sw, floor, used = np.full(self.seeds, np.nan), np.full(self.seeds, np.nan), 0
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model, data = self.model()
            truth = truth_sampler(data)
            for k in range(self.seeds):
                cfg = SampleConfig(
                    sampler=self.samplers[i], nfe=self.nfes[j], count=self.count, seed=self.seed + k,
                    churn=self.churn, eps=self.eps,
                )  # fmt: skip
                res = generate(model, cfg)
                used = res.nfe
                if res.ok:
                    sw[k], floor[k] = metric_with_floor(res.samples, truth, sliced_wasserstein, repeats=3)
                else:
                    sw[k] = np.inf
        finally:
            torch.set_num_threads(threads)
        return {"sw": sw[None, None], "floor": floor[None, None], "nfe_used": np.array([[used]], "int32")}


@dataclass(frozen=True)
class DqnEval:
    """The learned (DQN) step-size policy against every fixed eta on held-out random three-body systems
    (:func:`backends.nbody.learned.evaluate_runs`). One chunk per ``chunk`` systems; row 0 is the policy,
    rows 1..10 the fixed etas (``params['steppings']``)."""

    systems: int = 100  # held-out systems, 1..10^6
    first_seed: int = 10**9  # their seeds: first_seed + i (>= 1e9: never seen in training)
    chunk: int = 10
    policy: str = ""  # policy file ('' = the bundled policy)
    lam: float = 0.0  # lambda for a lambda-conditioned policy (0: the one stored with it)
    name = "dqn-eval"

    def __post_init__(self) -> None:
        _check_int("--systems", self.systems, 1, 1_000_000)
        _check_int("--first-seed", self.first_seed, 0, 2**40)
        _check_int("--chunk", self.chunk, 1, 100_000)
        if not (math.isfinite(self.lam) and self.lam >= 0):
            raise UserError(f"--lam must be >= 0, got {self.lam}")
        if self.policy and not Path(self.policy).is_file():
            raise UserError(f"--policy {self.policy}: no such file")

    def _policy_file(self) -> Path:
        from backends.nbody.learned import DEFAULT_POLICY

        return Path(self.policy) if self.policy else DEFAULT_POLICY

    def params(self) -> dict:
        import hashlib

        from backends.nbody.learned import ACTIONS

        p = dataclasses.asdict(self)
        p["policy_sha256"] = hashlib.sha256(self._policy_file().read_bytes()).hexdigest()
        p["steppings"] = ["policy"] + [f"eta={e:.6g}" for e in ACTIONS]
        return p

    def outputs(self) -> list[ArraySpec]:
        from backends.nbody.learned import ACTIONS

        rows, c = len(ACTIONS) + 1, min(self.chunk, self.systems)
        dims = ("stepping", "system")
        return [
            ArraySpec("de", dims, (rows, self.systems), (rows, c), "float64", float("nan")),
            ArraySpec("evals", dims, (rows, self.systems), (rows, c), "int64", 0),
            ArraySpec("blowups", ("stepping", "chunk"), (rows, len(self.regions())), (rows, 1), "int32", 0),
        ]

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        out = []
        for k, (s,) in enumerate(chunk_slices((self.systems,), (min(self.chunk, self.systems),))):
            out.append(
                {"de": (slice(None), s), "evals": (slice(None), s), "blowups": (slice(None), slice(k, k + 1))}
            )
        return out

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        import torch

        from backends.nbody.learned import ACTIONS, EnvConfig, evaluate_runs, load_policy

        (_, s) = self.regions()[index]["de"]
        seeds = range(self.first_seed + s.start, self.first_seed + s.stop)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            pol = load_policy(self._policy_file())
            if self.lam > 0:
                pol.lam = self.lam
            env = EnvConfig(features=pol.features)
            runs = [evaluate_runs(pol, seeds, env)] + [
                evaluate_runs(None, seeds, env, fixed=k) for k in range(len(ACTIONS))
            ]
        finally:
            torch.set_num_threads(threads)
        return {
            "de": np.stack([r["de"] for r in runs]).astype("float64"),
            "evals": np.stack([r["evals"] for r in runs]).astype("int64"),
            "blowups": np.array([[r["blown"]] for r in runs], "int32"),
        }


TRAJECTORY_EXTENSIONS = {"k": 6, "anchors": 20}


@dataclass(frozen=True)
class TrajectorySweep:
    """A trajectory model trained (EigenTrajectory) or applied (constant-velocity baselines) on scenes x seeds:
    one chunk per (scene, seed), each :func:`backends.trajectory.cli.evaluate_scene` on the scene's test split.
    Seed k of the sweep is training seed ``seed + k``."""

    data: str = ""  # ETH/UCY-layout folder ('' = the bundled synthetic scene)
    scenes: tuple[str, ...] = ()  # () = every scene found in data
    seeds: int = 3  # 1..100
    model: str = "eigentrajectory"  # eigentrajectory | cv | cv20
    epochs: int = 40  # 1..1000
    seed: int = 0
    k: int = 6  # EigenTrajectory rank (eigen-descriptors), 1..16
    anchors: int = 20  # samples per agent (best-of-N metrics), 1..100
    name = "trajectory-sweep"

    def __post_init__(self) -> None:
        from backends.trajectory.cli import MODELS
        from backends.trajectory.data import available_scenes

        if self.model not in MODELS:
            raise UserError(f"--model must be one of {', '.join(MODELS)}, got {self.model!r}")
        _check_int("--seeds", self.seeds, 1, 100)
        _check_int("--epochs", self.epochs, 1, 1000)
        _check_int("--seed", self.seed, 0, 2**32 - 1)
        _check_int("--k", self.k, 1, 16)
        _check_int("--anchors", self.anchors, 1, 100)
        root = self.root()
        if not root.is_dir():
            raise UserError(f"--data {root}: no such folder")
        found = available_scenes(root)
        missing = [x for x in self.scenes if x not in found]
        if missing or not (self.scenes or found):
            raise UserError(
                f"--scenes {','.join(missing) or '(all)'}: not in {root} (found: {', '.join(found)})"
            )

    def root(self) -> Path:
        from backends.trajectory.cli import DEFAULT_DATA

        return Path(self.data).expanduser() if self.data else DEFAULT_DATA

    def scene_list(self) -> tuple[str, ...]:
        from backends.trajectory.data import available_scenes

        return self.scenes or tuple(available_scenes(self.root()))

    def params(self) -> dict:
        p = dataclasses.asdict(self)
        p["scenes"] = list(self.scene_list())
        p["data"] = str(self.root())
        for key, default in TRAJECTORY_EXTENSIONS.items():  # added later: recorded only when set
            if p[key] == default:
                del p[key]
        return p

    def outputs(self) -> list[ArraySpec]:
        shape = (len(self.scene_list()), self.seeds)
        return [
            ArraySpec(m, ("scene", "seed"), shape, (1, 1), "float64", float("nan"))
            for m in ("minADE", "minFDE", "ADE", "FDE")
        ]

    def regions(self) -> list[dict[str, tuple[slice, ...]]]:
        return [
            {m: (slice(i, i + 1), slice(k, k + 1)) for m in ("minADE", "minFDE", "ADE", "FDE")}
            for i in range(len(self.scene_list()))
            for k in range(self.seeds)
        ]

    def run_chunk(self, index: int, seed: int) -> dict[str, np.ndarray]:
        import torch

        from backends.trajectory.cli import evaluate_scene

        i, k = divmod(index, self.seeds)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # the same arithmetic in every process (a GUI thread or a Dask worker)
        try:
            res = evaluate_scene(
                self.root(),
                self.scene_list()[i],
                self.model,
                epochs=self.epochs,
                seed=self.seed + k,
                k=self.k,
                anchors=self.anchors,
                log=lambda m: None,
            )
        finally:
            torch.set_num_threads(threads)
        return {m: np.array([[res[m]]], "float64") for m in ("minADE", "minFDE", "ADE", "FDE")}


PDE_MODELS = {"darcy": DarcyDataset, "navier-stokes": NavierStokesDataset, "gray-scott": GrayScottDataset}
WORKLOADS = {"escape-map": EscapeMap, "pde-dataset": DarcyDataset, "nfe-sweep": NfeSweep, "dqn-eval": DqnEval,
             "trajectory-sweep": TrajectorySweep}  # fmt: skip


def workload_from_meta(meta: dict):
    """Rebuild the workload a store was made with (``read_meta(path)``): to resume it, or open it in a panel.
    Derived parameters (an escape map's ensemble settings, a policy's hash) are recomputed, and the rebuilt
    workload must describe the same study (``open_store`` compares them)."""
    name, params = meta.get("workload"), dict(meta.get("params") or {})
    cls = PDE_MODELS.get(params.get("model")) if name == "pde-dataset" else WORKLOADS.get(name)
    if cls is None:
        raise UserError(f"unknown workload {name!r} (model {params.get('model')!r}) in the store")
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in params.items() if k in fields})
