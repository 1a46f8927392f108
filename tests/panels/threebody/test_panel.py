"""Three-body panel through its model: form and table agree with the model, no stale views, stop at once,
replay, exports by label and content, sessions that reproduce the figure, the escape map in colour."""

from __future__ import annotations

import json
import time

import imageio.v3 as iio
import numpy as np
import pytest

from panels.threebody.panel import ThreeBodyPanel
from tests.reproduce import export_and_reload, not_blank, open_window, psnr, snapshot_from_session


@pytest.fixture
def panel(qtbot):
    p = ThreeBodyPanel()
    qtbot.addWidget(p)
    p.resize(1300, 760)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()


def table_values(p) -> np.ndarray:
    t = p.table
    return np.array([[float(t.item(i, j).text()) for j in range(7)] for i in range(t.rowCount())])


def export(p, label: str, path):
    action = next(a for a in p.exports() if a.label == label)
    action.write(path)
    return path


def test_form_and_table_follow_the_model_both_ways(panel):
    m = panel.model
    assert table_values(panel)[0, 1] == pytest.approx(0.97000436, rel=1e-4)
    panel.form.widget("preset").setCurrentText("pythagorean")
    assert m.params.preset == "pythagorean"
    assert list(table_values(panel)[:, 0]) == [3.0, 4.0, 5.0]
    panel.table.item(0, 0).setText("6")
    assert m.params.ics[0][0] == 6.0 and m.system.mass[0] == 6.0
    assert m.params.ics[1][1:3] == (-2.0, -1.0)  # the other entries keep the model's values
    msgs = []
    panel.status.connect(msgs.append)
    panel.table.item(1, 0).setText("-1")
    assert msgs and "mass" in msgs[-1]
    assert m.params.ics[1][0] == 4.0 and table_values(panel)[1, 0] == 4.0  # the table shows the model again
    m.set_params(preset="lagrange")  # model -> form and table
    assert panel.form.widget("preset").currentText() == "lagrange"
    np.testing.assert_allclose(table_values(panel), m.ic_table(), rtol=1e-3, atol=1e-4)


def legend_names(plot) -> list[str]:
    return [label.text for _, label in plot.getPlotItem().legend.items]


def test_preset_change_clears_plots_slider_and_orbit_at_once(panel):
    panel.advance(5)
    assert len(panel.plots.e_curve.getData()[0]) > 10
    assert legend_names(panel.plots.energy_plot) == ["hermite eta=0.01"]  # no REBOUND curve drawn: not listed
    assert panel.play.slider.maximum() > 10
    panel.form.widget("preset").setCurrentText("pythagorean")
    x, _ = panel.plots.e_curve.getData()
    assert x is None or len(x) == 0
    assert panel.play.slider.maximum() == 0
    assert legend_names(panel.plots.energy_plot) == []
    assert len(panel.model.rec) == 1 and list(panel.model.rec.mass) == [3.0, 4.0, 5.0]


def test_changed_settings_show_a_stale_marker_until_restart(panel, qtbot):
    panel.advance(2)
    panel.form.widget("integrator").setCurrentText("rk4")
    assert panel.orbit.stale_label.isVisible()
    assert "Restart run" in panel.orbit.stale_label.text()
    panel.advance(1)  # a new synchronous run uses the new settings
    assert not panel.orbit.stale_label.isVisible()


def test_stop_returns_at_once_and_keeps_what_was_computed(panel, qtbot):
    panel.model.set_params(t_end=1e4, compare_rebound=False)
    panel.restart()
    qtbot.waitUntil(lambda: len(panel.model.rec) > 5, timeout=30_000)
    t0 = time.perf_counter()
    panel.stop()
    assert time.perf_counter() - t0 < 0.1
    n = len(panel.model.rec)
    qtbot.wait(300)
    assert len(panel.model.rec) == n  # nothing landed after stop
    assert not panel.play.run_button.isChecked()


def test_run_at_the_end_replays_the_run(panel, qtbot):
    panel.model.set_params(t_end=0.5, speed=5.0)
    panel.advance(1000)  # to the end (0.5 time units)
    m = panel.model
    assert m.rec.t_last == pytest.approx(0.5) and m.at_end()
    panel.play.run_button.click()
    assert m.time < 0.1  # back to the start
    qtbot.waitUntil(lambda: m.time > 0.2, timeout=5000)
    qtbot.waitUntil(lambda: not panel.play.run_button.isChecked(), timeout=5000)  # stops at the end
    assert m.at_end()


