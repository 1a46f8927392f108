"""The Navier-Stokes residual (Spectral-Refiner's loss) against exact solutions and our solver's data."""

import json
import math

import numpy as np
import pytest
import torch

from backends.common import UserError, drain
from backends.operator import checkpoint, data
from backends.operator.cli import main
from backends.operator.models import (
    ModelConfig,
    OperatorModel,
    features_before_last_block,
    last_block_and_projection,
)
from backends.operator.refine import refine
from backends.operator.residual import NSResidual, Residual, relative_residual, time_derivative
from backends.operator.train import TrainConfig, evaluate, make_model, predict, train

pytest.importorskip("neuralop")


@pytest.mark.parametrize("p", range(5))
def test_time_derivative_is_exact_on_quartics(p):
    t = torch.arange(9, dtype=torch.float64) * 0.3
    w = (t**p).view(1, -1, 1)
    exact = p * t[2:] ** (p - 1) if p else torch.zeros(7, dtype=torch.float64)
    assert torch.allclose(time_derivative(w, 2, 0.3)[0, :, 0], exact, atol=1e-11, rtol=0)


def _taylor_green(n, nu, dt, frames, k=1):
    res = Residual(NSResidual(nu=nu, frame_dt=dt, forcing="none"), n, dtype=torch.float64)
    X, Y = res.g.X, res.g.Y
    shape = torch.sin(2 * math.pi * k * X) * torch.sin(2 * math.pi * k * Y) * 2 * (2 * math.pi * k) ** 2
    decay = [math.exp(-2 * nu * (2 * math.pi * k) ** 2 * j * dt) for j in range(frames)]
    return res, torch.stack([shape * d for d in decay])[None]


def test_taylor_green_decay_has_no_residual_and_a_wrong_rate_has_one():
    res, w = _taylor_green(32, nu=1e-2, dt=0.1, frames=14)
    exact = float(relative_residual(res, w[:, :4], w[:, 4:]))
    assert exact < 1e-4  # an exact solution: only the O(dt^4) stencil error remains
    # the same frames against twice the viscosity: R = -nu lap w = lam w with lam = 2 nu (2 pi)^2, so the
    # relative residual is lam ||w|| over the predicted frames / the given frames' difference quotients
    res_wrong, _ = _taylor_green(32, nu=2e-2, dt=0.1, frames=14)
    lam, t = 2e-2 * (2 * math.pi) ** 2, np.arange(14) * 0.1
    amp = np.exp(-lam * t)
    dq = np.diff(amp[:4]) / 0.1
    expected = np.sqrt((lam**2 * amp[4:] ** 2).sum() / (10 / 3 * (dq**2).sum()))
    got = float(relative_residual(res_wrong, w[:, :4], w[:, 4:]))
    assert abs(got / expected - 1) < 1e-3, (got, expected)


@pytest.fixture(scope="module")
def ns_fine():
    """Our solver's vorticity at 32 x 32, frames 0.25 apart: 6 given, 10 predicted."""
    return drain(data.generate_ns(32, 12, nu=1e-3, steps=15, t_in=6, batch=12, seed=3, frame_dt=0.25))


def test_solver_trajectories_satisfy_the_equation_and_perturbations_do_not(ns_fine):
    ds = ns_fine
    assert ds.meta["frame_dt"] == 0.25
    res = Residual(NSResidual(nu=1e-3, frame_dt=0.25), 32)
    x, y = torch.as_tensor(ds.x), torch.as_tensor(ds.y)
    truth = float(relative_residual(res, x, y))
    noise = torch.randn(y.shape, generator=torch.Generator().manual_seed(0)) * 0.01 * float(y.std())
    noisy = float(relative_residual(res, x, y + noise))  # 1% white noise, mostly at high wavenumbers
    frozen = float(relative_residual(res, x, x[:, -1:].expand_as(y).contiguous()))  # the flow stops
    print(f"truth {truth:.2e}, 1% noise {noisy:.3f}, frozen {frozen:.1f}")
    assert truth < 1e-3 and noisy > 30 * truth and frozen > 0.5
    wrong_nu = Residual(NSResidual(nu=3e-3, frame_dt=0.25), 32)
    assert float(relative_residual(wrong_nu, x, y)) > 10 * truth


