"""Splat panel: GL viewer vs reference rasterizer, interaction, 4D time, edits, exports, sessions."""

from __future__ import annotations

from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import pytest

from backends.splat import camera as cm
from backends.splat import io, raster
from tests.conftest import shared_data

pytestmark = pytest.mark.gl


@pytest.fixture
def panel(qtbot):
    from panels.splat.panel import SplatPanel

    p = SplatPanel()
    qtbot.addWidget(p)
    p.resize(900, 600)
    yield p
    p.shutdown()


def _use(panel, viewer: str):
    panel.set_params(replace(panel.params(), viewer=viewer))
    panel.node.active_renderer = viewer  # as it resolves at the next draw


def _psnr_gl_vs_reference(panel, g, cam, bg=(0.0, 0.0, 0.0), time=None):
    from panels.splat import visuals

    gl = visuals.render_rows(panel.canvas_obj, panel.node, visuals.scene_rows(g, cam, time), cam)
    ref = raster.render(g, cam, bg, time=time)
    return raster.psnr(gl[..., :3] / 255.0, ref), gl, ref


@pytest.mark.parametrize("viewer", ["gl", "cpu"])
def test_gl_viewer_matches_reference_rasterizer(panel, viewer):
    """Both viewer renderers against the reference: instanced GL quads (>= 30 dB, the issue's bar) and the
    CPU tile rasterizer, which follows the reference's compositing exactly (8-bit output: >= 45 dB)."""
    _use(panel, viewer)
    need = 30 if viewer == "gl" else 45
    g = io.load(shared_data("splat", "guitar.compressed.ply"))
    c, r = g.robust_center_radius()
    cam = cm.orbit_camera(c, 30, 20, 3.0 * r, 200, 150)
    p, gl, ref = _psnr_gl_vs_reference(panel, g, cam)
    assert p >= need, p
    assert (gl[..., :3].max(-1) > 30).mean() > 0.02  # the guitar was drawn, not an empty frame
    # the sample scene, with the panel's own background and a 4D scene at a time
    from backends.splat import samples

    g4 = io.load(samples.SAMPLE_4D)
    cam4 = cm.orbit_camera((0, 0.2, 0), 20, 25, 5.0, 160, 120)
    panel.canvas_obj.bgcolor = (1.0, 1.0, 1.0)
    p4, _, _ = _psnr_gl_vs_reference(panel, g4, cam4, (1.0, 1.0, 1.0), time=0.4)
    assert p4 >= need, p4


def test_render_any_size_and_default_scene(panel):
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4) and img.dtype == np.uint8
    assert (img[..., :3] > 40).mean() > 0.05  # the sample scene is visible on black
    big = panel.render((700, 300))
    assert big.shape == (300, 700, 4)


def test_interaction_lod_and_sort(panel, qtbot):
    from backends.splat import samples

    _use(panel, "gl")
    n_all = io.load(samples.SAMPLE_3D).count
    panel.set_params(replace(panel.params(), lod_count=2000))
    assert panel._rows_lod is not None and len(panel._rows_lod) == 2000
    # the moving set is the most important prefix: opacity x size, decreasing
    covs = np.stack(
        [panel._rows_full[:, [3, 4, 5]], panel._rows_full[:, [4, 6, 7]], panel._rows_full[:, [5, 7, 8]]], 1
    )
    imp = panel._rows_full[:, 12] * np.prod(np.sqrt(np.einsum("nii->ni", covs)), 1) ** (1 / 3)
    lod_imp = panel._rows_lod[:, 12] * np.prod(np.sqrt(panel._rows_lod[:, [3, 6, 8]]), 1) ** (1 / 3)
    assert lod_imp.min() >= np.sort(imp)[-2000] * (1 - 1e-5)
    before = panel.current_camera().viewmat.copy()
    panel.rotate(20, 5)  # while moving: reduced detail at reduced resolution, timed frames
    assert panel.node.count == 2000
    assert panel.node.scale == panel.params().moving_scale and panel.node.timed
    assert not np.allclose(before, panel.current_camera().viewmat)
    qtbot.waitUntil(lambda: panel.node.count == n_all, timeout=3000)  # still: full
    assert panel.node.scale == 1.0 and not panel.node.timed
    # the moving set adapts to the measured frame time: a slow frame shrinks it (to 1/4 at most, >= 1000)
    panel.node.count, panel.node.timed, panel.node.last_draw_s = 2000, True, 1.0
    panel._after_draw(None)
    assert panel._lod_budget == 1000
    panel.node.last_draw_s = 1e-4  # fast frames grow it again, capped by the maximum
    panel._after_draw(None)
    assert panel._lod_budget == 2000
    panel.node.timed = False
    # drawn order is back to front for the current camera
    cam = panel.current_camera()
    panel._sort_now(panel._rows_full, False, cam)
    rows = panel._rows_full
    depth = rows[:, :3] @ cam.R[2] + cam.viewmat[2, 3]
    assert depth.max() > depth.min()
    panel.set_params(replace(panel.params(), camera_mode="fly"))
    eye = panel.current_camera().position
    panel.rotate(30, 0)  # fly: looking around keeps the eye
    np.testing.assert_allclose(panel.current_camera().position, eye, atol=1e-6)
    panel.move(forward=0.5)
    assert np.linalg.norm(panel.current_camera().position - eye) == pytest.approx(0.5, rel=1e-6)


