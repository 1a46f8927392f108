"""Headless CLI: ``visual-lab run pde --model MODEL ... --out FILE.npz``.

Time-dependent models write ``t`` (T,), the field snapshots (``w`` for Navier-Stokes, ``u``/``v`` for the
others), ``diag_<name>`` (T,) and the final spectrum; ``--count N`` makes a Navier-Stokes dataset
(``w0``/``w1`` initial and final vorticity, N samples). Darcy writes ``a``, ``u``, ``iterations`` and the
recycled-vs-plain totals.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from backends.common import Progress, UserError, drain
from backends.options import ArgParser, Bound, check, check_device, require_memory
from backends.safeio import check_writable, write_npz

from .base import MODELS, BlowUp
from .models import make_simulation

T_END = {"navier-stokes": 1.0, "heat": 1.0, "wave": 1.0, "burgers": 0.5, "gray-scott": 5000.0}


def _parser() -> ArgParser:
    p = ArgParser(prog="visual-lab run pde", description="PDE fields: simulate or make datasets.")
    p.add_argument("--model", default="navier-stokes", choices=[*MODELS, "darcy"])
    p.add_argument("--n", type=int, default=None, help="grid points per side (default 128; darcy 64)")
    p.add_argument("--dim", type=int, default=None, help="1 or 2 (heat, wave, burgers)")
    p.add_argument("--nu", type=float, default=None, help="viscosity (navier-stokes, burgers)")
    p.add_argument("--kappa", type=float, default=None, help="diffusivity (heat)")
    p.add_argument("--c", type=float, default=None, help="wave speed (wave)")
    p.add_argument("--dt", type=float, default=None, help="time step (the maximum when --adaptive)")
    p.add_argument("--scheme", default=None, help="cn-euler | cn-heun | if-rk4 (wave: verlet | rk4 | exact)")
    p.add_argument("--adaptive", action="store_true", help="CFL-adaptive dt (navier-stokes)")
    p.add_argument("--cfl", type=float, default=0.5, help="target CFL number with --adaptive")
    p.add_argument("--t-end", type=float, default=None, help="final time (gray-scott: steps)")
    p.add_argument("--frames", type=int, default=20, help="snapshots written (besides t = 0)")
    p.add_argument("--init", default=None, help="initial field (model dependent, e.g. grf, taylor-green)")
    p.add_argument("--forcing", default=None, help="fno | kolmogorov | none (navier-stokes)")
    p.add_argument("--drag", type=float, default=None, help="linear drag (navier-stokes)")
    p.add_argument(
        "--preset", default=None, help="gray-scott preset (spots, stripes, mitosis, coral, worms, ...)"
    )
    p.add_argument("--feed", type=float, default=None, help="gray-scott F")
    p.add_argument("--kill", type=float, default=None, help="gray-scott k")
    p.add_argument(
        "--count", type=int, default=None, help="dataset size (darcy; navier-stokes initial/final pairs)"
    )
    p.add_argument("--batch", type=int, default=16, help="samples simulated together (navier-stokes dataset)")
    p.add_argument("--tol", type=float, default=1e-10, help="relative residual tolerance (darcy)")
    p.add_argument("--recycle-k", type=int, default=16, help="recycle space dimension (darcy)")
    p.add_argument("--recycle-m", type=int, default=32, help="search directions added per solve (darcy)")
    p.add_argument("--no-compare", action="store_true", help="darcy: skip the plain PCG comparison")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch/BLAS threads (default 1: these FFT sizes do not scale on small shared CPUs)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


# The documented range of every numeric option (docs/options.md is generated from this table).
BOUNDS = {
    "n": Bound(8, 65_536, note="memory estimated up front (2-D: n^2 cells)"),
    "dim": Bound(1, 2),
    "nu": Bound(0, 1e3),
    "kappa": Bound(0, 1e3, open_lo=True),
    "c": Bound(0, 1e3, open_lo=True),
    "dt": Bound(1e-9, 1e3, note="and t-end / dt <= 1e8 steps"),
    "cfl": Bound(0, 10, open_lo=True),
    "t_end": Bound(0, 1e8, open_lo=True, note="gray-scott: steps; <= 1e8 steps at dt"),
    "frames": Bound(1, 10_000, note="snapshots kept in memory and written"),
    "drag": Bound(0, 1e3),
    "feed": Bound(0, 1),
    "kill": Bound(0, 1),
    "count": Bound(1, 100_000, note="dataset samples"),
    "batch": Bound(1, 4096),
    "tol": Bound(1e-15, 1, open_lo=False),
    "recycle_k": Bound(0, 200),
    "recycle_m": Bound(0, 400),
    "seed": Bound(0, 2**63 - 1),
    "threads": Bound(1, 256),
}
MAX_STEPS = 1e8
MEMORY = (
    "a field run keeps `(frames + 1) x n^dim` values (4 bytes each in float32, 8 in float64) plus about 24 "
    "working copies of the field (spectral transforms, RK stages): n = 1024 in 2-D with 20 frames is about "
    "0.2 GB; a Navier-Stokes dataset keeps `2 x count x n^2 x 4` bytes plus `batch x 24 x n^2` working "
    "values; Darcy `3 x count x n^2 x 8` bytes plus the recycled space. Runs that would not fit in the free "
    "memory, or that need more than 1e8 time steps, are refused before they start."
)


def estimate_bytes(args) -> int:
    """Peak memory of a run (see MEMORY)."""
    model = args.model
    dim = 2 if model in ("navier-stokes", "gray-scott", "darcy") else (args.dim or 1)
    n = args.n or (64 if model == "darcy" else 128)
    cells = float(n) ** dim
    item = 8 if args.dtype == "float64" else 4
    if model == "darcy":
        return int(cells * 8 * (3 * (args.count or 200) + 4 * (args.recycle_k + args.recycle_m) + 40))
    if args.count is not None:
        return int(cells * (2 * args.count * 4 + 24 * min(args.batch, args.count) * item))
    return int(cells * item * (args.frames + 1 + 24))


def _check_budget(args) -> None:
    require_memory(
        estimate_bytes(args), f"--model {args.model} at this size", "lower --n, --frames or --count"
    )
    t_end = args.t_end if args.t_end is not None else T_END.get(args.model, 1.0)
    if args.model == "gray-scott":
        steps = t_end
    elif args.dt is not None and not args.adaptive:
        steps = t_end / args.dt
    else:
        return
    if steps > MAX_STEPS:
        raise UserError(
            f"--t-end {t_end:g} at --dt {args.dt:g} needs {steps:.3g} steps, more than {MAX_STEPS:g}"
        )


def _progress(gen, quiet: bool):
    """Drive a generator, drawing a text progress bar on stderr; return its value."""
    last = 0.0

    def report(item) -> None:
        nonlocal last
        if quiet or not isinstance(item, Progress):
            return
        now = time.monotonic()
        if now - last > 0.2 or item.fraction == 1.0:
            f = item.fraction or 0.0
            bar = "#" * int(30 * f)
            sys.stderr.write(f"\r[{bar:<30}] {100 * f:5.1f}% {item.message[:60]:<60}")
            sys.stderr.flush()
            last = now

    value = drain(gen, report)
    if not quiet:
        sys.stderr.write("\n")
    return value


def _sim_kwargs(args, model: str) -> dict:
    kw: dict = {"n": args.n or 128, "seed": args.seed, "dtype": args.dtype, "device": args.device}
    if model == "gray-scott":
        if args.preset:
            kw["preset"] = args.preset
        if args.feed is not None or args.kill is not None:
            kw.update(preset=args.preset or "custom", F=args.feed, k=args.kill)
        if args.dt is not None:
            kw["dt"] = args.dt
        return kw
    for name in ("dim", "nu", "kappa", "c", "dt", "scheme", "init"):
        v = getattr(args, name)
        if v is not None:
            kw[name] = v
    if model == "navier-stokes":
        kw.update(adaptive=args.adaptive, cfl=args.cfl)
        if args.forcing is not None:
            kw["forcing"] = args.forcing
        if args.drag is not None:
            kw["drag"] = args.drag
    allowed = {
        "navier-stokes": {"nu", "dt", "scheme", "init", "adaptive", "cfl", "forcing", "drag"},
        "heat": {"dim", "kappa", "dt", "scheme", "init"},
        "wave": {"dim", "c", "dt", "scheme", "init"},
        "burgers": {"dim", "nu", "dt", "scheme", "init"},
    }[model]
    extra = [k for k in kw if k not in allowed | {"n", "seed", "dtype", "device"}]
    if extra:
        raise UserError(f"option(s) {', '.join('--' + e for e in extra)} do not apply to --model {model}")
    return kw


def _run_field(args) -> int:
    from .base import run

    model = args.model
    t_end = args.t_end if args.t_end is not None else T_END[model]
    sim = make_simulation(model, **_sim_kwargs(args, model))
    frames, error = [], None
    gen = run(sim, t_end, args.frames)
    t0 = time.perf_counter()

    def record(p) -> None:
        frames.append(p.data)
        if not args.quiet:
            f = p.fraction or 0.0
            sys.stderr.write(f"\r[{'#' * int(30 * f):<30}] {100 * f:5.1f}% {p.message[:60]:<60}")

    try:
        drain(gen, record)  # the frames are the result; a blow-up keeps those recorded so far
    except BlowUp as exc:
        error = str(exc)
    if not args.quiet:
        sys.stderr.write("\n")
    seconds = time.perf_counter() - t0
    name = {"navier-stokes": "w", "gray-scott": "v"}.get(model, "u")
    out = {
        "t": np.array([f.t for f in frames]),
        name: np.stack([f.field for f in frames]),
        "model": np.array(model),
        "seconds": np.array(seconds),
        "steps": np.array(sim.steps),
        "blown_up": np.array(error or ""),
    }
    for key in frames[0].diagnostics:
        out[f"diag_{key}"] = np.array([f.diagnostics.get(key, np.nan) for f in frames])
    spec = sim.spectrum()
    if spec is not None:
        out["spectrum_k"], out["spectrum_E"] = spec
    if model == "gray-scott":
        out["u"] = sim.field("u")[None]
    _save(args.out, out)
    if error:
        raise UserError(f"{error} (the {len(frames)} snapshots before it were written to {args.out})")
    print(
        f"{model}: n={sim.cfg.n} t={sim.t:.6g} steps={sim.steps} in {seconds:.2f} s "
        f"({sim.steps / max(seconds, 1e-9):.1f} steps/s), {len(frames)} snapshots -> {args.out}"
    )
    return 0


def _run_ns_dataset(args) -> int:
    from .ns import NavierStokes2D, NSConfig

    kw = _sim_kwargs(args, "navier-stokes")
    count, t_end = args.count, args.t_end if args.t_end is not None else T_END["navier-stokes"]
    w0s, w1s, done = [], [], 0
    t0 = time.perf_counter()
    while done < count:
        b = min(args.batch, count - done)
        cfg = NSConfig(**{**kw, "batch": b, "seed": args.seed + done})
        sim = NavierStokes2D(cfg)
        w0s.append(sim.vorticity().cpu().numpy())
        sim.advance_to(t_end)
        w1s.append(sim.vorticity().cpu().numpy())
        done += b
        if not args.quiet:
            sys.stderr.write(f"\rnavier-stokes dataset: {done}/{count} samples")
    if not args.quiet:
        sys.stderr.write("\n")
    seconds = time.perf_counter() - t0
    _save(
        args.out,
        {
            "w0": np.concatenate(w0s),
            "w1": np.concatenate(w1s),
            "t_end": np.array(t_end),
            "nu": np.array(cfg.nu),
            "seconds": np.array(seconds),
        },
    )
    print(
        f"navier-stokes dataset: {count} pairs (n={cfg.n}, t_end={t_end:g}) in {seconds:.2f} s -> {args.out}"
    )
    return 0


def _run_darcy(args) -> int:
    from .darcy import DarcyConfig, generate_dataset

    cfg = DarcyConfig(
        n=args.n or 64,
        count=args.count or 200,
        seed=args.seed,
        tol=args.tol,
        recycle_k=args.recycle_k,
        recycle_m=args.recycle_m,
    )
    res = _progress(generate_dataset(cfg, compare=not args.no_compare), args.quiet)
    out = {
        "a": res["a"],
        "u": res["u"],
        "iterations": res["iterations"],
        "seconds": np.array(res["seconds"]),
        "order": res["order"],
    }
    msg = (
        f"darcy: {cfg.count} systems at n={cfg.n}: recycled CG {int(res['iterations'].sum())} iterations "
        f"in {res['seconds']:.2f} s"
    )
    if "iterations_plain" in res:
        out.update(iterations_plain=res["iterations_plain"], seconds_plain=np.array(res["seconds_plain"]))
        ip, ir = int(res["iterations_plain"].sum()), int(res["iterations"].sum())
        msg += (
            f"; plain PCG {ip} iterations in {res['seconds_plain']:.2f} s "
            f"(iterations x{ip / max(ir, 1):.2f}, wall time x{res['seconds_plain'] / res['seconds']:.2f})"
        )
    _save(args.out, out)
    print(msg + f" -> {args.out}")
    return 0


def _save(path: str, arrays: dict) -> None:
    try:
        write_npz(path, **arrays)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def main(argv: list[str]) -> int:
    parser = _parser()
    args = check(parser.parse_args(argv), BOUNDS, parser)
    check_writable(args.out, suffixes=(".npz",), what="--out")
    check_device(args.device, allow_auto=True)
    _check_budget(args)
    import torch

    torch.set_num_threads(args.threads)
    if args.model == "darcy":
        return _run_darcy(args)
    if args.count is not None:
        if args.model != "navier-stokes":
            raise UserError("--count (datasets) is available for --model darcy and navier-stokes")
        return _run_ns_dataset(args)
    if args.frames < 1:
        raise UserError(f"--frames must be >= 1, got {args.frames}")
    return _run_field(args)


if __name__ == "__main__":  # pragma: no cover
    try:
        sys.exit(main(sys.argv[1:]))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
