"""Compute > Cluster…: a real local Dask cluster started from the dialog, shown, used by a study, closed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from backends.batch import DarcyDataset, Study
from backends.common import drain


@pytest.fixture
def dialog(qtbot):
    from app import cluster

    dlg = cluster.ClusterDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    cluster.shutdown()


def test_local_cluster_from_the_dialog_runs_a_study(dialog, qtbot, tmp_path):
    from app import cluster

    assert cluster.current_client() is None and dialog.table.rowCount() == 0
    assert "No cluster" in dialog.summary.text()
    dialog.workers_spin.setValue(2)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=60_000)
    rows = [[dialog.table.item(r, c).text() for c in range(3)] for r in range(2)]
    assert all(r[0].startswith("tcp://127.0.0.1:") and r[1] == "1" for r in rows), rows
    assert "2 workers</b>, 2 cores" in dialog.summary.text()
    assert "dashboard: <a href='http://127.0.0.1:" in dialog.summary.text()
    if os.environ.get("VISUAL_LAB_SCREENSHOT"):
        dialog.grab().save(os.environ["VISUAL_LAB_SCREENSHOT"])

    # a study through the app's client streams cumulative chunk results and fills the store (Darcy: its
    # workers start in seconds, where the escape map's load their compiled integrator first)
    work = DarcyDataset(count=4, n=16, chunk=1)
    seen = []
    report = drain(Study(work, tmp_path / "m.zarr").follow(cluster.current_client()), seen.append)
    assert report.done == 4 and not report.failed
    assert [p.fraction for p in seen] == [0.25, 0.5, 0.75, 1.0]
    assert sorted(r.index for r in seen[-1].data) == [0, 1, 2, 3]
    ref = Study(work, tmp_path / "ref.zarr")
    ref.run("none")
    import xarray as xr

    got, want = xr.open_zarr(tmp_path / "m.zarr"), xr.open_zarr(ref.store)
    for name in ("x", "y", "iterations"):
        np.testing.assert_array_equal(got[name].values, want[name].values)

    dialog.stop_button.click()
    assert cluster.current_client() is None and dialog.table.rowCount() == 0


def test_connect_to_a_dead_address_says_so(dialog, qtbot):
    from app import cluster

    dialog.remote_radio.setChecked(True)
    dialog.address_edit.setText("tcp://127.0.0.1:1")
    dialog.start_button.click()
    qtbot.waitUntil(lambda: "cannot connect to tcp://127.0.0.1:1" in dialog.summary.text(), timeout=30_000)
    assert cluster.current_client() is None
    qtbot.waitUntil(dialog.start_button.isEnabled, timeout=30_000)
    dialog.address_edit.setText("local")
    dialog.start_button.click()
    qtbot.waitUntil(lambda: "expected tcp://HOST:PORT" in dialog.summary.text(), timeout=10_000)