def test_split_forward_equals_the_network():
    cfg = ModelConfig(kind="fno3d", in_channels=4, out_channels=6, modes=4, width=8, layers=3, modes_t=4)
    torch.manual_seed(0)
    m = OperatorModel(cfg).eval()
    x = torch.randn(2, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(last_block_and_projection(m.net, features_before_last_block(m.net, x)), m.net(x))


def test_residual_refinement_needs_no_targets_and_lowers_the_residual(ns_fine, tmp_path):
    ds = ns_fine
    tr, te = ds.subset(slice(0, 8)), ds.subset(slice(8, 12))
    cfg = ModelConfig(kind="fno3d", in_channels=6, out_channels=10, modes=4, width=8, layers=2, modes_t=4)
    model = make_model(cfg, tr, 0)
    drain(train(model, tr, te, TrainConfig(epochs=8, batch_size=4, lr=1e-2)))
    checkpoint.save(tmp_path / "w", model)
    res = Residual(NSResidual(nu=1e-3, frame_dt=0.25), 32)
    before = float(relative_residual(res, torch.as_tensor(te.x), torch.as_tensor(predict(model, te.x))))
    blind = data.OperatorData(te.x, np.full_like(te.y, np.nan), "ns", ds.meta)  # no targets to peek at
    tc = TrainConfig(epochs=6, batch_size=4, lr=1e-2, schedule="none")
    hist = drain(refine(model, tr, te, tc, objective="residual", inputs=blind.x))
    after = float(relative_residual(res, torch.as_tensor(te.x), torch.as_tensor(predict(model, te.x))))
    print(f"relative residual {before:.3f} -> {after:.3f}")
    assert hist[-1].train_loss < hist[0].train_loss and after < before
    assert abs(hist[-1].test_l2 - evaluate(model, te)["rel_l2"]) < 1e-5  # the fast test path is the real one
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".convs.1." in n for n in trainable)  # the last spectral conv only
    assert model.cfg.last_modes == 32
    back, _ = checkpoint.load(tmp_path / "w")
    assert back.cfg.last_modes == 0  # the trained checkpoint on disk is untouched


def test_residual_objective_refuses_data_without_an_equation():
    darcy = drain(data.generate_darcy(17, 4, seed=1))
    model = make_model(ModelConfig(kind="fno", modes=4, width=8, layers=2), darcy, 0)
    tc = TrainConfig(epochs=1, batch_size=2)
    with pytest.raises(UserError, match="residual objective needs a Navier-Stokes"):
        drain(refine(model, darcy, darcy, tc, objective="residual"))


def test_cli_refines_on_the_residual_and_refuses_test_inputs_for_the_data_misfit(tmp_path, capsys):
    d = tmp_path
    assert main(["generate", "--model", "ns", "--count", "10", "--n", "16", "--steps", "11", "--t-in", "5",
                 "--frame-dt", "0.25", "--out", str(d / "ns.npz"), "--quiet"]) == 0  # fmt: skip
    assert main(["train", "--data", str(d / "ns.npz"), "--model", "fno3d", "--epochs", "2", "--modes", "4",
                 "--modes-t", "4", "--width", "8", "--n-test", "3", "--save-weights", str(d / "w"),
                 "--out", str(d / "m.json"), "--quiet"]) == 0  # fmt: skip
    assert main(["refine", "--weights", str(d / "w"), "--data", str(d / "ns.npz"), "--epochs", "2", "--on",
                 "test", "--save-weights", str(d / "w2"), "--out", str(d / "r.json"), "--quiet"]) == 0  # fmt: skip
    r = json.loads((d / "r.json").read_text())
    assert r["objective"] == "residual" and r["on"] == "test" and r["model"]["last_modes"] == 16
    assert len(r["history"]) == 2 and r["history"][-1]["train_loss"] < r["history"][0]["train_loss"]
    with pytest.raises(UserError, match="--on test: only the residual objective"):
        main(["refine", "--weights", str(d / "w"), "--data", str(d / "ns.npz"), "--epochs", "1", "--on", "test",
              "--objective", "hminus1", "--save-weights", str(d / "w3"), "--out", str(d / "r3.json")])  # fmt: skip
    assert not (d / "w3").exists()
