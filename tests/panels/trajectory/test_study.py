"""Sweep scenes x seeds as batch studies on a real 2-worker Dask cluster (127.0.0.1), on the real ETH/UCY
scenes: the table fills in as chunks land, the store is the CLI's byte for byte, Stop then Sweep again computes
only the missing chunks, the CSV export and a fresh panel opening the store show the same numbers."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import xarray as xr

from backends.batch.store import read_meta
from tests.backends.batch.helpers import assert_same_store, done_files
from tests.conftest import shared_data
from tests.panels.study_fixtures import app_cluster, panel_factory

SEEDS = 4  # cv20 (constant velocity + noise, seeded): a fraction of a second per chunk
SCENES = ("eth", "hotel", "zara1")  # 12 chunks, and 3 of the constant-velocity baseline


@pytest.fixture(scope="module")
def cluster_client():
    yield from app_cluster(
        "backends.batch.workloads", "backends.trajectory.cli", "backends.trajectory.eigentrajectory"
    )


@pytest.fixture
def make_panel(qtbot, tmp_path):
    from panels.trajectory.panel import TrajectoryPanel

    yield from panel_factory(TrajectoryPanel, qtbot, tmp_path)


def _shot(panel, name: str) -> None:
    """A screenshot for a person to look at, when VISUAL_LAB_SCREENSHOT_DIR is set."""
    if os.environ.get("VISUAL_LAB_SCREENSHOT_DIR"):
        panel.resize(1400, 800)
        panel.grab().save(os.path.join(os.environ["VISUAL_LAB_SCREENSHOT_DIR"], name))


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.3f} ± {sd:.3f}"


def test_scene_sweep_streams_stops_resumes_exports_and_reopens(cluster_client, make_panel, qtbot, tmp_path):
    from backends.batch.cli import build_study

    data = shared_data("ethucy")
    panel = make_panel()
    m = panel.model
    m.set_params(data=str(data), scene="eth", model="cv20", sweep_seeds=SEEDS)
    seen: list[int] = []
    m.events.connect("sweep", lambda **_: seen.append(m.sweep.done))
    studies = panel.sweep(SCENES)
    main = studies["sweep"]
    total = main.n_chunks
    assert total == 3 * SEEDS and studies["baseline"].n_chunks == 3
    assert "on the cluster at tcp://127.0.0.1:" in panel.info.text()
    qtbot.waitUntil(lambda: m.sweep.done >= 2, timeout=40_000)
    panel.stop()
    assert panel.tasks.join(20_000)  # a chunk being stored as Stop came is finished first (then counted)
    first = len(done_files(main.store))
    assert 2 <= first < total, first
    _shot(panel, "trajectory_sweep_partial.png")

    reports = []
    panel._on_sweep_done = lambda kind, rep: reports.append((kind, rep))
    again = panel.sweep(SCENES)
    assert again["sweep"].store == main.store and m.sweep.done == first  # stored runs shown at once
    qtbot.waitUntil(lambda: not panel.tasks.busy(), timeout=40_000)
    qtbot.wait(50)
    rep = dict(reports)["sweep"]
    assert rep.skipped == first and len(rep.computed) == total - first and not rep.failed
    assert 0 < min(s for s in seen if s > 0) < total  # the table filled in chunk by chunk
    assert m.sweep.done == total

    cli, _, _ = build_study(
        "trajectory-sweep",
        ["--data", str(data), "--scenes", ",".join(SCENES), "--seeds", str(SEEDS), "--model", "cv20",
         "--epochs", "20", "--seed", "0", "--out", str(tmp_path / "cli.zarr")],
    )  # fmt: skip
    cli.run("none")
    assert_same_store(main.store, cli.store)

    ds = xr.open_zarr(main.store)
    base = xr.open_zarr(studies["baseline"].store)
    scenes = list(ds.attrs["scenes"])
    assert scenes == list(SCENES)
    rows = panel.plots.sweep_cells()
    for i, scene in enumerate(scenes):
        ade, fde = ds["minADE"].values[i], ds["minFDE"].values[i]
        want = [scene, f"{SEEDS}/{SEEDS}", _pm(ade.mean(), ade.std(ddof=1)), _pm(fde.mean(), fde.std(ddof=1)),
                f"{base['ADE'].values[i, 0]:.3f}", f"{base['FDE'].values[i, 0]:.3f}"]  # fmt: skip
        assert rows[i] == want
    # best of 20 noisy constant-velocity guesses beats the single guess on every scene (minADE < CV ADE)
    assert np.all(ds["minADE"].values < base["ADE"].values) and np.all(
        ds["minFDE"].values < base["FDE"].values
    )

    out = tmp_path / "table.csv"
    next(a for a in panel.exports() if a.label == "Scene sweep table CSV").write(out)
    with open(out, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["scene"] for r in table] == scenes
    np.testing.assert_allclose(
        [float(r["minFDE_mean"]) for r in table], ds["minFDE"].values.mean(1), rtol=1e-12
    )
    np.testing.assert_allclose([float(r["cv_ADE"]) for r in table], base["ADE"].values[:, 0], rtol=1e-12)

    fresh = make_panel()
    fresh.open_study(main.store, read_meta(main.store))
    assert [r[:4] for r in fresh.plots.sweep_cells()] == [r[:4] for r in rows]
    _shot(panel, "trajectory_sweep_finished.png")
