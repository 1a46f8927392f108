"""Self-contained timing of the torch reference rasterizer: seconds per 800x600 frame at 100k Gaussians on
CUDA (when available) and on the CPU in the same run (ratio).

    python bench/splat_gpu.py [--count 100000] [--size 800x600] [--repeats 3]
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
import torch

from backends.splat import camera as cm
from backends.splat import raster
from bench.splat_common import synthetic_scene


def time_device(g, cam, device: str, repeats: int) -> tuple[float, np.ndarray]:
    raster.render(g, cam, device=device)  # warm-up
    ts = []
    img = None
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        img = raster.render(g, cam, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), img


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--size", default="800x600")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    if args.threads:
        torch.set_num_threads(args.threads)
    g = synthetic_scene(args.count)
    cam = cm.orbit_camera((0, 0.3, 0), 30, 20, 7.0, w, h)
    res = {
        "count": args.count,
        "size": [w, h],
        "torch": torch.__version__,
        "cpu": f"{platform.processor() or platform.machine()} x{os.cpu_count()}",
    }
    if not args.skip_cpu:
        res["cpu_s"], img_cpu = time_device(g, cam, "cpu", max(1, args.repeats // 2))
    if torch.cuda.is_available():
        res["gpu"] = torch.cuda.get_device_name(0)
        res["cuda_s"], img_gpu = time_device(g, cam, "cuda", args.repeats)
        if not args.skip_cpu:
            res["cpu_over_cuda"] = res["cpu_s"] / res["cuda_s"]
            res["psnr_cuda_vs_cpu_db"] = raster.psnr(img_gpu, img_cpu)
    else:
        res["gpu"] = None
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
