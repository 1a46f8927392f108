"""Splat panel through the window: sidecars reproduce the figure (fresh window and CLI), invalid sessions change
nothing, Scene = file opens a chooser, keyframes are listed/previewed/reordered/deleted and saved, video frames."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from backends.splat import io, raster
from tests.reproduce import export_and_reload, not_blank, open_window, psnr, snapshot_from_session

pytestmark = pytest.mark.gl
SIZE = (240, 180)


def _mutate(panel):
    """Parameters, camera (orbit, zoom), 4D time, colouring and keyframes: all must come back."""
    m = panel.model
    m.set_params(viewer="gl", fov=40.0, background="grey", lod_count=5000, min_opacity=0.05)
    m.set_params(scene="dynamic 4D")
    m.load_now()  # what the panel's load task does, here on the test's thread
    m.set_time(0.6)
    m.rotate(75.0, 15.0)
    m.zoom(0.8)
    m.add_keyframe()
    m.set_params(color_by="material")


def test_sidecar_reproduces_the_view_in_a_fresh_window_and_from_the_cli(qtbot, tmp_path):
    defaults = []

    def mutate(panel):
        _gl(panel)
        defaults.append(panel.render(SIZE))
        _mutate(panel)

    first, second, png = export_and_reload(qtbot, "splat", tmp_path, mutate, size=SIZE)
    assert first.shape == (SIZE[1], SIZE[0], 4) and not_blank(first)
    assert psnr(first, second) >= 40
    sidecar = png.with_name(png.name + ".session.json")
    saved = json.loads(sidecar.read_text())["panels"]["splat"]
    assert saved["params"]["scene"] == "dynamic 4D" and saved["params"]["time"] == pytest.approx(0.6)
    assert saved["camera"]["azimuth"] == pytest.approx(30 + 75) and len(saved["keyframes"]) == 1
    assert psnr(first, defaults[0]) < 25  # the session, not the defaults, made the reload match
    out = tmp_path / "cli.png"
    proc = snapshot_from_session("splat", sidecar, out, SIZE)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert psnr(first, iio.imread(out)) >= 40


def test_invalid_session_changes_nothing_and_says_why(qtbot, tmp_path):
    win = open_window(qtbot, "splat")
    panel = win.panels["splat"]
    panel.model.rotate(20, 0)
    before, form = panel.state(), panel.form.values()
    (tmp_path / "notes.txt").write_text("hello")
    for bad, words in [
        ({"params": {"fov": 500}}, "splat.params.fov = 500 is out of range"),
        ({"params": {"integrator": "warp"}}, "unknown key 'integrator'"),
        ({"params": {"scene": "file", "path": str(tmp_path / "gone.ply")}}, "gone.ply: no such file"),
        ({"params": {"scene": "file", "path": str(tmp_path / "notes.txt")}}, "not a scene file"),
        ({"camera": {"azimuth": "east"}}, "splat.camera.azimuth must be a finite number"),
        ({"keyframes": [{"elevation": 120}]}, "splat.keyframes[0].elevation = 120 is out of range"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps({"kind": "visual-lab-session", "schema": 2, "panels": {"splat": bad}}))
        assert not win.load_session(path)
        assert words in win.last_error, win.last_error
        assert panel.state() == before and panel.form.values() == form
    win.close()


def test_scene_file_opens_a_chooser_and_the_loading_label_ends(panel, qtbot, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    g = io.load(panel_sample_path())
    io.write_ply(tmp_path / "mine.ply", g.subset(np.arange(500)))
    panel.form.widget("scene").setCurrentText("file")  # what a user does
    dlg = panel.findChild(QFileDialog)
    assert dlg is not None and dlg.isVisible()
    dlg.reject()  # cancelled: nothing changes, the form shows the scene that is shown
    assert panel.model.params.scene == "sample 3D" and panel.form.values()["scene"] == "sample 3D"
    assert "loading" not in panel.view.overlay.text()
    panel.form.widget("scene").setCurrentText("file")
    dlg = panel.choose_scene_file()  # the chooser again; a file is picked
    dlg.selectFile(str(tmp_path / "mine.ply"))
    dlg.accept()
    qtbot.waitUntil(lambda: panel.model.scene.count == 500, timeout=10_000)
    assert panel.form.values()["scene"] == "file" and panel.model.params.path == str(tmp_path / "mine.ply")
    qtbot.waitUntil(lambda: "loading" not in panel.view.overlay.text(), timeout=5000)
    assert "mine.ply" in panel.info_label.text()


def test_a_bad_file_ends_loading_with_a_message(panel, qtbot, tmp_path):
    messages = []
    panel.status.connect(messages.append)
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat ascii 1.0\nend_header\n")
    panel.open_path(tmp_path / "bad.ply")
    qtbot.waitUntil(lambda: panel.model.params.scene == "sample 3D", timeout=10_000)  # back to what is shown
    assert any("bad.ply" in m for m in messages) and not panel.model.stale
    assert "loading" not in panel.view.overlay.text()


def test_keyframes_listed_previewed_reordered_deleted(panel):
    m = panel.model
    start = m.orbit
    panel.camera_path.add_keyframe()
    m.rotate(90, 0)
    panel.camera_path.add_keyframe()
    assert [panel.keyframe_list.item(i).text()[:10] for i in range(2)] == ["1. az 30, ", "2. az 120,"]
    panel.keyframe_list.setCurrentRow(0)
    panel.camera_path.preview_keyframe()  # look through it
    assert m.orbit == start
    img = panel.render((120, 90))
    np.testing.assert_array_equal(img, panel.view.render_camera(m.camera((120, 90), m.keyframes[0])))
    panel.camera_path.move_keyframe(+1)  # reorder: it is second now, and stays selected
    assert m.keyframes[1] == start and panel.keyframe_list.currentRow() == 1
    assert panel.keyframe_list.item(1).text().startswith("2. az 30,")
    panel.camera_path.delete_keyframe()
    assert m.keyframes == [m.keyframes[0]] and m.keyframes[0].azimuth == pytest.approx(120)
    assert panel.keyframe_list.count() == 1
    assert panel.state()["keyframes"] == [m.keyframes[0].to_dict()]


def test_video_frames_at_the_chosen_size(panel):
    """Export > Video renders the model's animation at any size without touching the view."""
    _gl(panel)
    m = panel.model
    spec = panel.video()
    assert spec.label == "Turntable" and spec.duration >= 4
    spec.begin()
    f0, f_half = spec.frame(0.0, (320, 200)), spec.frame(0.5, (320, 200))
    spec.end()
    assert f0.shape == (200, 320, 4) and not_blank(f0)
    np.testing.assert_array_equal(f0, panel.render((320, 200)))  # u = 0 is the current view
    ref = raster.render(m.edited, m.turntable_camera(0.5, (320, 200)))  # half a turn: from behind
    assert raster.psnr(f_half[..., :3] / 255.0, ref) >= 30
    m.set_params(video="camera path")
    m.add_keyframe()
    m.rotate(60, 0)
    m.add_keyframe()
    spec, before = panel.video(), m.state()
    spec.begin()
    last = spec.frame(1.0, (160, 100))
    spec.end()
    assert m.state() == before  # frames leave the model as they found it
    assert psnr(last, panel.render((160, 100))) >= 40  # ends at the last keyframe = the current view


