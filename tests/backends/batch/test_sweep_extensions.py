"""nfe-sweep of trained weights (pinned by SHA-256) and trajectory-sweep's k/anchors: the CLI and the workload
agree, the store measures exactly the in-process NFE curves of those weights, a changed file is refused, and
stores made before the extensions still resume (their parameters are unchanged)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
import xarray as xr

from backends.batch import Study, read_meta
from backends.batch.cli import build_study
from backends.batch.workloads import NfeSweep, TrajectorySweep, workload_from_meta
from backends.common import UserError, drain
from backends.diffusion.data import make_dataset
from backends.diffusion.live import generative, train_job
from backends.diffusion.models import TrainConfig
from backends.diffusion.pipeline import SampleConfig, nfe_curves


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        w = drain(
            train_job(make_dataset("moons"), TrainConfig(family="edm", steps=40, hidden=32, seed=0), 40)
        )
    finally:
        torch.set_num_threads(n)
    path = tmp_path_factory.mktemp("w") / "edm.pt"
    generative(w).trained.save(path)
    return path, w


def test_nfe_sweep_of_trained_weights_is_their_nfe_curves(weights_file, tmp_path):
    path, w = weights_file
    study, _, _ = build_study(
        "nfe-sweep",
        ["--weights", str(path), "--dataset", "moons", "--nfe", "3,9", "--seeds", "1", "--count", "300",
         "--churn", "0.5", "--out", str(tmp_path / "s.zarr")],
    )  # fmt: skip
    work = study.workload
    assert set(work.samplers) == {"euler", "heun", "ddim", "dpmpp2m", "em"}  # every EDM sampler by default
    assert work.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert study.run("none").done == 10
    meta = read_meta(study.store)
    assert meta["params"]["weights_sha256"] == work.weights_sha256 and meta["params"]["churn"] == 0.5
    assert workload_from_meta(meta) == work  # resumable from the store alone

    # the same numbers as the panel's in-process sweep of those weights (seed 0, churn 0.5)
    base = SampleConfig(seed=0, churn=0.5)
    want = drain(nfe_curves(generative(w), make_dataset("moons"), base, (3, 9), work.samplers, 300))
    sw = xr.open_zarr(study.store)["sw"].values[:, :, 0]
    got = {(s, k): sw[i, j] for i, s in enumerate(work.samplers) for j, k in enumerate((3, 9))}
    for c in want:
        assert got[(c.sampler, c.nfe)] == pytest.approx(c.sw, rel=1e-12)
    h = work.samplers.index("heun")
    assert sw[h, 1] < sw[h, 0]  # Heun: more steps, closer to the data

    changed = tmp_path / "changed.pt"
    changed.write_bytes(path.read_bytes() + b"\0")
    meta["params"]["weights"] = str(changed)
    with pytest.raises(UserError, match="changed since the study began"):
        workload_from_meta(meta)


def test_refused_inputs_name_the_option(weights_file, tmp_path):
    path, _ = weights_file
    with pytest.raises(UserError, match="--samplers"):
        NfeSweep(samplers=("ode",), weights=str(path), dataset="moons")  # not an EDM sampler
    with pytest.raises(UserError, match="--dataset"):
        NfeSweep(dataset="moons")  # the exact model needs a known mixture
    with pytest.raises(UserError, match="--weights .*no such file"):
        NfeSweep(weights=str(tmp_path / "none.pt"), dataset="moons")
    with pytest.raises(UserError, match="--churn"):
        NfeSweep(churn=-1.0)
    with pytest.raises(UserError, match="--k"):
        TrajectorySweep(model="cv", k=0)


def test_older_stores_keep_their_parameters():
    """The extension parameters are recorded only when set: the defaults give the parameters of before."""
    assert set(NfeSweep().params()) == {"samplers", "nfes", "seeds", "count", "dataset", "seed"}
    assert "k" not in TrajectorySweep(model="cv").params()
    assert TrajectorySweep(model="cv", k=4, anchors=5).params()["anchors"] == 5


def test_trajectory_sweep_anchors_reach_the_model(tmp_path):
    """cv20 with 1 anchor is a single noisy guess: its best-of-N equals its single-sample error."""
    st = Study(TrajectorySweep(model="cv20", seeds=1, anchors=1), tmp_path / "t.zarr")
    st.run("none")
    ds = xr.open_zarr(st.store)
    np.testing.assert_array_equal(ds["minADE"].values, ds["ADE"].values)
