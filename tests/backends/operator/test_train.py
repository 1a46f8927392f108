"""Training lowers the error, is deterministic, round-trips through checkpoints, and runs at 2n."""

from dataclasses import replace

import numpy as np
import pytest

from backends.common import drain
from backends.operator import checkpoint, data
from backends.operator.models import ModelConfig
from backends.operator.refine import refine
from backends.operator.train import TrainConfig, evaluate, make_model, predict, train

pytest.importorskip("neuralop")


@pytest.fixture(scope="module")
def darcy33():
    """Darcy at 33 x 33 nodes; every other node is the 17 x 17 grid (x_i = i/16), exactly."""
    return drain(data.generate_darcy(33, 48, seed=11, tol=1e-8))


def _coarse(ds):
    return data.OperatorData(ds.x[:, :, ::2, ::2].copy(), ds.y[:, :, ::2, ::2].copy(), ds.kind)


def _fit(tr, te, epochs=12, seed=0):
    model = make_model(ModelConfig(kind="fno", modes=6, width=16, layers=3), tr, seed)
    hist = drain(train(model, tr, te, TrainConfig(epochs=epochs, batch_size=8, lr=5e-3, seed=seed)))
    return model, hist


@pytest.fixture(scope="module")
def trained(darcy33):
    ds = _coarse(darcy33)
    tr, te = ds.subset(slice(0, 40)), ds.subset(slice(40, 48))
    return (tr, te, *_fit(tr, te))


def test_training_lowers_the_test_error_and_is_deterministic(trained):
    tr, te, model, hist = trained
    untrained = evaluate(make_model(model.cfg, tr, 0), te)["rel_l2"]
    assert hist[-1].test_l2 < 0.5 * untrained
    assert hist[-1].train_loss < 0.5 * hist[0].train_loss
    _, again = _fit(tr, te, epochs=1)  # the same seed: the same first epoch (same initial learning rate)
    assert again[0].train_loss == hist[0].train_loss and again[0].test_l2 == hist[0].test_l2


def test_zero_shot_at_2n_is_close_to_the_interpolated_prediction_at_n(darcy33, trained, tmp_path):
    tr, te, model, _ = trained
    fine_in = darcy33.x[40:]
    at_2n = predict(model, fine_in)
    interp = data.resample(predict(model, te.x), 33)
    gap = np.linalg.norm(at_2n - interp) / np.linalg.norm(interp)
    err_n = evaluate(model, te)["rel_l2"]
    print(f"gap {gap:.4f}, error at n {err_n:.4f}")
    assert gap < 0.15 and gap < 0.5 * err_n  # the discretisation gap is well below the model error
    # checkpoint round trip: same predictions, same configuration
    checkpoint.save(tmp_path / "w", model, {"n_test": 8})
    back, meta = checkpoint.load(tmp_path / "w")
    assert back.cfg == model.cfg and meta["n_test"] == 8
    assert np.array_equal(predict(back, fine_in), at_2n)


def test_spectral_refiner_starts_from_the_same_function_and_lowers_its_hminus1_loss(trained, tmp_path):
    tr, te, model, _ = trained
    checkpoint.save(tmp_path / "w", model)
    model, _ = checkpoint.load(tmp_path / "w")  # a copy: the other tests keep the trained model
    before = predict(model, te.x)
    hist = drain(refine(model, tr, te, TrainConfig(epochs=4, batch_size=8, lr=1e-3, schedule="none")))
    assert model.cfg.last_modes == 17
    assert hist[-1].train_loss < hist[0].train_loss
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".convs.2." in n for n in trainable)  # only the last spectral conv
    assert np.abs(predict(model, te.x) - before).max() > 0


def test_latent_spectral_model_learns_darcy(trained):
    tr, te, _, _ = trained
    model = make_model(ModelConfig(kind="lsm", width=8, levels=2, patch=3, tokens=2, basis=4), tr, 0)
    untrained = evaluate(model, te)["rel_l2"]
    hist = drain(train(model, tr, te, TrainConfig(epochs=8, batch_size=8, lr=5e-3)))
    assert hist[-1].train_loss < 0.5 * hist[0].train_loss and hist[-1].test_l2 < 0.7 * untrained


def test_coarse_epochs_train_on_the_subsampled_grid_under_one_onecycle_schedule(darcy33):
    import copy

    import torch

    tr, te = darcy33.subset(slice(0, 40)), darcy33.subset(slice(40, 48))
    model = make_model(ModelConfig(kind="fno", modes=6, width=8, layers=2), tr, 0)
    twin = copy.deepcopy(model)
    recipe = TrainConfig(epochs=4, batch_size=8, lr=5e-3, schedule="onecycle", warmup=0.25, coarse_epochs=1)
    run = train(model, tr, te, recipe)
    first = next(run)
    # epoch 1 of the recipe is exactly an epoch on every other node (the 17 x 17 grid of the same functions)
    plain = replace(recipe, coarse_epochs=0)
    next(train(twin, _coarse(tr), te, plain))
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
    rest = list(run)
    # one-cycle: warm-up to the peak at the end of the first quarter, then cosine decay to ~lr/25/1e4
    assert first.lr == pytest.approx(5e-3, rel=0.05) and rest[-1].lr < 1e-5
    assert rest[-1].test_l2 < first.test_l2


@pytest.mark.parametrize("n, epochs", [(16, 1), (16, 2), (24, 5)])  # 2, 4 and 15 steps in all
def test_onecycle_runs_on_short_schedules(darcy33, n, epochs):
    tr, te = darcy33.subset(slice(0, n)), darcy33.subset(slice(40, 44))
    model = make_model(ModelConfig(kind="fno", modes=4, width=4, layers=1), tr, 0)
    hist = drain(train(model, tr, te, TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, schedule="onecycle")))
    assert len(hist) == epochs and all(0 < h.lr <= 1e-3 for h in hist)
