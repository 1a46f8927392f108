"""The trajectory panel model without Qt: forecasts against an independent constant-velocity computation,
focus by picking, window bounds, stale marker, sessions (all-or-nothing, every field, trained weights as
arrays), training stopped after an epoch keeps that epoch's weights."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

from backends.common import UserError
from backends.trajectory.live import model_state, train_job
from panels.model import param_specs
from panels.trajectory.model import MAX_MODELS, TrajectoryModel, TrajectoryParams


@pytest.fixture
def model():
    return TrajectoryModel()


def test_cv_metrics_match_an_independent_extrapolation(model):
    model.set_params(model="cv")
    w = model.windows
    assert model.num_windows == 231 and model.forecast.samples.shape == (1, w.num_agents, 12, 2)
    v = w.obs[:, 7].astype(float) - w.obs[:, 6]
    cv = w.obs[:, 7][:, None].astype(float) + np.arange(1, 13)[None, :, None] * v[:, None]
    err = np.linalg.norm(cv - w.pred, axis=-1)
    assert model.forecast.metrics["ADE"] == pytest.approx(err.mean(), rel=1e-5)
    assert model.forecast.metrics["FDE"] == pytest.approx(err[:, -1].mean(), rel=1e-5)
    assert model.stale == ""


def test_untrained_settings_are_marked_stale_and_cleared(model):
    assert model.forecast.model == "eigentrajectory" and model.stale == ""  # the bundled weights
    seen = []
    model.events.connect("stale", lambda why: seen.append(why))
    model.set_params(k=5)
    assert model.forecast.model == "cv20 (fallback)" and "press Train" in model.stale
    assert "cv20 (fallback)" in model.title()
    model.set_params(k=6)
    assert model.stale == "" and seen[-1] == "" and model.forecast.model == "eigentrajectory"


def test_pick_focuses_the_nearest_agent_and_shows_its_metrics(model):
    model.set_window(40)
    w, sl = model.windows, model.windows.window(40)
    target = sl.start + 2
    ped = model.pick(w.obs[target, -1] + 0.05)
    assert ped == w.ped_ids[target] and model.focus_index() == target
    d = np.linalg.norm(model.forecast.samples[:, target] - w.pred[target][None], axis=-1)
    ade, fde = model.focus_metrics()
    assert ade == pytest.approx(d.mean(-1).min()) and fde == pytest.approx(d[:, -1].min())
    assert f"focus ped {ped:g}" in model.title()
    # the focus follows the pedestrian to the next window while it is still there
    model.step(1)
    nxt = model.focus_index()
    assert nxt is None or w.ped_ids[nxt] == ped
    assert model.pick((1e4, 1e4)) is None and model.focus is None


def test_window_bounds_and_wrapping(model):
    with pytest.raises(UserError, match=r"window must be in 0\.\.230, got 231"):
        model.set_window(231)
    model.set_window(230)
    model.step(1)
    assert model.window == 0


def test_session_round_trip_is_exact_and_strict_json(model):
    model.set_params(model="cv20", seed=3, anchors=12)
    model.set_window(17)
    model.focus_agent(model.windows.window(17).start)
    model.set_camera((1.0, 2.0, 5.0, 4.0))
    st = json.loads(json.dumps(model.state(), allow_nan=False))
    fresh = TrajectoryModel()
    fresh.restore(st, model.arrays())
    assert fresh.state() == model.state()
    np.testing.assert_array_equal(fresh.forecast.samples, model.forecast.samples)
    assert fresh.title() == model.title()


def _invalid_values():
    """(key path, value, words in the message): every param field, then every other key of the state."""
    bad = {
        "data": 5,
        "scene": "atlantis",
        "model": "warp-drive",
        "k": 17,
        "anchors": 0,
        "seed": -1,
        "epochs": "fast",
        "sweep_seeds": 101,
        "image_coords": "yes",
    }
    assert set(bad) == set(param_specs(TrajectoryParams))  # a new field needs a case here
    cases = [(("params", k), v, f"trajectory.params.{k}") for k, v in bad.items()]
    cases += [(("params", "k"), float("nan"), "params.k"), (("params", "zz"), 1, "unknown key 'zz'")]
    cases += [
        (("params", "data"), "/nonexistent/folder", "does not exist"),
        (("window",), -1, "trajectory.window"),
        (("window",), 231, "trajectory.window"),
        (("window",), "3", "trajectory.window"),
        (("window",), True, "trajectory.window"),
        (("focus",), "ped", "trajectory.focus"),
        (("focus",), float("inf"), "trajectory.focus"),
        (("camera",), [1, 2], "trajectory.camera"),
        (("camera",), [0, 0, -1, 1], "trajectory.camera"),
        (("camera",), [0, 0, float("nan"), 1], "trajectory.camera"),
        (("opened",), 5, "trajectory.opened"),
        (("opened",), "/nonexistent/tracks.txt", "trajectory.opened"),
        (("et",), {"config": {"k": 99}}, "trajectory.et.config"),
        (("et",), [1], "trajectory.et"),
        (("telescope",), 1, "unknown key 'telescope'"),
    ]
    return cases


def test_every_invalid_value_changes_nothing_and_names_the_key(model):
    model.set_window(5)
    before, arrays = model.state(), model.arrays()
    for path, value, words in _invalid_values():
        st = copy.deepcopy(before)
        target = st
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(UserError, match=re.escape(words)):
            model.restore(st, arrays)
        assert model.state() == before, path
    # weights that do not fit their config
    broken = dict(arrays)
    broken["et.anchors"] = arrays["et.anchors"][:, :3]
    with pytest.raises(UserError, match=r"trajectory\.et: .*shapes"):
        model.restore(before, broken)
    with pytest.raises(UserError, match=r"trajectory\.et: .*do not match"):
        model.restore(before, {k: v for k, v in arrays.items() if k != "et.anchors"})
    assert model.state() == before


def test_trained_weights_travel_in_the_session_arrays(model):
    """A session restores the weights it holds, not whatever the app would load for these settings."""
    et = copy.deepcopy(model.et_model())
    et.net.anchors.mul_(1.3)
    model.set_et_model(et)
    st, arrays = model.state(), model.arrays()
    assert set(arrays) == {f"et.{k}" for k in et.net.state_dict()}
    assert st["et"]["config"]["k"] == 6 and st["et"]["history"]["epochs"] == 15
    fresh = TrajectoryModel()
    assert not np.allclose(fresh.forecast.samples, model.forecast.samples)  # bundled weights differ
    fresh.restore(json.loads(json.dumps(st, allow_nan=False)), arrays)
    np.testing.assert_allclose(fresh.forecast.samples, model.forecast.samples, atol=1e-6)


def test_opened_file_is_restored(model, tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text(
        "".join(f"{10 * t}\t{p}\t{0.5 * t:.2f}\t{p * 1.5:.2f}\n" for t in range(25) for p in (1, 2, 3))
    )
    model.set_params(model="cv")
    model.open_path(f)
    assert model.num_windows == 6 and model.forecast.metrics["ADE"] == pytest.approx(0.0, abs=1e-6)
    model.set_window(4)
    fresh = TrajectoryModel()
    fresh.restore(json.loads(json.dumps(model.state())), model.arrays())
    assert fresh.scene.label == "mine.txt" and fresh.num_windows == 6 and fresh.window == 4
    with pytest.raises(UserError, match="no 20-step windows"):
        model.open_path(_short(tmp_path))
    assert model.scene.label == "mine.txt"


def _short(tmp_path):
    bad = tmp_path / "short.txt"
    bad.write_text("0\t1\t0\t0\n10\t1\t1\t0\n")
    return bad


def test_stopped_training_keeps_the_epoch_that_reached_the_model(model, tmp_path):
    """Drive the worker generator here: after epoch 1 Stop builds the model from the copied best weights,
    which predict exactly what the live network predicted at that epoch."""
    from backends.trajectory.synthetic import CrowdConfig, simulate_crowd, write_ethucy

    for phase, seed in (("train", 1), ("val", 2), ("test", 3)):
        write_ethucy(
            simulate_crowd(CrowdConfig(seed=seed, steps=60)), tmp_path / "synthetic" / phase / "c.txt"
        )
    model.kmeans_init = 1
    model.set_params(data=str(tmp_path), epochs=3, seed=7)
    assert "press Train" in model.stale
    cfg = model.et_config()
    model.training_started(cfg)
    gen = train_job(cfg, model.data_root(), "synthetic")
    snap = next(i.data for i in gen if i.data is not None)
    model.training_progress(snap)
    assert model.shown_history().train_loss == snap.train_loss
    expected = snap.model.predict(model.windows)  # the generator is paused: the live net is at epoch 1
    assert "after 1 epochs" in model.training_stopped()
    gen.close()
    assert model.stale == "" and model.forecast.model == "eigentrajectory"
    np.testing.assert_allclose(model.forecast.samples, expected, atol=1e-6)


def test_finished_training_and_bounded_model_store(model, tmp_path):
    from backends.trajectory.eigentrajectory import ETConfig

    et = model.et_model()
    model.set_params(k=5)
    assert model.forecast.model == "cv20 (fallback)"
    for i in range(MAX_MODELS + 3):  # runs for other settings finish: stored, nothing redrawn
        model.training_finished(("elsewhere", i), et)
    assert len(model.models) == MAX_MODELS and ("elsewhere", 2) not in model.models
    model.training_finished(model.model_key(), et)  # the run for the settings shown
    assert len(model.models) == MAX_MODELS and ("elsewhere", 3) not in model.models
    assert model.forecast.model == "eigentrajectory" and model.stale == ""
    assert isinstance(model.et_config(), ETConfig) and model.et_config().k == 5


def test_model_state_is_plain_arrays(model):
    info, arrays = model_state(model.et_model())
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays.values())
    json.dumps(info, allow_nan=False)


def test_run_uses_the_restored_params(model):
    st = model.state()
    st["params"].update(k=4, epochs=3, seed=9)
    st["et"] = None
    model.restore(st, {})
    cfg = model.et_config()
    assert (cfg.k, cfg.epochs, cfg.seed, model.params.k) == (4, 3, 9, 4)