@pytest.mark.parametrize("viewer", ["gl", "cpu"])
def test_moving_frame_resolution_and_blend(panel, viewer):
    """A node drawn at half resolution (GL: off-screen texture stretched over the canvas with the
    premultiplied blend; CPU: the half-size image stretched) equals the reference render at half size,
    upsampled (nearest): same colours over the background."""
    from backends.splat import samples
    from panels.splat import visuals

    _use(panel, viewer)
    g = io.load(samples.SAMPLE_3D)
    c, r = g.robust_center_radius()
    cam = cm.orbit_camera(c, 30, 20, 3.0 * r, 160, 120)
    panel.canvas_obj.bgcolor = (1.0, 1.0, 1.0)
    node = panel.node
    node.set_rows(visuals.sort_back_to_front(visuals.scene_rows(g, cam), cam.viewmat))
    node.set_camera(cam)
    node.scale = 0.5
    try:
        half = panel.canvas_obj.render(size=(160, 120))[..., :3] / 255.0
    finally:
        node.scale = 1.0
    ref = raster.render(g, cam.resized(80, 60), (1.0, 1.0, 1.0))
    up = np.repeat(np.repeat(ref, 2, 0), 2, 1)  # nearest upsampling, as the stretch
    assert raster.psnr(half, up) >= 40  # 49.9 dB measured
    assert np.abs(half.mean((0, 1)) - ref.mean((0, 1))).max() < 0.005  # no darkening or lost background


def test_4d_time_and_attribute_colouring(panel, qtbot):
    panel.set_params(replace(panel.params(), scene="dynamic 4D"))
    qtbot.waitUntil(lambda: panel._scene is not None and panel._scene.is_4d, timeout=10000)
    assert panel.play_button.isEnabled()
    panel.set_time(0.0)
    a = panel.render((160, 120))
    panel.set_time(0.9)
    b = panel.render((160, 120))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1  # the scene changed with time
    t0 = panel.params().time
    panel.advance(3)
    assert panel.params().time == pytest.approx(t0 + 3 * panel.params().play_speed / 30)
    panel.set_params(replace(panel.params(), color_by="material"))
    assert "material" in panel.legend_label.text() and panel._legend.kind == "categorical"


def test_exports_and_session(panel, tmp_path):
    panel.set_params(replace(panel.params(), export_size="160x120", subsample=0.5))
    acts = {a.label: a for a in panel.exports()}
    acts["Render PNG (GL or reference, export size)"].write(tmp_path / "a.png")
    assert iio.imread(tmp_path / "a.png").shape == (120, 160, 4)
    panel.set_params(replace(panel.params(), export_renderer="reference"))
    acts["Render PNG (GL or reference, export size)"].write(tmp_path / "b.png")
    assert iio.imread(tmp_path / "b.png").shape[:2] == (120, 160)
    acts["Edited scene PLY"].write(tmp_path / "e.ply")
    e = io.load(tmp_path / "e.ply")
    assert 0.4 < e.count / panel._scene.count < 0.6
    panel.set_params(replace(panel.params(), subsample=1.0, crop="-5,-5,-5,0,5,5"))
    assert panel._edited.means[:, 0].max() <= 0 and panel._edited.count > 100
    from backends.common import UserError

    with pytest.raises(UserError, match="crop box"):
        replace(panel.params(), crop="1,2")
    st = panel.state()
    panel.rotate(45, 0)
    panel.restore(st)
    assert panel.state()["camera"] == st["camera"]


def test_cli_gl_renderer(qtbot, tmp_path):
    from backends.splat import samples
    from panels.splat import render_cli

    png = tmp_path / "gl.png"
    assert (
        render_cli.main(
            [
                str(samples.SAMPLE_3D),
                "--orbit",
                "30,20,3",
                "--size",
                "96x72",
                "--renderer",
                "gl",
                "--out",
                str(png),
                "--quiet",
            ]
        )
        == 0
    )
    gl = iio.imread(png)[..., :3] / 255.0
    g = io.load(samples.SAMPLE_3D)
    c, r = g.robust_center_radius()
    ref = raster.render(g, cm.orbit_camera(c, 30, 20, 3 * r, 96, 72), (0, 0, 0))
    assert raster.psnr(gl, ref) >= 30


