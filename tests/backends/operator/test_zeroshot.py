"""Zero-shot super-resolution: exact restriction/interpolation on nested grids, and the numbers against a
direct evaluation."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("neuralop")

from backends.common import UserError, drain  # noqa: E402
from backends.operator import data as opdata  # noqa: E402
from backends.operator.models import ModelConfig  # noqa: E402
from backends.operator.train import TrainConfig, evaluate, make_model, predict, train  # noqa: E402
from backends.operator.zeroshot import (  # noqa: E402
    fine_resolution,
    fine_test_set,
    fourier_upsample,
    restrict,
    zero_shot,
)


def test_fourier_interpolation_is_exact_for_band_limited_fields():
    x = np.arange(32) / 32
    X, Y = np.meshgrid(x, x, indexing="ij")
    f = np.sin(2 * np.pi * 3 * X) * np.cos(2 * np.pi * 5 * Y) + 0.3 * np.cos(2 * np.pi * 7 * (X + Y))
    assert np.abs(fourier_upsample(restrict(f, 16, True), 32) - f).max() < 1e-6
    r = np.random.default_rng(0).random((2, 15, 15))  # odd n; samples kept
    assert np.abs(restrict(fourier_upsample(r, 30), 15, True) - r).max() < 1e-6


def test_restriction_takes_every_other_node():
    a = np.arange(33 * 33, dtype=float).reshape(33, 33)
    assert np.array_equal(restrict(a, 17, False), a[::2, ::2])
    assert fine_resolution(16, "ns") == 32 and fine_resolution(17, "darcy") == 33


def test_zero_shot_numbers_equal_direct_evaluations():
    train_set = drain(opdata.generate_darcy(17, 24, seed=0))
    tr, te = train_set.subset(slice(0, 20)), train_set.subset(slice(20, 24))
    net = make_model(ModelConfig("fno", 1, 1, modes=6, width=12, layers=2), tr, seed=0)
    drain(train(net, tr, te, TrainConfig(epochs=15, batch_size=5, lr=5e-3)))
    fine = drain(fine_test_set("darcy", 17, 3, seed=9))
    assert fine.resolution == 33
    zs = zero_shot(net, fine, 17)
    assert zs.rel_l2_fine == pytest.approx(evaluate(net, fine)["rel_l2"], rel=1e-12)
    coarse = opdata.OperatorData(fine.x[:, :, ::2, ::2], fine.y[:, :, ::2, ::2], "darcy")
    assert zs.rel_l2_n == pytest.approx(evaluate(net, coarse)["rel_l2"], rel=1e-12)
    up = opdata.resample(predict(net, coarse.x), 33)
    want = np.mean(
        np.linalg.norm((up - fine.y).reshape(3, -1), axis=1) / np.linalg.norm(fine.y.reshape(3, -1), axis=1)
    )
    assert zs.rel_l2_up == pytest.approx(want, rel=1e-5)
    # a resolution-invariant operator: direct and interpolated predictions at 2n agree closely
    assert zs.gap < 0.1 and zs.rel_l2_fine < 2 * zs.rel_l2_n + 0.05
    with pytest.raises(UserError, match="must be finer"):
        zero_shot(net, coarse, 17)
