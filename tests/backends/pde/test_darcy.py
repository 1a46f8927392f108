import numpy as np
import pytest

from backends.common import UserError, drain
from backends.pde.darcy import (
    DarcyConfig,
    assemble,
    darcy_coefficients,
    direct_solve,
    embed,
    generate_dataset,
    pcg,
    similarity_order,
    solve_sequence,
)


def test_constant_coefficient_matches_poisson_series():
    """a = 1: -lap u = 1 on the unit square; centre value 0.0736713... (Fourier series), FD error O(h^2)."""
    n = 65
    u = direct_solve(np.ones((n, n)))
    x, info, _, _ = pcg(*assemble(np.ones((n, n))), tol=1e-12)
    assert np.abs(embed(x, n) - u).max() < 1e-10
    assert u[n // 2, n // 2] == pytest.approx(0.0736713532, abs=2e-5)


def test_coefficients_are_fno_like():
    a = darcy_coefficients(64, 20, seed=0)
    assert set(np.unique(a)) == {3.0, 12.0}
    assert 0.3 < (a == 12).mean() < 0.7


def test_pcg_and_recycled_match_direct_solve():
    a = darcy_coefficients(32, 6, seed=4)
    rec = drain(solve_sequence(a, recycle=True, k=8, m=16))
    for i in range(6):
        ref = direct_solve(a[i])
        assert np.abs(rec.u[i] - ref).max() < 1e-8 * np.abs(ref).max()
        A, b = assemble(a[i])
        x, info, _, _ = pcg(A, b)
        assert info.converged and np.abs(embed(x, 32) - ref).max() < 1e-8 * np.abs(ref).max()


def test_matrix_is_spd_with_harmonic_faces():
    a = darcy_coefficients(12, 1, seed=1)[0]
    A, b = assemble(a)
    M = A.toarray()
    assert np.allclose(M, M.T)
    assert np.linalg.eigvalsh(M).min() > 0
    # face between interior nodes (1,1) and (1,2): -2 a1 a2 / (a1 + a2) / h^2
    h = 1 / 11
    a1, a2 = a[1, 1], a[1, 2]
    assert M[0, 1] == pytest.approx(-2 * a1 * a2 / (a1 + a2) / h**2)


def test_recycling_cuts_iterations_over_sorted_sequence():
    a = darcy_coefficients(64, 100, seed=0)
    rec = drain(solve_sequence(a, recycle=True, sort=True, k=16, m=32))
    plain = drain(solve_sequence(a, recycle=False, sort=False))
    ratio = plain.iterations.sum() / rec.iterations.sum()
    assert ratio >= 1.5, ratio
    assert np.abs(plain.u - rec.u).max() < 1e-8 * np.abs(plain.u).max()
    # late systems benefit most: the recycle space has converged towards the slow modes
    assert rec.iterations[rec.order[-20:]].mean() < 0.6 * plain.iterations.mean()


def test_similarity_order_is_permutation_and_shorter_path():
    a = darcy_coefficients(16, 30, seed=2)
    order = similarity_order(a)
    assert sorted(order) == list(range(30))

    def path(o):
        return sum(np.linalg.norm(a[o[i + 1]] - a[o[i]]) for i in range(len(o) - 1))

    assert path(order) < path(np.arange(30))


def test_dataset_and_validation():
    res = drain(generate_dataset(DarcyConfig(n=16, count=5, recycle_k=4, recycle_m=8)))
    assert res["a"].shape == (5, 16, 16) and res["u"].shape == (5, 16, 16)
    assert res["max_diff"] < 1e-8
    assert np.all(res["u"][:, 0, :] == 0) and np.all(res["u"][:, :, -1] == 0)
    with pytest.raises(UserError, match="positive"):
        assemble(-np.ones((8, 8)))
    with pytest.raises(UserError, match="NaN"):
        assemble(np.full((8, 8), np.nan))
    with pytest.raises(UserError, match=">= 16"):
        DarcyConfig(n=8)
