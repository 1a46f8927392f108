"""`visual-lab batch ...`: run a study on Dask into a Zarr store, or show a store's status. No Qt needed.

    visual-lab batch escape-map --grid 1000 --t-end 10 [--tile 50] [--scheduler S] --out map.zarr
    visual-lab batch pde-dataset --model darcy --count 10000 --n 64 [--chunk 32] [--scheduler S] --out d.zarr
    visual-lab batch pde-dataset --model navier-stokes --nu 1e-3 --t-in 10 --t-out 40 --count 1000 --out ns.zarr
    visual-lab batch pde-dataset --model gray-scott --preset coral --count 1000 --out gs.zarr
    visual-lab batch nfe-sweep [--samplers euler,heun,...] [--nfe 3,5,9,17] [--seeds 4] [--count 2000] --out s.zarr
    visual-lab batch dqn-eval [--systems 100] [--first-seed 1000000000] [--chunk 10] [--policy P] --out q.zarr
    visual-lab batch trajectory-sweep [--data ../shared/data/ethucy] [--scenes eth,hotel] [--seeds 3] --out t.zarr
    visual-lab batch status STORE
    visual-lab batch resume STORE [--scheduler S]      finish a study without repeating its parameters

Schedulers (--scheduler, default local): none | local[:N] | tcp://HOST:PORT | slurm:OPT=V,... | pbs:OPT=V,...
(see backends/batch/schedulers.py and docs/batch.md). Rerunning the same command on the same --out resumes.
Exit codes: 0 done, 1 some chunks failed (named on stderr; rerun retries them), 2 bad input, 130 cancelled.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import signal
import sys
import threading
import time

from backends.common import UserError

USAGE = __doc__.split("\n\n")[1]
PDE_OPTIONS = ("count", "n", "chunk", "tol", "nu", "dt", "frame_dt", "t_in", "t_out", "preset")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the whole usage otherwise)
        raise UserError(f"{self.prog}: {message}")


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX, got {text!r}") from None
    return lo, hi


def _common(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--out", required=True, help="the Zarr store (a folder); rerun on it to resume")
    ap.add_argument(
        "--scheduler", default="local",
        help="none | local[:N] (default: local, N = CPU count) | tcp://HOST:PORT | slurm:... | pbs:...",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="study seed, 0..2^32-1 (chunk seeds derive from it)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")


def _escape_map_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="visual-lab batch escape-map", description="Escape-time map of a grid of 3-body systems."
    )
    ap.add_argument("--grid", type=int, default=100, help="systems per side, 1..20000 (default 100)")
    ap.add_argument("--grid-y", type=int, default=0, help="systems along y, 0..20000 (0: same as --grid)")
    ap.add_argument("--t-end", type=float, default=10.0, help="end time, (0, 10000] (default 10)")
    ap.add_argument("--tile", type=int, default=50, help="chunk = TILE x TILE systems, 1..2000 (default 50)")
    ap.add_argument("--x-range", type=_range, default=(0.0, 1.0), help="MIN,MAX of body 2's x (default 0,1)")
    ap.add_argument("--y-range", type=_range, default=(0.0, 1.0), help="MIN,MAX of body 2's y (default 0,1)")
    _common(ap)
    return ap


def _pde_parser() -> argparse.ArgumentParser:
    from backends.batch.workloads import PDE_MODELS

    ap = _Parser(
        prog="visual-lab batch pde-dataset", description="Operator-learning data set (x -> y) in Zarr."
    )
    ap.add_argument("--model", default="darcy", choices=list(PDE_MODELS), help="PDE (default darcy)")
    ap.add_argument("--count", type=int, help="samples, 1..10^7 (default 100)")
    ap.add_argument("--n", type=int, help="grid points per side, 16..1024 (default 64)")
    ap.add_argument("--chunk", type=int, help="samples per chunk, 1..10000 (darcy 32, others 16)")
    ap.add_argument("--tol", type=float, help="darcy: solver relative residual, (0, 0.01] (default 1e-10)")
    ap.add_argument("--nu", type=float, help="navier-stokes: viscosity, (0, 1] (default 1e-3)")
    ap.add_argument("--dt", type=float, help="navier-stokes: time step, (0, frame-dt] (default 1e-3)")
    ap.add_argument("--frame-dt", type=float, help="sequences: time between frames (ns 1, gray-scott 250)")
    ap.add_argument("--t-in", type=int, help="sequences: input frames x, 1..1000 (ns 10, gray-scott 1)")
    ap.add_argument("--t-out", type=int, help="sequences: output frames y, 1..1000 (ns 10, gray-scott 4)")
    ap.add_argument("--preset", help="gray-scott: F, k preset (default coral)")
    _common(ap)
    return ap


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, got {text!r}"
        ) from None


def _nfe_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="visual-lab batch nfe-sweep",
        description="Diffusion samplers x NFE x seeds (the exact mixture model, or trained --weights).",
    )
    ap.add_argument(
        "--samplers", default="",
        help="comma-separated sampler names (default: euler,heun,ddim,dpmpp2m,em; with --weights, every "
        "sampler of the model's family)",
    )  # fmt: skip
    ap.add_argument("--nfe", type=_ints, default=(3, 5, 9, 17, 33, 65), help="NFE values, each 1..1000")
    ap.add_argument(
        "--seeds", type=int, default=4, help="repetitions per (sampler, NFE), 1..1000 (default 4)"
    )
    ap.add_argument("--count", type=int, default=2000, help="samples per run, 10..10^6 (default 2000)")
    ap.add_argument(
        "--dataset",
        default="gmm",
        help="gmm or 8gaussians (default gmm); with --weights any dataset but points",
    )
    ap.add_argument("--weights", default="", help="a trained model (.pt, Export > Model weights) to sweep")
    ap.add_argument("--csv", default="", help="point file of --dataset csv")
    ap.add_argument("--churn", type=float, default=0.0, help="Heun S_churn, [0, 100] (default 0)")
    ap.add_argument(
        "--eps", type=float, default=0.5, help="interpolant SDE epsilon, [1e-4, 100] (default 0.5)"
    )
    ap.add_argument("--path", default="linear", help="exact model's interpolant path: linear | trig")
    ap.add_argument("--gamma", type=float, default=0.0, help="exact model's interpolant gamma, [0, 10]")
    _common(ap)
    return ap


def _dqn_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="visual-lab batch dqn-eval", description="Learned stepping vs every fixed eta.")
    ap.add_argument("--systems", type=int, default=100, help="held-out systems, 1..10^6 (default 100)")
    ap.add_argument("--first-seed", type=int, default=10**9, help="seed of the first system (default 1e9)")
    ap.add_argument("--chunk", type=int, default=10, help="systems per chunk, 1..100000 (default 10)")
    ap.add_argument("--policy", default="", help="policy file (default: the bundled policy)")
    ap.add_argument("--lam", type=float, default=0.0, help="lambda of a lambda-conditioned policy, >= 0")
    _common(ap)
    return ap


def _traj_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="visual-lab batch trajectory-sweep", description="A trajectory model over scenes x seeds."
    )
    ap.add_argument("--data", default="", help="ETH/UCY-layout folder (default: the bundled synthetic scene)")
    ap.add_argument("--scenes", default="", help="comma-separated scenes (default: all found in --data)")
    ap.add_argument("--seeds", type=int, default=3, help="training seeds per scene, 1..100 (default 3)")
    ap.add_argument("--model", default="eigentrajectory", help="eigentrajectory | cv | cv20")
    ap.add_argument("--epochs", type=int, default=40, help="EigenTrajectory epochs, 1..1000 (default 40)")
    ap.add_argument("--k", type=int, default=6, help="EigenTrajectory rank, 1..16 (default 6)")
    ap.add_argument("--anchors", type=int, default=20, help="samples per agent, 1..100 (default 20)")
    _common(ap)
    return ap


def build_study(command: str, argv: list[str]):
    """Parse a study command and build its :class:`Study` and scheduler spec (all checks before any work)."""
    from backends.batch.schedulers import parse_scheduler
    from backends.batch.study import Study
    from backends.batch.workloads import PDE_MODELS, DqnEval, EscapeMap, NfeSweep, TrajectorySweep

    parsers = {"escape-map": _escape_map_parser, "pde-dataset": _pde_parser, "nfe-sweep": _nfe_parser,
               "dqn-eval": _dqn_parser, "trajectory-sweep": _traj_parser}  # fmt: skip
    if command not in parsers:
        raise UserError(f"unknown batch command {command!r}; commands: {', '.join(parsers)}, status")
    a = parsers[command]().parse_args(argv)
    if not 0 <= a.seed < 2**32:
        raise UserError(f"--seed must be 0..2^32-1, got {a.seed}")
    if command == "escape-map":
        workload = EscapeMap(a.grid, a.grid_y, a.t_end, a.tile, a.x_range, a.y_range)
    elif command == "pde-dataset":
        cls = PDE_MODELS[a.model]
        names = {f.name for f in dataclasses.fields(cls)}
        given = {k: v for k, v in vars(a).items() if v is not None and k in PDE_OPTIONS}
        wrong = sorted(set(given) - names)
        if wrong:
            opts = ", ".join("--" + k.replace("_", "-") for k in wrong)
            raise UserError(f"{opts}: not an option of --model {a.model}")
        workload = cls(**given)
    elif command == "nfe-sweep":
        samplers = tuple(x.strip() for x in a.samplers.split(",")) if a.samplers else None
        kw = dict(nfes=a.nfe, seeds=a.seeds, count=a.count, dataset=a.dataset, seed=a.seed, weights=a.weights,
                  csv=a.csv, churn=a.churn, eps=a.eps, path=a.path, gamma=a.gamma)  # fmt: skip
        if samplers is None and a.weights:  # every sampler of the trained family
            from backends.diffusion.models import load_trained
            from backends.diffusion.pipeline import FAMILY_SAMPLERS

            samplers = FAMILY_SAMPLERS[load_trained(a.weights).family]
        workload = NfeSweep(samplers or NfeSweep.samplers, **kw)
    elif command == "dqn-eval":
        workload = DqnEval(a.systems, a.first_seed, a.chunk, a.policy, a.lam)
    else:
        scenes = tuple(x.strip() for x in a.scenes.split(",") if x.strip())
        workload = TrajectorySweep(a.data, scenes, a.seeds, a.model, a.epochs, a.seed, a.k, a.anchors)
    return Study(workload, a.out, a.seed), parse_scheduler(a.scheduler), a.quiet


class ProgressLine:
    """`chunks 12/400 (3 resumed)  2.1 chunks/s  ETA 3m04s` on stderr, redrawn at most twice a second."""

    def __init__(self, stream=sys.stderr, every_s: float = 0.5):
        self.stream, self.every_s = stream, every_s
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.shown = ""
        self.tty = getattr(stream, "isatty", lambda: False)()

    def __call__(self, res, report, final: bool = False) -> None:
        if res is not None and res.error is not None:
            self._line(f"chunk {res.index} failed: {res.error}", newline=True)
        now = time.perf_counter()
        if not final and now - self.last < self.every_s:
            return
        self.last = now
        new = len(report.computed)
        rate = new / max(now - self.t0, 1e-9)
        left = report.total - report.done - len(report.failed)
        eta = _hms(left / rate) if rate > 0 else "?"
        text = f"chunks {report.done}/{report.total}"
        if report.skipped:
            text += f" ({report.skipped} resumed)"
        if report.failed:
            text += f", {len(report.failed)} failed"
        text += f"  {rate:.2f} chunks/s  ETA {eta}"
        if text != self.shown or (final and self.tty):
            self._line(text, newline=final or not self.tty)
            self.shown = text

    def _line(self, text: str, newline: bool) -> None:
        end = "\n" if newline else ""
        self.stream.write(("\r\033[K" if self.tty else "") + text + end)
        self.stream.flush()


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def cmd_status(argv: list[str]) -> int:
    from backends.batch.store import status

    if len(argv) != 1 or argv[0].startswith("-"):
        raise UserError("usage: visual-lab batch status STORE")
    st = status(argv[0])
    print(f"{st['store']}: {st['workload']}, chunks {st['chunks_done']}/{st['chunks_total']} done")
    print(f"version {st['version']}, seed {st['seed']}")
    print("parameters: " + json.dumps(st["params"]))
    for name, a in st["arrays"].items():
        print(f"  {name:<14} {a['dtype']:<8} {tuple(a['shape'])} dims {tuple(a['dims'])}")
    if st["pending"]:
        more = "" if st["chunks_total"] - st["chunks_done"] <= 20 else " ..."
        print("pending chunks: " + " ".join(map(str, st["pending"])) + more)
    return 0


def build_resume(argv: list[str]):
    """`batch resume STORE [--scheduler S] [--quiet]`: the study recorded in STORE, nothing to repeat."""
    from backends.batch.schedulers import parse_scheduler
    from backends.batch.store import read_meta
    from backends.batch.study import Study
    from backends.batch.workloads import workload_from_meta

    ap = _Parser(prog="visual-lab batch resume", description="Finish the study recorded in STORE.")
    ap.add_argument("store")
    ap.add_argument("--scheduler", default="local", help="as for the study commands (default local)")
    ap.add_argument("--quiet", action="store_true", help="no progress line")
    a = ap.parse_args(argv)
    meta = read_meta(a.store)
    return Study(workload_from_meta(meta), a.store, meta["seed"]), parse_scheduler(a.scheduler), a.quiet


def run_study(command: str, argv: list[str]) -> int:
    study, spec, quiet = build_resume(argv) if command == "resume" else build_study(command, argv)
    study.open()  # --out checked (foreign, other study, unwritable) before a cluster starts
    progress = None if quiet else ProgressLine()
    # Ctrl-C cancels the study through a handler rather than a KeyboardInterrupt, which library code in the
    # main thread (zarr's sync wrapper, Dask's waits) may swallow: the study then ended normally with every chunk
    interrupted = threading.Event()

    def on_sigint(signum, frame):
        interrupted.set()
        study.cancel()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        report = study.run(spec, on_result=progress)
    except KeyboardInterrupt:
        interrupted.set()
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        kept = study.n_chunks - len(study.pending())
        print(
            f"\ncancelled: {kept}/{study.n_chunks} chunks kept in {study.store}; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    if progress is not None:
        progress(None, report, final=True)
    if report.failed:
        print(
            f"{len(report.failed)} chunk(s) failed (rerun the same command to retry them): "
            + "; ".join(f"chunk {i}: {e}" for i, e in sorted(report.failed.items())[:5]),
            file=sys.stderr,
        )
        return 1
    print(
        f"{study.store}: {report.done}/{report.total} chunks ({report.skipped} resumed, "
        f"{len(report.computed)} computed) in {report.wall_s:.1f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `visual-lab batch`; raises UserError for bad input (the caller prints it, exit 2)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "status":
        return cmd_status(rest)
    return run_study(command, rest)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except UserError as exc:
        print(f"visual-lab batch: error: {exc}", file=sys.stderr)
        sys.exit(2)