@pytest.mark.gl
def test_advance_draws_bodies_and_scrubbing_moves_them(panel):
    panel.advance(5)
    rec = panel.model.rec
    assert np.abs(rec.rel_energy_error()).max() < 1e-6  # Hermite eta=0.01 on the figure eight
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4) and (img[..., :3].max(-1) > 150).sum() > 50
    panel.play.slider.setValue(0)
    assert panel.model.frame == 0
    assert not np.array_equal(panel.render((320, 240)), img)


@pytest.mark.gl
def test_exports_by_label_and_content(panel, tmp_path):
    from backends.nbody.io import RUN_KEYS

    panel.advance(3)
    assert not_blank(iio.imread(export(panel, "Orbit PNG", tmp_path / "o.png")))
    lines = export(panel, "Energy plot SVG/CSV", tmp_path / "e.csv").read_text().splitlines()
    assert "x" in lines[0]
    with np.load(export(panel, "Trajectory NPZ", tmp_path / "t.npz")) as d:
        assert set(RUN_KEYS) <= set(d.files) and d["pos"].shape[1:] == (3, 3)
        assert len(d["t"]) == len(d["energy"]) == len(panel.model.rec)
    with pytest.raises(ValueError, match="Compute escape map"):
        export(panel, "Ensemble map NPZ", tmp_path / "x.npz")


def test_video_replays_the_run_at_any_size_and_leaves_the_model(panel):
    panel.model.set_params(t_end=1.0)
    panel.advance(1000)
    panel.model.set_time(0.3)
    spec = panel.video()
    assert spec.label == "Orbit" and spec.duration >= 4
    first, last = spec.frame(0.0, (640, 360)), spec.frame(1.0, (640, 360))
    assert first.shape == (360, 640, 4) and not_blank(first)
    assert psnr(first, last) < 40  # the bodies moved
    assert panel.model.time == 0.3


@pytest.mark.gl
def test_sidecar_reproduces_the_orbit_in_a_fresh_window_and_from_the_cli(qtbot, tmp_path):
    def mutate(p):
        p.model.set_params(preset="pythagorean", trail=300, t_end=2.0, compare_rebound=False)
        p.advance(30)
        p.model.set_time(1.1)
        p.model.set_camera(azimuth=50.0, elevation=25.0, distance=12.0)

    first, second, out = export_and_reload(qtbot, "threebody", tmp_path, mutate)
    assert not_blank(first)
    assert psnr(first, second) >= 40
    side = json.loads(out.with_name(out.name + ".session.json").read_text())
    st = side["panels"]["threebody"]
    assert st["camera"]["azimuth"] == 50.0 and st["time"] == pytest.approx(1.1)
    cli = snapshot_from_session("threebody", out.with_name(out.name + ".session.json"), tmp_path / "cli.png")
    assert cli.returncode == 0, cli.stderr
    assert psnr(first, iio.imread(tmp_path / "cli.png")) >= 40


