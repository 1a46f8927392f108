"""Trajectory panel: what a user sees and gets, checked through the model and the images/files it makes.

Drawing at any size, the slider showing the window drawn, a real mouse click focusing an agent (highlighted,
others dimmed, its metrics shown), exports found by label and checked by content, the video spec, training
in the worker with a Stop that returns at once, sessions that change nothing when invalid, and the
reproduction of an exported figure from its sidecar in a fresh window and from the command line.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import numpy as np
import pytest

from backends.common import UserError
from backends.trajectory.data import world_to_image
from panels.model import config_to_dict
from tests.conftest import shared_data
from tests.reproduce import not_blank, psnr

pytestmark = pytest.mark.gl


@pytest.fixture(scope="module")
def _shared_panel(qapp):
    """One panel for the module (building a vispy canvas costs seconds under llvmpipe)."""
    from panels.trajectory.panel import TrajectoryPanel

    p = TrajectoryPanel()
    p.resize(1200, 800)
    p.show()
    yield p
    p.shutdown()
    p.close()
    p.deleteLater()


@pytest.fixture
def panel(_shared_panel):
    from panels.trajectory.model import TrajectoryParams

    p = _shared_panel
    p.restore({"params": config_to_dict(TrajectoryParams()), "window": 0, "focus": None, "camera": None})
    return p


def _colour_counts(img: np.ndarray) -> dict[str, int]:
    rgb = img[..., :3].astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return {
        "blue": int(((b > 150) & (r < 90)).sum()),
        "red": int(((r > 150) & (g < 80) & (b < 80)).sum()),
        "orange": int(((r > 200) & (g > 100) & (g < 180) & (b < 60)).sum()),
    }


def _click(panel, x: float, y: float) -> None:
    """A real left click at canvas pixel (x, y): Qt mouse events to the canvas' native GL window."""
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    window = panel.view.canvas._backend  # the QOpenGLWindow inside canvas.native (app/gl_window.py)
    QTest.mouseClick(
        window, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(round(x), round(y))
    )


def test_renders_any_size_and_the_slider_shows_the_window_drawn(panel):
    m = panel.model
    m.set_window(63)
    assert panel.playbar.slider.value() == 63 and panel.playbar.slider.maximum() == m.num_windows - 1
    assert "window 64/231" in m.title() and panel.view.title.text == m.title()
    panel.playbar.slider.setValue(10)  # scrubbing moves the model
    assert m.window == 10
    panel.advance(3)
    assert m.window == 13 and panel.playbar.slider.value() == 13
    small = panel.render((320, 240))
    assert small.shape == (240, 320, 4) and small.dtype == np.uint8
    img = panel.render((960, 540))
    assert img.shape == (540, 960, 4) and not_blank(img)
    c = _colour_counts(img)
    assert c["blue"] > 50 and c["red"] > 20 and c["orange"] > 50  # past tracks, best samples, samples
    assert "minADE/minFDE" in panel.info.text()


def test_axes_follow_the_view_after_the_widget_is_resized(panel, qtbot):
    """Tick labels describe what is drawn: after a resize the axes' domain is the view's visible range."""
    panel.resize(1000, 700)
    panel.render((320, 240))  # an export in between must not leave its layout behind
    qtbot.wait(300)
    view = panel.view.view
    tr = view.scene.transform
    x0, x1 = tr.imap([0, 0])[0], tr.imap([view.size[0], 0])[0]
    lo, hi = panel.view.xaxis.axis.domain
    assert lo == pytest.approx(x0, abs=0.01 * (x1 - x0)) and hi == pytest.approx(x1, abs=0.01 * (x1 - x0))
    panel.resize(1200, 800)


def test_clicking_an_agent_highlights_it_and_shows_its_metrics(panel, qtbot):
    m = panel.model
    m.set_params(model="cv20")
    m.set_window(40)
    qtbot.wait(50)
    before = panel.render((960, 540))
    w, sl = m.windows, m.windows.window(40)
    target = sl.start + int(np.argmax(np.linalg.norm(w.obs[sl, -1] - w.obs[sl, 0], axis=1)))  # a walker
    x, y = panel.view.view_to_canvas(m.to_view(w.obs[target, -1]))
    _click(panel, x, y)
    assert m.focus == w.ped_ids[target]
    assert f"Focus: pedestrian {m.focus:g}" in panel.info.text() and "focus ped" in panel.view.title.text
    after = panel.view.render((960, 540), hold=True)  # held: canvas pixels are the image's pixels
    px, py = (round(v) for v in panel.view.view_to_canvas(m.to_view(w.obs[target, -1])))
    panel.view.release()
    assert _colour_counts(after[py - 2 : py + 3, px - 2 : px + 3])["red"] == 25  # the red focus disc
    assert _colour_counts(before[py - 2 : py + 3, px - 2 : px + 3])["red"] < 25
    cb, ca = _colour_counts(before), _colour_counts(after)
    assert ca["blue"] < cb["blue"]  # the other agents' pasts are dimmed
    assert ca["orange"] > 100  # its 20 samples, drawn strong
    # clicking empty space clears the focus
    _click(panel, 3, 3)
    assert m.focus is None and "Focus" not in panel.info.text()


