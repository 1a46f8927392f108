"""Pinhole cameras in the gsplat/OpenCV convention, orbit cameras, 3DGS ``cameras.json`` and camera paths.

A :class:`Camera` holds a world-to-camera 4x4 ``viewmat`` (camera axes: x right, y down, z forward) and the
intrinsics fx, fy, cx, cy of a ``width`` x ``height`` image; a world point p projects to
u = fx x/z + cx, v = fy y/z + cy with (x, y, z) = R p + t, and pixel (i, j) is centred at (i + 0.5, j + 0.5).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.common import UserError
from backends.safeio import check_writable, load_json, write_json
from backends.splat.gaussians import quat_to_rotmat, rotmat_to_quat

UP_AXES = {
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
}


@dataclass(frozen=True, eq=False)
class Camera:
    viewmat: np.ndarray = field(default_factory=lambda: np.eye(4))
    fx: float = 500.0
    fy: float = 500.0
    cx: float = 400.0
    cy: float = 300.0
    width: int = 800
    height: int = 600

    def __post_init__(self) -> None:
        vm = np.asarray(self.viewmat, dtype=np.float64).reshape(4, 4)
        object.__setattr__(self, "viewmat", vm)
        if not np.all(np.isfinite(vm)):
            raise UserError("camera view matrix contains NaN")
        if not (self.fx > 0 and self.fy > 0 and self.width > 0 and self.height > 0):
            raise UserError(
                f"camera needs fx, fy > 0 and a positive size, got fx={self.fx} fy={self.fy} "
                f"size={self.width}x{self.height}"
            )

    @property
    def K(self) -> np.ndarray:  # the usual name
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])

    @property
    def R(self) -> np.ndarray:
        return self.viewmat[:3, :3]

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates: -R^T t."""
        return -self.R.T @ self.viewmat[:3, 3]

    @property
    def fov_y_deg(self) -> float:
        return math.degrees(2 * math.atan(0.5 * self.height / self.fy))

    def resized(self, width: int, height: int) -> Camera:
        """The same view at another image size (vertical field of view kept, principal point scaled)."""
        s = height / self.height
        sx = width / self.width
        return Camera(
            self.viewmat, self.fx * s, self.fy * s, self.cx * sx, self.cy * s, int(width), int(height)
        )

    def to_dict(self) -> dict:
        return {
            "viewmat": self.viewmat.tolist(),
            "fx": self.fx,
            "fy": self.fy,
            "cx": self.cx,
            "cy": self.cy,
            "width": self.width,
            "height": self.height,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        return cls(
            np.asarray(d["viewmat"]), d["fx"], d["fy"], d["cx"], d["cy"], int(d["width"]), int(d["height"])
        )


def from_viewmat_K(viewmat, K, width: int, height: int) -> Camera:
    """gsplat-style camera: world-to-camera 4x4 and 3x3 intrinsics."""
    K = np.asarray(K, dtype=np.float64)
    return Camera(
        np.asarray(viewmat, np.float64), K[0, 0], K[1, 1], K[0, 2], K[1, 2], int(width), int(height)
    )


def focal_for_fov(fov_y_deg: float, height: int) -> float:
    if not 1.0 <= fov_y_deg <= 170.0:
        raise UserError(f"field of view must be 1..170 degrees, got {fov_y_deg}")
    return 0.5 * height / math.tan(math.radians(fov_y_deg) / 2)


def look_at(eye, target, up=(0.0, -1.0, 0.0)) -> np.ndarray:
    """World-to-camera 4x4 for an OpenCV camera at ``eye`` looking at ``target`` with ``up`` upwards."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    f = target - eye
    if np.linalg.norm(f) < 1e-12:
        raise UserError("camera eye and target coincide")
    f /= np.linalg.norm(f)
    r = np.cross(f, up)
    if np.linalg.norm(r) < 1e-9:  # looking along the up axis: pick any perpendicular
        r = np.cross(f, np.array([1.0, 0, 0]) if abs(f[0]) < 0.9 else np.array([0, 0, 1.0]))
    r /= np.linalg.norm(r)
    d = np.cross(f, r)  # camera y (down)
    vm = np.eye(4)
    vm[:3, :3] = np.stack([r, d, f])
    vm[:3, 3] = -vm[:3, :3] @ eye
    return vm


def orbit_basis(up) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = np.asarray(up, np.float64)
    u = u / np.linalg.norm(u)
    a = np.array([0.0, 0.0, 1.0]) if abs(u[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = a - u * (a @ u)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(u, e1)
    return e1, e2, u


def orbit_eye(target, azimuth_deg: float, elevation_deg: float, distance: float, up=(0.0, -1.0, 0.0)):
    e1, e2, u = orbit_basis(up)
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    d = math.cos(el) * (math.cos(az) * e1 + math.sin(az) * e2) + math.sin(el) * u
    return np.asarray(target, np.float64) + distance * d


def orbit_camera(
    target,
    azimuth_deg: float,
    elevation_deg: float,
    distance: float,
    width: int = 800,
    height: int = 600,
    fov_y_deg: float = 50.0,
    up=(0.0, -1.0, 0.0),
) -> Camera:
    """A camera on a sphere around ``target`` (azimuth about ``up``, elevation above the horizon)."""
    if not distance > 0:
        raise UserError(f"orbit distance must be > 0, got {distance}")
    if abs(elevation_deg) >= 89.99:
        elevation_deg = math.copysign(89.9, elevation_deg)
    eye = orbit_eye(target, azimuth_deg, elevation_deg, distance, up)
    f = focal_for_fov(fov_y_deg, height)
    return Camera(look_at(eye, target, up), f, f, width / 2, height / 2, int(width), int(height))


def parse_orbit(text: str) -> tuple[float, float, float]:
    try:
        az, el, dist = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(
            f"malformed --orbit {text!r}: expected AZ,EL,DIST in degrees, degrees, scene units"
        ) from None
    if not all(math.isfinite(v) for v in (az, el, dist)) or dist <= 0:
        raise UserError(f"--orbit {text!r}: values must be finite and DIST > 0")
    return az, el, dist


# -- 3DGS cameras.json -------------------------------------------------------------------------------------
MAX_SIDE = 16384  # the --size cap (backends.common.parse_size)
MAX_CAMERAS = 100_000


def _camera_from_json(c, i: int, name: str) -> Camera:
    """One entry of a cameras.json, every field checked: the message names the file, camera and field."""
    where = f"{name}: camera {i}"
    if not isinstance(c, dict):
        raise UserError(f"{where} is a {type(c).__name__}, not an object")
    for key in ("rotation", "position", "width", "height", "fx", "fy"):
        if key not in c:
            raise UserError(f"{where} lacks the field {key!r}")

    def array(key: str, shape: tuple[int, ...]) -> np.ndarray:
        try:
            v = np.asarray(c[key], np.float64)
        except (TypeError, ValueError):
            raise UserError(f"{where}: field {key!r} is not a list of numbers") from None
        if v.shape != shape:
            raise UserError(f"{where}: field {key!r} has shape {v.shape}, expected {shape}")
        if not np.all(np.isfinite(v)):
            raise UserError(f"{where}: field {key!r} holds NaN or infinity")
        return v

    def number(key: str, lo: float, hi: float, integer: bool = False) -> float:
        v = c[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or (integer and float(v) != int(v)):
            kind = "an integer" if integer else "a number"
            raise UserError(f"{where}: field {key!r} = {v!r} is not {kind}")
        if not (math.isfinite(v) and lo <= v <= hi):
            raise UserError(f"{where}: field {key!r} = {v} out of range {lo:g}..{hi:g}")
        return v

    rot = array("rotation", (3, 3))
    pos = array("position", (3,))
    if np.abs(rot.T @ rot - np.eye(3)).max() > 1e-3 or abs(np.linalg.det(rot) - 1) > 1e-3:
        raise UserError(f"{where}: field 'rotation' is not a rotation matrix (orthonormal, determinant 1)")
    if np.abs(pos).max() > 1e15:
        raise UserError(f"{where}: field 'position' is beyond 1e15 scene units")
    w = int(number("width", 1, MAX_SIDE, integer=True))
    h = int(number("height", 1, MAX_SIDE, integer=True))
    fx = float(number("fx", 1e-3, 1e7))
    fy = float(number("fy", 1e-3, 1e7))
    vm = np.eye(4)
    vm[:3, :3] = rot.T
    vm[:3, 3] = -rot.T @ pos
    return Camera(vm, fx, fy, w / 2, h / 2, w, h)


def load_cameras_json(path: str | os.PathLike) -> list[Camera]:
    """The INRIA 3DGS ``cameras.json``: camera-to-world ``rotation`` (3x3) and ``position``, fx, fy.

    Sizes are capped like ``--size`` (1..16384 per side), focal lengths must be finite and positive, and the
    rotation must be one: a bad camera is an error naming the file, the camera and the field."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"cannot open cameras file {p}: no such file")
    items = load_json(p, "cameras file")
    if not isinstance(items, list) or not items:
        raise UserError(f"{p.name}: expected a non-empty list of cameras")
    if len(items) > MAX_CAMERAS:
        raise UserError(f"{p.name}: {len(items):,} cameras, more than the {MAX_CAMERAS:,} allowed")
    return [_camera_from_json(c, i, p.name) for i, c in enumerate(items)]


def save_cameras_json(path: str | os.PathLike, cams: list[Camera]) -> Path:
    p = check_writable(path, suffixes=(".json",), what="cameras")
    out = []
    for i, c in enumerate(cams):
        out.append(
            {
                "id": i,
                "img_name": f"{i:05d}",
                "width": c.width,
                "height": c.height,
                "position": c.position.tolist(),
                "rotation": c.R.T.tolist(),
                "fx": c.fx,
                "fy": c.fy,
            }
        )
    return write_json(p, out, indent=1)


def camera_from_spec(spec: str) -> Camera:
    """``cameras.json#INDEX`` -> that camera, with a clear message for an unknown index."""
    path, _, idx = spec.partition("#")
    cams = load_cameras_json(path)
    try:
        i = int(idx or 0)
    except ValueError:
        raise UserError(f"camera index {idx!r} is not an integer") from None
    if not 0 <= i < len(cams):
        raise UserError(f"unknown camera index {i}: {Path(path).name} holds cameras 0..{len(cams) - 1}")
    return cams[i]


# -- camera paths ------------------------------------------------------------------------------------------
def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    q0, q1 = np.asarray(q0, np.float64), np.asarray(q1, np.float64)
    d = float(q0 @ q1)
    if d < 0:
        q1, d = -q1, -d
    if d > 0.9995:
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    th = math.acos(min(d, 1.0))
    return (math.sin((1 - s) * th) * q0 + math.sin(s * th) * q1) / math.sin(th)


def catmull_rom(p0, p1, p2, p3, s: float) -> np.ndarray:
    """Uniform Catmull-Rom segment between p1 (s=0) and p2 (s=1)."""
    s2, s3 = s * s, s * s * s
    return 0.5 * (
        (2 * p1) + (-p0 + p2) * s + (2 * p0 - 5 * p1 + 4 * p2 - p3) * s2 + (-p0 + 3 * p1 - 3 * p2 + p3) * s3
    )


@dataclass(frozen=True)
class CameraPath:
    """Keyframe cameras; positions follow a Catmull-Rom spline, orientations slerp, intrinsics lerp."""

    keys: tuple[Camera, ...]

    def __post_init__(self) -> None:
        if len(self.keys) < 2:
            raise UserError("a camera path needs at least 2 keyframes")

    def at(self, u: float) -> Camera:
        """Camera at path parameter u in [0, 1] (keyframes at equal spacing)."""
        n = len(self.keys) - 1
        x = min(max(u, 0.0), 1.0) * n
        i = min(int(x), n - 1)
        s = x - i
        k = self.keys
        pos = [c.position for c in (k[max(i - 1, 0)], k[i], k[i + 1], k[min(i + 2, n)])]
        p = catmull_rom(*pos, s)
        q = slerp(rotmat_to_quat(k[i].R)[0], rotmat_to_quat(k[i + 1].R)[0], s)
        r = quat_to_rotmat(q[None])[0]
        vm = np.eye(4)
        vm[:3, :3] = r
        vm[:3, 3] = -r @ p
        a, b = k[i], k[i + 1]

        def lerp(x0, x1):
            return (1 - s) * x0 + s * x1

        return Camera(
            vm, lerp(a.fx, b.fx), lerp(a.fy, b.fy), lerp(a.cx, b.cx), lerp(a.cy, b.cy), a.width, a.height
        )

    def sample(self, frames: int) -> list[Camera]:
        return [self.at(i / max(frames - 1, 1)) for i in range(frames)]


def turntable(
    target,
    distance: float,
    elevation_deg: float,
    frames: int,
    width: int,
    height: int,
    fov_y_deg: float = 50.0,
    up=(0.0, -1.0, 0.0),
    start_deg: float = 0.0,
) -> list[Camera]:
    return [
        orbit_camera(
            target, start_deg + 360.0 * i / frames, elevation_deg, distance, width, height, fov_y_deg, up
        )
        for i in range(frames)
    ]
