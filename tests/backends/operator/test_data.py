"""Data sets: our Darcy and Navier-Stokes generators against the solvers, the readers, the shared library set."""

import json

import numpy as np
import pytest
import torch

from backends.common import UserError, drain
from backends.operator import data
from backends.pde.darcy import direct_solve
from backends.pde.ns import NavierStokes2D, NSConfig
from tests.conftest import shared_data


def test_darcy_pairs_solve_the_pde_and_follow_the_fno_convention():
    ds = drain(data.generate_darcy(20, 3, seed=5, tol=1e-10, compare=True))
    assert ds.x.shape == ds.y.shape == (3, 1, 20, 20) and ds.kind == "darcy"
    assert set(np.unique(ds.x)) == {3.0, 12.0}  # a = 12 / 3 from the thresholded GRF
    for i in range(3):  # the sparse direct solution of the same system
        u = direct_solve(ds.x[i, 0].astype(float))
        assert np.abs(ds.y[i, 0] - u).max() < 1e-5 * np.abs(u).max()
    assert np.all(ds.y[:, :, 0, :] == 0) and np.all(ds.y[:, :, :, -1] == 0)  # zero Dirichlet
    assert ds.meta["solver"] == "pcg" and ds.meta["iterations"] == ds.meta["iterations_pcg"] > 0
    assert 0 < ds.meta["iterations_recycled"] < ds.meta["iterations_pcg"]  # recycling saves iterations


def test_navier_stokes_sequences_are_unit_time_snapshots_of_the_solver():
    ds = drain(data.generate_ns(16, 2, steps=3, t_in=1, batch=2, seed=3))
    assert ds.x.shape == (2, 1, 16, 16) and ds.y.shape == (2, 3, 16, 16)
    assert ds.meta["nu"] == 1e-3
    sim = NavierStokes2D(
        NSConfig(
            n=16,
            nu=1e-3,
            dt=1e-2,
            scheme="cn-heun",
            adaptive=True,
            cfl=0.5,
            forcing="fno",
            batch=2,
            seed=300009,
        )
    )
    assert np.allclose(sim.vorticity().numpy(), ds.x[:, 0])  # chunk 0 seed = seed * 100003
    sim.advance_to(2.0)
    assert np.allclose(sim.vorticity().numpy(), ds.y[:, 1], atol=1e-5)
    assert abs(float(ds.y.mean())) < 1e-5  # vorticity on the torus has zero mean


def test_npz_round_trip_and_split(tmp_path):
    x = np.random.default_rng(0).standard_normal((10, 1, 8, 8)).astype(np.float32)
    ds = data.OperatorData(x, 2 * x, "darcy", {"n": 8})
    data.save_npz(tmp_path / "d.npz", ds)
    back = data.load(tmp_path / "d.npz")
    assert np.array_equal(back.x, x) and np.array_equal(back.y, 2 * x) and back.kind == "darcy"
    tr, te = data.load_split(tmp_path / "d.npz", n_test=3)
    assert len(tr) == 7 and len(te) == 3 and np.array_equal(te.x, x[7:])
    with pytest.raises(UserError, match="--n-test"):
        data.load_split(tmp_path / "d.npz", n_test=10)


def test_pde_cli_darcy_npz_with_a_and_u_is_read(tmp_path):
    a = np.full((2, 16, 16), 3.0)
    np.savez(tmp_path / "pde.npz", a=a, u=a * 0, iterations=np.array([1, 2]))
    ds = data.load(tmp_path / "pde.npz")
    assert ds.kind == "darcy" and ds.x.shape == (2, 1, 16, 16)


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"q": np.zeros((2, 4, 4))}, "needs arrays x and y"),
        ({"x": np.zeros((2, 4, 4)), "y": np.zeros((3, 4, 4))}, "do not pair up"),
        ({"x": np.zeros((2, 4, 5)), "y": np.zeros((2, 4, 5))}, "square grid"),
        ({"x": np.full((2, 4, 4), np.nan), "y": np.zeros((2, 4, 4))}, "NaN"),
        ({"x": np.array([{"a": 1}, 2], dtype=object), "y": np.zeros((2, 4, 4))}, "not a readable NPZ"),
    ],
)
def test_bad_npz_is_one_clear_line(tmp_path, arrays, match):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    with pytest.raises(UserError, match=match) as e:
        data.load(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_truncated_npz_and_unknown_suffix(tmp_path):
    p = tmp_path / "t.npz"
    np.savez(p, x=np.zeros((2, 4, 4)), y=np.zeros((2, 4, 4)))
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(UserError, match="not a readable NPZ"):
        data.load(p)
    (tmp_path / "d.h5").write_bytes(b"")
    with pytest.raises(UserError, match="unknown format"):
        data.load(tmp_path / "d.h5")


def test_pt_reader_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"x": Evil(), "y": torch.zeros(2, 4, 4)}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="not a tensor-only .pt"):
        data.load(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


@pytest.mark.data
def test_the_neuraloperator_small_darcy_set_loads():
    tr = data.load(shared_data("operator", "darcy_train_16.pt"))
    te = data.load(shared_data("operator", "darcy_test_16.pt"))
    assert tr.x.shape == (1000, 1, 16, 16) and te.x.shape == (50, 1, 16, 16)
    assert tr.kind == "darcy" and set(np.unique(tr.x)) == {0.0, 1.0}  # the two-valued mask
    assert np.isfinite(tr.y).all() and tr.y.max() > 0


def test_zarr_store_with_sample_t_y_x_dims(tmp_path):
    zarr = pytest.importorskip("zarr")
    root = zarr.open_group(str(tmp_path / "s.zarr"), mode="w")
    root.attrs["model"] = "navier-stokes"
    w = np.random.default_rng(0).standard_normal((3, 4, 8, 8)).astype(np.float32)
    root.create_array("x", data=w[:, :1]) if hasattr(root, "create_array") else root.array("x", w[:, :1])
    root.create_array("y", data=w[:, 1:]) if hasattr(root, "create_array") else root.array("y", w[:, 1:])
    ds = data.load(tmp_path / "s.zarr")
    assert ds.x.shape == (3, 1, 8, 8) and ds.y.shape == (3, 3, 8, 8) and np.array_equal(ds.y, w[:, 1:])


def test_zarr_missing_package_or_bad_store_is_one_line(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(UserError) as e:
        data.load(tmp_path / "empty.zarr")
    assert "zarr" in str(e.value).lower() and "\n" not in str(e.value)


def test_energy_spectrum_parseval_and_high_frequency_error():
    rng = np.random.default_rng(1)
    u = rng.standard_normal((3, 32, 32))
    k, E = data.energy_spectrum(u)
    assert abs(E.sum() - (u**2).mean()) < 1e-10 and k[-1] == 16
    x = np.arange(32) / 32
    true = np.ones((1, 32, 32)) + np.cos(2 * np.pi * x)[None, None, :]
    low = true + 0.1 * np.cos(2 * np.pi * 2 * x)  # error at |k| = 2 < median
    high = true + 0.1 * np.cos(2 * np.pi * 15 * x)  # error at |k| = 15 > median
    assert data.high_frequency_error(low, true) < 1e-12
    assert abs(data.high_frequency_error(high, true) - 0.1 * np.sqrt(0.5) / np.sqrt(1.5)) < 1e-12
    json.dumps(data.OperatorData(u[:, None].astype(np.float32), u[:, None].astype(np.float32)).summary())
