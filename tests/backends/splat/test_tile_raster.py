"""The numba tile rasterizer against the torch reference rasterizer and the per-pixel numpy reference.

In a fresh checkout the module fixture compiles the kernels once (~15 s on the 2-core machine, shown as the
first test's setup); numba caches them in ``backends/splat/__pycache__`` (about 1 s to load afterwards).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backends.splat import camera as cm
from backends.splat import io, raster
from backends.splat import tile_raster as tr
from backends.splat.gaussians import Gaussians
from tests.backends.splat.test_raster import _numpy_reference
from tests.conftest import shared_data


@pytest.fixture(scope="module", autouse=True)
def _compiled():
    tr.warmup()


def _random_scene(n: int, seed: int, degree: int = 1) -> Gaussians:
    """Small and large, elongated (up to 1:40), rotated splats; some straddle the image border or lie behind
    the camera (it sits at distance 3 from the origin)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    scales = np.exp(rng.normal(-3.0, 0.8, (n, 3)))
    long = rng.random(n) < 0.3
    scales[long, 0] *= rng.uniform(5, 40, long.sum())  # needles and ribbons
    return Gaussians(
        means=rng.normal(0, 1.2, (n, 3)),
        scales=scales,
        quats=q,
        opacities=rng.uniform(0.05, 1.0, n),
        sh=rng.normal(0, 0.8, (n, (degree + 1) ** 2, 3)),
    )


def _cam(w=160, h=120, dist=3.0, az=30.0):
    return cm.orbit_camera((0, 0, 0), az, 20, dist, w, h, fov_y_deg=55)


def _reference(g, cam, bg=(0.0, 0.0, 0.0)):
    torch.set_num_threads(1)
    return raster.render(g, cam, bg)


def test_matches_torch_reference_on_random_scenes():
    for seed, n in ((0, 3000), (1, 2000)):
        g = _random_scene(n, seed)
        cam = _cam(az=30.0 + 50 * seed)
        rows = tr.scene_rows(g, cam)
        pc = g.means @ cam.R.T + cam.viewmat[:3, 3]
        assert (pc[:, 2] <= 0.01).sum() >= 10  # behind the camera
        u = cam.fx * pc[:, 0] / pc[:, 2] + cam.cx
        assert ((pc[:, 2] > 0) & ((u < 0) | (u > cam.width))).sum() > 100  # off or across the image border
        ref = _reference(g, cam)
        img = tr.render_rows_float(rows, cam)
        p = raster.psnr(img, ref)
        assert p >= 45, p
        # float rounding only (same depth order, same pixels): a few pixels may differ by one near-threshold
        # splat (alpha ~ 1/255 or T ~ 1e-4 decided the other way), nothing more
        err = np.abs(img - ref).max(-1)
        assert err.max() < 5e-3 and (err > 1e-4).mean() < 1e-3, (err.max(), (err > 1e-4).mean())
        # and the 8-bit image is the reference's to_rgba8 to within one level (rounding at .5)
        u8 = tr.render_rows(rows, cam)
        diff = np.abs(u8.astype(int) - raster.to_rgba8(ref)[..., :3])
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-2
        assert np.mean(np.abs(ref).sum(-1) > 0.05) > 0.3  # a real picture, not an empty comparison


def test_saturation_and_early_stop_match_per_pixel_numpy():
    """Many opaque splats stacked on the view axis: the 0.99 clamp, T < 1e-4 ends a pixel unblended, and
    whole tiles stop early; against the independent per-pixel float64 formulas of ``test_raster``."""
    rng = np.random.default_rng(7)
    n = 60
    g = Gaussians(
        means=np.c_[rng.normal(0, 0.15, n), rng.normal(0, 0.15, n), np.linspace(-1, 1, n)],
        scales=np.exp(rng.normal(-1.2, 0.3, (n, 3))),
        quats=rng.normal(size=(n, 4)),
        opacities=np.where(rng.random(n) < 0.7, 1.0, 0.6),
        sh=rng.normal(0, 0.8, (n, 4, 3)),
    )
    cam = cm.Camera(cm.look_at((0.0, 0.0, -3.0), (0, 0, 0)), 30.0, 30.0, 20.0, 15.0, 40, 30)
    bg = (0.2, 0.3, 0.4)
    rows = tr.scene_rows(g, cam)
    img = tr.render_rows_float(rows, cam, bg)
    ref = _numpy_reference(g, cam, bg)
    assert raster.psnr(img, ref) >= 45
    # float32 vs float64: the T < 1e-4 cut may fall one splat apart at a pixel or two (torch does the same)
    assert (np.abs(img - ref).max(-1) > 1e-4).sum() <= 3
    assert np.abs(img - _reference(g, cam, bg)).max() < 1e-5
    # the stack really saturates every pixel (so every tile also stops early): the final transmittance (white
    # minus black background) is at most 1 - 0.99, and never below 1e-4 (that splat is not blended)
    black = tr.render_rows_float(rows, cam, (0.0, 0.0, 0.0))
    white = tr.render_rows_float(rows, cam, (1.0, 1.0, 1.0))
    t_final = (white - black)[..., 0]
    assert t_final.max() <= 0.0101 and t_final.min() > 0.99e-4


