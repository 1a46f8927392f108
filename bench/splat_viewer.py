"""GL viewer frame time vs Gaussian count at 800x600 (Mesa llvmpipe under Xvfb), and the reference rasterizer
on the same scene and camera in the same run (ratio).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/splat_viewer.py [--counts 100000,300000,1000000]
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

import numpy as np  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100000,300000,1000000")
    ap.add_argument("--size", default="800x600")
    ap.add_argument("--lod", type=int, default=200_000)
    ap.add_argument("--reference-count", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the reference renderer")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    import torch

    torch.set_num_threads(args.threads)
    from app.gl import setup_qt_for_vispy

    setup_qt_for_vispy()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])  # noqa: F841
    from vispy import gloo

    from backends.splat import camera as cm
    from backends.splat import raster
    from bench.splat_common import synthetic_scene
    from panels.splat import visuals

    canvas, node = visuals.make_splat_canvas((w, h), (0, 0, 0))
    cam = cm.orbit_camera((0, 0.3, 0), 30, 20, 7.0, w, h)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{gloo.gl.glGetParameter(gloo.gl.GL_RENDERER) if False else ''}",
        "size": [w, h],
        "rows": [],
    }

    def draw_time(rows):
        node.set_rows(rows)
        node.set_camera(cam)
        canvas.render(size=(w, h))  # warm up (upload)
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            canvas.render(size=(w, h))  # draw + glFinish + 800x600 read-back
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    renderer = None
    for n in (int(c) for c in args.counts.split(",")):
        g = synthetic_scene(n)
        rows = visuals.scene_rows(g, cam)
        t0 = time.perf_counter()
        srt = visuals.sort_back_to_front(rows, cam.viewmat)
        sort_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        node.set_rows(srt)
        upload_s = time.perf_counter() - t0
        full = draw_time(srt)
        if renderer is None:
            renderer = gloo.gl.glGetParameter(gloo.gl.GL_RENDERER)
        row = {"count": n, "draw_s": full, "fps_still": 1 / full, "sort_s": sort_s, "upload_s": upload_s}
        if n > args.lod:
            keep = np.sort(np.argpartition(-rows[:, 12], args.lod)[: args.lod])
            lod = visuals.sort_back_to_front(rows[keep], cam.viewmat)
            t = draw_time(lod)
            row.update({"lod_count": args.lod, "draw_lod_s": t, "fps_moving": 1 / t})
        else:
            row["fps_moving"] = 1 / full
        if n == args.reference_count:
            img_gl = canvas.render(size=(w, h))
            t0 = time.perf_counter()
            ref = raster.render(g, cam, (0, 0, 0))
            row["reference_s"] = time.perf_counter() - t0
            row["reference_over_gl"] = row["reference_s"] / full
            row["psnr_gl_vs_reference_db"] = raster.psnr(img_gl[..., :3] / 255.0, ref)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    results["renderer"] = renderer
    print(json.dumps(results, indent=1))
    canvas.close()


if __name__ == "__main__":
    main()
