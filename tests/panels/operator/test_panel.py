"""Operator-learning panel: train live, draw the selected test sample, exports, sessions."""

from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest

from backends.common import UserError
from backends.operator import checkpoint
from backends.operator import data as opdata
from backends.operator.train import predict
from panels.operator.render import VIRIDIS, colorize, compose, shared_limits
from tests.conftest import shared_data

pytest.importorskip("neuralop")


@pytest.fixture
def panel(bare_panel):
    bare_panel.model.set_params(n=20, count=30, n_test=6, epochs=3, width=8, modes=4, batch_size=8)
    return bare_panel


def test_advance_trains_and_the_views_show_what_the_model_holds(panel):
    panel.advance(2)
    m = panel.model
    assert [h.epoch for h in m.history] == [1, 2] and m.prediction.shape == (6, 1, 20, 20)
    assert "recycled CG" in panel.info.text() and "test rel L2" in panel.info.text()
    panel.form.widget("sample").setValue(4)
    assert m.params.sample == 4
    f = m.sample_fields()
    assert np.array_equal(panel.image_items["truth"].image, m.test_data.y[4, 0].T)
    assert np.allclose(f["error"], m.prediction[4, 0] - m.test_data.y[4, 0])
    assert np.allclose(panel.c_test.yData, [h.test_l2 for h in m.history])  # raw data (the axis is log)
    # the exported picture: the truth tile's centre pixel has the shared-scale colour of the truth there
    img = panel.render((840, 200))
    lo, hi = shared_limits(f)
    tile = (840 - 21 - 5 * 4) // 4
    cy, cx = (200 - tile) // 2 + tile // 2, 4 + tile + 4 + tile // 2
    expected = colorize(
        f["truth"][tile // 2 * 20 // tile, tile // 2 * 20 // tile][None, None], lo, hi, VIRIDIS
    )[0, 0]
    assert np.abs(img[cy, cx, :3].astype(int) - expected).max() <= 1


def test_exports_metrics_predictions_and_weights(panel, tmp_path):
    panel.advance(2)
    acts = {a.label: a for a in panel.exports()}
    acts["Metrics CSV"].write(tmp_path / "m.csv")
    rows = list(csv.DictReader(open(tmp_path / "m.csv")))
    assert [float(r["test_l2"]) for r in rows] == pytest.approx([h.test_l2 for h in panel.model.history])
    acts["Predictions NPZ"].write(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as z:
        assert np.array_equal(z["prediction"], panel.model.prediction)
        err = np.linalg.norm((z["prediction"] - z["y"]).reshape(6, -1), axis=1) / np.linalg.norm(
            z["y"].reshape(6, -1), axis=1
        )
        assert np.allclose(z["rel_l2"], err, rtol=1e-5)
    acts["Weights (checkpoint directory)"].write(tmp_path / "w.ckpt")
    net, _ = checkpoint.load(tmp_path / "w.ckpt")
    assert np.allclose(predict(net, panel.model.test_data.x), panel.model.prediction, atol=1e-6)
    video = panel.video()
    assert video.duration == 3.0  # 6 test samples, half a second each
    frame = video.frame(0.55, (400, 100))  # sample 3 of 0..5, the selection unchanged
    assert np.array_equal(frame, compose(panel.model.sample_fields(3), (400, 100)))
    assert not np.array_equal(frame, compose(panel.model.sample_fields(0), (400, 100)))
    assert panel.model.params.sample == 0
    acts["Test sample PNG"].write(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_session_restore_is_all_or_nothing(panel):
    before = panel.model.params
    with pytest.raises(UserError, match=r"operator\.params\.modes = 0 is out of range \[1, 128\]"):
        panel.restore({"params": {"n": 64, "modes": 0}})
    assert panel.model.params == before
    panel.restore({"params": {"n": 64, "modes": 6}, "history": []})
    assert panel.model.params.n == 64 and panel.form.values()["modes"] == 6


def test_a_rejected_form_edit_puts_the_model_value_back(panel):
    messages = []
    panel.status.connect(messages.append)
    panel.advance(1)
    panel.form.widget("sample").setValue(9)  # 6 test samples
    assert panel.model.params.sample == 0 and panel.form.values()["sample"] == 0
    assert "sample = 9 is out of range [0, 5]" in messages[-1]


def test_train_in_the_background_and_stop_without_blocking(panel, qtbot):
    panel.generate()
    qtbot.waitUntil(lambda: panel.model.test_data is not None, timeout=60_000)
    assert len(panel.model.train_data) == 24 and panel.model.test_data.y.shape == (6, 1, 20, 20)
    panel.model.set_params(epochs=200)
    panel.start()
    qtbot.waitUntil(lambda: len(panel.model.history) >= 2, timeout=60_000)
    t0 = time.perf_counter()
    panel.stop()
    assert time.perf_counter() - t0 < 0.1
    qtbot.waitUntil(lambda: not panel.tasks.busy(), timeout=30_000)
    n = len(panel.model.history)
    assert 2 <= n < 200 and panel.model.history[-1].epoch == n
    # the weights shown are the last delivered epoch's: they predict the prediction shown
    assert np.allclose(
        predict(panel.model.network(), panel.model.test_data.x), panel.model.prediction, atol=1e-5
    )
    messages = []
    panel.status.connect(messages.append)
    panel.refine()
    qtbot.waitUntil(lambda: not panel.tasks.busy(), timeout=60_000)
    assert (
        panel.model.net_config.last_modes == 20 and len(panel.model.history) == n + 3
    )  # refiner epochs appended
    assert panel.model.history[-1].lr == pytest.approx(1e-3)  # Darcy: the H^-1 data misfit's rate
    shown = [m for m in messages if m.startswith("epoch 3/3")]
    expected = opdata.high_frequency_error(panel.model.prediction, panel.model.test_data.y)
    assert shown and f"above the median wavenumber {expected:.3g}" in shown[-1]
    qtbot.waitUntil(lambda: len(panel.c_test.xData) == n + 3, timeout=5_000)  # the plot throttle
    assert list(panel.c_test.xData) == list(range(1, n + 4))  # epochs count on into the refinement
    assert panel.refine_mark.isVisible() and panel.refine_mark.value() == n + 0.5


def test_sidecar_reproduces_the_figure_in_a_fresh_window_and_from_the_cli(qtbot, tmp_path):
    """Trained weights, data, selected sample: the export's sidecar gives the same image."""
    import imageio.v3 as iio

    from tests.reproduce import export_and_reload, not_blank, psnr, snapshot_from_session

    def mutate(panel):
        panel.model.set_params(n=16, count=12, n_test=4, epochs=2, width=8, modes=4, batch_size=4, seed=3)
        panel.advance(2)
        panel.model.select(sample=2)

    first, second, png = export_and_reload(qtbot, "operator", tmp_path, mutate)
    assert not_blank(first) and psnr(first, second) >= 40
    sidecar = png.with_name(png.name + ".session.json")
    side = json.loads(sidecar.read_text())["panels"]["operator"]
    assert side["params"]["sample"] == 2 and side["network"]["kind"] == "fno" and len(side["history"]) == 2
    out = tmp_path / "cli.png"
    res = snapshot_from_session("operator", sidecar, out)
    assert res.returncode == 0, res.stderr
    assert psnr(first, iio.imread(out)) >= 40


@pytest.mark.data
def test_opens_the_neuraloperator_darcy_set(panel):
    panel.open_path(shared_data("operator", "darcy_test_16.pt"))
    assert len(panel.model.test_data) == 6 and panel.model.data.resolution == 16
    assert "darcy from darcy_test_16.pt: 50 samples" in panel.info.text()
