"""`generate --out X.zarr` runs the batch layer's pde-dataset study; train and the reader take the store."""

import json

import numpy as np
import pytest

from backends.common import UserError, drain
from backends.operator import data
from backends.operator.cli import main

pytest.importorskip("zarr")
pytest.importorskip("neuralop")


def test_darcy_store_solves_the_equation_resumes_and_trains(tmp_path, capsys):
    from backends.pde.darcy import solve_sequence

    store = tmp_path / "d.zarr"
    argv = ["generate", "--model", "darcy", "--count", "6", "--n", "17", "--chunk", "3", "--seed", "4",
            "--scheduler", "none", "--out", str(store), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    ds = data.load(store)
    assert ds.kind == "darcy" and ds.x.shape == (6, 1, 17, 17) == ds.y.shape
    assert set(np.unique(ds.x)) == {3.0, 12.0}  # the FNO coefficient
    assert len({ds.x[i].tobytes() for i in range(6)}) == 6  # chunks drew different fields
    # the stored u solves -div(a grad u) = 1: an independent solve (plain PCG, not recycling) agrees
    ref = drain(solve_sequence(ds.x[:, 0].astype(float), recycle=False, sort=False, tol=1e-12)).u
    assert np.abs(ds.y[:, 0] - ref).max() < 1e-6 * np.abs(ref).max()
    capsys.readouterr()
    assert main(argv[:-1]) == 0  # the same command again: every chunk is already done
    assert "(2 resumed)" in capsys.readouterr().out
    assert main(["train", "--data", str(store), "--model", "fno", "--epochs", "1", "--modes", "4", "--width",
                 "8", "--n-test", "2", "--save-weights", str(tmp_path / "w"), "--out", str(tmp_path / "m.json"),
                 "--quiet"]) == 0  # fmt: skip
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["data"]["n_train"] == 4 and m["data"]["kind"] == "darcy" and 0 < m["rel_l2"] < 1


def test_navier_stokes_store_has_the_npz_layout(tmp_path):
    store = tmp_path / "ns.zarr"
    argv = ["generate", "--model", "ns", "--count", "2", "--n", "16", "--steps", "3", "--t-in", "2", "--dt",
            "0.02", "--nu", "1e-3", "--scheduler", "none", "--out", str(store), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    ds = data.load(store)
    # T = 3: frames t = 0..3, the first t_in = 2 given, the other 2 predicted (as the NPZ writer)
    assert ds.kind == "ns" and ds.x.shape == (2, 2, 16, 16) and ds.y.shape == (2, 2, 16, 16)
    assert ds.meta["nu"] == 1e-3 and ds.meta["t_out"] == 2
    # vorticity on the torus has zero mean (the FNO forcing has none), and the flow evolves between frames
    assert np.abs(ds.y.mean(axis=(2, 3))).max() < 1e-6 * np.abs(ds.y).max()
    assert 0 < np.linalg.norm(ds.y[:, 0] - ds.x[:, 1]) < np.linalg.norm(ds.x[:, 1])


def test_an_unfinished_store_is_refused_with_the_resume_command(tmp_path):
    from backends.batch.study import Study
    from backends.batch.workloads import DarcyDataset

    study = Study(DarcyDataset(count=4, n=16, chunk=2), tmp_path / "half.zarr")
    list(study.results(chunks=[0]))  # in-process, one of the two chunks
    with pytest.raises(UserError, match="unfinished \\(1/2 chunks done\\).*batch resume") as e:
        data.load(tmp_path / "half.zarr")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "extra, message",
    [(["--compare"], "--compare: not available"), (["--solver", "pcg"], "recycled CG"),
     (["--chunk", "0"], "--chunk must be")],
)  # fmt: skip
def test_zarr_only_options_are_checked_before_any_work(tmp_path, extra, message):
    out = tmp_path / "x.zarr"
    with pytest.raises(UserError, match=message):
        main(["generate", "--model", "darcy", "--count", "4", "--n", "16", "--scheduler", "none", "--out",
              str(out), *extra])  # fmt: skip
    assert not out.exists()
