"""Reference rasterizer vs an independent per-pixel numpy implementation; camera conventions on real data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from backends.common import UserError
from backends.splat import camera as cm
from backends.splat import io, raster
from backends.splat.gaussians import Gaussians, quat_to_rotmat
from tests.conftest import shared_data

SH_C0 = 0.28209479177387814


def _numpy_reference(g: Gaussians, cam: cm.Camera, bg) -> np.ndarray:
    """Per pixel, float64, straight from the 3DGS/gsplat formulas (no tiles lists, no torch)."""
    W, H = cam.width, cam.height
    R, t = cam.viewmat[:3, :3], cam.viewmat[:3, 3]
    campos = -R.T @ t
    rows = []
    for i in range(g.count):
        p = R @ g.means[i].astype(np.float64) + t
        x, y, z = p
        if z <= 0.01:
            continue
        rot = quat_to_rotmat(g.quats[i : i + 1].astype(np.float64))[0]
        S = np.diag(g.scales[i].astype(np.float64))
        cov3 = rot @ S @ S.T @ rot.T
        limx = np.array([cam.cx / cam.fx, (W - cam.cx) / cam.fx]) + 0.3 * 0.5 * W / cam.fx
        limy = np.array([cam.cy / cam.fy, (H - cam.cy) / cam.fy]) + 0.3 * 0.5 * H / cam.fy
        tx = z * min(limx[1], max(-limx[0], x / z))
        ty = z * min(limy[1], max(-limy[0], y / z))
        J = np.array([[cam.fx / z, 0, -cam.fx * tx / z**2], [0, cam.fy / z, -cam.fy * ty / z**2]])
        cov2 = J @ R @ cov3 @ R.T @ J.T + 0.3 * np.eye(2)
        det = np.linalg.det(cov2)
        if det <= 0:
            continue
        mid = 0.5 * np.trace(cov2)
        r = np.ceil(3 * np.sqrt(mid + np.sqrt(max(0.1, mid * mid - det))))
        u, v = cam.fx * x / z + cam.cx, cam.fy * y / z + cam.cy
        d = g.means[i].astype(np.float64) - campos
        d /= np.linalg.norm(d)
        dx, dy, dz = d
        sh = g.sh[i].astype(np.float64)
        basis = [SH_C0, -0.4886025119029199 * dy, 0.4886025119029199 * dz, -0.4886025119029199 * dx][
            : len(sh)
        ]
        col = np.maximum(sum(b * c for b, c in zip(basis, sh, strict=True)) + 0.5, 0)
        rows.append((z, u, v, r, np.linalg.inv(cov2), float(g.opacities[i]), col))
    rows.sort(key=lambda row: row[0])
    img = np.zeros((H, W, 3))
    for j in range(H):
        for i in range(W):
            T, C = 1.0, np.zeros(3)
            for _, u, v, r, inv, o, col in rows:
                # gsplat tiling: the Gaussian reaches every pixel of the 16x16 tiles its 3-sigma square touches
                if not (np.floor((u - r) / 16) <= i // 16 < np.ceil((u + r) / 16)):
                    continue
                if not (np.floor((v - r) / 16) <= j // 16 < np.ceil((v + r) / 16)):
                    continue
                d = np.array([u - (i + 0.5), v - (j + 0.5)])
                power = -0.5 * d @ inv @ d
                if power > 0:
                    continue
                a = min(0.99, o * np.exp(power))
                if a < 1 / 255:
                    continue
                if T * (1 - a) < 1e-4:
                    break
                C += col * a * T
                T *= 1 - a
            img[j, i] = C + T * np.asarray(bg)
    return img


def _scene(n=40, degree=1, seed=3):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    return Gaussians(
        means=rng.normal(0, 0.6, (n, 3)) + [0, 0, 0],
        scales=np.exp(rng.normal(-2.3, 0.6, (n, 3))),
        quats=q,
        opacities=rng.uniform(0.2, 1.0, n),
        sh=rng.normal(0, 0.8, (n, (degree + 1) ** 2, 3)),
    )


def test_reference_rasterizer_matches_numpy_per_pixel():
    g = _scene()
    g.opacities[:5] = 1.0  # saturating splats exercise the 0.99 clamp and early termination
    cam = cm.orbit_camera((0, 0, 0), 30, 20, 3.0, 40, 30, fov_y_deg=55)
    bg = (0.2, 0.3, 0.4)
    torch.set_num_threads(1)
    ours = raster.render(g, cam, bg)
    ref = _numpy_reference(g, cam, bg)
    p = raster.psnr(ours, ref)
    assert p >= 45, p
    assert np.abs(ours - ref).max() < 0.02
    # and the scene really covers the view (not a trivially empty comparison)
    assert np.mean(np.abs(ref - np.asarray(bg)).sum(-1) > 0.05) > 0.2


def test_off_centre_principal_point_and_near_plane():
    g = _scene(25, degree=0, seed=5)
    vm = cm.look_at((0.3, -0.2, -2.2), (0, 0, 0))
    cam = cm.Camera(vm, 30.0, 34.0, 14.0, 17.0, 32, 24)
    assert raster.psnr(raster.render(g, cam), _numpy_reference(g, cam, (0, 0, 0))) >= 45
    # a Gaussian behind the camera contributes nothing
    behind = Gaussians(
        means=[[0.3, -0.2, -5]],
        scales=[[1, 1, 1]],
        quats=[[1, 0, 0, 0]],
        opacities=[1.0],
        sh=np.ones((1, 1, 3)),
    )
    assert np.all(raster.render(behind, cam, (0, 0, 0)) == 0)


def test_guitar_recognisable_from_orbit():
    g = io.load(shared_data("splat", "guitar.compressed.ply"))
    c, r = g.robust_center_radius()
    torch.set_num_threads(1)
    cam = cm.orbit_camera(c, 0, 15, 2.5 * r, 160, 120, 50, up=(0, -1, 0))
    img = raster.render(g, cam, (1.0, 1.0, 1.0))
    fg = np.abs(img - 1.0).sum(-1) > 0.15
    cover = fg.mean()
    assert 0.04 < cover < 0.5, cover  # an object, not an empty or a filled frame
    ys, xs = np.nonzero(fg)
    # the guitar stands upright in the middle of the frame: centroid near the centre, taller than wide
    assert abs(xs.mean() / 160 - 0.5) < 0.15 and abs(ys.mean() / 120 - 0.5) < 0.2
    assert np.ptp(ys) > 0.6 * 120 and np.ptp(ys) > 1.3 * np.std(xs) * 2
    # brownish wood: red > blue on the object
    assert img[fg, 0].mean() > img[fg, 2].mean() + 0.05


def test_garden_cameras_follow_opencv_convention():
    d = np.load(shared_data("splat", "gsplat_test_garden.npz"))
    pts, cols = d["means3d"].astype(np.float64), d["colors"]
    w, h = int(d["width"]), int(d["height"])
    for vm, K in zip(d["viewmats"], d["Ks"], strict=True):
        cam = cm.from_viewmat_K(vm, K, w, h)
        # R is a rotation; camera centre from -R^T t
        np.testing.assert_allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-5)
        pc = pts @ cam.R.T + cam.viewmat[:3, 3]
        z = pc[:, 2]
        u = cam.fx * pc[:, 0] / z + cam.cx
        v = cam.fy * pc[:, 1] / z + cam.cy
        inside = (z > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        # a real training camera of this scene sees a large part of the SfM cloud in front of it (+z forward)
        assert inside.mean() > 0.3 and (z > 0).mean() > 0.6
        # the garden floor is below the table: image y (down) grows with world "down" - both agree on the
        # projection our rasterizer uses: splat a few points and find them at (u, v)
        sel = np.nonzero(inside & (z > np.percentile(z[inside], 20)))[0][:3]
        g = Gaussians(
            means=pts[sel],
            scales=np.full((len(sel), 3), 1e-4),
            quats=np.tile([1, 0, 0, 0], (len(sel), 1)),
            opacities=np.ones(len(sel)),
            sh=((np.ones((len(sel), 3)) - 0.5) / SH_C0)[:, None],
        )
        img = raster.render(g, cam, (0, 0, 0))
        for k in sel:
            i, j = int(u[k]), int(v[k])
            assert img[j, i].sum() > 1.0, (i, j)  # the pixel containing the projection is lit
    assert cols.shape == pts.shape


def test_cameras_json_roundtrip_and_index_errors(tmp_path):
    cams = [cm.orbit_camera((0, 0, 0), a, 10, 4, 64, 48) for a in (0, 45, 90)]
    path = cm.save_cameras_json(tmp_path / "cameras.json", cams)
    data = json.loads(path.read_text())
    assert set(data[0]) >= {"position", "rotation", "fx", "fy", "width", "height"}
    back = cm.load_cameras_json(path)
    for a, b in zip(cams, back, strict=True):
        np.testing.assert_allclose(a.viewmat, b.viewmat, atol=1e-9)
        np.testing.assert_allclose(a.position, data[cams.index(a)]["position"], atol=1e-9)
    assert np.allclose(cm.camera_from_spec(f"{path}#2").viewmat, cams[2].viewmat)
    with pytest.raises(UserError, match="unknown camera index 7"):
        cm.camera_from_spec(f"{path}#7")
    with pytest.raises(UserError, match="no such file"):
        cm.camera_from_spec(f"{tmp_path}/none.json#0")


def test_orbit_camera_looks_at_target_and_up_is_up():
    target = np.array([0.5, -1.0, 2.0])
    cam = cm.orbit_camera(target, 37, 25, 3.0, 200, 100, up=(0, -1, 0))
    pc = cam.R @ target + cam.viewmat[:3, 3]
    assert pc[2] == pytest.approx(3.0)
    assert cam.fx * pc[0] / pc[2] + cam.cx == pytest.approx(100)
    assert cam.fy * pc[1] / pc[2] + cam.cy == pytest.approx(50)
    above = cam.R @ (target + np.array([0, -0.5, 0])) + cam.viewmat[:3, 3]  # world up is -y here
    assert above[1] / above[2] < 0  # appears above the centre (image y points down)
    assert cam.fov_y_deg == pytest.approx(50)


def test_camera_path_hits_keyframes_and_slerps():
    keys = [cm.orbit_camera((0, 0, 0), a, 0, 5, 64, 48) for a in (0, 90, 180)]
    path = cm.CameraPath(tuple(keys))
    for u, k in ((0.0, keys[0]), (0.5, keys[1]), (1.0, keys[2])):
        np.testing.assert_allclose(path.at(u).viewmat, k.viewmat, atol=1e-9)
    mid = path.at(0.25)  # halfway between azimuth 0 and 90: rotation angle 45 degrees from each key
    r = mid.R @ keys[0].R.T
    assert np.degrees(np.arccos((np.trace(r) - 1) / 2)) == pytest.approx(45, abs=1e-6)
    # the spline bulges out from the straight chord (|mid| = 5 cos 45 = 3.54) toward the circle of radius 5
    assert 3.8 < np.linalg.norm(mid.position) < 5.0
