"""CPU tile rasterizer (numba, :mod:`backends.splat.tile_raster`) frame time vs Gaussian count, with the torch
reference rasterizer on the same scene and camera in the same run (time ratio and PSNR between the images).

Per count: the synthetic bench scene (``bench.splat_common.synthetic_scene``) seen by the bench camera
(orbit 30, 20, 7.0 around (0, 0.3, 0)) at ``--size``; the guitar scene too when its file is present. One JSON
line per scene: median / min wall time of a full frame (depth sort inside, uint8 image into a reused buffer)
and of a frame with the order given (what the panel does: it sorts off the GUI thread), the median time of
each stage, the process CPU time per frame, frames/s, the reference's time, the ratio and the PSNR (float
images and uint8 images). Timings are wall clock and noisy on a shared machine: compare runs made at the same
load (printed) and prefer the minimum.

    NUMBA_NUM_THREADS=2 .venv/bin/python bench/splat_cpu_raster.py --threads 2
    NUMBA_NUM_THREADS=1 nice -n 10 .venv/bin/python bench/splat_cpu_raster.py --threads 1 [--counts 100000]
        [--size 800x600] [--repeats 7] [--reference-max 1000000] [--no-guitar]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

GUITAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "splat" / "guitar.compressed.ply"


def time_frames(fn, repeats: int) -> tuple[list[float], list[float], list[dict]]:
    walls, cpus, stages = [], [], []
    for _ in range(repeats):
        tm: dict = {}
        c0, t0 = time.process_time(), time.perf_counter()
        fn(tm)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        stages.append(tm)
    return walls, cpus, stages


def bench_scene(name: str, g, cam, args, reference: bool) -> dict:
    from backends.splat import raster, tile_raster

    rows = tile_raster.scene_rows(g, cam)
    out = np.empty((cam.height, cam.width, 3), np.uint8)
    bg = (0.0, 0.0, 0.0)

    t0 = time.perf_counter()
    tile_raster.render_rows(rows, cam, bg, out=out)  # warm-up (compiled kernels load from cache)
    first = time.perf_counter() - t0
    walls, cpus, stages = time_frames(
        lambda tm: tile_raster.render_rows(rows, cam, bg, out=out, timings=tm), args.repeats
    )
    pc = np.asarray(cam.viewmat, np.float64)
    t0 = time.perf_counter()
    order = np.argsort(rows[:, 0:3] @ pc[2, :3] + pc[2, 3], kind="stable")  # the panel's worker would do this
    sort_numpy = time.perf_counter() - t0
    walls_o, _, _ = time_frames(
        lambda tm: tile_raster.render_rows(rows, cam, bg, order=order, out=out, timings=tm), args.repeats
    )
    row = {
        "scene": name,
        "count": int(g.count),
        "size": [cam.width, cam.height],
        "numba_threads": args.threads,
        "first_call_s": first,
        "frame_s_median": float(np.median(walls)),
        "frame_s_min": float(np.min(walls)),
        "fps_median": float(1 / np.median(walls)),
        "cpu_s_per_frame_median": float(np.median(cpus)),
        "frame_with_order_s_median": float(np.median(walls_o)),
        "frame_with_order_s_min": float(np.min(walls_o)),
        "numpy_argsort_s": sort_numpy,
        "tile_entries": stages[-1]["tile_entries"],
    }
    for k in ("sort_s", "project_s", "bin_s", "raster_s"):
        row[f"stage_{k}_median"] = float(np.median([s[k] for s in stages]))
    if reference:
        img = tile_raster.render_rows_float(rows, cam, bg)
        t0 = time.perf_counter()
        ref = raster.render(g, cam, bg)
        row["reference_s"] = time.perf_counter() - t0
        row["reference_over_numba"] = row["reference_s"] / row["frame_s_median"]
        row["psnr_float_db"] = raster.psnr(img, ref)
        row["max_abs_diff_float"] = float(np.abs(img - ref).max())
        row["psnr_uint8_db"] = raster.psnr(out, raster.to_rgba8(ref)[..., :3])
    row["load_average"] = os.getloadavg()[0]
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100000,300000,1000000")
    ap.add_argument("--size", default="800x600")
    ap.add_argument("--threads", type=int, default=1, help="numba threads (<= NUMBA_NUM_THREADS)")
    ap.add_argument("--torch-threads", type=int, default=1, help="threads of the torch reference")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--reference-max", type=int, default=1_000_000, help="largest count also run by torch")
    ap.add_argument("--no-guitar", action="store_true")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    import numba
    import torch

    numba.set_num_threads(args.threads)
    torch.set_num_threads(args.torch_threads)
    from backends.splat import camera as cm
    from backends.splat import io
    from bench.splat_common import synthetic_scene

    print(
        json.dumps(
            {
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "load_average_start": os.getloadavg()[0],
                "numba": numba.__version__,
                "threading_layer_threads": numba.config.NUMBA_NUM_THREADS,
            }
        ),
        flush=True,
    )
    cam = cm.orbit_camera((0, 0.3, 0), 30, 20, 7.0, w, h)
    for n in (int(c) for c in args.counts.split(",")):
        g = synthetic_scene(n)
        print(json.dumps(bench_scene("synthetic", g, cam, args, n <= args.reference_max)), flush=True)
    if not args.no_guitar and GUITAR.exists():
        g = io.load(GUITAR)
        c, r = g.robust_center_radius()
        gcam = cm.orbit_camera(c, 0, 15, 2.5 * r, w, h, 50, up=(0, -1, 0))
        print(json.dumps(bench_scene("guitar", g, gcam, args, True)), flush=True)


if __name__ == "__main__":
    main()
