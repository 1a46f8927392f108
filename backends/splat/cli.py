"""Headless CLI of the Gaussian-splat domain.

``visual-lab run splat convert IN OUT [edits]`` and ``visual-lab run splat info FILE``;
``visual-lab render splat SCENE (--camera cameras.json#INDEX | --orbit AZ,EL,DIST) [--size 800x600]
[--time T] [--renderer reference|gl|cpu] [--background R,G,B] --out img.png``. ``cpu`` is the numba tile
rasterizer (the viewer's renderer on software OpenGL): the reference's compositing, ~50x faster on a CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from backends.common import Progress, UserError, drain, parse_size
from backends.options import ArgParser, Bound, check, check_device
from backends.safeio import check_writable, write_bytes
from backends.splat import camera as cm
from backends.splat import edits, io
from backends.splat.gaussians import MAX_COORD

_Parser = ArgParser  # argparse errors become one-line UserErrors (exit 2 in the shell)

# The documented range of every numeric option (docs/options.md is generated from these tables).
CONVERT_BOUNDS = {
    "min_opacity": Bound(0, 1),
    "max_scale": Bound(0, MAX_COORD, note="scene units, 0 = off"),
    "sh_degree": Bound(0, 3),
    "subsample": Bound(0, 1, open_lo=True, note="fraction of the Gaussians kept"),
    "seed": Bound(0, 2**63 - 1),
}
RENDER_BOUNDS = {
    "time": Bound(-1e6, 1e6, note="scene time of a 4D scene"),
    "fov": Bound(1, 179, note="degrees"),
}
MEMORY = (
    "a scene takes `4 x (14 + 3 (d + 1)^2)` bytes per Gaussian in memory (SH degree d: 248 bytes at d = 3, "
    "+24 for 4D); loading needs about twice that and is refused when it exceeds the free memory; compressed "
    ".spz streams are inflated only up to the size their header announces."
)
RENDER_MEMORY = (
    MEMORY + " Rendering adds the image (`width x height x 16` bytes; sizes are capped at 16384 per side, "
    "from `--size` or from cameras.json) and about 100 bytes per visible Gaussian for the projections."
)


def _floats(text: str, n: int, what: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"malformed {what} {text!r}: expected {n} comma-separated numbers") from None
    if len(vals) != n or not all(np.isfinite(vals)):
        raise UserError(f"malformed {what} {text!r}: expected {n} finite comma-separated numbers")
    return vals


def _load_with_progress(paths: list[str], quiet: bool):
    last = 0.0

    def report(item) -> None:
        nonlocal last
        if isinstance(item, Progress) and not quiet and time.monotonic() - last > 1.0:
            print(f"  {item.message}", file=sys.stderr)
            last = time.monotonic()

    scenes = []
    for p in paths:
        last = 0.0
        scenes.append(drain(io.load_gen(p), report))
    if len(scenes) == 1:
        return scenes[0]
    from backends.splat.gaussians import concat

    return concat(scenes)


def build_parser() -> ArgParser:
    ap = _Parser(prog="visual-lab run splat", description="Gaussian-splat files: convert, edit, inspect.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="convert/edit IN (.ply/.splat/.spz) to OUT (.ply/.splat)")
    c.add_argument(
        "inputs", nargs="+", help="input file(s) then the output file; several inputs become blocks"
    )
    c.add_argument("--min-opacity", type=float, default=0.0)
    c.add_argument("--max-scale", type=float, default=0.0, help="clamp scales (scene units, 0 = off)")
    c.add_argument("--crop", default=None, help="XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX")
    c.add_argument("--sh-degree", type=int, default=3)
    c.add_argument("--subsample", type=float, default=1.0)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--quiet", action="store_true")
    i = sub.add_parser("info", help="print count, SH degree, bounds and memory of a file")
    i.add_argument("file")
    s = sub.add_parser("samples", help="regenerate the bundled sample scenes")
    s.add_argument("folder", nargs="?", default=None)
    return ap


def convert_parser() -> ArgParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["convert"]


def main(argv: list[str]) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.cmd == "convert":
        check(args, CONVERT_BOUNDS, convert_parser())
    if args.cmd == "info":
        t0 = time.perf_counter()
        g = io.load(args.file)
        lo, hi = g.bounds()
        print(
            f"{Path(args.file).name}: {g.count:,} Gaussians, SH degree {g.sh_degree}, {'4D' if g.is_4d else '3D'}, "
            f"bounds {np.round(lo, 3).tolist()}..{np.round(hi, 3).tolist()}, {g.nbytes() / 2**20:.1f} MiB, "
            f"extras {sorted(g.extras)}, loaded in {time.perf_counter() - t0:.2f} s"
        )
        return 0
    if args.cmd == "samples":
        from backends.splat import samples

        return samples.main([args.folder] if args.folder else [])
    if len(args.inputs) < 2:
        raise UserError("convert needs an input and an output file")
    *ins, out = args.inputs
    crop_min = crop_max = None
    if args.crop:
        v = _floats(args.crop, 6, "--crop")
        crop_min, crop_max = v[:3], v[3:]
    cfg = edits.EditConfig(
        min_opacity=args.min_opacity,
        max_scale=args.max_scale,
        crop_min=crop_min,
        crop_max=crop_max,
        sh_degree=args.sh_degree,
        subsample=args.subsample,
        seed=args.seed,
    )
    io.check_out(out, inputs=ins)
    t0 = time.perf_counter()
    g = _load_with_progress(ins, args.quiet)
    e = edits.apply_edits(g, cfg)
    if e.count == 0:
        raise UserError("the edits removed every Gaussian: nothing to write")
    io.save(out, e, inputs=ins)
    print(
        f"wrote {out}: {e.count:,} of {g.count:,} Gaussians (SH degree {e.sh_degree}) "
        f"in {time.perf_counter() - t0:.2f} s"
    )
    return 0


def render_parser() -> ArgParser:
    ap = _Parser(prog="visual-lab render splat", description="Render a Gaussian-splat scene to a PNG.")
    ap.add_argument("scene", nargs="+", help=".ply/.splat/.spz file(s); several are combined")
    cam = ap.add_mutually_exclusive_group(required=True)
    cam.add_argument("--camera", help="cameras.json#INDEX (3DGS format)")
    cam.add_argument("--orbit", help="AZ,EL,DIST: degrees, degrees, multiples of the scene radius")
    ap.add_argument(
        "--size", default=None, help="WIDTHxHEIGHT (default: the camera's own size, 800x600 for --orbit)"
    )
    ap.add_argument("--time", type=float, default=None, help="time for 4D scenes")
    ap.add_argument("--renderer", choices=("reference", "gl", "cpu"), default="reference")
    ap.add_argument("--background", default="0,0,0", help="R,G,B in [0, 1]")
    ap.add_argument("--up", default="-y", choices=sorted(cm.UP_AXES), help="world up axis for --orbit")
    ap.add_argument("--fov", type=float, default=50.0, help="vertical field of view for --orbit (degrees)")
    ap.add_argument("--device", default="cpu", help="torch device of the reference renderer (cpu, cuda)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--quiet", action="store_true")
    return ap


def render_main(argv: list[str], gl_renderer=None) -> int:
    """``gl_renderer(gaussians, camera, background, time=...) -> RGBA`` is supplied by the GUI layer
    (``panels.splat.render_cli``); backends never import it."""
    ap = render_parser()
    args = check(ap.parse_args(argv), RENDER_BOUNDS, ap)
    if args.renderer == "reference":
        check_device(args.device)
    try:
        w, h = parse_size(args.size or "800x600")
    except UserError as exc:
        raise UserError(f"--size: {exc}") from None
    bg = _floats(args.background, 3, "--background")
    if not all(0 <= v <= 1 for v in bg):
        raise UserError(f"--background {args.background!r}: components must be in [0, 1]")
    check_writable(args.out, suffixes=(".png",), inputs=args.scene, what="--out")
    # everything the user typed is checked before the (possibly long) load
    camera = cm.camera_from_spec(args.camera) if args.camera else None
    orbit = None if args.camera else cm.parse_orbit(args.orbit)
    g = _load_with_progress(args.scene, args.quiet)
    if camera is not None:
        camera = camera.resized(w, h) if args.size else camera
        w, h = camera.width, camera.height
    else:
        az, el, dist = orbit
        center, radius = g.robust_center_radius()
        camera = cm.orbit_camera(center, az, el, dist * radius, w, h, args.fov, cm.UP_AXES[args.up])
    t0 = time.perf_counter()
    if args.renderer == "gl":
        if gl_renderer is None:
            raise UserError("the GL renderer is not available here; use --renderer reference")
        rgba = gl_renderer(g, camera, bg, time=args.time)
    elif args.renderer == "cpu":
        from backends.splat import tile_raster

        rgb = tile_raster.render_rows(tile_raster.scene_rows(g, camera, args.time), camera, bg)
        rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    else:
        import torch

        from backends.splat import raster

        if args.device.startswith("cuda") and not torch.cuda.is_available():
            raise UserError("--device cuda requested but no CUDA GPU is available")
        rgba = raster.to_rgba8(drain(raster.render_gen(g, camera, bg, time=args.time, device=args.device)))
    _save_png(args.out, rgba)
    print(
        f"rendered {g.count:,} Gaussians at {w}x{h} with the {args.renderer} renderer in "
        f"{time.perf_counter() - t0:.2f} s -> {args.out}"
    )
    return 0


def _save_png(path: str, rgba: np.ndarray) -> None:
    import imageio.v3 as iio

    write_bytes(path, iio.imwrite("<bytes>", np.asarray(rgba, np.uint8), extension=".png"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
