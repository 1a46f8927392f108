"""Point clouds as splat scenes: PLY x/y/z(+colour) in binary and ASCII, gsplat's garden SfM points with cameras,
the Gaussian size from neighbour spacing, and camera frusta whose far corners project onto the image corners."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import UserError, drain
from backends.splat import io, pointcloud, samples
from backends.splat.live import load_scene_gen
from backends.splat.sh import SH_C0
from tests.conftest import shared_data


def _write_ply(path, xyz, rgb=None, ascii=False):
    props = "property float x\nproperty float y\nproperty float z\n"
    if rgb is not None:
        props += "property uchar red\nproperty uchar green\nproperty uchar blue\n"
    fmt = "ascii" if ascii else "binary_little_endian"
    head = f"ply\nformat {fmt} 1.0\nelement vertex {len(xyz)}\n{props}end_header\n".encode()
    if ascii:
        rows = [
            " ".join([*(f"{v:.6f}" for v in p), *(str(int(c)) for c in (rgb[i] if rgb is not None else []))])
            for i, p in enumerate(xyz)
        ]
        path.write_bytes(head + ("\n".join(rows) + "\n").encode())
        return
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")] + (
        [("r", "u1"), ("g", "u1"), ("b", "u1")] if rgb is not None else []
    )
    rec = np.empty(len(xyz), fields)
    for i, k in enumerate("xyz"):
        rec[k] = xyz[:, i]
    if rgb is not None:
        for i, k in enumerate("rgb"):
            rec[k] = rgb[:, i]
    path.write_bytes(head + rec.tobytes())


@pytest.mark.parametrize("ascii", [False, True])
def test_point_ply_becomes_gaussians_sized_by_spacing(tmp_path, ascii):
    h = 0.2  # a 6x6x6 grid: interior points have 6 neighbours at distance h, so sigma = 0.5 h
    g1 = np.arange(6) * h
    xyz = np.stack(np.meshgrid(g1, g1, g1, indexing="ij"), -1).reshape(-1, 3)
    rgb = np.random.default_rng(0).integers(0, 256, (len(xyz), 3))
    path = tmp_path / "pts.ply"
    _write_ply(path, xyz, rgb, ascii)
    assert pointcloud.is_point_ply(path) and not pointcloud.is_point_ply(samples.SAMPLE_3D)
    scene = drain(load_scene_gen("file", str(path)))
    g = scene.gaussians
    assert g.count == 216 and scene.cameras == ()
    np.testing.assert_allclose(g.means, xyz, atol=1e-5)
    np.testing.assert_allclose(g.sh[:, 0] * SH_C0 + 0.5, rgb / 255.0, atol=1e-5)  # colours in the DC term
    np.testing.assert_allclose(g.scales, 0.5 * h, rtol=1e-5)
    assert np.allclose(g.opacities, pointcloud.POINT_OPACITY)


def test_xyz_only_ply_is_grey_and_bad_files_say_why(tmp_path):
    path = tmp_path / "plain.ply"
    _write_ply(path, np.random.default_rng(1).normal(size=(50, 3)))
    g = drain(load_scene_gen("file", str(path))).gaussians
    np.testing.assert_allclose(g.sh[:, 0] * SH_C0 + 0.5, 0.7, atol=1e-6)
    (tmp_path / "cut.ply").write_bytes(path.read_bytes()[:-40])
    with pytest.raises(UserError, match="cut.ply is truncated"):
        drain(load_scene_gen("file", str(tmp_path / "cut.ply")))
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(UserError, match="other.npz: not a point cloud with cameras .*means3d"):
        drain(load_scene_gen("file", str(tmp_path / "other.npz")))


@pytest.mark.data
def test_garden_points_and_cameras():
    path = shared_data("splat", "gsplat_test_garden.npz")
    scene = drain(load_scene_gen("file", str(path)))
    g, cams = scene.gaussians, scene.cameras
    assert g.count == 138_766 and len(cams) == 3
    assert all((c.width, c.height) == (648, 420) for c in cams)
    raw = np.load(path)
    np.testing.assert_allclose(g.means, raw["means3d"], atol=1e-6)
    np.testing.assert_allclose(g.sh[:, 0] * SH_C0 + 0.5, raw["colors"] / 255.0, atol=1e-5)
    for i, cam in enumerate(cams):
        np.testing.assert_allclose(cam.viewmat, raw["viewmats"][i], atol=1e-6)
        seg = pointcloud.frustum_segments(cam, 0.5)
        np.testing.assert_allclose(seg[0], cam.position, atol=1e-9)  # segments start at the eye
        far = seg[1:8:2]  # the four corners: at depth 0.5, projecting onto the image corners
        pc = far @ cam.R.T + cam.viewmat[:3, 3]
        np.testing.assert_allclose(pc[:, 2], 0.5, atol=1e-9)
        px = np.c_[cam.fx * pc[:, 0] / pc[:, 2] + cam.cx, cam.fy * pc[:, 1] / pc[:, 2] + cam.cy]
        # (the stored rotations are float32, orthonormal to ~1e-7: 1e-4 px)
        np.testing.assert_allclose(px, [(0, 0), (648, 0), (648, 420), (0, 420)], atol=1e-4)
    # a splat .ply still opens as splats
    assert (
        drain(load_scene_gen("file", str(samples.SAMPLE_3D))).gaussians.count
        == io.load(samples.SAMPLE_3D).count
    )