def test_background_colour_and_empty_scenes():
    cam = _cam(64, 48)
    bg = (0.2, 0.5, 0.8)
    empty = tr.render_rows_float(np.zeros((0, 13), np.float32), cam, bg)
    assert np.array_equal(empty, np.broadcast_to(np.float32(bg), (48, 64, 3)))
    u8 = tr.render_rows(np.zeros((0, 13), np.float32), cam, bg)
    assert np.all(u8 == (np.array(bg) * 255 + 0.5).astype(np.uint8))
    # behind the camera or transparent: nothing is drawn
    g = _random_scene(300, 3)
    rows = tr.scene_rows(g, cam)
    behind = rows.copy()
    behind[:, 0:3] = cam.position + 2.0 * (cam.position - 0.0)  # all on the far side of the eye
    assert np.array_equal(tr.render_rows_float(behind, cam, bg), empty)
    faint = rows.copy()
    faint[:, 12] = 0.9 / 255  # alpha can never reach 1/255
    assert np.array_equal(tr.render_rows_float(faint, cam, bg), empty)
    # a scene over a coloured background agrees with the reference there too
    img = tr.render_rows_float(rows, cam, bg)
    assert raster.psnr(img, _reference(g, cam, bg)) >= 45
    assert np.abs(img - np.float32(bg)).max() > 0.3


def test_non_finite_rows_are_skipped():
    g = _random_scene(800, 4)
    cam = _cam(96, 72)
    rows = tr.scene_rows(g, cam)
    clean = tr.render_rows_float(rows, cam)
    bad = np.full((5, 13), 0.5, np.float32)
    bad[0, 0] = np.nan  # position
    bad[1, 5] = np.inf  # covariance
    bad[2, 10] = np.nan  # colour
    bad[3, 12] = np.nan  # opacity
    bad[4, :] = np.nan
    bad[:, 0:3] = np.where(np.isfinite(bad[:, 0:3]), 0.0, bad[:, 0:3])  # in view, if it were drawn
    mixed = np.concatenate([rows[:400], bad, rows[400:]])
    assert np.array_equal(tr.render_rows_float(mixed, cam), clean)


def test_order_subset_and_output_buffer():
    g = _random_scene(1500, 5)
    cam = _cam(128, 96)
    rows = tr.scene_rows(g, cam)
    pc = rows[:, 0:3].astype(np.float64) @ cam.R.T + cam.viewmat[:3, 3]
    order = np.argsort(pc[:, 2], kind="stable")
    out = np.empty((96, 128, 3), np.uint8)
    a = tr.render_rows(rows, cam, order=order, out=out)
    assert a is out and np.array_equal(a, tr.render_rows(rows, cam))
    # the panel's back-to-front rows, reversed through ``order``
    b2f = rows[order[::-1]]
    assert np.array_equal(tr.render_rows(b2f, cam, order=np.arange(len(b2f))[::-1]), a)
    # an order that names a subset draws only that subset
    sub = order[::3]
    assert np.array_equal(tr.render_rows(rows, cam, order=sub), tr.render_rows(rows[np.sort(sub)], cam))
    timings: dict = {}
    tr.render_rows(rows, cam, out=out, timings=timings)
    assert {"sort_s", "project_s", "bin_s", "raster_s", "total_s"} <= set(timings)
    with pytest.raises(ValueError):
        tr.render_rows(rows, cam, out=np.empty((96, 128, 3), np.float32))


def test_thread_count_does_not_change_the_image():
    import numba

    g = _random_scene(2000, 6)
    cam = _cam(160, 120)
    rows = tr.scene_rows(g, cam)
    n0 = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = tr.render_rows_float(rows, cam)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = tr.render_rows_float(rows, cam)
    finally:
        numba.set_num_threads(n0)
    assert np.array_equal(one, many)


def test_guitar_matches_reference():
    g = io.load(shared_data("splat", "guitar.compressed.ply"))
    c, r = g.robust_center_radius()
    cam = cm.orbit_camera(c, 0, 15, 2.5 * r, 160, 120, 50, up=(0, -1, 0))
    img = tr.render_rows_float(tr.scene_rows(g, cam), cam, (1.0, 1.0, 1.0))
    ref = _reference(g, cam, (1.0, 1.0, 1.0))
    assert raster.psnr(img, ref) >= 45
    assert (np.abs(img - 1.0).sum(-1) > 0.15).mean() > 0.04  # the guitar is in the picture