def test_4d_video_restores_time(panel, qtbot):
    _gl(panel)
    m = panel.model
    m.set_params(scene="dynamic 4D", video="4D playback")
    qtbot.waitUntil(lambda: m.scene.is_4d, timeout=10_000)
    m.set_time(0.3)
    spec = panel.video()
    spec.begin()
    a, b = spec.frame(0.0, (96, 72)), spec.frame(1.0, (96, 72))
    spec.end()
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1 and m.params.time == pytest.approx(0.3)


def _gl(panel):
    panel.model.set_params(viewer="gl")
    panel.node.active_renderer = "gl"


def panel_sample_path():
    from backends.splat import samples

    return samples.SAMPLE_3D


@pytest.fixture
def panel(qtbot):
    from panels.splat.panel import SplatPanel

    p = SplatPanel()
    qtbot.addWidget(p)
    p.resize(900, 600)
    p.show()
    yield p
    p.shutdown()


@pytest.mark.data
def test_garden_opens_with_frusta_and_a_click_looks_through_a_camera(qtbot):
    from pathlib import Path

    from tests.conftest import shared_data

    win = open_window(qtbot, "splat")
    win.hide()  # no on-screen paints of 138k splats on a software OpenGL: the checks use the model and renders
    panel = win.panels["splat"]
    assert win.open_path(Path(shared_data("splat", "gsplat_test_garden.npz"))), win.last_error
    qtbot.waitUntil(lambda: len(panel.model.cameras) == 3, timeout=30_000)
    assert panel.view.frusta.count == 3 * 16
    _gl(panel)
    view = panel.view.camera()
    c = panel.model.cameras[1]
    pc = view.viewmat[:3, :3] @ c.position + view.viewmat[:3, 3]
    x, y = view.fx * pc[0] / pc[2] + view.cx, view.fy * pc[1] / pc[2] + view.cy
    assert panel.view.click(x + 3, y - 2) == 1  # near the frustum's apex
    np.testing.assert_allclose(panel.view.camera().position, c.position, atol=1e-6 * panel.model.radius)
    img = panel.render((162, 105))  # through camera 1: the garden fills the frame
    assert not_blank(img) and (img[..., :3].max(-1) > 20).mean() > 0.8
    win.close()


