"""DDS inverse problems on 8x8 digits with the bundled model: beats plain DPS guidance at equal NFE."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backends.common import UserError
from backends.diffusion.data import load_digits_array
from backends.diffusion.dds import (
    InverseProblem,
    box_mask,
    conjugate_gradient,
    masked_rmse,
    random_mask,
    solve,
)
from backends.diffusion.models import Adam, load_trained

ASSET = Path(__file__).resolve().parents[3] / "assets" / "diffusion" / "digits_edm.pt"


@pytest.fixture(scope="module")
def digits_model():
    if not ASSET.exists():
        pytest.skip("run python -m backends.diffusion.make_assets first")
    return load_trained(ASSET).net


@pytest.fixture(scope="module")
def truth():
    return load_digits_array()[np.random.default_rng(0).choice(1797, 64, replace=False)]


class Counting:
    def __init__(self, net):
        self.net, self.calls = net, 0
        self.sigma_data = net.sigma_data

    def __call__(self, x, s):
        self.calls += 1
        return self.net(x, s)


def test_conjugate_gradient_solves_spd_systems():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 6 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(3, 6, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: v @ a.T, b, torch.zeros_like(b), 6)  # exact in n steps
    torch.testing.assert_close(x, torch.linalg.solve(a, b.T).T)


def test_own_adam_matches_torch_adam():
    torch.manual_seed(0)
    p1 = torch.nn.Parameter(torch.randn(5, 3))
    p2 = torch.nn.Parameter(p1.detach().clone())
    ours, ref = Adam([p1], lr=1e-2), torch.optim.Adam([p2], lr=1e-2)
    for k in range(5):
        for p, opt in ((p1, ours), (p2, ref)):
            opt.zero_grad()
            ((p**3).sum() + k * p.sum()).backward()
            opt.step()
    torch.testing.assert_close(p1, p2)


@pytest.mark.parametrize(("kind", "mask"), [("inpaint", "box"), ("inpaint", "random"), ("denoise", None)])
def test_dds_beats_dps_at_equal_nfe(digits_model, truth, kind, mask):
    if mask == "box":
        m = box_mask()
    elif mask == "random":
        m = random_mask(64, 0.5, np.random.default_rng(2))
    else:
        m = None
    prob = InverseProblem(kind, m, sigma_y=0.01 if kind == "inpaint" else 0.5)
    y = prob.measure(truth, np.random.default_rng(1))
    errs = {}
    for method in ("dds", "dps"):
        counted = Counting(digits_model)
        res = solve(counted, prob, y, method=method, nfe=20, seed=0)
        assert counted.calls == 20 == res.nfe
        errs[method] = masked_rmse(res.x, truth, prob.mask)
    assert errs["dds"] < 0.92 * errs["dps"], errs
    if kind == "denoise":
        assert errs["dds"] < 0.8 * masked_rmse(y, truth, None)  # better than the noisy measurement itself
    else:  # observed pixels are reproduced
        r = solve(digits_model, prob, y, method="dds", nfe=20, seed=0)
        obs = prob.mask > 0.5
        assert np.sqrt(np.mean((r.x[:, obs] - truth[:, obs]) ** 2)) < 0.05


def test_inverse_problem_validation():
    with pytest.raises(UserError, match="mask"):
        InverseProblem("inpaint")
    with pytest.raises(UserError, match="sigma_y"):
        InverseProblem("denoise", sigma_y=0.0)
    with pytest.raises(UserError, match="unknown"):
        InverseProblem("deblur")
