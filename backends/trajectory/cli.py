"""Headless CLI: ``visual-lab run trajectory --data PATH --scene eth --model eigentrajectory --out m.json``.

Evaluates a model on the held-out scene of a leave-one-out fold (``--scene all``: all five folds and the
average) and prints/writes minADE/minFDE over 20 samples and single-sample ADE/FDE in metres.
``--csv FILE`` evaluates on a user's own tracks instead (columns/frame rate configurable; EigenTrajectory
then needs ``--weights``, a model saved with ``--save-weights``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from backends.common import UserError, drain
from backends.options import ArgParser, Bound, check
from backends.safeio import check_writable, json_safe, write_json
from backends.trajectory.data import SCENES, available_scenes, load_split
from backends.trajectory.metrics import summarize

MODELS = ("eigentrajectory", "cv", "cv20")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "assets" / "trajectory" / "synthetic"


def evaluate_scene(
    data: str | Path,
    scene: str,
    model: str,
    *,
    epochs: int = 40,
    seed: int = 0,
    k: int = 6,
    anchors: int = 20,
    save_dir: Path | None = None,
    weights: str | Path | None = None,
    log=print,
) -> dict:
    """Train (if needed) and evaluate one fold; returns the metrics dict of its test split."""
    from backends.trajectory.baselines import constant_velocity, constant_velocity_samples

    test = load_split(data, scene, "test")
    out: dict = {"scene": scene, "model": model, "windows": test.num_windows}
    if model == "cv":
        t = time.perf_counter()
        samples = constant_velocity(test.obs)[None]
        out["infer_ms_per_window"] = 1e3 * (time.perf_counter() - t) / test.num_windows
    elif model == "cv20":
        t = time.perf_counter()
        samples = constant_velocity_samples(test.obs, num_samples=anchors, seed=seed)
        out["infer_ms_per_window"] = 1e3 * (time.perf_counter() - t) / test.num_windows
    elif model == "eigentrajectory":
        import torch

        from backends.trajectory.eigentrajectory import STATIC_DIST, ETConfig, ETModel, train_eigentrajectory

        if weights is not None:
            et = ETModel.load(weights)
            t = time.perf_counter()
            samples = et.predict(test)
            out["infer_ms_per_window"] = 1e3 * (time.perf_counter() - t) / test.num_windows
            out["weights"] = str(weights)
            out.update(summarize(samples, test.pred))
            return out
        torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
        train, val = load_split(data, scene, "train"), load_split(data, scene, "val")
        cfg = ETConfig(
            k=k, num_samples=anchors, static_dist=STATIC_DIST.get(scene, 0.353), epochs=epochs, seed=seed
        )

        def report(p) -> None:
            if p.data is not None:  # epoch summaries only
                log(f"  [{scene}] {p.message}")

        t = time.perf_counter()
        et = drain(train_eigentrajectory(cfg, train, val), report)
        out["train_seconds"] = time.perf_counter() - t
        out["epochs"] = epochs
        if et.history is not None and et.history.val_minfde:
            out["best_val_minFDE"] = float(np.nanmin(et.history.val_minfde))
        t = time.perf_counter()
        samples = et.predict(test)
        out["infer_ms_per_window"] = 1e3 * (time.perf_counter() - t) / test.num_windows
        if save_dir is not None:
            save_dir.mkdir(parents=True, exist_ok=True)
            out["weights"] = str(et.save(save_dir / f"eigentrajectory_{scene}.pt"))
    else:
        raise UserError(f"unknown model {model!r}: choose one of {', '.join(MODELS)}")
    out.update(summarize(samples, test.pred))
    return out


def _weights_for(weights: str | None, scene: str) -> Path | None:
    """``--weights`` may name a file, or a folder of ``eigentrajectory_<scene>.pt`` files (from --save-weights)."""
    if not weights:
        return None
    p = Path(weights).expanduser()
    if p.is_dir():
        p = p / f"eigentrajectory_{scene}.pt"
    if not p.is_file():
        raise UserError(f"no saved EigenTrajectory model {p}")
    return p


def _run_csv(args) -> int:
    from backends.trajectory.baselines import constant_velocity, constant_velocity_samples
    from backends.trajectory.data import make_windows, read_csv_tracks

    cols = [c.strip() for c in args.columns.split(",")]
    if len(cols) != 4:
        raise UserError(f"--columns needs 4 names or numbers (frame, ped, x, y), got {args.columns!r}")
    cols = [int(c) if c.isdigit() else c for c in cols]
    tracks = read_csv_tracks(
        args.csv,
        frame_col=cols[0],
        ped_col=cols[1],
        x_col=cols[2],
        y_col=cols[3],
        fps=args.fps,
        delimiter=args.delimiter,
    )
    w = make_windows(tracks)
    if w.num_windows == 0:
        raise UserError(
            f"{args.csv}: no 20-step windows (0.4 s steps) with >= 2 pedestrians present throughout"
        )
    if args.model == "cv":
        samples = constant_velocity(w.obs)[None]
    elif args.model == "cv20":
        samples = constant_velocity_samples(w.obs, num_samples=args.anchors, seed=args.seed)
    else:
        if not args.weights:
            raise UserError(
                "--model eigentrajectory with --csv needs --weights (a model saved by --save-weights)"
            )
        from backends.trajectory.eigentrajectory import ETModel

        samples = ETModel.load(args.weights).predict(w)
    r = summarize(samples, w.pred)
    r.update({"csv": str(args.csv), "model": args.model, "windows": w.num_windows})
    print(
        f"{Path(args.csv).name} {args.model}: minADE {r['minADE']:.3f} minFDE {r['minFDE']:.3f} "
        f"ADE {r['ADE']:.3f} FDE {r['FDE']:.3f} m ({r['agents']} agents, {r['windows']} windows)"
    )
    if args.out:
        write_json(args.out, json_safe(r))
    return 0


# The documented range of every numeric option (docs/options.md is generated from this table).
BOUNDS = {
    "train_epochs": Bound(0, 10_000, note="EigenTrajectory training epochs"),
    "k": Bound(1, 16, note="eigen-descriptors, at most 2 x min(8 observed, 12 predicted) steps"),
    "anchors": Bound(1, 100, note="samples per agent (best-of-N metrics)"),
    "seed": Bound(0, 2**63 - 1),
    "fps": Bound(1e-3, 1e4, note="frame rate of the CSV frame column"),
}
MEMORY = (
    "windows take `agents x 20 x 2 x 4` bytes, predictions `anchors x agents x 12 x 2 x 4` (about 100 MB "
    "for 50,000 agents and 20 anchors); a million-row file reads in a few seconds."
)


def build_parser() -> ArgParser:
    ap = ArgParser(prog="visual-lab run trajectory", description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data",
        default=str(DEFAULT_DATA),
        help="dataset root with <scene>/{train,val,test}/*.txt (default: bundled synthetic crowd)",
    )
    ap.add_argument("--scene", default=None, help="eth|hotel|univ|zara1|zara2|all (or a scene of --data)")
    ap.add_argument("--model", default="cv20", choices=MODELS)
    ap.add_argument("--train-epochs", type=int, default=40)
    ap.add_argument("--k", type=int, default=6)
    ap.add_argument("--anchors", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-weights", default=None, help="folder to save trained EigenTrajectory weights")
    ap.add_argument("--weights", default=None, help="saved EigenTrajectory model to evaluate (no training)")
    ap.add_argument("--csv", default=None, help="evaluate on this CSV of tracks instead of --data/--scene")
    ap.add_argument(
        "--columns",
        default="frame,ped,x,y",
        help="CSV column names (or 0-based numbers) for frame, pedestrian, x, y",
    )
    ap.add_argument("--fps", type=float, default=2.5, help="frame rate of the CSV frame column")
    ap.add_argument("--delimiter", default=",")
    ap.add_argument("--out", default=None, help="metrics JSON file")
    return ap


def main(argv: list[str]) -> int:
    ap = build_parser()
    args = check(ap.parse_args(argv), BOUNDS, ap)
    if args.save_weights:  # the weights are written after training: check the folder now
        sw = Path(args.save_weights).expanduser()
        if sw.exists() and not sw.is_dir():
            raise UserError(f"--save-weights {sw}: not a folder")
        check_writable(sw / "eigentrajectory_eth.pt" if sw.is_dir() else sw, what="--save-weights")
    if args.out:
        ins = [x for x in (args.csv, args.weights) if x]
        check_writable(args.out, suffixes=(".json",), inputs=ins, what="--out")
    if args.csv:
        return _run_csv(args)
    have = available_scenes(args.data)
    if not Path(args.data).expanduser().is_dir():
        raise UserError(f"dataset folder {args.data} does not exist")
    if not have:
        raise UserError(f"{args.data} holds no <scene>/train|val|test folders")
    scene = args.scene or ("eth" if "eth" in have else have[0])
    scenes = [s for s in SCENES if s in have] if scene == "all" else [scene]
    if scene == "all" and not scenes:
        raise UserError(f"--scene all needs the ETH/UCY scenes in {args.data}; found {', '.join(have)}")
    results = []
    for s in scenes:
        r = evaluate_scene(
            args.data,
            s,
            args.model,
            epochs=args.train_epochs,
            seed=args.seed,
            k=args.k,
            anchors=args.anchors,
            save_dir=Path(args.save_weights) if args.save_weights else None,
            weights=_weights_for(args.weights, s),
        )
        results.append(r)
        print(
            f"{s:6s} {args.model}: minADE {r['minADE']:.3f} minFDE {r['minFDE']:.3f} "
            f"ADE {r['ADE']:.3f} FDE {r['FDE']:.3f} m ({r['agents']} agents, {r['windows']} windows)"
        )
    report: dict = {"data": str(args.data), "model": args.model, "scenes": results}
    if len(results) > 1:
        report["average"] = {
            m: float(np.mean([r[m] for r in results])) for m in ("minADE", "minFDE", "ADE", "FDE")
        }
        a = report["average"]
        print(
            f"average {args.model}: minADE {a['minADE']:.3f} minFDE {a['minFDE']:.3f} "
            f"ADE {a['ADE']:.3f} FDE {a['FDE']:.3f} m"
        )
    if args.out:
        write_json(args.out, json_safe(report))
    return 0
