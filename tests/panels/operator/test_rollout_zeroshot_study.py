"""The operator panel's Navier-Stokes rollout beside the solver (live, exported as MP4/NPZ/CSV), its zero-shot
view against direct evaluations, and Generate as a pde-dataset study on a real 2-worker LocalCluster."""

from __future__ import annotations

import csv
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

pytest.importorskip("neuralop")

from backends.batch import Study  # noqa: E402
from backends.batch.store import read_meta  # noqa: E402
from backends.common import drain  # noqa: E402
from backends.operator import data as opdata  # noqa: E402
from backends.operator.studies import dataset_workload  # noqa: E402
from backends.operator.train import evaluate, predict  # noqa: E402
from backends.operator.zeroshot import fine_test_set  # noqa: E402
from panels.operator.model import ZEROSHOT_SEED_OFFSET  # noqa: E402
from panels.operator.render import compose_rollout  # noqa: E402

T_IN = 10


@pytest.fixture(scope="module")
def ns_data():
    """14 sequences at 16x16, nu = 1e-3, t = 0..14 (x: 10 given steps, y: the next 5)."""
    return drain(opdata.generate_ns(16, 14, nu=1e-3, steps=14, t_in=T_IN, seed=5, batch=14))


@pytest.fixture
def panel(bare_panel):
    return bare_panel


def test_rollout_beside_the_solver_and_its_exports(panel, qtbot, ns_data, tmp_path):
    from app.video import VideoOptions, run_blocking

    m = panel.model
    m.set_params(problem="ns", n=16, n_test=2, epochs=25, width=12, modes=6, batch_size=6, lr=5e-3,
                 rollout_steps=8)  # fmt: skip
    m.set_data(ns_data)
    panel.advance(25)
    m.select(sample=1)
    panel.roll_out()  # in a worker: 8 steps = one block of 5, then one fed back on predictions
    qtbot.waitUntil(lambda: len(m.rollout.steps) == T_IN + 8, timeout=60_000)
    r = m.rollout
    t, truth, pred, err = r.arrays()
    assert list(t) == list(range(T_IN + 8)) and r.sample == 1
    # the curve the user sees: one point per step, exactly 0 on the given steps, then growing
    assert np.array_equal(panel.rollout_view.curve.yData, err) and len(panel.rollout_view.curve.xData) == 18
    assert np.all(err[:T_IN] == 0) and 0 < err[T_IN] < 0.2 and err[-1] > err[T_IN]
    # the solver side reproduces the test sequence it restarted from, the operator's first block is its output
    y = m.test_data.y[1]
    assert np.abs(truth[T_IN : T_IN + 5] - y).max() < 2e-3 * np.abs(y).max()
    assert np.allclose(pred[T_IN : T_IN + 5], predict(m.network(), m.test_data.x[1:2])[0], atol=1e-5)
    # MP4: the chosen size and frame count, read back; frames show the rollout (first and last differ)
    spec = panel.video()
    assert spec.label == "Rollout" and spec.duration == pytest.approx(0.25 * 18)
    out = run_blocking(spec, tmp_path / "r.mp4", VideoOptions((320, 128), fps=10.0, duration=1.2))
    frames = iio.imread(out, index=None)
    assert frames.shape == (12, 128, 320, 3)
    want = compose_rollout(m.rollout_fields(17), (320, 128), r.limits())[..., :3]
    assert np.abs(frames[-1].astype(int) - want).mean() < 6  # H.264 is lossy; a wrong frame is off by tens
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 3
    acts = {a.label: a for a in panel.exports()}
    acts["Rollout NPZ"].write(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as z:
        assert np.array_equal(z["prediction"], pred) and np.array_equal(z["truth"], truth) and z["t_in"] == 10
    acts["Rollout error CSV"].write(tmp_path / "r.csv")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert [float(row["rel_l2"]) for row in rows] == pytest.approx(list(err))
    assert [int(row["given"]) for row in rows] == [1] * 10 + [0] * 8


def test_rollout_needs_navier_stokes_data(panel):
    messages = []
    panel.status.connect(messages.append)
    panel.model.set_params(n=16, count=10, n_test=2, epochs=1, width=8, modes=4)
    panel.advance(1)
    panel.roll_out()
    assert "a rollout needs Navier-Stokes data" in messages[-1] and panel.model.rollout is None


def test_zero_shot_view_numbers_equal_direct_evaluation(panel, qtbot, tmp_path):
    m = panel.model
    m.set_params(n=17, count=24, n_test=3, epochs=10, width=12, modes=6, batch_size=6, seed=2)
    panel.advance(10)
    panel.zero_shot()
    qtbot.waitUntil(lambda: m.zeroshot is not None, timeout=60_000)
    z = m.zeroshot
    fine = drain(fine_test_set("darcy", 17, 3, seed=2 + ZEROSHOT_SEED_OFFSET))
    net = m.network()
    assert np.array_equal(z.fine.x, fine.x) and z.m == 33
    assert z.rel_l2_fine == pytest.approx(evaluate(net, fine)["rel_l2"], rel=1e-9)
    coarse = opdata.OperatorData(fine.x[:, :, ::2, ::2], fine.y[:, :, ::2, ::2], "darcy")
    assert z.rel_l2_n == pytest.approx(evaluate(net, coarse)["rel_l2"], rel=1e-9)
    text = panel.zeroshot_view.info.text()
    assert f"at 33 directly {z.rel_l2_fine:.4f}" in text and f"relative L2 at n {z.rel_l2_n:.4f}" in text
    assert np.array_equal(panel.zeroshot_view.tiles.items["truth (fine)"].image, fine.y[0, 0].T)
    acts = {a.label: a for a in panel.exports()}
    acts["Zero-shot PNG"].write(tmp_path / "z.png")
    assert iio.imread(tmp_path / "z.png").shape[:2] == (800, 1600)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_runs_a_study_on_a_local_cluster_and_the_store_trains(panel, qtbot, tmp_path):
    from app import cluster

    drain(cluster._connect(2, ""))  # Compute > Cluster…: a real LocalCluster, 2 workers on 127.0.0.1
    try:
        assert cluster.current_client().scheduler.address.startswith("tcp://127.0.0.1:")
        m = panel.model
        m.set_params(problem="darcy", n=16, count=8, chunk=2, n_test=2, seed=4, epochs=10, width=8, modes=4,
                     batch_size=2, lr=2e-2)  # fmt: skip
        panel.generate()
        qtbot.waitUntil(lambda: m.test_data is not None, timeout=120_000)
    finally:
        cluster.shutdown()
    st = m.study
    assert (st.samples, st.chunks, st.failed) == (8, 4, 0) and st.iterations > 0
    assert (
        "on the cluster at tcp://127.0.0.1" in panel.info.text()
        and "8/8 samples, 4/4 chunks" in panel.info.text()
    )
    store = Path(st.store)
    ref = Study(dataset_workload("darcy", 16, 8, 2), tmp_path / "ref.zarr", seed=4)
    ref.run("none")
    assert _files(store) == _files(ref.store)  # byte-identical, metadata included
    # File > Open study: the store's samples are the data set; training on them lowers the loss
    panel.open_study(store, read_meta(store))
    assert len(m.train_data) == 6 and m.data.kind == "darcy" and m.source == store.name
    assert "recycled CG" in panel.info.text()
    panel.start()
    qtbot.waitUntil(lambda: len(m.history) == 10, timeout=60_000)
    loss = [h.train_loss for h in m.history]
    assert len(loss) == 10 and loss[-1] < 0.8 * loss[0]