def test_view_dependent_colour_follows_the_camera(panel, tmp_path):
    """SH degree 3 scene: the GL colours are re-evaluated for each view and match the reference."""
    from backends.splat.gaussians import Gaussians

    rng = np.random.default_rng(4)
    n = 300
    q = rng.normal(size=(n, 4))
    sh = rng.normal(0, 0.15, (n, 16, 3))
    sh[:, 1:4] = rng.normal(0, 0.6, (n, 3, 3))  # strong degree-1 view dependence
    g = Gaussians(
        means=rng.normal(0, 0.5, (n, 3)),
        scales=np.exp(rng.normal(-2.5, 0.3, (n, 3))),
        quats=q,
        opacities=rng.uniform(0.5, 1, n),
        sh=sh,
    )
    io.write_ply(tmp_path / "sh.ply", g)
    panel.set_params(replace(panel.params(), scene="file", path=str(tmp_path / "sh.ply")))
    import time

    from PySide6.QtWidgets import QApplication

    t0 = time.time()
    while (panel._scene is None or panel._scene.count != n) and time.time() - t0 < 10:
        QApplication.processEvents()
    imgs = []
    for az in (0.0, 120.0):
        panel._orbit.azimuth = az
        panel._view_changed(moving=False)
        gl = panel.render((120, 90))[..., :3] / 255.0
        ref = raster.render(panel._edited, panel.current_camera((120, 90)))
        assert raster.psnr(gl, ref) >= 30
        imgs.append(ref)


def test_progressive_still_frame(panel):
    """A still frame drawn in chunks (one per paint) ends identical to the frame drawn at once (GL renderer)."""
    from backends.splat import samples
    from panels.splat import visuals

    _use(panel, "gl")
    g = io.load(samples.SAMPLE_3D)
    c, r = g.robust_center_radius()
    cam = cm.orbit_camera(c, 30, 20, 3.0 * r, 160, 120)
    node = panel.node
    node.set_rows(visuals.sort_back_to_front(visuals.scene_rows(g, cam), cam.viewmat))
    node.set_camera(cam)
    node.chunk = 0
    direct = panel.canvas_obj.render(size=(160, 120)).astype(int)
    node.chunk = 700
    frames = [panel.canvas_obj.render(size=(160, 120)).astype(int)]
    while node.pending:
        frames.append(panel.canvas_obj.render(size=(160, 120)).astype(int))
    assert len(frames) == -(-g.count // 700)
    assert np.abs(frames[-1] - direct).max() <= 2  # 8-bit accumulation texture, then one blend
    assert np.abs(frames[0] - direct).mean() > 1  # the first chunk alone is not the frame
    again = panel.canvas_obj.render(size=(160, 120)).astype(int)  # finished: redrawn from the texture
    assert not node.pending and np.abs(again - frames[-1]).max() == 0


def test_cpu_viewer_sorts_itself_and_keeps_full_detail_when_affordable(panel, qtbot):
    """'auto' is the CPU renderer on llvmpipe; it takes unsorted rows (its own depth sort) and, when the last
    full-scene frame fitted the moving frame budget, keeps every splat at full resolution while moving."""
    from backends.common import UserError
    from backends.splat import tile_raster

    with pytest.raises(UserError, match="viewer must be auto, gl or cpu"):
        replace(panel.params(), viewer="vulkan")
    panel.set_params(replace(panel.params(), viewer="auto"))
    qtbot.waitUntil(tile_raster.ready, timeout=60_000)  # the panel compiles it in a worker at start
    panel.render((64, 48))  # one draw resolves 'auto'
    if panel.node.active_renderer != "cpu":
        pytest.skip("a hardware OpenGL: 'auto' is the GL renderer here")
    panel._view_changed(moving=False)
    assert not panel.node.rows_sorted and panel.node.count == len(panel._rows_full)
    panel._full_frame_s = 0.001  # a fast full frame: moving frames stay full
    panel.rotate(10, 0)
    assert panel.node.count == len(panel._rows_full) and panel.node.scale == 1.0
    panel._full_frame_s = 10.0  # too slow: the reduced moving set at reduced resolution
    panel.set_params(replace(panel.params(), lod_count=2000))
    panel.rotate(10, 0)
    assert panel.node.count == 2000 and panel.node.scale == panel.params().moving_scale
