"""Line probes against exact functions on the periodic grid."""

import numpy as np
import pytest

from backends.common import UserError
from backends.pde.probes import line_profile, sample_periodic


def _grid_field(n: int, fn):
    x = np.arange(n) / n
    y, xg = np.meshgrid(x, x, indexing="ij")
    return fn(xg, y)


def test_bilinear_is_exact_on_grid_points_and_for_linear_data():
    f = _grid_field(16, lambda x, y: np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y))
    pts = np.array([[3 / 16, 5 / 16], [0.0, 0.0], [15 / 16, 1 / 16]])
    exact = np.sin(2 * np.pi * pts[:, 0]) * np.cos(2 * np.pi * pts[:, 1])
    assert np.allclose(sample_periodic(f, pts), exact, atol=1e-12)
    # bilinear interpolation reproduces a function that is bilinear inside a cell
    g = np.zeros((8, 8))
    g[2, 3], g[2, 4], g[3, 3], g[3, 4] = 1.0, 2.0, 3.0, 5.0
    x, y = (3 + 0.25) / 8, (2 + 0.5) / 8
    want = 0.5 * (0.75 * 1 + 0.25 * 2) + 0.5 * (0.75 * 3 + 0.25 * 5)
    assert sample_periodic(g, np.array([[x, y]]))[0] == pytest.approx(want)


def test_line_profile_converges_at_second_order_and_wraps_around():
    fn = lambda x, y: np.sin(2 * np.pi * (x + 2 * y))  # noqa: E731
    errs = []
    for n in (32, 64, 128):
        f = _grid_field(n, fn)
        # a diagonal that crosses the periodic boundary (x goes past 1)
        s, v = line_profile(f, (0.7, 0.1), (1.3, 0.45), num=97)
        t = np.linspace(0, 1, 97)
        exact = fn(0.7 + 0.6 * t, 0.1 + 0.35 * t)
        errs.append(np.abs(v - exact).max())
        assert s[-1] == pytest.approx(np.hypot(0.6, 0.35))
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all(orders > 1.8), (errs, orders)


def test_bad_probe_input_is_a_user_error():
    with pytest.raises(UserError):
        line_profile(np.zeros((8, 8)), (0, 0), (1, 1), num=1)
    with pytest.raises(UserError):
        line_profile(np.zeros((8, 8)), (0, np.nan), (1, 1))
    with pytest.raises(UserError):
        line_profile(np.zeros(8), (0, 0), (1, 1))
