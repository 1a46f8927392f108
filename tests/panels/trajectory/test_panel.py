"""Trajectory panel: drawing, focus by click, exports, sessions, training in the worker, stop."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from backends.trajectory.data import world_to_image
from tests.conftest import shared_data

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
    from panels.trajectory.panel import TrajectoryParams

    p = _shared_panel
    p.set_params(TrajectoryParams())
    p._load()
    return p


def test_draws_window_and_renders(panel):
    panel.set_params(replace(panel.params(), model="cv20"))
    panel.advance(3)
    assert panel._win == 3
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4) and img.dtype == np.uint8
    # blue past tracks and red best samples are drawn on the white background
    rgb = img[..., :3].astype(int)
    blue = (rgb[..., 2] > 150) & (rgb[..., 0] < 90)
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 80) & (rgb[..., 2] < 80)
    assert blue.sum() > 20 and red.sum() > 5
    assert "minADE" in panel.info.text()


def test_click_focuses_nearest_agent(panel):
    panel.set_params(replace(panel.params(), model="cv"))
    panel.advance(5)
    w = panel._test
    sl = w.window(panel._win)
    target = sl.start + 1
    xy = w.obs[target, -1]
    canvas_pos = panel._view.scene.transform.map([xy[0], xy[1], 0, 1])

    class Ev:
        button = 1
        pos = (canvas_pos[0] / canvas_pos[3], canvas_pos[1] / canvas_pos[3])

    panel._on_click(Ev())
    assert panel._focus == target
    assert "focus ped" in panel._title.text


def test_exports_and_session(panel, tmp_path):
    panel.set_params(replace(panel.params(), model="cv20"))
    panel.advance(2)
    written = {}
    for action in panel.exports():
        path = tmp_path / f"x_{len(written)}.{action.suffixes[0]}"
        action.write(path)
        assert path.exists() and path.stat().st_size > 0, action.label
        written[action.suffixes[0]] = path
    metrics = json.loads(written["json"].read_text())
    assert metrics["minADE"] > 0 and metrics["scene"] == "synthetic"
    rows = np.loadtxt(written["csv"], delimiter=",", skiprows=1)
    S = panel._samples.shape[0]
    sl = panel._test.window(panel._win)
    n = sl.stop - sl.start
    assert rows.shape == (S * n * 12 + n * 12, 7)
    # the CSV holds the drawn samples and the ground truth of this window
    np.testing.assert_allclose(rows[: S * n * 12, 5:].reshape(S, n, 12, 2), panel._samples[:, sl], atol=1e-4)
    np.testing.assert_allclose(rows[S * n * 12 :, 5:].reshape(n, 12, 2), panel._test.pred[sl], atol=1e-4)
    npz = np.load(written["npz"])
    assert npz["samples"].shape == panel._samples.shape
    st = panel.state()
    assert st["window"] == 2
    panel.advance(7)
    panel.restore(json.loads(json.dumps(st)))
    assert panel._win == 2


def test_bad_folder_reports_error(panel):
    panel.set_params(replace(panel.params(), data="/nonexistent/folder"))
    assert "does not exist" in panel.info.text()
    panel.advance(1)  # no crash
    panel.render((64, 48))


def test_train_in_worker_and_stop(panel, qtbot, tmp_path):
    from backends.trajectory.synthetic import CrowdConfig, simulate_crowd, write_ethucy

    for phase, seed in (("train", 1), ("val", 2), ("test", 3)):  # a small crowd keeps epochs short
        write_ethucy(
            simulate_crowd(CrowdConfig(seed=seed, steps=120)), tmp_path / "synthetic" / phase / "c.txt"
        )
    panel.kmeans_init = 2
    panel.set_params(replace(panel.params(), data=str(tmp_path), model="eigentrajectory", epochs=1, seed=7))
    panel.start()
    assert panel._task is not None
    panel.advance(1)  # the panel stays usable while training runs
    qtbot.waitUntil(lambda: panel._task is None, timeout=90_000)
    key = panel._model_key()
    assert key in panel._models
    assert panel._history is not None and len(panel._history.train_loss) == 1
    assert "no trained" not in panel.info.text()
    # a long run, stopped after its first epoch: the best epoch so far is kept
    panel.set_params(replace(panel.params(), epochs=200, seed=8))
    panel.start()
    qtbot.waitUntil(
        lambda: panel._history is not None and len(panel._history.train_loss) >= 1, timeout=90_000
    )
    panel.stop()
    assert panel._task is None
    assert panel._model_key() in panel._models


def test_homography_overlay(panel):
    shared_data("ethucy", "zara1")
    shared_data("ethucy_homography", "zara1")
    panel.set_params(replace(panel.params(), scene="zara1", model="cv"))
    assert panel._test is not None and panel._H is not None
    panel.set_params(replace(panel.params(), image_coords=True))
    xy = panel._test.obs[0, -1]
    q = panel._to_view(xy[None])[0]
    ref = world_to_image(panel._H, xy[None])[0]
    np.testing.assert_allclose(q, ref, atol=1e-6)
    assert panel._view.camera.flip[1]
    assert "image" in panel._xaxis.axis.axis_label


def test_open_file(panel, tmp_path):
    from backends.common import UserError

    f = tmp_path / "mine.txt"
    f.write_text(
        "".join(f"{10 * t}\t{ped}\t{0.5 * t:.2f}\t{ped * 1.5:.2f}\n" for t in range(25) for ped in (1, 2, 3))
    )
    panel.set_params(replace(panel.params(), model="cv"))
    panel.open_path(f)
    assert panel._test.num_windows == 6 and panel._opened == f
    assert panel._metrics["ADE"] == pytest.approx(0.0, abs=1e-6)  # straight walks: CV is exact
    panel.advance(1)
    assert "mine.txt" in panel._title.text
    bad = tmp_path / "short.txt"
    bad.write_text("0\t1\t0\t0\n10\t1\t1\t0\n")
    with pytest.raises(UserError, match="no 20-step windows"):
        panel.open_path(bad)