def test_exports_found_by_label_and_checked_by_content(panel, tmp_path):
    import imageio.v3 as iio

    m = panel.model
    m.set_params(model="cv20", anchors=7)
    m.set_window(2)
    actions = {a.label: a for a in panel.exports()}
    assert not any("MP4" in label for label in actions)  # the animation is the panel's video()
    paths = {}
    for label, a in actions.items():
        if label == "Scene sweep table CSV":  # needs a sweep: tests/panels/trajectory/test_study.py
            with pytest.raises(UserError, match="press Sweep scenes"):
                a.write(tmp_path / "sweep.csv")
            continue
        paths[label] = tmp_path / f"export_{len(paths)}.{a.suffixes[0]}"
        a.write(paths[label])
    png = iio.imread(paths["Scene PNG"])
    assert png.shape[:2] == (960, 1280) and not_blank(png)
    text = paths["Predictions of this window CSV"].read_text().splitlines()
    assert text[0] == "window,frame,ped,sample,step,x_m,y_m"
    rows = np.loadtxt(text[1:], delimiter=",")
    sl = m.windows.window(2)
    n = sl.stop - sl.start
    assert rows.shape == (7 * n * 12 + n * 12, 7)
    np.testing.assert_allclose(
        rows[: 7 * n * 12, 5:].reshape(7, n, 12, 2), m.forecast.samples[:, sl], atol=1e-4
    )
    with np.load(paths["Predictions of the scene NPZ"]) as npz:
        assert set(npz.files) == {"samples", "obs", "gt", "starts", "ped_ids", "frames", "best"}
        assert npz["samples"].shape == (7, m.windows.num_agents, 12, 2)
    metrics = json.loads(paths["Metrics JSON"].read_text())
    assert metrics["minADE"] == pytest.approx(m.forecast.metrics["minADE"]) and metrics["model"] == "cv20"
    assert metrics["params"]["anchors"] == 7
    m.set_params(model="eigentrajectory", anchors=20)  # the bundled model's 15-epoch training curve
    actions["Training plot PNG/SVG/CSV"].write(tmp_path / "loss.csv")
    table = np.genfromtxt(tmp_path / "loss.csv", delimiter=",", skip_header=1)
    np.testing.assert_allclose(table[:, 1], m.shown_history().train_loss, rtol=1e-6)


def test_video_plays_every_window_and_leaves_the_model_alone(panel):
    m = panel.model
    m.set_window(5)
    spec = panel.video()
    assert spec.label == "Scene windows" and spec.duration == pytest.approx(min(231 * 0.4, 60.0))
    first, last = spec.frame(0.0, (640, 360)), spec.frame(1.0, (640, 360))
    again = spec.frame(1.0 - 1e-4, (640, 360))  # the same window: the cached frame
    m.focus_agent(m.windows.window(230).start)  # a change during the export is drawn
    focused = spec.frame(1.0, (640, 360))
    spec.end()
    m.set_focus(None)
    np.testing.assert_array_equal(again, last)
    assert psnr(focused, last) < 40
    assert first.shape == (360, 640, 4) and not_blank(first) and psnr(first, last) < 30
    np.testing.assert_array_equal(last, panel.render((640, 360), window=230))
    assert m.window == 5 and panel.playbar.slider.value() == 5
    assert tuple(panel.view.canvas.size) != (640, 360)  # the on-screen layout is back


def test_train_in_worker_and_stop_returns_at_once(panel, qtbot, tmp_path):
    from backends.trajectory.synthetic import CrowdConfig, simulate_crowd, write_ethucy

    for phase, seed in (("train", 1), ("val", 2), ("test", 3)):  # a small crowd keeps epochs short
        write_ethucy(
            simulate_crowd(CrowdConfig(seed=seed, steps=60)), tmp_path / "synthetic" / phase / "c.txt"
        )
    m = panel.model
    m.kmeans_init = 1
    m.set_params(data=str(tmp_path), epochs=1, seed=7)
    assert "press Train" in m.stale and "press Train" in panel.stale_label.text()
    canvas_height = panel.view.canvas.native.height()
    panel.start()
    assert panel.tasks.busy("train") and not panel.train_button.isEnabled()
    panel.advance(1)  # the panel stays usable while training runs
    qtbot.waitUntil(lambda: not panel.tasks.busy("train"), timeout=90_000)
    qtbot.waitUntil(lambda: m.model_key() in m.models, timeout=10_000)
    assert m.stale == "" and panel.stale_label.text() == "" and panel.train_button.isEnabled()
    assert panel.view.canvas.native.height() == canvas_height  # the marker going away moves nothing
    assert len(m.shown_history().train_loss) == 1
    # a long run, stopped after its first epoch: Stop returns at once and keeps the best epoch
    m.set_params(epochs=200, seed=8)
    panel.start()
    qtbot.waitUntil(lambda: m.training is not None and m.training.history is not None, timeout=90_000)
    t = time.perf_counter()
    panel.stop()
    assert time.perf_counter() - t < 2.0 and not panel.tasks.busy()
    assert m.model_key() in m.models and m.training is None and m.forecast.model == "eigentrajectory"
    m.kmeans_init = 10
    from app.worker import manager

    # the cancelled thread ends on its own at its next yield (no test after this one waits for it)
    qtbot.waitUntil(lambda: not manager().running(), timeout=60_000)


