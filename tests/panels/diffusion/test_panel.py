"""Diffusion panel through its model: exports by content, workers that hand over copies, no stale views, one
transport bar, a readable NFE axis, and sidecars that reproduce the exported figure."""

from __future__ import annotations

import csv
import json
import math
import time

import imageio.v3 as iio
import numpy as np
import pytest
from PySide6.QtWidgets import QPushButton

from backends.common import UserError
from backends.diffusion.live import generative
from backends.diffusion.models import load_trained
from backends.diffusion.pipeline import CurvePoint, SampleConfig, generate
from backends.diffusion.samplers import SampleResult
from panels.model import param_specs


@pytest.fixture
def panel(qtbot):
    from panels.diffusion.panel import DiffusionPanel

    p = DiffusionPanel()
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def _export(panel, label: str):
    return next(a for a in panel.exports() if a.label == label)


def _wait_idle(qtbot, panel, timeout=20000):
    qtbot.waitUntil(lambda: not panel.tasks.busy(), timeout=timeout)
    qtbot.wait(20)  # the last results are delivered through the event loop


def test_constructor_is_cheap(qtbot):
    from panels.diffusion.panel import DiffusionPanel

    times = []
    for _ in range(2):
        t = time.perf_counter()
        p = DiffusionPanel()
        times.append(time.perf_counter() - t)
        qtbot.addWidget(p)
        p.shutdown()
    assert min(times) < 1.0, times  # no training, no dataset loading in the constructor


