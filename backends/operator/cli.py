"""Headless operator learning: ``visual-lab run operator generate|train|eval|refine ...``.

    generate --model darcy|ns --count N --n RES [--seed S] --out data.npz|data.zarr [--scheduler S]
    train    --data DATA --model fno|tfno|lsm|fno3d --epochs E [--modes M] [--width W] [--seed S]
             --save-weights DIR --out metrics.json
    eval     --weights DIR --data DATA --out metrics.json      (rel_l2: mean relative L2 over the test samples)
    refine   --weights DIR --data DATA --epochs E --save-weights DIR2 --out metrics.json
             [--objective residual|hminus1] [--on train|test]

``generate`` into a ``.zarr`` folder runs the batch layer's ``pde-dataset`` study (chunks on Dask, resumable:
the same command on the same store finishes it; see ``visual-lab batch``); into ``.npz``, one in-process run.
DATA is our NPZ (x, y), a neuraloperator ``.pt`` (dict of tensors x, y) or a Zarr store with arrays x, y.
Test samples: ``--test-data FILE``, else the last ``--n-test`` samples (default 10%). ``eval``/``refine`` on the
file a model was trained on reuse its held-out split; on any other file every sample is a test sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from backends.common import Progress, UserError, drain, require


def _progress(gen, quiet: bool):
    """Drive a generator, printing progress / epoch lines on stderr; return its value."""
    last = 0.0

    def report(item) -> None:
        nonlocal last
        if quiet:
            return
        if isinstance(item, Progress):
            now = time.monotonic()
            if now - last > 0.3 or item.fraction == 1.0:
                f = item.fraction or 0.0
                sys.stderr.write(f"\r[{'#' * int(30 * f):<30}] {100 * f:5.1f}% {item.message[:60]:<60}")
                last = now
        else:
            sys.stderr.write(
                f"epoch {item.epoch}/{item.epochs}: loss {item.train_loss:.4g}, test rel L2 {item.test_l2:.4g}, "
                f"{item.seconds:.1f} s\n"
            )

    value = drain(gen, report)
    if not quiet and last > 0:
        sys.stderr.write("\n")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, help="torch threads, 1..64 (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="NPZ, neuraloperator .pt or Zarr store with x and y")
    p.add_argument("--test-data", default=None, help="separate test set (else the last --n-test samples)")
    p.add_argument("--n-test", type=int, default=None, help="test samples held out of --data (default 10%%)")
    p.add_argument("--n-train", type=int, default=None, help="use only the first N training samples, N >= 1")


def _train_args(p: argparse.ArgumentParser, epochs_required: bool = True) -> None:
    p.add_argument("--epochs", type=int, required=epochs_required, default=None, help="1..100000")
    p.add_argument("--batch-size", type=int, default=20, help="1..4096 (default 20)")
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate in (0, 1] (train 1e-3; refine: residual 5e-3, hminus1 1e-3)",
    )
    p.add_argument("--weight-decay", type=float, default=1e-4, help="[0, 1) (default 1e-4)")
    p.add_argument("--schedule", default="cosine", help="cosine | step | none (default cosine)")
    p.add_argument("--step-size", type=int, default=100, help="step schedule: epochs per decay, 1..100000")
    p.add_argument("--gamma", type=float, default=0.5, help="step schedule: decay factor in (0, 1]")
    p.add_argument("--seed", type=int, default=0, help="0..2^63-1")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="visual-lab run operator", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="make a Darcy or Navier-Stokes data set with our solvers")
    g.add_argument("--model", required=True, choices=["darcy", "ns"])
    g.add_argument("--count", type=int, required=True, help="samples, 1..100000")
    g.add_argument("--n", type=int, required=True, help="grid points per side (darcy 16..1024, ns 16..512)")
    g.add_argument("--seed", type=int, default=0, help=">= 0")
    g.add_argument("--tol", type=float, default=1e-8, help="darcy: CG relative residual, (0, 1e-2]")
    g.add_argument(
        "--solver", default=None,
        help="darcy, .npz: pcg (default, fastest here) | recycled (Krylov recycling); .zarr: recycled CG per chunk",
    )  # fmt: skip
    g.add_argument(
        "--compare", action="store_true", help="darcy, .npz: also solve with the other solver, record both"
    )
    g.add_argument("--nu", type=float, default=1e-3, help="ns: viscosity, [1e-6, 1] (FNO: 1e-3, 1e-4, 1e-5)")
    g.add_argument("--steps", type=int, default=None, help="ns: unit-time steps T, 2..200 (FNO: 50/30/20)")
    g.add_argument("--t-in", type=int, default=10, help="ns: given steps (inputs), 1..T-1 (default 10)")
    g.add_argument(
        "--frame-dt", type=float, default=1.0,
        help="ns: time between frames, [0.01, 10] (default 1, the FNO benchmark; the Spectral-Refiner "
             "residual wants frames that resolve the flow, e.g. 0.25)",
    )  # fmt: skip
    g.add_argument(
        "--solve-n", type=int, default=None, help="ns, .npz: solver grid, a multiple of --n (default --n)"
    )
    g.add_argument(
        "--dt", type=float, default=None,
        help="ns: time step, (0, 0.1]; .npz: the largest adaptive step (default 1e-2), .zarr: fixed (1e-3)",
    )  # fmt: skip
    g.add_argument("--batch", type=int, default=32, help="ns, .npz: samples solved together, 1..1024")
    g.add_argument("--device", default="cpu", help="ns, .npz: cpu | cuda | auto")
    g.add_argument(
        "--chunk", type=int, default=None, help=".zarr: samples per chunk, 1..10000 (darcy 32, ns 16)"
    )
    g.add_argument(
        "--scheduler", default="local",
        help=".zarr: none | local[:N] (default local) | tcp://HOST:PORT | slurm:... | pbs:... (as visual-lab batch)",
    )  # fmt: skip
    g.add_argument("--out", required=True, help="output .npz, or a .zarr store (a folder; rerun resumes)")
    _common(g)

    t = sub.add_parser("train", help="train a neural operator")
    _data_args(t)
    t.add_argument("--model", required=True, choices=["fno", "tfno", "lsm", "fno3d"])
    t.add_argument("--modes", type=int, default=12, help="Fourier modes per axis, 1..512 (default 12)")
    t.add_argument("--width", type=int, default=32, help="hidden channels, 2..512 (lsm: divisible by 8)")
    t.add_argument("--layers", type=int, default=4, help="Fourier layers, 1..16 (default 4)")
    t.add_argument("--modes-t", type=int, default=8, help="fno3d: time modes, 1..256 (default 8)")
    t.add_argument("--basis", type=int, default=12, help="lsm: trigonometric basis size, 1..64")
    t.add_argument("--tokens", type=int, default=4, help="lsm: latent tokens per patch, 1..64")
    t.add_argument("--patch", type=int, default=4, help="lsm: patch side, 1..32")
    t.add_argument("--levels", type=int, default=4, help="lsm: U-shaped hierarchy levels, 2..6")
    t.add_argument("--loss", default="l2", help="l2 | h1 | hminus1 (default l2)")
    _train_args(t)
    t.add_argument("--save-weights", required=True, help="checkpoint directory")
    t.add_argument("--out", required=True, help="metrics .json")
    _common(t)

    e = sub.add_parser("eval", help="test error of a checkpoint on a data set (any resolution)")
    e.add_argument("--weights", required=True, help="checkpoint directory")
    _data_args(e)
    e.add_argument("--predictions", default=None, help="also write x, y and predictions to this .npz")
    e.add_argument("--out", required=True, help="metrics .json")
    _common(e)

    r = sub.add_parser("refine", help="Spectral-Refiner: fine-tune the widened last spectral conv with H^-1")
    r.add_argument("--weights", required=True, help="trained checkpoint directory")
    _data_args(r)
    _train_args(r)
    r.add_argument(
        "--objective", default=None, choices=["residual", "hminus1"],
        help="residual: H^-1 norm of the Navier-Stokes residual (the paper's; default for our NS data); "
             "hminus1: H^-1 misfit to the training targets (default otherwise)",
    )  # fmt: skip
    r.add_argument(
        "--on", default="train", choices=["train", "test"],
        help="residual: refine on the training inputs (default) or on the test inputs (no targets are used)",
    )  # fmt: skip
    r.add_argument("--save-weights", required=True, help="refined checkpoint directory")
    r.add_argument("--out", required=True, help="metrics .json")
    _common(r)
    return ap


# -- helpers --------------------------------------------------------------------------------------------------
def _check_out(path: str, suffix: str, option: str = "--out") -> Path:
    p = Path(path)
    require(p.suffix == suffix, f"{option} {p}: must end in {suffix}")
    require(not p.is_dir(), f"{option} {p}: is a directory")
    return p


def _check_not_input(out: Path, args) -> None:
    for name in ("data", "test_data"):
        src = getattr(args, name, None)
        if src and Path(src).resolve() == out.resolve():
            raise UserError(f"--out {out}: would overwrite the input --{name.replace('_', '-')}")


def _split(args, saved: dict | None = None):
    from . import data

    if args.n_train is not None:
        require(args.n_train >= 1, f"--n-train must be >= 1, got {args.n_train}")
    n_test = args.n_test
    if n_test is None and args.test_data is None and saved is not None:
        same = saved.get("data_file") == str(Path(args.data).resolve())
        if not same:  # another file (other resolution, separate test set): every sample is a test sample
            return None, data.load(args.data)
        n_test = saved.get("n_test")
    train, test = data.load_split(args.data, args.test_data, n_test)
    if args.n_train is not None:
        require(
            args.n_train <= len(train), f"--n-train {args.n_train} exceeds the {len(train)} training samples"
        )
        train = train.subset(slice(0, args.n_train))
    return train, test


def _train_config(args, default_lr: float):
    from .train import TrainConfig

    return TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=default_lr if args.lr is None else args.lr,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        step_size=args.step_size,
        gamma=args.gamma,
        loss=getattr(args, "loss", "l2"),
        seed=args.seed,
        device=args.device,
    )


def _data_notes(args, train, test) -> dict:
    return {
        "data_file": str(Path(args.data).resolve()),
        "test_file": str(Path(args.test_data).resolve()) if args.test_data else None,
        "n_test": None if args.test_data else len(test),
        "n_train": len(train),
        "resolution": train.resolution,
        "kind": train.kind,
    }


# -- commands -------------------------------------------------------------------------------------------------
def cmd_generate(args) -> int:
    from . import data

    if Path(args.out).suffix == ".zarr":
        return _generate_zarr(args)
    out = _check_out(args.out, ".npz")
    require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")
    require(args.chunk is None, "--chunk: only for a .zarr --out (a batch study)")
    if args.model == "darcy":
        require(0 < args.tol <= 1e-2, f"--tol must be in (0, 1e-2], got {args.tol}")
        gen = data.generate_darcy(
            args.n,
            args.count,
            seed=args.seed,
            tol=args.tol,
            solver=args.solver or "pcg",
            compare=args.compare,
        )
    else:
        require(
            args.device in ("cpu", "cuda", "auto"), f"--device must be cpu, cuda or auto, got {args.device!r}"
        )
        gen = data.generate_ns(
            args.n, args.count, nu=args.nu, steps=args.steps, t_in=args.t_in, solve_n=args.solve_n,
            dt=1e-2 if args.dt is None else args.dt, batch=args.batch, seed=args.seed, device=args.device,
            frame_dt=args.frame_dt,
        )  # fmt: skip
    ds = _progress(gen, args.quiet)
    data.save_npz(out, ds)
    s = ds.summary()
    print(f"wrote {out}: {s['count']} {s['kind']} samples at {s['resolution']}x{s['resolution']}, "
          f"{ds.meta['seconds']:.1f} s")  # fmt: skip
    return 0


def zarr_workload(args):
    """The batch layer's ``pde-dataset`` workload for ``generate --out X.zarr`` (options checked first)."""
    from backends.batch.workloads import DarcyDataset, NavierStokesDataset

    from .data import NS_SETTINGS

    for flag, given in (("--compare", args.compare), ("--solve-n", args.solve_n is not None),
                        ("--device", args.device != "cpu")):  # fmt: skip
        require(not given, f"{flag}: not available for a .zarr --out (the batch study solves on the CPU)")
    chunk = {} if args.chunk is None else {"chunk": args.chunk}
    if args.model == "darcy":
        require(
            args.solver in (None, "recycled"),
            f"--solver {args.solver}: a .zarr study solves with recycled CG (use .npz for pcg)",
        )
        require(0 < args.tol <= 1e-2, f"--tol must be in (0, 1e-2], got {args.tol}")
        return DarcyDataset(count=args.count, n=args.n, tol=args.tol, **chunk)
    steps = NS_SETTINGS.get(args.nu, (50, 10))[0] if args.steps is None else args.steps
    require(2 <= steps <= 200, f"--steps must be in 2..200, got {steps}")
    require(1 <= args.t_in < steps, f"--t-in must be in 1..{steps - 1}, got {args.t_in}")
    require(1e-6 <= args.nu <= 1.0, f"--nu must be in [1e-6, 1], got {args.nu}")
    dt = {} if args.dt is None else {"dt": args.dt}
    # the NPZ layout: x = w(0..t_in-1), y = w(t_in..T), T + 1 frames in all
    require(0.01 <= args.frame_dt <= 10, f"--frame-dt must be in [0.01, 10], got {args.frame_dt}")
    return NavierStokesDataset(
        count=args.count, n=args.n, nu=args.nu, t_in=args.t_in, t_out=steps + 1 - args.t_in,
        frame_dt=args.frame_dt, **dt, **chunk,
    )  # fmt: skip


