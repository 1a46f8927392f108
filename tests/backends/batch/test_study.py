"""Batch studies in this process (scheduler none): store layout, xarray, resume, failures, cancel, CLI input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from app.__main__ import main as app_main
from backends.batch import DarcyDataset, Study, chunk_seed, parse_scheduler, read_meta
from backends.batch.schedulers import job_script
from backends.batch.workloads import workload_from_meta
from backends.common import UserError, drain

from .helpers import SMALL_MAP, FaultyMap, assert_same_store, done_files, store_files


def test_escape_map_store_is_the_full_grid_map(reference_store):
    """Tiles stored side by side reproduce the one-call escape map of the whole grid (its own code path)."""
    from backends.nbody.ensemble import ESCAPED, EnsembleConfig, escape_map

    ds = xr.open_zarr(reference_store)
    assert ds["escape_time"].dims == ("y", "x") and ds["status"].shape == (24, 24)
    assert ds["escape_time"].encoding["chunks"] == (6, 6)  # chunked like the work
    full = drain(escape_map(EnsembleConfig(nx=24, ny=24, t_end=10.0, threads=1)))
    # the tile's cell centres are the grid's to the last bit or so (computed from the tile's own range)
    np.testing.assert_allclose(ds["x"].values, full.x, rtol=0, atol=4e-16)
    np.testing.assert_allclose(ds["y"].values, full.y, rtol=0, atol=4e-16)
    status = ds["status"].values
    # chaos: a 1-ulp difference in a start position may change a rare outcome, never the map
    assert np.mean(status == full.status) > 0.97
    both = (status == ESCAPED) & (full.status == ESCAPED)
    assert both.sum() > 50
    assert np.median(np.abs(ds["escape_time"].values[both] - full.escape_time[both])) < 1e-9
    assert bool(ds["done"].all())


def test_attributes_carry_parameters_version_and_seeds(reference_store):
    ds = xr.open_zarr(reference_store)
    meta = ds.attrs["visual_lab_batch"]
    assert meta["workload"] == "escape-map" and meta["format"] == "visual-lab-batch/1"
    assert meta["version"] == ds.attrs["version"] and meta["version"] != "unknown"
    assert meta["params"]["grid"] == 24 and meta["params"]["tile"] == 6 and ds.attrs["t_end"] == 10.0
    assert meta["params"]["ensemble"]["tol"] == 1e-7  # the integrator's own settings are recorded too
    assert meta["chunk_seeds"] == [chunk_seed(0, i) for i in range(16)]
    assert len(set(meta["chunk_seeds"])) == 16
    json.dumps(meta, allow_nan=False)  # strict JSON


def test_darcy_dataset_layout_and_physics(tmp_path):
    """x is a(x), y is u, dims (sample, y, x); each y solves its Darcy system; seeds follow the chunk index."""
    from backends.pde.darcy import assemble, darcy_coefficients

    work = DarcyDataset(count=5, n=16, chunk=2)
    Study(work, tmp_path / "d.zarr", seed=7).run("none")
    assert workload_from_meta(read_meta(tmp_path / "d.zarr")) == work
    ds = xr.open_zarr(tmp_path / "d.zarr")
    assert ds["x"].dims == ("sample", "y", "x") and ds["y"].dims == ("sample", "y", "x")
    assert ds["x"].shape == (5, 16, 16) and ds["x"].encoding["chunks"] == (2, 16, 16)
    a, u = ds["x"].values, ds["y"].values
    # inputs: chunk c holds the generator's fields for the chunk's seed (a function of the index only)
    np.testing.assert_array_equal(a[2:4], darcy_coefficients(16, 2, seed=chunk_seed(7, 1)))
    np.testing.assert_array_equal(a[4:5], darcy_coefficients(16, 1, seed=chunk_seed(7, 2)))
    for k in range(5):
        A, b = assemble(a[k])
        interior = u[k, 1:-1, 1:-1].ravel()
        assert np.linalg.norm(A @ interior - b) <= 1e-8 * np.linalg.norm(b)
        assert np.all(u[k, 0] == 0) and np.all(u[k, :, -1] == 0)  # zero Dirichlet boundary
    assert ds["iterations"].values.min() > 0


def test_resume_skips_finished_chunks(tmp_path, reference_store, capsys):
    path = tmp_path / "r.zarr"
    first = Study(SMALL_MAP, path)
    done = list(first.results(None, chunks=[0, 3, 9]))
    assert [r.index for r in done] == [0, 3, 9]
    before = {k: (path / k).stat().st_mtime_ns for k in store_files(path) if k.startswith("status/")}
    assert workload_from_meta(read_meta(path)) == SMALL_MAP  # the store alone says what to resume
    assert app_main(["batch", "resume", str(path), "--scheduler", "none", "--quiet"]) == 0
    assert f"{path}: 16/16 chunks (3 resumed, 13 computed)" in capsys.readouterr().out
    after = {k: (path / k).stat().st_mtime_ns for k in before}
    assert before == after  # the finished chunks' files were not written again
    assert_same_store(path, reference_store)


def test_failing_chunk_is_named_and_the_others_are_kept(tmp_path):
    path = tmp_path / "f.zarr"
    report = Study(FaultyMap(grid=12, tile=6, t_end=1.0, fail_index=2), path).run("none")
    assert report.failed == {2: "FloatingPointError: overflow in tile 2"}
    assert sorted(report.computed) == [0, 1, 3]
    assert done_files(path) == ["0", "1", "3"]
    status = xr.open_zarr(path)["status"].values
    assert np.all(status[6:, :6] == 0) and np.all(status[:6] > 0)  # the failed tile holds the fill value


def test_cancel_keeps_finished_chunks(tmp_path):
    study = Study(SMALL_MAP, tmp_path / "c.zarr")
    seen = []
    for res in study.results(None):
        seen.append(res.index)
        if len(seen) == 2:
            study.cancel()
    assert seen == [0, 1]
    assert done_files(tmp_path / "c.zarr") == ["0", "1"]
    assert Study(SMALL_MAP, tmp_path / "c.zarr").pending() == list(range(2, 16))


def test_another_study_or_foreign_folder_is_refused(tmp_path, reference_store):
    with pytest.raises(UserError, match=r"holds another study \(t_end = 10.0 there, 5.0 asked\)"):
        Study(SMALL_MAP.__class__(grid=24, tile=6, t_end=5.0), reference_store).open()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    with pytest.raises(UserError, match="non-empty folder that is not a Zarr store"):
        Study(SMALL_MAP, tmp_path / "notes").open()
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_slurm_job_script_carries_our_options():
    spec = parse_scheduler(
        "slurm:jobs=4,cores=8,processes=2,memory=16GB,walltime=02:30:00,queue=short,account=astro,"
        "extra=--gres=gpu:1,prologue=module load python"
    )
    script = job_script(spec)
    for line in (
        "#SBATCH -p short",
        "#SBATCH -A astro",
        "#SBATCH -n 1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH -t 02:30:00",
        "#SBATCH --gres=gpu:1",
        "module load python",
    ):
        assert line in script, line
    assert "--nworkers 2" in script and "--nthreads 4" in script  # 8 cores in 2 worker processes
    assert "--memory-limit 7.45GiB" in script  # 16 GB split between the 2 processes


@pytest.mark.parametrize(
    "args, message",
    [
        (["escape-map", "--grid", "0"], "--grid must be a whole number 1..20000, got 0"),
        (["escape-map", "--t-end", "inf"], "--t-end must be in (0, 10000], got inf"),
        (["escape-map", "--tile", "5000"], "--tile must be a whole number 1..2000, got 5000"),
        (["escape-map", "--x-range", "2,1"], "--x-range must be MIN,MAX with MIN < MAX"),
        (["escape-map", "--scheduler", "local:x"], "local:N needs a whole number of workers"),
        (["escape-map", "--scheduler", "tcp://host"], "expected tcp://HOST:PORT"),
        (["escape-map", "--scheduler", "slurm:cores=2,memory=4GB,colour=red"], "unknown option 'colour'"),
        (["escape-map", "--seed", "-1"], "--seed must be 0..2^32-1"),
        (["pde-dataset", "--count", "0"], "--count must be a whole number 1..10000000, got 0"),
        (["pde-dataset", "--model", "heat"], "invalid choice: 'heat'"),
        (["pde-dataset", "--tol", "0.5"], "--tol must be in (0, 0.01], got 0.5"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(args, message, tmp_path, capsys):
    rc = app_main(["batch", *args, "--out", str(tmp_path / "x.zarr")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "x.zarr").exists()  # nothing written before the input is checked


def test_cli_refuses_bad_out_and_shows_status(tmp_path, reference_store, capsys):
    (tmp_path / "file").write_text("x")
    for out, message in [
        (tmp_path / "file", "exists and is not a folder"),
        (tmp_path / "file" / "m.zarr", "does not exist"),
        (reference_store, "holds another study (grid = 24 there, 12 asked)"),
    ]:
        rc = app_main(["batch", "escape-map", "--grid", "12", "--scheduler", "none", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and err.count("\n") == 1 and message in err, err
    assert app_main(["batch", "status", str(reference_store)]) == 0
    out = capsys.readouterr().out
    assert (
        "escape-map, chunks 16/16 done" in out and "status         int8     (24, 24) dims ('y', 'x')" in out
    )
    assert app_main(["batch", "status", str(tmp_path)]) == 2
    assert "not a batch store" in capsys.readouterr().err


def test_sequence_datasets_layout_and_initial_conditions(tmp_path):
    """Navier-Stokes and Gray-Scott: x = first t_in frames, y = next t_out, axis 1 time; frame 0 is the
    simulation's own initial condition for the chunk seed; physics invariants hold in every stored frame."""
    from backends.batch.workloads import GrayScottDataset, NavierStokesDataset
    from backends.pde.fields import GrayScott, GrayScottConfig
    from backends.pde.ns import NavierStokes2D, NSConfig

    ns = NavierStokesDataset(count=3, n=32, chunk=2, dt=0.01, frame_dt=0.2, t_in=2, t_out=3)
    Study(ns, tmp_path / "ns.zarr").run("none")
    assert workload_from_meta(read_meta(tmp_path / "ns.zarr")) == ns
    ds = xr.open_zarr(tmp_path / "ns.zarr")
    assert ds["x"].dims == ("sample", "t_in", "y", "x") and ds["y"].dims == ("sample", "t_out", "y", "x")
    assert ds["x"].shape == (3, 2, 32, 32) and ds["y"].shape == (3, 3, 32, 32)
    w0 = NavierStokes2D(NSConfig(n=32, batch=1, seed=chunk_seed(0, 1), dtype="float64")).vorticity().numpy()
    np.testing.assert_array_equal(ds["x"].values[2, 0], w0[0])
    frames = np.concatenate([ds["x"].values, ds["y"].values], axis=1)
    # periodic domain, zero-mean forcing: the mean vorticity stays 0; the flow evolves between frames
    assert np.abs(frames.mean(axis=(-2, -1))).max() < 1e-12
    assert np.all(np.abs(np.diff(frames, axis=1)).max(axis=(-2, -1)) > 1e-3)

    gs = GrayScottDataset(count=2, n=32, chunk=2, frame_dt=50, t_in=1, t_out=2)
    Study(gs, tmp_path / "gs.zarr", seed=3).run("none")
    g = xr.open_zarr(tmp_path / "gs.zarr")
    v0 = GrayScott(GrayScottConfig(n=32, batch=2, seed=chunk_seed(3, 0), dtype="float64")).v.numpy()
    np.testing.assert_array_equal(g["x"].values[:, 0], v0)
    v = g["y"].values
    assert v.min() >= 0 and v.max() <= 1 and not np.array_equal(v[:, 0], v[:, 1])


