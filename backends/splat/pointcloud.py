"""Point clouds as splat scenes: a ``.ply`` with only x, y, z (and colour), and SfM points with their cameras
(gsplat's ``test_garden.npz``: ``means3d``, ``colors``, ``viewmats``, ``Ks``, ``width``, ``height``).

Each point becomes an isotropic, nearly opaque Gaussian whose size is half the mean distance to its three
nearest neighbours, so a cloud renders as a closed surface where it is dense and as dots where it is sparse.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backends.common import Progress, UserError
from backends.splat import io
from backends.splat.camera import Camera, from_viewmat_K
from backends.splat.gaussians import Gaussians
from backends.splat.sh import SH_C0

#: the Gaussian properties whose presence makes a PLY a splat scene rather than a point cloud
SPLAT_PROPERTIES = ("opacity", "scale_0", "packed_position")
#: neighbours whose mean distance sizes a point's Gaussian, and the fraction of it used as sigma
NEIGHBOURS = 3
SIGMA_FRACTION = 0.5
POINT_OPACITY = 0.95
GARDEN_KEYS = ("means3d", "colors", "viewmats", "Ks", "width", "height")


@dataclass(frozen=True)
class PointScene:
    """A point cloud as Gaussians, with the cameras that observed it (possibly none)."""

    gaussians: Gaussians
    cameras: tuple[Camera, ...] = ()


def is_point_ply(path: str | Path) -> bool:
    """The PLY's vertices have x, y, z but none of the Gaussian properties (opacity, scales, packed data)."""
    p = Path(path)
    with open(p, "rb") as fh:
        _fmt, elements, _offset, _ = io.read_ply_header(fh, p)
    vert = next((el for el in elements if el.name == "vertex"), None)
    if vert is None:
        return False
    names = set(vert.names())
    return {"x", "y", "z"} <= names and not names & set(SPLAT_PROPERTIES)