def test_invalid_session_changes_nothing_and_widgets_match_the_model(qtbot, tmp_path):
    win = open_window(qtbot, "threebody")
    p = win.panels["threebody"]
    p.model.set_params(preset="pythagorean", eta=0.02)
    before = json.dumps(p.model.state(), sort_keys=True)
    for bad, words in [
        ({"integrator": "warp-drive", "eta": "fast"}, "warp-drive"),
        ({"eta": "fast"}, "'fast'"),
        ({"eta": float("nan")}, "NaN"),
        ({"trail": 10**9}, "trail"),
        ({"ics": [[1, 0, 0]]}, "ics"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(
            json.dumps({"kind": "visual-lab-session", "schema": 2, "panels": {"threebody": {"params": bad}}})
        )
        assert not win.load_session(path)
        assert words in win.last_error
        assert json.dumps(p.model.state(), sort_keys=True) == before
    good = tmp_path / "good.json"
    ics = (np.asarray(p.model.ic_table()) * 1.5).tolist()
    good.write_text(
        json.dumps(
            {
                "kind": "visual-lab-session",
                "schema": 2,
                "panels": {"threebody": {"params": {"preset": "figure8", "integrator": "rk4", "ics": ics}}},
            }
        )
    )
    assert win.load_session(good), win.last_error
    form = p.form.values()
    assert {k: form[k] for k in ("preset", "integrator", "eta")} == {
        "preset": "figure8",
        "integrator": "rk4",
        "eta": 1e-2,
    }
    np.testing.assert_allclose(table_values(p), ics, rtol=1e-3, atol=1e-4)
    assert p.model.run_config().integrator == "rk4" and p.model.system.mass[0] == pytest.approx(4.5)
    win.close()


@pytest.mark.gl
def test_escape_map_is_in_colour_with_axes_and_colour_bar(panel, tmp_path):
    from backends.nbody.live import escape_map_now

    res = escape_map_now(10, 10.0)
    assert (res.status == 2).sum() > 10  # some escapes to colour
    panel.tabs.setCurrentWidget(panel.ensemble_map)
    panel.model.set_ensemble(res)
    img = iio.imread(export(panel, "Ensemble map PNG", tmp_path / "map.png"))[..., :3].astype(int)
    # both ends of viridis appear (the map spans its colour range; the colour bar shows the whole range)
    for rgb in ((68, 1, 84), (253, 231, 37)):
        assert (np.abs(img - rgb).sum(-1) < 40).sum() > 20, rgb
    dark = (img.max(-1) < 40).mean()
    assert dark < 0.1  # not nearly black
    # the on-screen plot shows the same scalar image with the colour bar's levels (log10 escape time)
    lo, hi = panel.ensemble_map.bar.levels()
    assert hi == pytest.approx(1.0) and lo < hi
    with np.load(export(panel, "Ensemble map NPZ", tmp_path / "map.npz")) as d:
        assert {"x", "y", "escape_time", "status"} <= set(d.files)
        np.testing.assert_array_equal(d["status"], res.status)


def test_long_result_line_does_not_squeeze_the_view(panel, qtbot):
    panel.tabs.setCurrentWidget(panel.ensemble_map)
    qtbot.wait(50)
    w0, h0 = panel.orbit.canvas.native.width(), panel.ensemble_map.readout.height()
    panel.model.set_ensemble_message("2304 systems to t=10 in 12.3 s: " + "857 escapes, " * 40)
    qtbot.wait(50)
    assert panel.orbit.canvas.native.width() == w0
    assert panel.ensemble_map.readout.height() == h0


def test_table_shows_all_seven_columns_without_scrollbar(panel, qtbot):
    qtbot.wait(50)
    t = panel.table
    assert t.columnCount() == 7 and not t.horizontalScrollBar().isVisible()
    assert t.horizontalHeader().length() <= t.viewport().width()
    fm = t.fontMetrics()
    for j in range(7):
        assert fm.horizontalAdvance(t.item(0, j).text()) <= t.columnWidth(j), j


def test_policy_trained_in_the_panel_runs_the_learned_integrator(panel, qtbot, tmp_path):
    from backends.nbody.learned import load_policy

    panel.model.set_params(train_episodes=1)
    panel.start_training()
    qtbot.waitUntil(lambda: panel.model.policy is not None, timeout=120_000)
    assert len(panel.model.rewards) == 1
    x, y = panel.rewards.curve.getData()
    assert len(x) == 1 and np.isfinite(y).all()
    panel.form.widget("integrator").setCurrentText("learned")
    panel.form.widget("controller").setCurrentText("trained")
    panel.model.set_params(t_end=0.3)
    panel.advance(3)
    assert len(panel.model.rec) > 3 and panel.model.stale == ""
    saved = load_policy(export(panel, "DQN policy weights", tmp_path / "p.pt"))  # weights_only load
    obs = np.zeros(saved.obs_dim, np.float32)
    assert saved.act(obs) == panel.model.policy.act(obs)


def test_mouse_camera_moves_reach_the_model_and_the_session(panel):
    cam = panel.orbit.view.camera  # what a mouse drag / wheel changes
    cam.azimuth = 123.0
    cam.elevation = -20.0
    assert panel.model.camera.azimuth == 123.0 and panel.model.camera.elevation == -20.0
    assert panel.state()["camera"]["azimuth"] == 123.0
    good = panel.model.camera.distance
    cam.scale_factor = 1e-12  # zoomed beyond the documented range: the view returns to the model's camera
    assert panel.model.camera.distance == good and cam.scale_factor == good