def test_nfe_sweep_converges_to_the_noise_floor(tmp_path):
    """Exact mixture model: the sampler is the only error, so SW2 falls with NFE toward the noise floor."""
    from backends.batch.workloads import NfeSweep

    work = NfeSweep(samplers=("euler", "heun"), nfes=(3, 33), seeds=2, count=1000)
    report = Study(work, tmp_path / "s.zarr").run("none")
    assert report.done == 4 and not report.failed
    assert workload_from_meta(read_meta(tmp_path / "s.zarr")) == work
    ds = xr.open_zarr(tmp_path / "s.zarr")
    assert ds["sw"].dims == ("sampler", "nfe", "rep") and ds["sw"].shape == (2, 2, 2)
    sw, floor = ds["sw"].values, ds["floor"].values
    assert np.all(sw[:, 1] < sw[:, 0])  # more steps, smaller error, for each sampler and seed
    assert np.all(sw[1, 1] < 1.5 * floor[1, 1])  # Heun at NFE 33 is at the floor (~1.35x at 63 in bench)
    assert ds["nfe_used"].values.tolist() == [[3, 33], [3, 33]]
    assert not np.array_equal(sw[0, 0, 0], sw[0, 0, 1])  # the repetitions draw different noise


def test_dqn_eval_fixed_eta_error_follows_the_hermite_order(tmp_path):
    """Held-out system 1e9: with Aarseth's dt ~ sqrt(eta), 4th-order Hermite's error goes as eta^2 in the
    asymptotic regime; over eta 1e-4..1e-1 the fitted exponent is 2.2-2.7 on the first held-out systems."""
    from backends.batch.workloads import DqnEval

    Study(DqnEval(systems=1, chunk=1), tmp_path / "q.zarr").run("none")
    ds = xr.open_zarr(tmp_path / "q.zarr")
    assert ds.attrs["steppings"][0] == "policy" and len(ds.attrs["steppings"]) == 11
    de, evals = ds["de"].values[:, 0], ds["evals"].values[:, 0]
    fixed = np.log10(de[1:])
    assert np.all(np.diff(fixed) > 0) and np.all(np.diff(evals[1:]) < 0)  # eta 1e-4 .. 1e-1
    slope = np.polyfit(np.log10(np.logspace(-4, -1, 10)), fixed, 1)[0]
    assert 1.8 < slope < 3.0, slope
    assert evals[1:].min() < evals[0] < evals[1:].max() and np.isfinite(de[0])


def test_trajectory_sweep_baselines_over_seeds(tmp_path):
    """Constant velocity is deterministic (every seed equal); its 20-sample version keeps CV as sample 0 (the
    same ADE), its best of 20 beats the single guess (lower minADE), and its noise follows the seed."""
    from backends.batch.workloads import TrajectorySweep

    cv = Study(TrajectorySweep(model="cv", seeds=2), tmp_path / "cv.zarr")
    cv20 = Study(TrajectorySweep(model="cv20", seeds=2), tmp_path / "cv20.zarr")
    assert not cv.run("none").failed and not cv20.run("none").failed
    a, b = xr.open_zarr(cv.store), xr.open_zarr(cv20.store)
    assert a["ADE"].dims == ("scene", "seed") and a.attrs["scenes"] == ["synthetic"]
    assert a["ADE"].values[0, 0] == a["ADE"].values[0, 1] == a["minADE"].values[0, 0]
    np.testing.assert_array_equal(b["ADE"].values, a["ADE"].values)
    assert np.all(b["minADE"].values < a["minADE"].values) and np.all(b["minFDE"].values < a["minFDE"].values)
    assert b["minADE"].values[0, 0] != b["minADE"].values[0, 1]