def test_invalid_session_changes_nothing_and_the_form_follows_a_valid_one(panel):
    m = panel.model
    m.set_params(k=5, seed=3)
    before = m.state()
    bad = copy.deepcopy(before)
    bad["params"]["model"] = "warp-drive"
    with pytest.raises(UserError, match="trajectory.params.model must be one of"):
        panel.restore(bad)
    assert m.state() == before and panel.form.values()["model"] == "eigentrajectory"
    good = copy.deepcopy(before)
    good["params"].update(k=4, epochs=33, model="cv")
    panel.restore(good)
    values = panel.form.values()
    assert {k: values[k] for k in ("k", "epochs", "model")} == {"k": 4, "epochs": 33, "model": "cv"}
    assert m.et_config().k == 4 and m.et_config().epochs == 33  # what the next run uses


def test_missing_folder_says_so_and_draws_no_data(panel):
    m = panel.model
    m.set_params(data="/nonexistent/folder")
    assert m.scene is None and "does not exist" in panel.info.text()
    assert panel.view.title.text.startswith("no data: dataset folder /nonexistent/folder does not exist")
    assert panel.playbar.slider.maximum() == 0 and panel.video() is None
    panel.advance(1)
    img = panel.render((320, 240))
    assert _colour_counts(img)["orange"] == 0 and _colour_counts(img)["blue"] == 0  # nothing stale drawn
    with pytest.raises(UserError, match="no predictions to export"):
        panel.exports()[1].write(Path("/tmp/never.csv"))


def test_homography_overlay(panel):
    shared_data("ethucy", "zara1")
    shared_data("ethucy_homography", "zara1")
    m = panel.model
    m.set_params(scene="zara1", model="cv")
    assert m.scene is not None and m.scene.homography is not None
    m.set_params(image_coords=True)
    xy = m.windows.obs[0, -1]
    np.testing.assert_allclose(m.to_view(xy[None])[0], world_to_image(m.scene.homography, xy[None])[0])
    assert panel.view.view.camera.flip[1] and "image" in panel.view.xaxis.axis.axis_label
    x, _y, w, _h = m.camera
    assert x < m.to_view(xy[None])[0, 0] < x + w  # the camera was refitted to image pixels


def test_open_file_through_the_panel(panel, tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text(
        "".join(f"{10 * t}\t{p}\t{0.5 * t:.2f}\t{p * 1.5:.2f}\n" for t in range(25) for p in (1, 2, 3))
    )
    panel.model.set_params(model="cv")
    panel.open_path(f)
    assert panel.model.num_windows == 6 and "mine.txt" in panel.view.title.text
    assert panel.playbar.slider.maximum() == 5 and panel.state()["opened"] == str(f.resolve())


def test_sidecar_reproduces_the_figure_in_a_fresh_window_and_from_the_cli(qtbot, tmp_path):
    """Changed weights, seed, window, focus and camera: the export's sidecar gives the same image."""
    import imageio.v3 as iio

    from tests.reproduce import export_and_reload, snapshot_from_session

    def mutate(panel):
        m = panel.model
        et = copy.deepcopy(m.et_model())
        et.net.anchors.mul_(1.3)  # weights no file holds: only the session's arrays can reproduce them
        m.set_params(seed=5)
        m.set_et_model(et)
        m.set_window(37)
        m.focus_agent(m.windows.window(37).start + 1)
        x, y, w, h = m.camera
        m.set_camera((x + 0.2 * w, y + 0.1 * h, 0.6 * w, 0.6 * h))

    first, second, png = export_and_reload(qtbot, "trajectory", tmp_path, mutate)
    assert not_blank(first) and psnr(first, second) >= 40
    sidecar = png.with_name(png.name + ".session.json")
    side = json.loads(sidecar.read_text())["panels"]["trajectory"]
    assert side["window"] == 37 and side["et"] is not None and side["params"]["seed"] == 5
    out = tmp_path / "cli.png"
    res = snapshot_from_session("trajectory", sidecar, out)
    assert res.returncode == 0, res.stderr
    assert psnr(first, iio.imread(out)) >= 40
