"""Splat panel: GL viewer vs reference rasterizer, interaction, 4D time, edits, exports, sessions."""

from __future__ import annotations

from dataclasses import replace

import imageio.v3 as iio
import numpy as np
import pytest

from backends.splat import camera as cm
from backends.splat import io, raster
from tests.conftest import shared_data
from tests.reproduce import not_blank

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
    panel.model.set_params(viewer=viewer)
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
    """Moving: the most important splats at reduced resolution, timed; still again: every splat, sorted."""
    _use(panel, "gl")
    m, view = panel.model, panel.view
    panel.model.set_params(lod_count=2000)
    n_all = m.rows.count
    before = panel.current_camera().viewmat.copy()
    m.rotate(20, 5)  # while moving: reduced detail at reduced resolution, timed frames
    assert panel.node.count == 2000
    assert panel.node.scale == m.params.moving_scale and panel.node.timed
    assert not np.allclose(before, panel.current_camera().viewmat)
    # the moving set drawn is the most important prefix of the scene: opacity x size, decreasing
    drawn = panel.node.rows
    imp_all = m.rows.rows[:, 12] * np.prod(np.sqrt(m.rows.rows[:, [3, 6, 8]]), 1) ** (1 / 3)
    imp = drawn[:, 12] * np.prod(np.sqrt(drawn[:, [3, 6, 8]]), 1) ** (1 / 3)
    assert imp.min() >= np.sort(imp_all)[-2000] * (1 - 1e-5)
    qtbot.waitUntil(lambda: panel.node.count == n_all, timeout=3000)  # still: full
    assert panel.node.scale == 1.0 and not panel.node.timed
    # drawn order is back to front for the current camera
    cam = panel.current_camera()
    rows = panel.node.rows
    depth = rows[:, :3] @ cam.R[2] + cam.viewmat[2, 3]
    assert panel.node.rows_sorted and np.all(np.diff(depth) <= 1e-5)
    # the scheduler follows the measured frame time (its own Qt-free tests check the arithmetic)
    assert view.scheduler.lod_max == 2000


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
    panel.model.set_params(scene="dynamic 4D")
    assert "loading" in panel.view.overlay.text()  # marked until the scene is shown
    qtbot.waitUntil(lambda: panel.model.scene.is_4d, timeout=10000)
    assert "loading" not in panel.view.overlay.text() and not panel.model.stale
    assert panel.play_button.isEnabled()
    panel.model.set_time(0.0)
    a = panel.render((160, 120))
    panel.time_slider.setValue(900)  # the slider sets the model's time
    assert panel.model.params.time == pytest.approx(
        0.9 * (panel.model.time_range[1] - panel.model.time_range[0])
    )
    b = panel.render((160, 120))
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1  # the scene changed with time
    t0 = panel.model.params.time
    panel.advance(3)
    assert panel.model.params.time == pytest.approx(t0 + 3 * panel.model.params.play_speed / 30)
    assert panel.time_label.text() == f"t = {panel.model.params.time:.3f}"
    panel.color_combo.setCurrentText("material")  # the scene's own attributes are offered
    assert panel.model.params.color_by == "material"
    assert "material" in panel.legend_label.text() and panel.model.legend.kind == "categorical"


def test_exports_and_session(panel, tmp_path):
    """Exports found by label and checked by content: the GL and reference PNGs show the same scene."""
    _use(panel, "gl")
    panel.model.set_params(export_size="160x120", subsample=0.5)
    acts = {a.label: a for a in panel.exports()}
    acts["Render PNG (GL or reference, export size)"].write(tmp_path / "a.png")
    a = iio.imread(tmp_path / "a.png")
    assert a.shape == (120, 160, 4) and not_blank(a)
    panel.model.set_params(export_renderer="reference")
    acts["Render PNG (GL or reference, export size)"].write(tmp_path / "b.png")
    b = iio.imread(tmp_path / "b.png")
    assert b.shape[:2] == (120, 160) and raster.psnr(a[..., :3], b[..., :3]) >= 30
    acts["Edited scene PLY"].write(tmp_path / "e.ply")
    e = io.load(tmp_path / "e.ply")
    assert 0.4 < e.count / panel.model.scene.count < 0.6
    np.testing.assert_allclose(e.means, panel.model.edited.means, atol=1e-6)  # the edited scene's splats


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


def test_view_dependent_colour_follows_the_camera(panel, qtbot, tmp_path):
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
    panel.open_path(tmp_path / "sh.ply")
    qtbot.waitUntil(lambda: panel.model.scene.count == n, timeout=10_000)
    imgs = []
    for az in (0.0, 120.0):
        panel.model.set_orbit(replace(panel.model.orbit, azimuth=az))
        gl = panel.render((120, 90))[..., :3] / 255.0
        ref = raster.render(panel.model.edited, panel.current_camera((120, 90)))
        assert raster.psnr(gl, ref) >= 30
        imgs.append(ref)
    assert np.abs(imgs[0] - imgs[1]).mean() > 0.01


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

    with pytest.raises(UserError, match="viewer must be one of auto, gl, cpu"):
        panel.model.set_params(viewer="vulkan")
    panel.model.set_params(viewer="auto")
    qtbot.waitUntil(tile_raster.ready, timeout=60_000)  # the panel compiles it in a worker at start
    panel.render((64, 48))  # one draw resolves 'auto'
    if panel.node.active_renderer != "cpu":
        pytest.skip("a hardware OpenGL: 'auto' is the GL renderer here")
    panel.view.view_changed(moving=False)
    n = panel.model.rows.count
    assert not panel.node.rows_sorted and panel.node.count == n
    assert "in host memory (CPU renderer)" in panel.info_label.text()  # not "on the GPU"
    panel.view.scheduler.full_frame_s = 0.001  # a fast full frame: moving frames stay full
    panel.model.rotate(10, 0)
    assert panel.node.count == n and panel.node.scale == 1.0
    panel.view.scheduler.full_frame_s = 10.0  # too slow: the reduced moving set at reduced resolution
    panel.model.set_params(lod_count=2000)
    panel.model.rotate(10, 0)
    assert panel.node.count == 2000 and panel.node.scale == panel.model.params.moving_scale