def _generate_zarr(args) -> int:
    from backends.batch.cli import ProgressLine
    from backends.batch.schedulers import parse_scheduler
    from backends.batch.study import Study

    require(0 <= args.seed < 2**32, f"--seed must be in 0..2^32-1 for a .zarr study, got {args.seed}")
    study = Study(zarr_workload(args), args.out, args.seed)
    spec = parse_scheduler(args.scheduler)
    study.open()  # --out checked (foreign folder, another study) before a cluster starts
    progress = None if args.quiet else ProgressLine()
    report = study.run(spec, on_result=progress)
    if progress is not None:
        progress(None, report, final=True)
    if report.failed:
        first = "; ".join(f"chunk {i}: {e}" for i, e in sorted(report.failed.items())[:3])
        raise UserError(f"--out {args.out}: {len(report.failed)} chunk(s) failed ({first}); rerun to retry")
    print(f"wrote {args.out}: {args.count} {args.model} samples at {args.n}x{args.n} in {report.done} chunks "
          f"({report.skipped} resumed), {report.wall_s:.1f} s")  # fmt: skip
    return 0


def cmd_train(args) -> int:
    from . import checkpoint
    from .models import ModelConfig
    from .train import evaluate, make_model, train

    out = _check_out(args.out, ".json")
    _check_not_input(out, args)
    cfg_t = _train_config(args, 1e-3)
    cfg = ModelConfig(
        kind=args.model,
        modes=args.modes,
        width=args.width,
        layers=args.layers,
        modes_t=args.modes_t,
        basis=args.basis,
        tokens=args.tokens,
        patch=args.patch,
        levels=args.levels,
    )  # fmt: skip  (ranges checked before the data are read)
    train_data, test = _split(args)
    cfg = replace(cfg, in_channels=train_data.x.shape[1], out_channels=train_data.y.shape[1])
    require(
        args.model != "fno3d" or train_data.kind in ("ns", "generic"), "fno3d is for Navier-Stokes sequences"
    )
    model = make_model(cfg, train_data, args.seed)
    t0 = time.perf_counter()
    history = _progress(train(model, train_data, test, cfg_t), args.quiet)
    seconds = time.perf_counter() - t0
    notes = _data_notes(args, train_data, test)
    notes.update(train=cfg_t.__dict__, train_seconds=seconds)
    checkpoint.save(args.save_weights, model, notes)
    ev = evaluate(model, test)
    metrics = {
        "command": "train",
        "model": cfg.to_dict(),
        "train": cfg_t.__dict__,
        "data": notes | {"train_seconds": seconds},
        "rel_l2": ev["rel_l2"],
        "resolution": ev["resolution"],
        "seconds": seconds,
        "history": [h.to_dict() for h in history],
    }
    checkpoint.write_json(out, metrics)
    print(f"test rel L2 {ev['rel_l2']:.4g} at {ev['resolution']}x{ev['resolution']} after {seconds:.1f} s; "
          f"weights in {args.save_weights}")  # fmt: skip
    return 0


