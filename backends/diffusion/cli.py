"""Headless diffusion sampler: ``visual-lab run diffusion --dataset swissroll --model edm --train-steps 3000
--sampler heun --nfe 35 --count 5000 --seed 0 --out samples.npz [--trajectory]``.

Writes ``samples (count, dim)`` (and ``traj (nfe + 1, count, dim)`` with ``--trajectory``) and prints the sliced
Wasserstein, MMD and exact W2 distances to the data, each next to its noise floor.
"""

from __future__ import annotations

import numpy as np
import torch

from backends.common import UserError, drain, require
from backends.options import ArgParser, Bound, check, check_device, require_memory
from backends.safeio import check_writable, write_npz

from .data import DATASETS, make_dataset
from .lightsb import LightSBConfig, fit_lightsb
from .metrics import metric_with_floor, mmd_rbf, sliced_wasserstein, w2_exact
from .models import FAMILIES, PATHS, Interpolant, TrainConfig, load_trained, train
from .pipeline import ALL_SAMPLERS, LABELS, Generative, SampleConfig, exact_model, from_trained, generate


def _parser() -> ArgParser:
    p = ArgParser(
        prog="visual-lab run diffusion",
        description="Train a small generative model (or use the exact one) and sample.",
    )
    p.add_argument("--dataset", default="swissroll", choices=DATASETS)
    p.add_argument("--csv", default="", help="CSV file of points for --dataset csv")
    p.add_argument("--model", default="edm", choices=FAMILIES)
    p.add_argument("--train-steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--sampler", default="heun", choices=ALL_SAMPLERS)
    p.add_argument("--nfe", type=int, default=35)
    p.add_argument("--count", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--D", type=float, default=128.0, help="PFGM++ augmentation dimension (> 0)")
    p.add_argument("--eps", type=float, default=0.5, help="interpolant SDE eps / LightSB entropic eps (> 0)")
    p.add_argument("--path", default="linear", choices=PATHS, help="interpolant path")
    p.add_argument(
        "--gamma", type=float, default=0.0, help="interpolant latent noise a: gamma = sqrt(a t(1-t))"
    )
    p.add_argument("--sigma-max", type=float, default=80.0)
    p.add_argument("--churn", type=float, default=0.0, help="Heun S_churn")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM eta")
    p.add_argument("--weights-in", default="", help="load trained weights instead of training")
    p.add_argument("--weights-out", default="", help="save the trained weights here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="", help="NPZ file for the samples")
    p.add_argument("--trajectory", action="store_true", help="also store traj (nfe+1, count, dim)")
    p.add_argument("--quiet", action="store_true")
    return p


# The documented range of every numeric option (docs/options.md is generated from this table).
BOUNDS = {
    "train_steps": Bound(
        1, 1_000_000, note="optimiser steps; about 1 ms each at the default size on a CPU core"
    ),
    "batch": Bound(2, 65_536),
    "lr": Bound(0, 1.0, open_lo=True),
    "hidden": Bound(4, 4096, note="MLP width"),
    "nfe": Bound(1, 10_000, note="network evaluations per sample"),
    "count": Bound(1, 2_000_000, note="samples drawn"),
    "seed": Bound(0, 2**63 - 1),
    "D": Bound(0, 1e6, open_lo=True, note="PFGM++ D (D -> infinity is EDM)"),
    "eps": Bound(0, 100, open_lo=True),
    "gamma": Bound(0, 100),
    "sigma_max": Bound(0.01, 1e4, note="above sigma_min = 0.002"),
    "churn": Bound(0, 1000),
    "eta": Bound(0, 10),
}
MEMORY = (
    "samples take `count x dim x 4` bytes; `--trajectory` keeps every step, `(nfe + 1) x count x dim x 4` bytes "
    "(e.g. 35 steps x 5,000 2-D samples = 1.4 MB, 10,000 x 2,000,000 = 160 GB: refused when it exceeds the "
    "free memory); the exact GMM model evaluates `count x components` responsibilities per step; training "
    "holds `batch x hidden` activations per layer (a few MB at the defaults)."
)


def estimate_bytes(a, dim: int) -> int:
    """Peak memory of the sampling stage: samples, a few working copies, the stored trajectory."""
    per = a.count * dim * 4
    work = 8 * per + a.count * 64 * 8  # sampler temporaries (float64 in places) + mixture responsibilities
    return work + ((a.nfe + 1) * per if a.trajectory else 0)


BUILTIN_DIMS = {name: (64 if name == "digits" else 2) for name in DATASETS if name not in ("csv", "points")}


def _check_memory(a, dim: int) -> None:
    require_memory(
        estimate_bytes(a, dim),
        f"sampling {a.count:,} {dim}-D points with {a.nfe} steps"
        + (" and the whole trajectory" if a.trajectory else ""),
        "lower --count or --nfe" + (", or drop --trajectory" if a.trajectory else ""),
    )


def build_model(a, dataset) -> Generative:
    if a.model == "exact":
        return exact_model(dataset, Interpolant(a.path, a.gamma))
    if a.model == "lightsb":
        cfg = LightSBConfig(eps=a.eps, steps=a.train_steps, batch=a.batch, seed=a.seed)
        model, losses = drain(
            fit_lightsb(
                lambda n, rng: rng.standard_normal((n, dataset.dim)), dataset.sample, dataset.dim, cfg
            )
        )
        return Generative(
            "lightsb",
            dataset.dim,
            lsb=model,
            source=lambda n, rng: rng.standard_normal((n, dataset.dim)),
            losses=losses,
        )
    if a.weights_in:
        tr = load_trained(a.weights_in)
        require(tr.family == a.model, f"{a.weights_in} holds a {tr.family!r} model, not {a.model!r}")
        require(
            tr.dim == dataset.dim, f"{a.weights_in} is for {tr.dim}-D data, the dataset is {dataset.dim}-D"
        )
        return from_trained(tr)
    cfg = TrainConfig(
        family=a.model,
        steps=a.train_steps,
        batch=a.batch,
        lr=a.lr,
        hidden=a.hidden,
        D=a.D,
        path=a.path,
        gamma=a.gamma,
        seed=a.seed,
    )
    tr = drain(train(dataset, cfg, a.device))
    if a.weights_out:
        tr.save(a.weights_out)
    return from_trained(tr)


def main(argv: list[str]) -> int:
    parser = _parser()
    a = check(parser.parse_args(argv), BOUNDS, parser)
    check_device(a.device)
    ins = [x for x in (a.csv, a.weights_in) if x]
    out = check_writable(a.out, suffixes=(".npz",), inputs=ins, what="--out") if a.out else None
    if a.weights_out:
        check_writable(a.weights_out, suffixes=(".pt",), inputs=ins, what="--weights-out")
    torch.manual_seed(a.seed)
    if a.dataset in BUILTIN_DIMS:  # refuse an absurd job before loading anything
        _check_memory(a, BUILTIN_DIMS[a.dataset])
    dataset = make_dataset(a.dataset, csv_path=a.csv or None)
    _check_memory(a, dataset.dim)

    cfg = SampleConfig(
        sampler=a.sampler,
        nfe=a.nfe,
        count=a.count,
        seed=a.seed,
        sigma_max=a.sigma_max,
        churn=a.churn,
        eta=a.eta,
        eps=a.eps,
    )
    model = build_model(a, dataset)
    if cfg.sampler not in model.samplers:
        raise UserError(
            f"sampler {cfg.sampler!r} does not apply to model {a.model!r}; use one of "
            f"{', '.join(model.samplers)}"
        )
    res = generate(model, cfg, return_trajectory=a.trajectory, device=a.device)
    if out is not None:
        arrays = {"samples": res.samples.astype(np.float32), "nfe": np.int64(res.nfe), "bad": res.bad}
        if res.trajectory is not None:
            arrays["traj"] = res.trajectory.astype(np.float32)
        write_npz(out, **arrays)

    def truth(n, seed):
        return dataset.sample(n, np.random.default_rng(seed))

    good = res.samples[~res.bad]
    if len(good) < 2:
        line = f"all {len(res.samples)} samples are NaN/inf: {res.message}"
    else:
        sw, swf = metric_with_floor(good, truth, sliced_wasserstein, repeats=3)
        mmd, mmdf = metric_with_floor(good[:2000], truth, mmd_rbf, repeats=2)
        m = min(len(good), 1000)
        w2, w2f = metric_with_floor(good[:m], truth, w2_exact, repeats=1)
        line = (
            f"{a.dataset} {a.model} {LABELS[cfg.sampler]} NFE {res.nfe}, {len(res.samples)} samples: "
            f"SW2 {sw:.4g} (noise floor {swf:.4g}, x{sw / swf:.2f}); MMD^2 {mmd:.3g} (floor {mmdf:.3g}); "
            f"W2[{m}] {w2:.4g} (floor {w2f:.4g})"
        )
        if res.message:
            line += f"; WARNING {res.message}"
    if out is not None:
        line += f" -> {out}"
    if not a.quiet:
        print(line)
    return 0
