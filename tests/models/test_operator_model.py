"""The operator-learning panel model without Qt: every parameter checked against its declared range (nothing
changes on a bad value), sessions round-trip the trained weights exactly (rebuilt from the configuration, the
predictions recomputed from them match the stored ones), and the weights a worker hands over are copies."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

pytest.importorskip("neuralop")

from backends.common import UserError, drain  # noqa: E402
from backends.operator import data as opdata  # noqa: E402
from backends.operator.train import predict  # noqa: E402
from panels.model import param_specs  # noqa: E402
from panels.operator.model import OperatorLab, OperatorParams, train_with_previews  # noqa: E402

SMALL = dict(n=16, count=12, n_test=4, epochs=2, width=8, modes=4, batch_size=4)


@pytest.fixture(scope="module")
def darcy():
    return drain(opdata.generate_darcy(16, 12, seed=0))


@pytest.fixture(scope="module")
def trained(darcy):
    """A model with data, two epochs of training and its previews (shared by the tests: do not mutate)."""
    m = OperatorLab()
    m.set_params(**SMALL)
    m.set_data(darcy)
    net = m.new_network()
    previews = list(train_with_previews(net, m.train_data, m.test_data, m.params.train_config()))
    for p in previews:
        m.add_preview(p)
    return m, net, previews


def _bad_value(spec):
    if spec.kind == "choice":
        return "nope"
    if spec.kind == "int":
        return int(spec.maximum) + 1
    return spec.maximum * 10


@pytest.mark.parametrize("name", list(param_specs(OperatorParams)))
def test_every_invalid_field_is_named_and_changes_nothing(trained, name):
    m = trained[0]
    spec = param_specs(OperatorParams)[name]
    before, state, arrays = m.params, m.state(), m.arrays()
    bad = _bad_value(spec)
    with pytest.raises(UserError, match=name):
        m.set_params(**{name: bad})
    assert m.params == before
    broken = json.loads(json.dumps(state))
    broken["params"][name] = bad
    with pytest.raises(UserError, match=rf"operator\.params\.{name}"):
        m.restore(broken, arrays)
    with pytest.raises(UserError, match=name):
        m.restore(
            {**state, "params": {**state["params"], name: "text" if spec.kind != "choice" else 3}}, arrays
        )
    assert m.params == before and m.state() == state


def test_combination_checks_name_key_and_value(trained):
    m = trained[0]
    state, arrays = m.state(), m.arrays()
    with pytest.raises(UserError, match=r"sample = 4 is out of range \[0, 3\]"):
        m.set_params(sample=4)
    with pytest.raises(UserError, match=r"operator\.params\.channel = 1 is out of range \[0, 0\]"):
        m.restore({**state, "params": {**state["params"], "channel": 1}}, arrays)
    cases = [
        ({**state, "history": [{"epoch": 1}]}, arrays, r"history\[0\]"),
        ({**state, "history": [{**state["history"][0], "test_l2": "x"}]}, arrays, r"history\[0\]\.test_l2"),
        ({**state, "network": {**state["network"], "width": 16}}, arrays, "weight"),
        ({**state, "network": {**state["network"], "kind": "cnn"}}, arrays, "operator.network.*cnn"),
        ({**state, "data": {"kind": 1}}, arrays, r"operator\.data"),
        ({**state, "bogus": 1}, arrays, "unknown key 'bogus'"),
        (state, {**arrays, "prediction": arrays["prediction"][:2]}, "'prediction' has shape"),
        (state, {k: v for k, v in arrays.items() if k != "test_y"}, "no 'test_y'"),
        (state, {**arrays, "train_y": arrays["train_y"][:, :, :8]}, "session data"),
    ]
    w = next(k for k in arrays if k.startswith("weight."))
    nan = arrays[w].copy()
    nan.flat[0] = np.nan
    cases.append((state, {**arrays, w: nan}, "NaN"))
    for st, arr, msg in cases:
        with pytest.raises(UserError, match=msg):
            m.restore(st, arr)
        assert m.state() == state
    assert all(np.array_equal(a, m.arrays()[k]) for k, a in arrays.items())


def test_session_round_trip_rebuilds_the_trained_network(trained):
    m, _net, _previews = trained
    m.select(sample=2)
    st = json.loads(json.dumps(m.state(), allow_nan=False))
    arrays = {k: np.array(v) for k, v in m.arrays().items()}
    assert {"test_x", "test_y", "train_x", "train_y", "prediction"} <= set(arrays)
    fresh = OperatorLab()
    seen = []
    fresh.events.connect("restored", lambda: seen.append("restored"))
    fresh.restore(st, arrays)
    assert seen == ["restored"] and fresh.params == m.params and fresh.history == m.history
    assert np.array_equal(fresh.prediction, m.prediction)
    assert np.array_equal(fresh.test_data.y, m.test_data.y) and len(fresh.train_data) == 8
    # the weights, rebuilt from the configuration, predict what was shown
    assert np.allclose(predict(fresh.network(), fresh.test_data.x), m.prediction, atol=1e-5)
    f, g = fresh.sample_fields(), m.sample_fields()
    assert all(np.array_equal(f[k], g[k]) for k in f)
    assert "darcy from generated" in fresh.summary() and "test rel L2" in fresh.summary()


def test_previews_hand_over_copies_of_the_weights(trained):
    m, net, previews = trained
    first, last = previews
    assert first.stats.epoch == 1 and last.stats.epoch == 2
    # the worker's network went on training after epoch 1: the epoch-1 copy still predicts epoch 1's output
    rebuilt = OperatorLab()
    rebuilt.net_config, rebuilt.weights = first.config, first.weights
    assert np.allclose(predict(rebuilt.network(), m.test_data.x), first.prediction, atol=1e-5)
    assert not np.allclose(first.prediction, last.prediction)
    # the model's weights are the last epoch's, not the worker's tensors
    for k, v in net.state_dict().items():
        if k in m.weights:
            assert m.weights[k].data_ptr() != v.data_ptr()


def test_changing_data_parameters_marks_the_view_stale(darcy):
    m = OperatorLab()
    m.set_params(**SMALL)
    m.set_data(darcy, "generated")
    assert m.stale == "" and m.params.sample == 0
    m.set_params(seed=3)
    assert "press Generate" in m.stale
    m.set_data(darcy, "generated")
    assert m.stale == ""


def test_a_state_without_arrays_keeps_the_data_and_network_shown(darcy):
    m = OperatorLab()
    m.set_params(**SMALL)
    m.set_data(darcy)
    net = m.new_network()
    for p in train_with_previews(net, m.train_data, m.test_data, m.params.train_config(epochs=1)):
        m.add_preview(p)
    state, pred = m.state(), m.prediction
    with pytest.raises(UserError, match=r"operator\.network: .*got 'cnn'"):
        m.restore({**state, "network": {"kind": "cnn"}})
    with pytest.raises(UserError, match=r"operator\.params\.sample = 7"):
        m.restore({**state, "params": {**state["params"], "sample": 7}})
    m.restore({**state, "params": {**state["params"], "sample": 3, "lr": 1e-2}})
    assert m.params.sample == 3 and m.params.lr == 1e-2 and m.prediction is pred and len(m.history) == 1


def test_a_diverged_epoch_is_saved_as_strict_json(trained):
    m = trained[0]
    fresh = OperatorLab()
    bad = dataclasses.replace(m.history[-1], train_loss=float("nan"), test_l2=float("inf"))
    fresh.history = [bad]
    text = json.dumps(fresh.state(), allow_nan=False)
    fresh.restore(json.loads(text))
    assert np.isnan(fresh.history[0].train_loss) and np.isnan(fresh.history[0].test_l2)
    assert fresh.history[0].epoch == bad.epoch


# -- rollout, zero-shot and study state (Qt-free) -------------------------------------------------------------
def test_a_rollout_needs_navier_stokes_data_and_a_network(trained):
    m = trained[0]
    with pytest.raises(UserError, match="a rollout needs Navier-Stokes data"):
        m.rollout_job()


def test_rollout_state_follows_the_steps_it_is_given():
    from backends.operator.rollout import rollout

    ns = drain(opdata.generate_ns(16, 6, nu=1e-3, steps=11, t_in=10, seed=1, batch=6))
    m = OperatorLab()
    m.set_params(problem="ns", n=16, count=6, n_test=2, epochs=1, width=8, modes=4, batch_size=4,
                 rollout_steps=3, nu=0.5)  # fmt: skip
    m.set_data(ns)
    with pytest.raises(UserError, match="no trained model"):
        m.rollout_job()
    for p in train_with_previews(m.new_network(), m.train_data, m.test_data, m.params.train_config()):
        m.add_preview(p)
    m.select(sample=1)
    heard = []
    m.events.connect("rollout", lambda **_: heard.append(len(m.rollout.steps) if m.rollout else None))
    net, given, cfg = m.rollout_job()
    assert np.array_equal(given, m.test_data.x[1]) and cfg.steps == 3
    assert cfg.nu == 1e-3  # the data's viscosity (generator metadata), not the form's 0.5
    for step in rollout(net, given, cfg):
        m.add_rollout_step(step)
    assert heard == list(range(0, 14)) and m.rollout.sample == 1
    f = m.rollout_fields(11)
    s = m.rollout.steps[11]
    assert f["t"] == 11 and np.array_equal(f["difference"], s.prediction - s.truth)
    lo, hi = m.rollout.limits()
    for s in m.rollout.steps:
        for a in (s.truth, s.prediction, s.prediction - s.truth):
            assert lo <= a.min() and a.max() <= hi
    m.set_data(ns)  # new data: the rollout is stale and gone
    assert m.rollout is None and heard[-1] is None


def test_study_counts_stream_in_as_chunks_finish(tmp_path):
    from backends.batch import Study
    from backends.operator.studies import dataset_workload

    work = dataset_workload("darcy", 16, 5, 2)
    study = Study(work, tmp_path / "s.zarr")
    m = OperatorLab()
    m.begin_study(str(study.store), study.n_chunks, 5, "in this process")
    sizes = {i: r["x"][0].stop - r["x"][0].start for i, r in enumerate(work.regions())}
    seen = []
    for res in study.results():
        m.add_study_chunks([res], sizes)
        seen.append(m.study.samples)
    import zarr

    its = zarr.open_group(str(study.store), mode="r")["iterations"][:]
    assert seen == [2, 4, 5] and m.study.chunks == 3 and m.study.iterations == its.sum()
    assert "5/5 samples, 3/3 chunks" in m.study.line()
    assert f"recycled CG {its.sum() / 5:.1f} iterations per system" in m.study.line()
