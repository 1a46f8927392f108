"""The diffusion panel's model, Qt-free: validation of every field, sessions that keep the weights, the drawn
points and the flow shown, invalidation of stale results, and training that hands over copies."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from backends.common import UserError, drain
from backends.diffusion.data import make_dataset
from backends.diffusion.live import generative, train_job
from backends.diffusion.models import TrainConfig
from backends.diffusion.pipeline import CurvePoint, SampleConfig, generate
from backends.diffusion.samplers import SampleResult
from panels.diffusion.model import NOT_RESAMPLED, DiffusionModel, DiffusionParams
from panels.model import param_specs

TINY = TrainConfig(family="edm", steps=10, batch=64, hidden=16, depth=2, report_every=5)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _roundtrip(m: DiffusionModel) -> DiffusionModel:
    """Through strict JSON and arrays, as a session file stores them."""
    state = json.loads(json.dumps(m.state(), allow_nan=False))
    fresh = DiffusionModel()
    fresh.restore(state, {k: np.array(v) for k, v in m.arrays().items()})
    return fresh


def _invalid_values(spec) -> list:
    if spec.kind == "bool":
        return [1, "yes"]
    if spec.kind == "choice":
        return ["warp-drive", 3]
    if spec.kind == "text":
        return [5]
    out = ["fast", float("nan"), spec.maximum + 1, spec.minimum - 1]
    return out + ([2.5] if spec.kind == "int" else [])


def test_every_field_rejects_invalid_values_and_nothing_changes():
    m = DiffusionModel()
    m.set_params(dataset="gmm", model="exact", nfe=12)
    before = m.state()
    specs = param_specs(DiffusionParams)
    assert set(specs) == {f.name for f in dataclasses.fields(DiffusionParams)}
    for name, spec in specs.items():
        for bad in _invalid_values(spec):
            with pytest.raises(UserError) as err:
                m.restore({"params": {**before["params"], name: bad}})
            numeric = isinstance(bad, int | float) and spec.kind in ("int", "float")
            whole = (
                spec.kind == "int" and isinstance(bad, int | float) and math.isfinite(bad) and bad == int(bad)
            )
            shown = (str(int(bad)) if whole else f"{bad:g}") if numeric else repr(bad)
            assert f"diffusion.params.{name}" in str(err.value) and shown in str(err.value), str(err.value)
            assert m.state() == before
    for bad_state, words in [
        ({"warp": 1}, "unknown key 'warp'"),
        ({"frame": "last"}, "diffusion.frame"),
        ({"camera": [0, 0, -1, 2]}, "width and height must be > 0"),
        ({"camera": [0, 0, float("nan"), 2]}, "diffusion.camera"),
    ]:
        with pytest.raises(UserError, match=words):
            m.restore({**before, **bad_state})
        assert m.state() == before


def test_session_keeps_weights_points_flow_and_frame_exactly():
    m = DiffusionModel()
    m.set_params(dataset="points", model="edm", nfe=9, count=200, autozoom=False)
    t = np.linspace(0, 2 * np.pi, 40)
    m.add_points(np.stack([np.cos(t), np.sin(t)], 1))
    assert m.dataset().points.shape == (200, 2)  # 40 strokes and 4 jittered copies of each
    w = drain(train_job(m.dataset(), dataclasses.replace(TINY, seed=3), 10))
    m.set_weights(w)
    m.set_losses(w.losses)
    cfg = SampleConfig("heun", 9, 200, seed=5)
    m.show_result(generate(generative(w), cfg, return_trajectory=True), "heun")
    m.set_frame(2.5)
    m.camera = (-1.0, -2.0, 3.0, 3.0)
    m.set_curves([CurvePoint("heun", 9, 0.1, 0.01), CurvePoint("euler", 3, math.inf, math.nan)])
    r = _roundtrip(m)
    assert r.params == m.params and r.frame == 2.5 and r.camera == m.camera
    np.testing.assert_array_equal(r.points, m.points)
    np.testing.assert_array_equal(r.losses, w.losses)
    np.testing.assert_array_equal(r.result.trajectory, m.result.trajectory)
    assert r.curves[1].sw == math.inf and math.isnan(r.curves[1].floor) and r.curves_about == "edm on points"
    # the rebuilt network is the trained one: the same seed gives the same particles as the original weights
    a = generate(generative(w), cfg).samples
    b = generate(generative(r.weights), cfg).samples
    np.testing.assert_array_equal(a, b)
    assert r.frame_label() == m.frame_label() == "Heun (EDM) | eval 2.5/9 | NFE 9"


def test_broken_weight_arrays_change_nothing():
    m = DiffusionModel()
    m.set_params(dataset="moons", model="edm")
    w = drain(train_job(m.dataset(), TINY, 5))
    m.set_weights(w)
    state, arrays = m.state(), m.arrays()
    name = state["weights"]["names"][-1]
    bad = dict(arrays, **{f"weights.{name}": np.zeros((3, 3))})
    fresh = DiffusionModel()
    with pytest.raises(UserError, match="do not fit"):
        fresh.restore(state, bad)
    assert fresh.weights is None and fresh.params == DiffusionParams()
    huge = {
        **state,
        "weights": {**state["weights"], "config": {**state["weights"]["config"], "hidden": 10**9}},
    }
    with pytest.raises(
        UserError, match=r"diffusion.weights.config.hidden must be a finite number in \[1, 4096\]"
    ):
        fresh.restore(huge, arrays)  # refused before a network of that size is built
    del bad[f"weights.{name}"]
    with pytest.raises(UserError, match=f"has no 'weights.{name}'"):
        fresh.restore(state, bad)


def test_training_hands_over_copies_that_later_steps_do_not_touch():
    ds = make_dataset("moons")
    gen = train_job(ds, TINY, 10)
    updates = [p.data for p in iter(lambda: next(gen, None), None)]
    first = next(u.weights for u in updates if u.weights is not None)
    frozen = {k: v.copy() for k, v in first.state.items()}
    last = [u.weights for u in updates if u.weights is not None][-1]
    assert first.losses.shape == (5,) and last.losses.shape == (10,)
    assert any(not np.array_equal(frozen[k], last.state[k]) for k in frozen)  # training went on
    for k, v in frozen.items():
        np.testing.assert_array_equal(first.state[k], v)  # ... without writing into the handed-over copy


def test_model_or_data_change_drops_weights_sweep_and_marks_the_flow_stale():
    m = DiffusionModel()
    m.set_params(dataset="moons", model="edm", nfe=5, count=100)
    w = drain(train_job(m.dataset(), TINY, 5))
    m.set_weights(w)
    m.show_result(generate(generative(w), m.sample_config(), return_trajectory=True), "heun")
    m.set_curves([CurvePoint("heun", 5, 0.2, 0.01)])
    seen = []
    m.events.connect("resample", lambda: seen.append("resample"))
    m.set_params(nfe=7)  # a cheap change with a model at hand: the panel resamples at once
    assert seen == ["resample"] and m.stale == "sampling..." and m.curves
    assert (
        _roundtrip(m).stale == NOT_RESAMPLED
    )  # a session saved mid-resample: nothing resamples after loading
    m.set_params(seed=4)  # new noise for the same model: it stays, and the panel resamples
    assert m.weights is w and seen == ["resample"] * 2
    m.set_params(churn=1.0)  # the sweep was made with churn 0
    assert not m.curves
    m.set_curves([CurvePoint("heun", 5, 0.2, 0.01)])
    m.set_params(dataset="rings")
    assert m.weights is None and not m.curves and len(m.losses) == 0
    assert m.stale == "model or data changed: press Train"
    assert m.result is not None  # still drawn, but marked
    m.set_params(model="exact", dataset="gmm")
    assert seen[-1] == "resample"  # the exact model is cheap: sampled at once


def test_drawn_points_invalidate_a_model_trained_on_them():
    m = DiffusionModel()
    m.set_params(dataset="points", model="edm")
    with pytest.raises(UserError, match="draw points first"):
        m.dataset()
    m.add_points(np.array([[0.0, 0.0], [1.0, 1.0]]))
    w = drain(train_job(m.dataset(), TINY, 5))
    m.set_weights(w)
    m.add_points(np.array([[2.0, 0.0]]))
    assert m.weights is None and len(m.dataset().points) == 15
    with pytest.raises(UserError, match="finite"):
        m.add_points(np.array([[np.nan, 0.0]]))


def test_long_flows_keep_every_kth_state_and_the_last(monkeypatch):
    import panels.diffusion.model as dm

    monkeypatch.setattr(dm, "MAX_TRAJ_VALUES", 10 * 50 * 2)
    m = DiffusionModel()
    m.set_params(dataset="gmm", model="exact")
    traj = np.random.default_rng(0).standard_normal((31, 50, 2))
    m.show_result(SampleResult(traj[-1], traj, 30, np.zeros(50, bool)), "euler")
    assert m.result.trajectory.shape == (9, 50, 2)  # states 0, 4, ..., 28 and 30
    np.testing.assert_array_equal(m.evals, [0, 4, 8, 12, 16, 20, 24, 28, 30])
    np.testing.assert_allclose(m.result.trajectory[-1], traj[30].astype(np.float32))
    m.set_frame(7.5)
    assert m.frame_label() == "Euler | eval 29.0/30 | NFE 30"


def test_a_parameters_only_session_leaves_no_model_of_other_parameters():
    m = DiffusionModel()
    m.set_params(dataset="moons", model="edm", count=100, nfe=5)
    w = drain(train_job(m.dataset(), TINY, 5))
    m.set_weights(w)
    m.show_result(generate(generative(w), m.sample_config(), return_trajectory=True), "heun")
    full = m.state()
    with pytest.raises(UserError, match="has no 'traj'"):  # the state names a flow, the arrays are missing
        DiffusionModel().restore({**full, "weights": None}, {"points": m.points, "losses": m.losses})
    with pytest.raises(UserError, match="weights of a 'edm' model, but params.model is 'exact'"):
        DiffusionModel().restore({**full, "params": {"model": "exact"}}, m.arrays())
    seen = []
    m.events.connect("resample", lambda: seen.append(1))
    m.restore({"params": {"dataset": "gmm", "model": "exact"}})  # as if typed: the old model goes
    assert m.params.model == "exact" and m.weights is None and len(m.losses) == 0
    assert m.stale == "sampling..." and seen == [1]  # the exact model is sampled at once


def test_inverse_problem_columns_survive_a_session():
    from backends.diffusion.live import InverseResult

    rng = np.random.default_rng(2)
    m = DiffusionModel()
    m.set_params(dataset="digits", inverse="inpaint box")
    traj = rng.uniform(-1, 1, (6, 16, 64))
    cols = [rng.uniform(-1, 1, (16, 64)) for _ in range(3)]
    m.show_result(
        SampleResult(traj[-1], traj, 5, np.zeros(16, bool)),
        "heun",
        InverseResult("inpaint box", *cols, 0.1, 0.2),
    )
    r = _roundtrip(m)
    assert r.inverse.kind == "inpaint box" and (r.inverse.rmse_dds, r.inverse.rmse_dps) == (0.1, 0.2)
    for a, b in zip((r.inverse.truth, r.inverse.measured, r.inverse.dps), cols):
        np.testing.assert_array_equal(a, b)
    assert r.frame_label() == m.frame_label() and r.frame_label().startswith("input | DDS")
