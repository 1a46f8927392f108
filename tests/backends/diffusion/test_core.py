"""Datasets, exact mixture denoiser, samplers and metrics against closed forms and convergence orders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from backends.common import UserError
from backends.diffusion.data import DATASETS, load_csv_points, make_dataset
from backends.diffusion.edm import karras_sigmas, precond
from backends.diffusion.gmm import EmpiricalDenoiser, GaussianMixture, MixtureDenoiser
from backends.diffusion.metrics import (
    metric_with_floor,
    mmd_rbf,
    projected_w2sq,
    sliced_wasserstein,
    w2_exact,
)
from backends.diffusion.samplers import SAMPLERS, run_sampler, sample_heun

GMM = make_dataset("gmm")


def truth(n, seed):
    return GMM.sample(n, np.random.default_rng(seed))


def prior(n, seed, sigma_max=80.0):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * sigma_max


@pytest.mark.parametrize("name", [d for d in DATASETS if d not in ("points", "csv")])
def test_datasets_shapes_and_determinism(name):
    ds = make_dataset(name)
    a = ds.sample(300, np.random.default_rng(3))
    b = ds.sample(300, np.random.default_rng(3))
    assert a.shape == (300, ds.dim) and a.dtype == np.float32
    assert np.array_equal(a, b) and np.all(np.isfinite(a))
    if ds.dim == 2:
        assert 0.3 < a.std() < 3.0  # toys live on a common unit-ish scale


def test_csv_errors(tmp_path):
    good = tmp_path / "g.csv"
    good.write_text("x,y\n0,1\n2,3\n4,5\n")
    assert load_csv_points(good).shape == (3, 2)
    cases = {
        "ragged.csv": ("0,1\n2,3,4\n", "expected 2 columns"),
        "text.csv": ("0,1\n2,abc\n", "non-numeric"),
        "one.csv": ("1,2\n", "at least 2 numeric rows"),
        "col.csv": ("1\n2\n3\n", "at least 2 columns"),
        "nan.csv": ("1,2\nnan,3\n", "NaN"),
    }
    for fname, (text, msg) in cases.items():
        p = tmp_path / fname
        p.write_text(text)
        with pytest.raises(UserError, match=msg):
            load_csv_points(p)
    with pytest.raises(UserError, match="does not exist"):
        make_dataset("csv", csv_path=tmp_path / "missing.csv")
    with pytest.raises(UserError, match="unknown dataset"):
        make_dataset("spiral9")


def test_mixture_denoiser_matches_tweedie_score():
    """D(x; sigma) = x + sigma^2 grad log p_sigma(x): compare with autograd of the closed-form density."""
    mix = GMM.mixture
    x = torch.tensor(truth(64, 0), dtype=torch.float64) + 0.3 * torch.randn(64, 2, dtype=torch.float64)
    for sigma in (0.05, 0.4, 2.0, 30.0):
        xr = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(mix.log_prob(xr, sigma).sum(), xr)
        d = MixtureDenoiser(mix)(x, sigma)
        np.testing.assert_allclose(d.numpy(), (x + sigma**2 * g).numpy(), rtol=1e-9, atol=1e-9)


def test_mixture_denoiser_single_gaussian_closed_form():
    m = np.array([1.0, -2.0])
    c = np.array([[0.5, 0.2], [0.2, 0.3]])
    mix = GaussianMixture([1.0], m[None], c[None])
    x = torch.randn(10, 2, dtype=torch.float64)
    s = 0.7
    expect = m + (np.linalg.solve(c + s * s * np.eye(2), (x.numpy() - m).T).T) @ c.T
    np.testing.assert_allclose(mix.posterior_mean(x, 1.0, s).numpy(), expect, rtol=1e-10)


def test_karras_schedule_and_precond():
    s = karras_sigmas(10, 0.002, 80.0, 7.0)
    assert (
        len(s) == 11 and s[-1] == 0 and math.isclose(s[0], 80.0) and math.isclose(s[-2], 0.002, rel_tol=1e-9)
    )
    assert torch.all(s[:-1] > s[1:])
    sig = torch.tensor([0.01, 1.0, 50.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = precond(sig, 0.5)
    # EDM: unit-variance training target and skip/out trade-off: c_skip^2 sd^2 + c_out^2 ... = sd^2 at the optimum
    np.testing.assert_allclose((c_in**2 * (sig**2 + 0.25)).numpy(), 1.0)
    np.testing.assert_allclose((c_skip * 0.25 + c_out**2).numpy(), 0.25)  # sd^2 = c_skip sd^2 + c_out^2
    np.testing.assert_allclose(c_noise.numpy(), np.log(sig.numpy()) / 4)


def test_heun_reaches_noise_floor_at_63_nfe():
    """Exact denoiser, Heun at NFE 63: sliced W2 within 1.5x of the noise floor (means over 4 draws)."""
    n = 4000
    vals, floors = [], []
    for seed in range(4):
        r = run_sampler("heun", MixtureDenoiser(GMM.mixture), prior(n, seed), 63)
        assert r.nfe == 63 and r.ok and r.trajectory is None
        v, f = metric_with_floor(r.samples, truth, repeats=2, seed=1000 * (seed + 1))
        vals.append(v)
        floors.append(f)
    ratio = np.mean(vals) / np.mean(floors)
    assert ratio < 1.5, ratio
    # and too few steps is visibly worse than the floor
    r = run_sampler("heun", MixtureDenoiser(GMM.mixture), prior(n, 0), 7)
    v, f = metric_with_floor(r.samples, truth, repeats=2)
    assert v > 5 * f


@pytest.fixture(scope="module")
def ode_reference():
    x0 = prior(200, 7)
    return x0, run_sampler("heun", MixtureDenoiser(GMM.mixture), x0, 1535).samples


@pytest.mark.parametrize(("name", "order"), [("euler", 1.0), ("heun", 2.0), ("dpmpp2m", 2.0), ("ddim", 1.0)])
def test_sampler_convergence_order(name, order, ode_reference):
    """ODE endpoint error vs a 1535-NFE Heun reference halves (Euler) or quarters (Heun, DPM++) per NFE x2."""
    model = MixtureDenoiser(GMM.mixture)
    x0, ref = ode_reference
    nfes = [16, 32, 64, 128]
    if name == "heun":
        nfes = [n - 1 for n in (24, 48, 96, 192)]  # 2 steps - 1
    errs = np.array([np.abs(run_sampler(name, model, x0, k).samples - ref).mean() for k in nfes])
    slopes = np.log2(errs[:-1] / errs[1:])
    assert np.all(np.diff(errs) < 0), errs
    assert abs(slopes[-1] - order) < 0.35, slopes


def test_trajectory_shapes_and_stochastic_sampler():
    model = MixtureDenoiser(GMM.mixture)
    for name in SAMPLERS:
        r = run_sampler(
            name, model, prior(50, 1), 9, generator=torch.Generator().manual_seed(0), return_trajectory=True
        )
        assert r.trajectory.shape == (r.nfe + 1, 50, 2)
        np.testing.assert_allclose(r.trajectory[-1], r.samples)
        np.testing.assert_allclose(r.trajectory[0], prior(50, 1).numpy())
    # EM at many steps reaches the floor too (it is a different, stochastic path)
    r = run_sampler("em", model, prior(4000, 2), 200, generator=torch.Generator().manual_seed(0))
    v, f = metric_with_floor(r.samples, truth, repeats=3)
    assert v < 2.0 * f


def test_nonfinite_is_flagged_not_raised():
    def bad_model(x, sigma):
        out = x * 0.0
        out[:3] = float("nan")
        return out

    r = run_sampler("heun", bad_model, prior(10, 0), 5)
    assert not r.ok and r.bad.sum() == 3 and "NaN" in r.message
    assert math.isinf(sliced_wasserstein(r.samples, truth(10, 0)))
    with pytest.raises(UserError, match="NFE"):
        run_sampler("heun", bad_model, prior(10, 0), 0)
    with pytest.raises(UserError, match="unknown sampler"):
        run_sampler("rk45", bad_model, prior(10, 0), 5)


def test_heun_churn_runs_and_is_seeded():
    model = MixtureDenoiser(GMM.mixture)
    s = karras_sigmas(10, dtype=torch.float64)
    a = sample_heun(model, prior(100, 0), s, s_churn=10.0, generator=torch.Generator().manual_seed(1))
    b = sample_heun(model, prior(100, 0), s, s_churn=10.0, generator=torch.Generator().manual_seed(1))
    c = sample_heun(model, prior(100, 0), s)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_sliced_wasserstein_gaussians_closed_form_and_control_variates():
    """SW_2^2 between N(m1, I) and N(m2, I) is |m1 - m2|^2 / d; the CV estimators have lower variance."""
    rng = np.random.default_rng(0)
    d = 5
    dm = np.array([1.0, -2.0, 0.5, 0.0, 1.5])
    x = rng.standard_normal((20000, d))
    y = rng.standard_normal((20000, d)) + dm
    exact = math.sqrt(dm @ dm / d)
    ests = {
        cv: [sliced_wasserstein(x, y, n_proj=20, seed=s, control_variate=cv) for s in range(30)]
        for cv in (None, "lower", "upper")
    }
    for cv, e in ests.items():
        assert abs(np.mean(e) - exact) < 0.05 * exact, (cv, np.mean(e), exact)
    assert np.std(ests["lower"]) < 0.5 * np.std(ests[None])
    assert np.std(ests["upper"]) < 0.5 * np.std(ests[None])
    # unequal set sizes use interpolated quantiles
    assert abs(sliced_wasserstein(x[:5000], y, n_proj=200) - exact) < 0.05 * exact


def test_projected_w2_matches_1d_formula():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 2))
    y = rng.standard_normal((500, 2)) * 2
    th = np.array([[1.0, 0.0]])
    expect = np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2)
    assert math.isclose(projected_w2sq(x, y, th)[0], expect, rel_tol=1e-12)


def test_w2_exact_and_mmd():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((300, 2))
    shift = np.array([3.0, 4.0])
    assert math.isclose(w2_exact(x, x + shift), 5.0, rel_tol=1e-9)  # a translation is optimal
    # permuted copy: W2 = 0
    assert w2_exact(x, x[rng.permutation(300)]) < 1e-12
    same = mmd_rbf(x, rng.standard_normal((300, 2)))
    diff = mmd_rbf(x, x + 1.0)
    assert abs(same) < 0.02 and diff > 0.1
    with pytest.raises(UserError):
        w2_exact(x, x[:10])


def test_empirical_pfgm_denoiser_tends_to_edm():
    pts = truth(200, 3)
    x = torch.tensor(truth(50, 4), dtype=torch.float64) * 1.3
    for sigma in (0.1, 0.5, 2.0):
        a = EmpiricalDenoiser(pts, D=1e7)(x, sigma)
        b = EmpiricalDenoiser(pts, D=None)(x, sigma)
        assert torch.max(torch.abs(a - b)) < 1e-3 * max(1.0, sigma)