def test_file_open_lists_the_active_panels_filter_first(qtbot, monkeypatch):
    from app import registry
    from app.window import MainWindow

    specs = dict(registry.panels())
    demo = registry.PanelSpec("demo", "Demo", "tests.app.demo_panel:DemoPanel")
    monkeypatch.setattr(registry, "panels", lambda: {"demo": demo, "splat": specs["splat"]})
    win = MainWindow(["demo", "splat"], restore_layout=False)
    qtbot.addWidget(win)
    win.load_all_now()
    win.activate("splat")
    assert win.open_filters() == [win.panels["splat"].open_filter, "Demo data (*.demo)"]
    win.activate("demo")
    assert win.open_filters()[0] == "Demo data (*.demo)"
    win.close()


def test_first_hour(qtbot, tmp_path):
    """What a new user does: launch, play, change three parameters, export PNG and the edited scene (found by
    label) with their sidecars, reload one in a fresh window: the same parameters and no stale marker."""
    win = open_window(qtbot, "splat")
    panel = win.panels["splat"]
    panel.start()  # a 3D scene: nothing to play
    assert not panel.play_button.isChecked()
    _gl(panel)
    for name, value in (("fov", 65.0), ("background", "white"), ("subsample", 0.5)):
        panel.form.set_values({name: value})
        panel.form.changed.emit(name, value)  # what the widget emits on a user edit
    assert (panel.model.params.fov, panel.model.params.background, panel.model.params.subsample) == (
        65.0,
        "white",
        0.5,
    )
    panel.model.set_params(export_size="200x150")
    acts = {a.label: a for a in panel.exports()}
    png, ply = tmp_path / "view.png", tmp_path / "edited.ply"
    assert win.run_export(acts["Render PNG (GL or reference, export size)"], png), win.last_error
    assert win.run_export(acts["Edited scene PLY"], ply), win.last_error
    img = iio.imread(png)
    assert img.shape == (150, 200, 4) and not_blank(img)
    assert (img[0, 0, :3] == 255).all()  # the white background
    assert io.load(ply).count == panel.model.edited.count
    win.close()
    fresh = open_window(qtbot, "splat")
    assert fresh.load_session(png.with_name(png.name + ".session.json")), fresh.last_error
    p2 = fresh.panels["splat"]
    assert p2.model.params == panel.model.params and p2.form.values() == panel.form.values()
    assert not p2.model.stale and psnr(p2.render((200, 150)), img) >= 40
    fresh.close()
