"""File > Open study… on a real dqn-eval store (one of its two chunks computed by the batch workload): the
Learned stepping tab plots the table of the finished systems (fixed etas as a line, the policy as a star), the
title counts systems and blow-ups, and the CSV export holds the same table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from backends.batch import Study
from backends.batch.workloads import DqnEval
from tests.reproduce import open_window


@pytest.fixture(scope="module")
def partial_store(tmp_path_factory):
    """systems 0, 1 of 4 computed (about 3 s of CPU): a partial store, as a cluster job leaves it."""
    study = Study(DqnEval(systems=4, chunk=2), tmp_path_factory.mktemp("dqn") / "d.zarr")
    assert [r.error for r in study.results(None, chunks=[0])] == [None]
    return study.store


def test_open_dqn_eval_store_plots_the_table_and_exports_it(qtbot, tmp_path, partial_store):
    import zarr

    win = open_window(qtbot, "threebody")
    try:
        assert win.open_study(partial_store), win.last_error
        p = win.panels["threebody"]
        qtbot.waitUntil(lambda: bool(p.model.dqn_rows), timeout=20_000)
        assert p.tabs.currentWidget() is p.rewards
        rows = p.model.dqn_rows
        # the table against the store's raw arrays (systems 0, 1; chunk 0's blow-ups)
        g = zarr.open_group(str(partial_store), mode="r")
        de, evals, blown = g["de"][:, :2], g["evals"][:, :2], g["blowups"][:, 0]
        assert np.all(np.isnan(g["de"][:, 2:]))  # chunk 1 never ran
        assert [r.systems for r in rows] == [2] * 11
        np.testing.assert_allclose([r.mean_evals for r in rows], evals.mean(axis=1), rtol=1e-12)
        np.testing.assert_allclose([r.log_mean_de for r in rows], np.exp(np.log(de).mean(axis=1)), rtol=1e-9)
        assert [r.blowups for r in rows] == list(blown)

        plot = p.rewards
        x, y = plot.fixed_curve.getOriginalDataset()
        np.testing.assert_array_equal(x, [r.mean_evals for r in rows[1:]])
        np.testing.assert_array_equal(y, [r.log_mean_de for r in rows[1:]])
        px, py = plot.policy_point.getOriginalDataset()
        assert (px[0], py[0]) == (rows[0].mean_evals, rows[0].log_mean_de)
        ctrl = plot.study_plot.getPlotItem().ctrl
        assert ctrl.logXCheck.isChecked() and ctrl.logYCheck.isChecked()  # log-log: decades in both
        assert [t.toPlainText() for t in plot.eta_labels][:2] == ["0.0001", "0.00022"]
        title = plot.study_plot.getPlotItem().titleLabel.text
        assert "2 systems" in title and f"blow-ups: policy {blown[0]}, fixed etas {blown[1:].sum()}" in title
        assert "1/2 chunks, 2/4 systems" in p.model.dqn_message and "batch resume" in p.model.dqn_message

        acts = {a.label: a for a in p.exports()}
        acts["DQN study table CSV"].write(tmp_path / "t.csv")
        with open(tmp_path / "t.csv", newline="") as fh:
            table = list(csv.DictReader(fh))
        assert [t["stepping"] for t in table] == [r.stepping for r in rows]
        assert [float(t["mean_force_evals"]) for t in table] == [r.mean_evals for r in rows]
        assert [float(t["log_mean_abs_dE_over_E"]) for t in table] == [r.log_mean_de for r in rows]
        assert [int(t["blowups"]) for t in table] == [r.blowups for r in rows]
        assert {int(t["systems"]) for t in table} == {2}
    finally:
        win.close()
