"""The NFE sweep as a batch study on a real 2-worker Dask cluster (127.0.0.1): points land chunk by chunk,
the store equals the in-process reference and the CLI's byte for byte, Stop then the button again computes
only the missing chunks, and a fresh panel opening the store plots the same points."""

from __future__ import annotations

import os

import numpy as np
import pytest

from backends.batch.store import read_meta
from backends.batch.study import Study
from backends.batch.workloads import workload_from_meta
from backends.common import drain
from backends.diffusion.live import generative
from backends.diffusion.pipeline import SampleConfig, nfe_curves
from tests.backends.batch.helpers import assert_same_store, done_files
from tests.panels.study_fixtures import app_cluster, panel_factory


@pytest.fixture(scope="module")
def cluster_client():
    yield from app_cluster(
        "backends.batch.workloads", "backends.diffusion.pipeline", "backends.diffusion.metrics"
    )


@pytest.fixture
def make_panel(qtbot, tmp_path):
    from panels.diffusion.panel import DiffusionPanel

    yield from panel_factory(DiffusionPanel, qtbot, tmp_path)


COUNT = 300  # samples per run: sliced W2 still separates 3 from 33 steps; about a second per chunk (2 seeds)
SAMPLERS = ("euler", "heun", "dpmpp2m")


def _shot(panel, name: str) -> None:
    """A screenshot for a person to look at, when VISUAL_LAB_SCREENSHOT_DIR is set."""
    if os.environ.get("VISUAL_LAB_SCREENSHOT_DIR"):
        panel.resize(1400, 800)
        panel.grab().save(os.path.join(os.environ["VISUAL_LAB_SCREENSHOT_DIR"], name))


def _points(model) -> dict:
    return {
        (c.sampler, c.nfe): (c.sw, c.floor, model.curve_spread.get((c.sampler, c.nfe))) for c in model.curves
    }


def test_exact_sweep_streams_stops_resumes_and_reopens(cluster_client, make_panel, qtbot, tmp_path):
    panel = make_panel()
    m = panel.model
    m.set_params(dataset="gmm", model="exact", sweep_seeds=2)
    counts: list[int] = []
    m.events.connect("curves", lambda **_: counts.append(len(m.curves)))
    nfes = (3, 9, 33)
    study = panel.compare(nfes=nfes, samplers=SAMPLERS, count=COUNT)
    total = study.n_chunks
    assert total == 9
    assert "on the cluster at tcp://127.0.0.1:" in panel.info.text()
    qtbot.waitUntil(lambda: len(m.curves) >= 2, timeout=40_000)
    panel.stop()  # cancels the futures: the chunks finished so far stay in the store
    assert panel.tasks.join(20_000)  # a chunk being stored as Stop came is finished first (then counted)
    first = len(done_files(study.store))
    assert 2 <= first < total, first
    _shot(panel, "diffusion_sweep_partial.png")

    reports = []
    panel._on_sweep_done = reports.append
    again = panel.compare(nfes=nfes, samplers=SAMPLERS, count=COUNT)
    assert again.store == study.store  # the same settings find the same store
    assert len(m.curves) == first  # the stored chunks are drawn before anything runs
    qtbot.waitUntil(lambda: bool(reports), timeout=50_000)
    report = reports[0]
    assert report.skipped == first and len(report.computed) == total - first and not report.failed
    assert 0 < min(c for c in counts if c > 0) < total  # the curves filled in chunk by chunk
    assert len(m.curves) == total

    ref = Study(workload_from_meta(read_meta(study.store)), tmp_path / "ref.zarr", seed=0)
    ref.run("none")
    assert_same_store(study.store, ref.store)

    # the numbers: with the exact denoiser every sampler converges to the noise floor of 300 samples by NFE 33
    # (Heun with NFE 3 takes one step and a half: far off)
    pts = _points(m)
    for s in SAMPLERS:
        assert pts[(s, 33)][0] < 1.5 * pts[(s, 33)][1] and pts[(s, 3)][0] > 1.5 * pts[(s, 33)][0], s
    assert all(np.isfinite(sd) and sd > 0 for _, _, sd in pts.values())  # two seeds: a spread
    x, y, top = panel.plots.error_bars("heun")
    np.testing.assert_allclose(10**x, [3, 9, 33])
    np.testing.assert_allclose(10**top - 10**y, [pts[("heun", k)][2] for k in nfes], rtol=1e-9)

    fresh = make_panel()
    fresh.open_study(study.store, read_meta(study.store))
    assert _points(fresh.model) == pts
    assert "exact on gmm, 2 seeds" in fresh.model.curves_about
    _shot(fresh, "diffusion_sweep_finished.png")


def test_trained_model_sweep_is_the_cli_store_of_its_weights(cluster_client, make_panel, qtbot, tmp_path):
    """The study samples the model the user trained: its weights file (named by hash) is what the CLI
    takes, and the CLI writes the same store; the points match the in-process sweep of the panel's weights."""
    from backends.batch.cli import build_study

    panel = make_panel()
    m = panel.model
    m.set_params(dataset="moons", model="edm", sweep_seeds=1, count=200)
    panel.advance(3)  # 30 training steps, synchronous
    reports = []
    panel._on_sweep_done = reports.append
    study = panel.compare(nfes=(3, 9), samplers=("euler", "heun"), count=500)
    qtbot.waitUntil(lambda: bool(reports), timeout=50_000)
    assert reports[0].done == 4 and not reports[0].failed
    params = read_meta(study.store)["params"]
    weights = params["weights"]
    assert params["weights_sha256"] in os.path.basename(weights) or params["weights_sha256"][:16] in weights

    cli, _, _ = build_study(
        "nfe-sweep",
        ["--weights", weights, "--dataset", "moons", "--samplers", "euler,heun", "--nfe", "3,9", "--seeds", "1",
         "--count", "500", "--out", str(tmp_path / "cli.zarr")],
    )  # fmt: skip
    cli.run("none")
    assert_same_store(study.store, cli.store)

    want = drain(
        nfe_curves(generative(m.weights), m.dataset(), SampleConfig(seed=0), (3, 9), ("euler", "heun"), 500)
    )
    got = _points(m)
    for c in want:
        assert got[(c.sampler, c.nfe)][0] == pytest.approx(c.sw, rel=1e-12)