@pytest.mark.gl
def test_exact_model_render_and_exports_by_content(panel, tmp_path):
    from tests.reproduce import not_blank

    panel.model.set_params(dataset="gmm", model="exact", nfe=15, lines=True)
    panel.advance(2)
    res = panel.model.result
    assert res.trajectory.shape == (16, 1000, 2) and res.ok
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4) and not_blank(img)
    rgb = img[..., :3].astype(int)
    assert ((rgb.max(-1) - rgb.min(-1)) > 60).sum() > 200  # coloured particles, not grey target dots
    _export(panel, "Sample scatter PNG").write(tmp_path / "s.png")
    big = iio.imread(tmp_path / "s.png")
    assert big.shape[:2] == (1200, 1200) and not_blank(big)
    _export(panel, "Sample scatter SVG").write(tmp_path / "s.svg")
    assert (tmp_path / "s.svg").read_text().count("<circle") == 1000
    _export(panel, "Samples NPZ/CSV").write(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:
        assert set(z.files) == {"samples", "traj", "bad", "nfe"} and z["traj"].shape == (16, 1000, 2)
        np.testing.assert_allclose(z["samples"], res.samples)
    _export(panel, "Samples NPZ/CSV").write(tmp_path / "s.csv")
    rows = list(csv.reader((tmp_path / "s.csv").open()))
    assert rows[0] == ["x0", "x1"] and len(rows) == 1001
    with pytest.raises(UserError, match="no trained weights"):
        _export(panel, "Model weights").write(tmp_path / "x.pt")


@pytest.mark.gl
def test_trained_weights_export_is_the_model_shown(panel, tmp_path):
    panel.model.set_params(dataset="moons", model="edm", nfe=9, count=500)
    panel.advance(2)
    m = panel.model
    assert len(m.losses) == 20 and m.result.samples.shape == (500, 2)
    _export(panel, "Model weights").write(tmp_path / "w.pt")
    tr = load_trained(tmp_path / "w.pt")
    assert tr.family == "edm" and len(tr.losses) == 20
    cfg = SampleConfig("heun", 9, 300, seed=2)
    from backends.diffusion.pipeline import from_trained

    a = generate(from_trained(tr), cfg).samples
    np.testing.assert_array_equal(a, generate(generative(m.weights), cfg).samples)
    _export(panel, "Training loss plot").write(tmp_path / "loss.csv")
    rows = list(csv.reader((tmp_path / "loss.csv").open()))
    assert len(rows) > 20 and len(rows[0]) >= 2


def test_bad_particles_are_flagged_not_drawn(panel):
    traj = np.random.default_rng(0).standard_normal((5, 100, 2))
    traj[:, :7] = np.nan
    res = SampleResult(traj[-1], traj, 4, np.isnan(traj[-1]).any(1), "7 of 100 particles became NaN")
    panel.model.set_params(dataset="moons")
    panel._on_sampled(res, "euler")
    assert "WARNING" in panel.info.text()
    assert panel.flow.particles.count == 93  # the point visual holds only the finite particles


def test_bad_parameters_are_reported_and_the_form_keeps_the_model(panel):
    panel.form.changed.emit("D", -1.0)
    assert "D = -1 is out of range" in panel.info.text()
    assert panel.model.params.D == 128.0 and panel.form.values()["D"] == 128.0
    panel.model.set_params(dataset="swissroll", model="exact")
    panel.sample()
    assert "Gaussian-mixture" in panel.info.text()


@pytest.mark.gl
def test_stop_is_instant_and_keeps_a_copy_of_the_weights(panel, qtbot):
    panel.model.set_params(dataset="moons", model="edm", train_steps=100000, count=300, nfe=5)
    panel.start()
    qtbot.waitUntil(lambda: len(panel.model.losses) >= 50 and panel.model.weights is not None, timeout=30000)
    t = time.perf_counter()
    panel.stop()
    assert time.perf_counter() - t < 0.1
    w = panel.model.weights
    kept = {k: v.copy() for k, v in w.state.items()}
    qtbot.wait(300)  # the cancelled worker may still be inside a training step
    assert panel.model.weights is w
    for k, v in kept.items():
        np.testing.assert_array_equal(w.state[k], v)
    panel.sample()  # the weights trained so far sample
    _wait_idle(qtbot, panel)
    assert panel.model.result is not None and panel.model.result.samples.shape == (300, 2)


def test_changing_the_data_stops_training_the_old_model(panel, qtbot):
    panel.model.set_params(dataset="moons", model="edm", train_steps=100000)
    panel.start()
    qtbot.waitUntil(lambda: panel.model.weights is not None, timeout=30000)
    panel.model.set_params(dataset="rings")
    assert not panel.tasks.busy("train") and panel.model.weights is None
    qtbot.wait(300)  # nothing the cancelled job still hands over lands on the new dataset
    assert panel.model.weights is None and len(panel.model.losses) == 0
    assert "training stopped" in panel.info.text()


@pytest.mark.gl
def test_digits_inverse_problem_view(panel, qtbot):
    from backends.diffusion.live import DIGITS_ASSET

    if not DIGITS_ASSET.exists():
        pytest.skip("bundled digits model missing")
    panel.model.set_params(dataset="digits", model="edm", inverse="inpaint box", nfe=10)
    panel.sample()
    qtbot.waitUntil(lambda: panel.model.inverse is not None, timeout=30000)
    inv = panel.model.inverse
    assert "DDS" in panel.info.text() and inv.rmse_dds < inv.rmse_dps
    img = panel.render((400, 200))
    assert img.shape == (200, 400, 4) and img[..., :3].max() > 150  # bright digit strokes


@pytest.mark.parametrize(
    ("model", "sampler"), [("lightsb", "bridge"), ("interpolant", "sde"), ("pfgmpp", "heun")]
)
def test_other_model_families_in_panel(panel, model, sampler):
    panel.model.set_params(
        dataset="8gaussians", model=model, sampler=sampler, nfe=6, count=300, D=4.0, eps=0.2
    )
    panel.advance(1)
    res = panel.model.result
    assert res.samples.shape == (300, 2) and res.trajectory.shape[0] == res.nfe + 1
    assert len(panel.model.losses) > 0 and panel.model.weights.family == model
    panel.model.set_frame(0)
    if model == "pfgmpp":  # heavy PFGM++ tails (D = 4): the first frame is zoomed out far beyond the data
        assert panel.view.camera.rect.width > 20


def test_user_drawn_point_set(panel):
    panel.model.set_params(dataset="points", model="edm", nfe=5, count=200)
    with pytest.raises(UserError, match="draw points first"):
        panel.advance(1)
    t = np.linspace(0, 2 * np.pi, 40)
    panel.model.add_points(np.stack([np.cos(t), np.sin(t)], 1))
    panel.advance(1)
    assert panel.model.result.samples.shape == (200, 2)
    assert np.median(np.linalg.norm(panel.model.result.samples, axis=1)) < 3.0


@pytest.mark.gl
def test_sampler_or_nfe_change_resamples_at_once(panel, qtbot):
    panel.model.set_params(dataset="gmm", model="exact", nfe=15, count=400)
    panel.advance(0)
    assert panel.model.result.nfe == 15
    panel.form.changed.emit("nfe", 7)  # a user edit: no Sample press
    assert panel.model.stale == "sampling..."
    _wait_idle(qtbot, panel)
    assert panel.model.result.nfe == 7 and panel.model.stale == "" and "NFE 7" in panel.flow.frame_info.text()
    panel.form.changed.emit("sampler", "euler")
    _wait_idle(qtbot, panel)
    assert panel.model.sampler_shown == "euler" and panel.flow.frame_info.text().startswith("Euler")


def test_one_set_of_transport_buttons(panel):
    texts = sorted(b.text() for b in panel.findChildren(QPushButton) if b.isVisibleTo(panel))
    assert texts.count("Train") == texts.count("Sample") == texts.count("Stop") == texts.count("Play") == 1
    assert "Run" not in texts


def test_nfe_axis_labels_do_not_overlap(panel):
    from panels.diffusion.plots import MIN_TICK_GAP_PX

    for axis, lo, hi, plain in [
        (panel.plots.nfe_axis, math.log10(3), math.log10(65), {"5", "10", "20", "50"}),
        (panel.plots.sw_axis, math.log10(0.03), math.log10(40), {"0.1", "1", "10"}),
    ]:
        for size in (150, 300, 900):
            ((_, vals),) = axis.tickValues(lo, hi, size)
            labels = axis.tickStrings(vals, 1, 1)
            assert len(vals) >= 2 and len(set(labels)) == len(labels)
            assert np.diff(vals).min() * size / (hi - lo) >= MIN_TICK_GAP_PX, (size, labels)
            assert set(labels) <= {
                "0.05",
                "0.1",
                "0.2",
                "0.3",
                "0.5",
                "1",
                "2",
                "3",
                "5",
                "10",
                "20",
                "30",
                "50",
            }
        assert plain <= set(labels)  # at 900 px: plain numbers at 1-2-5


def test_sweep_of_another_model_leaves_the_plot(panel):
    m = panel.model
    m.set_params(dataset="gmm", model="exact")
    m.set_curves([CurvePoint("heun", 5, 0.2, 0.01), CurvePoint("euler", 5, 0.3, 0.01)])
    assert panel.plots.curve_samplers() == ["euler", "heun"]
    assert "exact on gmm" in panel.plots.nfe_plot.getPlotItem().titleLabel.text
    m.set_params(dataset="8gaussians")
    assert panel.plots.curve_samplers() == []
    assert "press NFE sweep" in panel.plots.nfe_plot.getPlotItem().titleLabel.text


@pytest.mark.gl
def test_video_frames_the_flow_at_any_size(panel):
    panel.model.set_params(dataset="gmm", model="exact", nfe=9, count=500)
    panel.advance(0)
    panel.model.set_frame(3)
    spec = panel.video()
    spec.begin()
    first, last = spec.frame(0.0, (320, 180)), spec.frame(1.0, (320, 180))
    assert first.shape == last.shape == (180, 320, 4) and panel.model.frame == 3
    from tests.reproduce import psnr

    assert psnr(first, last) < 30  # noise at the start, data at the end


def test_invalid_session_changes_nothing_and_names_key_and_value(qtbot, tmp_path):
    from panels.diffusion.model import DiffusionParams
    from tests.reproduce import open_window

    win = open_window(qtbot, "diffusion")
    panel = win.panels["diffusion"]
    panel.model.set_params(dataset="gmm", model="exact", nfe=12)
    before = panel.state()
    for name, spec in param_specs(DiffusionParams).items():
        bad = {"bool": "yes", "choice": "warp-drive", "text": 5}.get(spec.kind, "fast")
        path = tmp_path / "bad.json"
        state = {"params": {**before["params"], name: bad}}
        path.write_text(
            json.dumps({"kind": "visual-lab-session", "schema": 2, "panels": {"diffusion": state}})
        )
        assert not win.load_session(path)
        assert f"diffusion.params.{name}" in win.last_error and repr(bad) in win.last_error
        assert panel.state() == before and panel.form.values()[name] == before["params"][name]
    win.close()


@pytest.mark.gl
def test_sidecar_reproduces_the_figure(qtbot, tmp_path):
    from tests.reproduce import export_and_reload, not_blank, psnr, snapshot_from_session

    def mutate(panel):
        m = panel.model
        m.set_params(
            dataset="moons", model="edm", nfe=9, count=600, sampler="euler", lines=True, autozoom=False
        )
        panel.advance(2)
        m.set_frame(4.5)
        panel.view.camera.rect = (-2.5, -1.5, 4.0, 4.0)  # the user panned and zoomed

    first, second, out = export_and_reload(qtbot, "diffusion", tmp_path, mutate)
    assert not_blank(first)
    assert psnr(first, second) >= 40
    with np.load(tmp_path / "diffusion.png.session.arrays.npz") as z:
        assert any(k.startswith("diffusion/weights.") for k in z.files) and "diffusion/traj" in z.files
    sidecar = out.with_name(out.name + ".session.json")
    cli = snapshot_from_session("diffusion", sidecar, tmp_path / "cli.png")
    assert cli.returncode == 0, cli.stderr
    assert psnr(first, iio.imread(tmp_path / "cli.png")) >= 40


@pytest.mark.gl
def test_first_hour(qtbot, tmp_path):
    """What a new user does: pick data that needs no training, Sample, change three things (each shows at once),
    export PNG, data and a video, and reload the sidecar."""
    from PySide6.QtCore import Qt

    from app.export import write_video
    from tests.reproduce import not_blank, open_window, psnr

    win = open_window(qtbot, "diffusion")
    panel = win.panels["diffusion"]
    form = panel.form
    form.widget("dataset").setCurrentText("8gaussians")
    form.widget("model").setCurrentText("exact")
    form.widget("count").setValue(800)
    qtbot.mouseClick(panel.transport.sample_button, Qt.MouseButton.LeftButton)
    _wait_idle(qtbot, panel)
    assert panel.model.result is not None and panel.model.result.nfe == 35
    form.widget("nfe").setValue(12)
    form.widget("sampler").setCurrentText("euler")
    form.widget("lines").setChecked(True)
    _wait_idle(qtbot, panel)
    m = panel.model
    assert m.params.nfe == 12 and m.params.sampler == "euler" and m.params.lines
    assert m.result.nfe == 12 and m.sampler_shown == "euler" and m.stale == ""
    assert not panel.flow.marker.isVisible() and panel.flow.frame_info.text().startswith("Euler")
    assert "[diffusion]" not in win.statusBar().currentMessage()  # its own message, not another panel's
    png = tmp_path / "scatter.png"
    assert win.run_export(_export(panel, "Sample scatter PNG"), png), win.last_error
    first = iio.imread(png)
    assert not_blank(first)
    assert win.run_export(_export(panel, "Samples NPZ/CSV"), tmp_path / "samples.csv")
    assert (tmp_path / "samples.csv").read_text().splitlines()[0] == "x0,x1"
    spec = panel.video()
    size, fps, seconds = (
        (480, 272),
        30,
        0.2,
    )  # small and short: the shell's default 1280x720 costs ~0.5 s a frame here
    count = round(fps * seconds)
    spec.begin()
    frames = (spec.frame(i / (count - 1), size) for i in range(count))
    video = iio.imread(write_video(tmp_path / "flow.mp4", frames, fps=fps), index=None)
    assert video.shape[:3] == (count, 272, 480)
    assert psnr(video[0], video[-1]) < 30  # the flow moves
    win.close()
    fresh = open_window(qtbot, "diffusion")
    assert fresh.load_session(png.with_name(png.name + ".session.json")), fresh.last_error
    again = fresh.panels["diffusion"]
    assert again.form.values()["nfe"] == again.model.params.nfe == 12  # widgets, model and next run agree
    assert psnr(first, again.render(EXPORT_SIZE)) >= 40
    fresh.close()


EXPORT_SIZE = (1200, 1200)


def test_long_messages_do_not_resize_the_view(panel, qtbot):
    panel.resize(1400, 800)
    panel.show()
    qtbot.waitExposed(panel)
    traj = np.random.default_rng(1).standard_normal((3, 50, 2))
    panel._on_sampled(SampleResult(traj[-1], traj, 2, np.zeros(50, bool)), "euler")
    qtbot.wait(20)
    width = panel.flow.canvas.native.width()
    panel.model.mark_stale("the sampler does not apply to this model, " * 40)
    panel._say("a very long status line " * 80)
    qtbot.wait(50)
    assert panel.flow.marker.isVisible() and panel.flow.canvas.native.width() == width
    panel.model.mark_stale("")
    assert not panel.flow.marker.isVisible()


def test_a_running_sweep_stops_when_its_settings_change(panel, qtbot):
    m = panel.model
    m.set_params(dataset="gmm", model="exact")
    panel.compare()
    qtbot.waitUntil(lambda: len(m.curves) >= 1, timeout=30000)
    assert m.curves_about.startswith("exact on gmm")
    m.set_params(churn=2.0)
    assert not panel.tasks.busy("sweep") and m.curves == []
    qtbot.wait(300)
    assert m.curves == [] and panel.plots.curve_samplers() == []


def test_shift_click_draws_points_where_the_camera_looks(panel, qtbot):
    from vispy.util import keys

    panel.resize(1200, 800)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.wait(100)  # the canvas takes its final size
    panel.model.set_params(dataset="points", autozoom=False)
    panel.view.camera.rect = (1.0, 2.0, 4.0, 4.0)  # centre (3, 4)
    canvas = panel.canvas()
    centre = (canvas.size[0] / 2, canvas.size[1] / 2)
    canvas.events.mouse_press(pos=centre, button=1, modifiers=())
    assert len(panel.model.points) == 0  # without Shift the mouse pans and zooms
    canvas.events.mouse_press(pos=centre, button=1, modifiers=(keys.SHIFT,))
    assert len(panel.model.points) == 5  # the point and four jittered copies
    np.testing.assert_allclose(panel.model.points[0], [3.0, 4.0], atol=0.1)
    assert panel.model.dataset().points.shape == (5, 2)


@pytest.mark.gl
def test_a_three_column_csv_is_drawn_by_its_first_two(panel, tmp_path):
    from tests.reproduce import not_blank

    rng = np.random.default_rng(0)
    pts = rng.normal(size=(300, 3)) * [1.0, 0.5, 2.0]
    path = tmp_path / "p.csv"
    path.write_text("x,y,z\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in pts))
    panel.open_path(path)
    assert "loaded 300 points" in panel.info.text()
    panel.model.set_params(nfe=5, count=200)
    panel.advance(1)
    assert panel.model.result.samples.shape == (200, 3)
    assert panel.flow.particles.count == 200 and not_blank(panel.render((200, 160)))
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,nan\n2,3\n")
    with pytest.raises(UserError, match="NaN"):
        panel.open_path(bad)
    assert panel.model.params.csv_path == str(path)  # a bad file changes nothing
