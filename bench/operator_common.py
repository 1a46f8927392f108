"""What the budgeted operator benchmarks (Darcy 85x85, Navier-Stokes 64x64) report: one summary record,
printed as JSON and optionally written atomically, so their result files read the same."""

from __future__ import annotations

import json
import os
import time

from backends.operator import checkpoint


def report(
    args, *, ev, last, epochs, stopped, w0, c0, load0, tr, te, cfg, tc, costs, history, **extra
) -> dict:
    """The summary of a budgeted training run (``extra`` goes in after the resolution); printed and, with
    ``args.out``, written."""
    out = {
        "rel_l2": ev["rel_l2"],
        "resolution": ev["resolution"],
        **extra,
        "epochs_done": last.epoch if last else 0,
        "epochs_planned": epochs,
        "stopped": stopped,
        "wall_seconds": time.perf_counter() - w0,
        "cpu_seconds": time.process_time() - c0,
        "budget": args.budget,
        "clock": args.clock,
        "threads": args.threads,
        "load_start": load0,
        "load_end": os.getloadavg()[0],
        "n_train": len(tr),
        "n_test": len(te),
        "model": cfg.to_dict(),
        "train": tc.__dict__,
        "costs": costs,
        "history": history,
    }
    print(json.dumps(out, allow_nan=False))
    if args.out:
        checkpoint.write_json(args.out, out)
    return out
