"""Load time of a 1M-Gaussian SH-degree-3 .ply (and .splat) vs a raw np.fromfile read of the same bytes.

.venv/bin/python bench/splat_load.py [--count 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from backends.splat import io
from bench.splat_common import synthetic_scene


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=1_000_000)
    args = ap.parse_args()
    g = synthetic_scene(args.count, sh_degree=3)
    with tempfile.TemporaryDirectory() as d:
        out = {}
        for suffix in (".ply", ".splat"):
            p = Path(d) / f"scene{suffix}"
            io.save(p, g if suffix == ".ply" else g.with_sh_degree(0))
            size = p.stat().st_size
            t0 = time.perf_counter()
            np.fromfile(p, np.uint8)
            raw = time.perf_counter() - t0
            t0 = time.perf_counter()
            h = io.load(p)
            t = time.perf_counter() - t0
            assert h.count == args.count
            out[suffix] = {
                "count": args.count,
                "mb": size / 1e6,
                "load_s": t,
                "raw_read_s": raw,
                "load_over_raw": t / raw,
            }
            print(json.dumps({suffix: out[suffix]}), flush=True)


if __name__ == "__main__":
    main()