def cmd_eval(args) -> int:
    from . import checkpoint, data
    from .train import predict, rel_l2_per_sample

    out = _check_out(args.out, ".json")
    _check_not_input(out, args)
    pred_out = _check_out(args.predictions, ".npz", "--predictions") if args.predictions else None
    model, meta = checkpoint.load(args.weights)
    _, test = _split(args, meta)
    require(
        test.x.shape[1] == model.cfg.in_channels,
        f"--data {args.data}: {test.x.shape[1]} input channels, the model takes {model.cfg.in_channels}",
    )
    t0 = time.perf_counter()
    pred = predict(model, test.x)
    seconds = time.perf_counter() - t0
    errs = rel_l2_per_sample(pred, test.y)
    metrics = {
        "command": "eval",
        "rel_l2": float(errs.mean()),
        "rel_l2_max": float(errs.max()),
        "resolution": test.resolution,
        "train_resolution": meta.get("resolution"),
        "count": len(test),
        "high_frequency_error": data.high_frequency_error(pred, test.y),
        "seconds": seconds,
        "model": model.cfg.to_dict(),
    }
    checkpoint.write_json(out, metrics)
    if pred_out is not None:
        data.atomic_savez(pred_out, x=test.x, y=test.y, prediction=pred, rel_l2=errs)
    print(
        f"test rel L2 {metrics['rel_l2']:.4g} over {len(test)} samples at {test.resolution}x{test.resolution}"
    )
    return 0


