"""The panel's compute layer without Qt: export tables against the samples, atomic text writes, trained
weights through plain arrays, the CV-20 fallback label, opening one recording."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import UserError
from backends.trajectory.live import (
    SYNTHETIC_ROOT,
    WINDOW_CSV_HEADER,
    bundled_model,
    forecast,
    load_scene,
    model_from_state,
    model_state,
    open_tracks,
    window_table,
)


@pytest.fixture(scope="module")
def scene():
    return load_scene(SYNTHETIC_ROOT, "synthetic")


def test_window_table_holds_the_samples_and_the_truth(scene):
    w = scene.windows
    fc = forecast(w, "cv20", anchors=5, seed=1)
    rows = window_table(w, fc.samples, 12)
    sl = w.window(12)
    n = sl.stop - sl.start
    assert WINDOW_CSV_HEADER.split(",") == ["window", "frame", "ped", "sample", "step", "x_m", "y_m"]
    assert rows.shape == (5 * n * 12 + n * 12, 7)
    np.testing.assert_array_equal(rows[:, 0], 12)
    np.testing.assert_array_equal(rows[:, 1], w.frames[12, 7])
    np.testing.assert_allclose(rows[: 5 * n * 12, 5:].reshape(5, n, 12, 2), fc.samples[:, sl])
    np.testing.assert_allclose(rows[5 * n * 12 :, 5:].reshape(n, 12, 2), w.pred[sl])
    assert set(rows[5 * n * 12 :, 3]) == {-1}


def test_fallback_is_labelled_and_cv20_sample0_is_cv(scene):
    w = scene.windows
    fb = forecast(w, "eigentrajectory", anchors=7, seed=0, et=None)
    cv = forecast(w, "cv", anchors=7, seed=0)
    assert fb.model == "cv20 (fallback)" and fb.samples.shape[0] == 7
    np.testing.assert_allclose(fb.samples[0], cv.samples[0], atol=1e-5)
    with pytest.raises(UserError, match="model must be one of"):
        forecast(w, "lstm", 7, 0)


def test_weights_round_trip_through_arrays(scene):
    et = bundled_model(6, 20)
    info, arrays = model_state(et)
    back = model_from_state(info, arrays, "x.et")
    np.testing.assert_array_equal(back.predict(scene.windows), et.predict(scene.windows))
    assert back.history.val_minfde == pytest.approx(et.history.val_minfde)
    bad = dict(arrays)
    bad["et.head.2.bias"] = np.full_like(arrays["et.head.2.bias"], np.nan)
    with pytest.raises(UserError, match="x.et: weight 'head.2.bias' is not a finite float array"):
        model_from_state(info, bad, "x.et")
    for change, words in (
        ({"heads": 0}, "heads must be a whole number in 1..64"),
        ({"hidden": 10**9}, "hidden"),
    ):
        with pytest.raises(UserError, match=words):
            model_from_state({**info, "config": {**info["config"], **change}}, arrays, "x.et")
    with pytest.raises(UserError, match="x.et.config: .*backbone"):
        model_from_state({**info, "config": {**info["config"], "backbone": "rnn"}}, arrays, "x.et")
    assert bundled_model(5, 20) is None


def test_open_tracks_straight_walks(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("".join(f"{10 * t}\t{p}\t{0.5 * t:.2f}\t{p * 1.5:.2f}\n" for t in range(25) for p in (1, 2)))
    sc = open_tracks(f)
    assert sc.windows.num_windows == 6 and sc.label == "mine.txt" and sc.opened == f.resolve()
    np.testing.assert_allclose(sc.bystanders(0), [[3.5, 1.5], [3.5, 3.0]])  # frame 70: both walkers
    assert forecast(sc.windows, "cv", 1, 0).metrics["FDE"] == pytest.approx(0.0, abs=1e-6)
    bad = tmp_path / "short.txt"
    bad.write_text("0\t1\t0\t0\n10\t1\t1\t0\n")
    with pytest.raises(UserError, match="no 20-step windows"):
        open_tracks(bad)
