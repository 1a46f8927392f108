"""The Navier-Stokes rollout: the solver beside the operator reproduces the data it was trained on, the given
steps have zero error, autoregressive blocks feed predictions back, and the error grows with time."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("neuralop")

from backends.common import UserError, drain  # noqa: E402
from backends.operator import data as opdata  # noqa: E402
from backends.operator.models import ModelConfig  # noqa: E402
from backends.operator.rollout import RolloutConfig, rollout  # noqa: E402
from backends.operator.train import TrainConfig, make_model, train  # noqa: E402

T_IN = 10


@pytest.fixture(scope="module")
def ns():
    """12 sequences at 16x16, nu = 1e-3, t = 0..14: x = w(0..9), y = w(10..14)."""
    return drain(opdata.generate_ns(16, 12, nu=1e-3, steps=14, t_in=T_IN, seed=3, batch=12))


@pytest.fixture(scope="module")
def model(ns):
    tr, te = ns.subset(slice(0, 10)), ns.subset(slice(10, 12))
    net = make_model(ModelConfig("fno", T_IN, 5, modes=6, width=12, layers=2), tr, seed=0)
    drain(train(net, tr, te, TrainConfig(epochs=30, batch_size=5, lr=5e-3)))
    return net, te


def test_the_solver_beside_the_operator_reproduces_the_data(model):
    net, te = model
    res = drain(rollout(net, te.x[0], RolloutConfig(steps=5, nu=1e-3)))
    assert res.truth.shape == (T_IN + 5, 16, 16) and list(res.times) == list(range(T_IN + 5))
    # given steps: the operator's input is the truth, error exactly 0
    assert np.array_equal(res.prediction[:T_IN], te.x[0]) and np.all(res.rel_l2[:T_IN] == 0)
    # the solver restarted from w(9) follows the stored sequence (the generator's own solver, same forcing)
    sol_err = np.linalg.norm(res.truth[T_IN:] - te.y[0], axis=(1, 2)) / np.linalg.norm(te.y[0], axis=(1, 2))
    assert sol_err.max() < 2e-3, sol_err
    # one block (t_out = 5 >= 5 steps): the predictions are the model's direct output
    from backends.operator.train import predict

    assert np.allclose(res.prediction[T_IN:], predict(net, te.x[:1])[0], atol=1e-6)
    e = res.rel_l2[T_IN:]
    assert np.allclose(e, np.linalg.norm(res.prediction[T_IN:] - res.truth[T_IN:], axis=(1, 2))
                       / np.linalg.norm(res.truth[T_IN:], axis=(1, 2)), rtol=1e-5)  # fmt: skip
    assert 0 < e[0] < 0.2 and e[-1] > e[0]


def test_a_long_rollout_is_block_autoregressive(model):
    net, te = model
    steps = list(rollout(net, te.x[0], RolloutConfig(steps=12, nu=1e-3)))
    assert [s.t for s in steps] == list(range(T_IN + 12)) and sum(s.given for s in steps) == T_IN
    from backends.operator.train import predict

    pred = np.stack([s.prediction for s in steps])
    first = predict(net, te.x[:1])[0]  # block 1: t = 10..14
    second = predict(net, pred[None, 5:15])[0]  # block 2 from the last 10 known frames t = 5..14
    assert np.allclose(pred[10:15], first, atol=1e-6) and np.allclose(pred[15:20], second, atol=1e-5)
    errs = np.array([s.rel_l2 for s in steps])
    assert errs[-1] > errs[T_IN]  # the error grows as predictions feed predictions


def test_bad_input_is_one_clear_line(model):
    net, te = model
    with pytest.raises(UserError, match="rollout steps must be in 1..500"):
        RolloutConfig(steps=0)
    with pytest.raises(UserError, match="the model takes 10 snapshots, 3 given"):
        drain(rollout(net, te.x[0, :3], RolloutConfig(steps=2)))