def cmd_refine(args) -> int:
    from . import checkpoint, data
    from .refine import DEFAULTS, default_objective, refine
    from .train import evaluate, predict

    out = _check_out(args.out, ".json")
    _check_not_input(out, args)
    require(
        Path(args.save_weights).resolve() != Path(args.weights).resolve(),
        "--save-weights must differ from --weights (the trained checkpoint is kept)",
    )
    _train_config(args, 1e-3)  # the numeric options are checked before any work
    model, meta = checkpoint.load(args.weights)
    train_data, test = _split(args, meta)
    require(train_data is not None, f"--data {args.data}: refine needs training samples (give --n-test)")
    objective = args.objective or default_objective(train_data)
    cfg_t = _train_config(args, DEFAULTS[objective][0])
    require(
        objective == "residual" or args.on == "train",
        "--on test: only the residual objective needs no targets",
    )
    inputs = test.x if args.on == "test" else None
    before = evaluate(model, test)["rel_l2"]
    hf_before = data.high_frequency_error(predict(model, test.x), test.y)
    t0 = time.perf_counter()
    history = _progress(refine(model, train_data, test, cfg_t, objective, inputs), args.quiet)
    seconds = time.perf_counter() - t0
    pred = predict(model, test.x)
    after = evaluate(model, test)["rel_l2"]
    hf_after = data.high_frequency_error(pred, test.y)
    notes = {k: v for k, v in meta.items() if k not in ("format", "version", "model")}
    notes.update(refine=cfg_t.__dict__ | {"objective": objective, "on": args.on}, refine_seconds=seconds)
    checkpoint.save(args.save_weights, model, notes)
    train_seconds = meta.get("train_seconds")
    metrics = {
        "command": "refine",
        "objective": objective,
        "on": args.on,
        "rel_l2_before": before,
        "rel_l2": after,
        "high_frequency_error_before": hf_before,
        "high_frequency_error": hf_after,
        "median_wavenumber": data.median_wavenumber(test.resolution),
        "resolution": test.resolution,
        "seconds": seconds,
        "train_seconds": train_seconds,
        "cost_ratio": seconds / train_seconds if train_seconds else None,
        "history": [h.to_dict() for h in history],
        "model": model.cfg.to_dict(),
    }
    checkpoint.write_json(out, metrics)
    print(
        f"rel L2 {before:.4g} -> {after:.4g}; error above the median wavenumber {hf_before:.4g} -> {hf_after:.4g}"
    )
    return 0


COMMANDS = {"generate": cmd_generate, "train": cmd_train, "eval": cmd_eval, "refine": cmd_refine}


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    require(1 <= args.threads <= 64, f"--threads must be in 1..64, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    return COMMANDS[args.command](args)


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
