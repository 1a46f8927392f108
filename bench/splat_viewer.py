"""Splat viewer frame time vs Gaussian count at 800x600 (Mesa llvmpipe under Xvfb), both viewer renderers
(``gl``: instanced quads; ``cpu``: the numba tile rasterizer drawn as one texture) side by side, with the
reference rasterizer on the same scene and camera in the same run (ratio, PSNR).

Off-screen (``canvas.render``: draw + glFinish + read-back): the full-quality still frame, and a moving frame
(the most important ``--lod`` splats at ``--moving-scale`` resolution). On screen (``--onscreen S``): the
splat panel (``--viewer``) in a window whose canvas is ``--size``, turned by 1 degree per frame for S seconds
as a mouse drag does, twice: with its defaults (adaptive detail while moving: frames/s, the splat count it
settles on, the time from the last move to the full-quality frame and the longest GUI block meanwhile), and
at full quality in every frame (all splats, full resolution).

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

import numpy as np


def onscreen(g, w: int, h: int, seconds: float, moving_fps: float, viewer: str, full: bool = False) -> dict:
    """Frames/s of the real panel while its view turns continuously, then the time to full quality.
    ``full``: every splat at full resolution in every frame (no reduced detail while moving)."""
    from PySide6.QtWidgets import QApplication

    from panels.splat.panel import SplatPanel

    qapp = QApplication.instance()
    p = SplatPanel()
    p.model.set_params(moving_fps=moving_fps, viewer=viewer)
    if full:
        p.model.set_params(moving_fps=1.0, moving_scale=1.0, lod_count=max(g.count, 1000))
    p.canvas_obj.native.setFixedSize(w, h)
    p.show()
    for _ in range(10):
        qapp.processEvents()
        time.sleep(0.02)
    p.model.set_scene(g, reset=True)
    p.model.rows_complete()  # a big scene builds its rows in a worker: here, at once
    frames = [0]
    p.canvas_obj.events.draw.connect(lambda ev: frames.__setitem__(0, frames[0] + 1), position="last")
    counts = []
    longest = [0.0]  # the longest the GUI thread was busy in one go (a paint, a chunk of a still frame)

    def events():
        t0 = time.perf_counter()
        qapp.processEvents()
        longest[0] = max(longest[0], time.perf_counter() - t0)

    def next_frame(timeout=30.0):
        f0, t0 = frames[0], time.perf_counter()
        while frames[0] == f0 and time.perf_counter() - t0 < timeout:
            events()

    next_frame()
    p.model.rotate(1.0, 0.0)  # warm-up: first moving frames size the level of detail
    for _ in range(5):
        next_frame()
        p.model.rotate(1.0, 0.0)
    f0, t0 = frames[0], time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        p.model.rotate(1.0, 0.0)
        next_frame()
        counts.append(p.node.count)
    moving_s = time.perf_counter() - t0
    fps = (frames[0] - f0) / moving_s
    t_stop = time.perf_counter()
    longest[0] = 0.0
    while p.node.timed or p.node.count != g.count:
        events()
        if time.perf_counter() - t_stop > 300:
            break
    next_frame()  # the first full-detail paint (the only one, or the first chunk)
    while p.node.pending:
        next_frame()
    settle = time.perf_counter() - t_stop
    tag = "onscreen_full" if full else "onscreen"
    out = {
        f"{tag}_viewer": p.node.active_renderer,
        f"{tag}_canvas": list(p.canvas_obj.size),
        f"{tag}_fps_moving": fps,
        f"{tag}_moving_splats_median": int(np.median(counts)) if counts else 0,
        f"{tag}_moving_scale": p.model.params.moving_scale,
        f"{tag}_still_after_s": settle,
        f"{tag}_longest_gui_block_s": longest[0],
    }
    p.shutdown()
    p.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="100000,300000,1000000")
    ap.add_argument("--size", default="800x600")
    ap.add_argument("--lod", type=int, default=50_000, help="splats of the off-screen moving frame")
    ap.add_argument("--moving-scale", type=float, default=0.5)
    ap.add_argument("--moving-fps", type=float, default=15.0, help="the panel's target while moving")
    ap.add_argument("--onscreen", type=float, default=4.0, help="seconds of on-screen motion (0: skip)")
    ap.add_argument("--reference-count", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the reference renderer")
    ap.add_argument("--viewer", default="auto", help="the panel's viewer renderer on screen: auto, gl or cpu")
    ap.add_argument("--skip-offscreen", action="store_true", help="only the on-screen panel measurements")
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

    canvas, node = visuals.make_splat_canvas((w, h), (0, 0, 0), renderer="gl")
    cam = cm.orbit_camera((0, 0.3, 0), 30, 20, 7.0, w, h)
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start",
        "size": [w, h],
        "rows": [],
    }

    def draw_time(rows, scale=1.0):
        node.set_rows(rows)
        node.set_camera(cam)
        node.scale = scale
        canvas.render(size=(w, h))  # warm up (upload, compilation)
        ts = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            canvas.render(size=(w, h))  # draw + glFinish + read-back
            ts.append(time.perf_counter() - t0)
        node.scale = 1.0
        return float(np.median(ts))

    renderer = None
    for n in (int(c) for c in args.counts.split(",")) if not args.skip_offscreen else ():
        g = synthetic_scene(n)
        rows = visuals.scene_rows(g, cam)
        t0 = time.perf_counter()
        srt = visuals.sort_back_to_front(rows, cam.viewmat)
        sort_s = time.perf_counter() - t0
        row = {"count": n, "sort_s": sort_s}
        ref = None
        if n == args.reference_count:
            t0 = time.perf_counter()
            ref = raster.render(g, cam, (0, 0, 0))
            row["reference_s"] = time.perf_counter() - t0
        # the moving frame: the panel's importance order (opacity x size), a prefix of it, lower resolution
        covs = g.covariances()
        imp = g.opacities * np.prod(np.sqrt(np.einsum("nii->ni", covs)), 1) ** (1 / 3)
        keep = np.argsort(-imp, kind="stable")[: min(args.lod, n)]
        lod = visuals.sort_back_to_front(rows[keep], cam.viewmat)
        for r in ("gl", "cpu"):  # the same visual with either renderer, side by side
            node.renderer, node.active_renderer = r, ""
            full = draw_time(srt)
            row.update({f"{r}_draw_s": full, f"{r}_fps_still": 1 / full})
            if ref is not None:
                node.set_rows(srt)
                img = canvas.render(size=(w, h))
                row[f"{r}_psnr_vs_reference_db"] = raster.psnr(img[..., :3] / 255.0, ref)
                row[f"reference_over_{r}"] = row["reference_s"] / full
            t = draw_time(lod, args.moving_scale)
            row.update({f"{r}_draw_moving_s": t, "lod_count": len(keep), "moving_scale": args.moving_scale})
        if renderer is None:
            renderer = gloo.gl.glGetParameter(gloo.gl.GL_RENDERER)
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    for n in (int(c) for c in args.counts.split(",")) if args.onscreen > 0 else ():
        g = synthetic_scene(n)
        row = {"count": n}
        row.update(onscreen(g, w, h, args.onscreen, args.moving_fps, args.viewer))
        row.update(onscreen(g, w, h, args.onscreen, args.moving_fps, args.viewer, full=True))
        results["rows"].append(row)
        print(json.dumps(row), flush=True)
    results["renderer"] = renderer
    results["load_average_end"] = os.getloadavg()[0]
    print(json.dumps(results, indent=1))
    canvas.close()


if __name__ == "__main__":
    main()