def read_point_ply(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(xyz (N, 3) float64, rgb (N, 3) in [0, 1] or None) of a PLY point cloud (ascii or binary)."""
    p = Path(path)
    with open(p, "rb") as fh:
        fmt, elements, offset, _ = io.read_ply_header(fh, p)
        before = 0
        for el in elements:
            if el.name == "vertex":
                break
            if el.count and fmt == "ascii":
                raise UserError(f"{p.name}: ASCII PLY with elements before 'vertex' is not supported")
            before += el.dtype.itemsize * el.count
        else:
            raise UserError(f"{p.name}: PLY file has no 'vertex' element")
        if fmt == "ascii":
            text = fh.read().decode("ascii", errors="replace").split()
            n = len(el.props) * el.count
            if len(text) < n:
                raise UserError(f"{p.name}: truncated ASCII PLY ({len(text)} of {n} values)")
            try:
                table = np.asarray(text[:n], np.float64).reshape(el.count, len(el.props))
            except ValueError:
                raise UserError(f"{p.name}: ASCII PLY holds a value that is not a number") from None
            rec = {name: table[:, j] for j, name in enumerate(el.names())}
        else:
            fh.seek(offset + before)
            raw = fh.read(el.dtype.itemsize * el.count)
            if len(raw) < el.dtype.itemsize * el.count:
                raise UserError(f"{p.name} is truncated: {el.count:,} vertices promised, fewer follow")
            arr = np.frombuffer(raw, el.dtype, el.count)
            rec = {name: arr[name] for name in el.names()}
    xyz = np.stack([rec[k] for k in "xyz"], 1).astype(np.float64)
    rgb = None
    for keys in (("red", "green", "blue"), ("r", "g", "b")):
        if all(k in rec for k in keys):
            col = np.stack([rec[k] for k in keys], 1).astype(np.float64)
            integer = all(np.dtype(t).kind in "ui" for n, t in el.props if n in keys)
            rgb = col / 255.0 if integer or col.max() > 1.0 else col
            break
    return xyz, rgb


def points_to_gaussians(xyz: np.ndarray, rgb: np.ndarray | None = None, source: str = "") -> Gaussians:
    """Isotropic Gaussians at the points: sigma = SIGMA_FRACTION x mean distance to the NEIGHBOURS nearest
    points (clipped to the 5th..95th percentile, so isolated points do not become huge blobs); colour in
    the SH DC term (grey without colours)."""
    from scipy.spatial import cKDTree

    xyz = np.asarray(xyz, np.float64)
    n = len(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or n == 0:
        raise UserError(f"{source or 'point cloud'}: expected (N, 3) points, got shape {xyz.shape}")
    if not np.all(np.isfinite(xyz)):
        raise UserError(f"{source or 'point cloud'}: point coordinates contain NaN or infinity")
    if n > 1:
        k = min(NEIGHBOURS + 1, n)
        d, _ = cKDTree(xyz).query(xyz, k=k)
        spacing = d[:, 1:].mean(1)
        lo, hi = np.percentile(spacing, [5, 95])
        spacing = np.clip(spacing, max(lo, 1e-9), max(hi, lo, 1e-9))
    else:
        spacing = np.ones(1)
    sigma = (SIGMA_FRACTION * spacing).astype(np.float32)
    colours = np.full((n, 3), 0.7) if rgb is None else np.clip(np.asarray(rgb, np.float64), 0, 1)
    return Gaussians(
        means=xyz.astype(np.float32),
        scales=np.repeat(sigma[:, None], 3, 1),
        quats=np.tile(np.array([1.0, 0, 0, 0], np.float32), (n, 1)),
        opacities=np.full(n, POINT_OPACITY, np.float32),
        sh=((colours - 0.5) / SH_C0)[:, None, :].astype(np.float32),
        source=source,
    )


def read_garden_npz(path: str | Path) -> PointScene:
    """gsplat's SfM test scene: points with colours (uint8) and cameras (world-to-camera 4x4, intrinsics)."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as d:
            missing = [k for k in GARDEN_KEYS if k not in d.files]
            if missing:
                raise UserError(
                    f"{p.name}: not a point cloud with cameras (no {', '.join(missing)}; expected the keys "
                    f"{', '.join(GARDEN_KEYS)})"
                )
            data = {k: d[k] for k in GARDEN_KEYS}
    except (OSError, ValueError) as exc:
        raise UserError(f"{p.name}: cannot read as NPZ ({exc})") from None
    xyz, col, vms, ks = (np.asarray(data[k]) for k in ("means3d", "colors", "viewmats", "Ks"))
    w, h = int(data["width"]), int(data["height"])
    if col.shape != xyz.shape or vms.ndim != 3 or vms.shape[1:] != (4, 4) or ks.shape != (len(vms), 3, 3):
        raise UserError(
            f"{p.name}: inconsistent shapes: means3d {xyz.shape}, colors {col.shape}, viewmats {vms.shape}, "
            f"Ks {ks.shape}"
        )
    rgb = col / 255.0 if col.dtype.kind in "ui" else col
    cams = tuple(from_viewmat_K(vm, k, w, h) for vm, k in zip(vms, ks, strict=True))
    return PointScene(points_to_gaussians(xyz, rgb, p.name), cams)


def load_points_gen(path: str | Path) -> Iterator:
    """Yield Progress; return a :class:`PointScene` from a point PLY or a points-and-cameras NPZ."""
    p = Path(path)
    yield Progress(None, f"reading points from {p.name}")
    if p.suffix.lower() == ".npz":
        return read_garden_npz(p)
    xyz, rgb = read_point_ply(p)
    yield Progress(0.5, f"sizing {len(xyz):,} points")
    return PointScene(points_to_gaussians(xyz, rgb, p.name))


def frustum_segments(cam: Camera, depth: float) -> np.ndarray:
    """(16, 3) world points, pairs of segment ends: the apex to the four image corners at ``depth`` along the
    view axis, and the rectangle joining those corners."""
    corners_px = [(0, 0), (cam.width, 0), (cam.width, cam.height), (0, cam.height)]
    corners = []
    for u, v in corners_px:
        ray = np.array([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0]) * depth
        corners.append(cam.R.T @ (ray - cam.viewmat[:3, 3]))
    apex = cam.position
    segs = [(apex, c) for c in corners] + [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    return np.asarray(segs, np.float64).reshape(-1, 3)
