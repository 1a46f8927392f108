"""Operator data from pde-dataset stores: only finished chunks are read, in sample order, as float32."""

from __future__ import annotations

import numpy as np
import pytest

from backends.batch import Study
from backends.common import UserError
from backends.operator.studies import dataset_workload, load_study


def test_a_partial_darcy_store_reads_its_finished_chunks(tmp_path):
    work = dataset_workload("darcy", 16, 6, 2)
    study = Study(work, tmp_path / "d.zarr")
    for _ in study.results(None, chunks=[0, 2]):  # chunk 1 (samples 2, 3) not computed
        pass
    ds = load_study(tmp_path / "d.zarr")
    import zarr

    g = zarr.open_group(str(tmp_path / "d.zarr"), mode="r")
    want = np.concatenate([g["x"][0:2], g["x"][4:6]]).astype(np.float32)
    assert ds.kind == "darcy" and ds.x.shape == (4, 1, 16, 16) and np.array_equal(ds.x[:, 0], want)
    assert set(np.unique(ds.x)) == {3.0, 12.0} and ds.y.min() >= 0 < ds.y.max()
    assert ds.meta["chunks_done"] == 2 and ds.meta["chunks_total"] == 3
    its = np.concatenate([g["iterations"][0:2], g["iterations"][4:6]])
    assert ds.meta["iterations_recycled"] == its.sum() > 0


def test_navier_stokes_store_pairs_the_frames(tmp_path):
    work = dataset_workload("ns", 16, 2, 2, nu=1e-3, steps=11, t_in=10)
    assert (work.t_in, work.t_out) == (10, 2)
    Study(work, tmp_path / "n.zarr").run("none")
    ds = load_study(tmp_path / "n.zarr")
    assert ds.kind == "ns" and ds.x.shape == (2, 10, 16, 16) and ds.y.shape == (2, 2, 16, 16)
    assert ds.meta["nu"] == 1e-3


def test_an_empty_or_foreign_store_is_one_line(tmp_path):
    Study(dataset_workload("darcy", 16, 4, 2), tmp_path / "e.zarr").open()
    with pytest.raises(UserError, match=r"no finished chunks yet \(0/2\)"):
        load_study(tmp_path / "e.zarr")
    with pytest.raises(UserError, match="no such store"):
        load_study(tmp_path / "missing.zarr")
