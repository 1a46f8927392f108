"""Losses against values computed by hand."""

import math

import numpy as np
import torch

from backends.operator.losses import rel_h1, rel_hminus1, rel_l2


def test_rel_l2_is_the_mean_of_per_sample_ratios():
    true = torch.ones(2, 1, 4, 4)
    pred = torch.stack([1.5 * true[0], 0.75 * true[1]])  # errors 0.5 and 0.25 relative
    assert abs(float(rel_l2(pred, true)) - 0.375) < 1e-7


def test_rel_h1_of_a_linear_ramp_on_a_constant():
    """e = x_j = j/n has gradient exactly (1, 0) with spacing 1/n (central and one-sided differences agree);
    t = 2 has none, so rel H1 = sqrt(sum e^2 + n^2) / sqrt(4 n^2)."""
    n = 8
    j = torch.arange(n, dtype=torch.float64) / n
    e = j.view(1, 1, 1, n).expand(1, 1, n, n)
    true = torch.full((1, 1, n, n), 2.0, dtype=torch.float64)
    sum_e2 = n * sum((k / n) ** 2 for k in range(n))
    expected = math.sqrt((sum_e2 + n * n) / (4.0 * n * n))
    assert abs(float(rel_h1(true + e, true)) - expected) < 1e-12


def test_rel_hminus1_by_parseval_for_a_single_mode():
    """e = sin(2 pi x): coefficients 1/(2i) at k = (0, +-1): ||e||^2_{H^-1} = 2 (1/4) / (1 + 4 pi^2);
    t = 1: ||t||^2_{H^-1} = 1 (k = 0 has weight 1)."""
    n = 16
    x = torch.arange(n, dtype=torch.float64) / n
    e = torch.sin(2 * math.pi * x).view(1, 1, 1, n).expand(1, 1, n, n)
    true = torch.ones(1, 1, n, n, dtype=torch.float64)
    expected = math.sqrt(0.5 / (1 + 4 * math.pi**2))
    assert abs(float(rel_hminus1(true + e, true)) - expected) < 1e-12
    # the same error in L2 is sqrt(1/2): H^-1 damps it by the wavenumber weight
    assert abs(float(rel_l2(true + e, true)) - math.sqrt(0.5)) < 1e-12


def test_hminus1_damps_high_wavenumbers_as_one_over_k():
    n = 64
    x = np.arange(n) / n
    true = torch.ones(1, 1, n, n, dtype=torch.float64)
    r = []
    for k in (4, 16):
        e = torch.as_tensor(np.cos(2 * np.pi * k * x)).view(1, 1, 1, n).expand(1, 1, n, n)
        r.append(float(rel_hminus1(true + e, true)))
    assert abs(r[0] / r[1] - math.sqrt((1 + 4 * math.pi**2 * 256) / (1 + 4 * math.pi**2 * 16))) < 1e-9
