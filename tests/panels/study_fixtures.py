"""Shared pieces of the panels' batch-study tests: the app's own 2-worker cluster and a panel factory whose
stores go under the test's tmp folder."""

from __future__ import annotations

import importlib

from backends.common import drain


def app_cluster(*warm_modules: str):
    """Generator for a module-scoped fixture: the app's cluster (Compute > Cluster… start path), 2 workers x 1
    thread on 127.0.0.1, with ``warm_modules`` imported on every worker before any test times anything."""
    from app import cluster

    client = drain(cluster._connect(2, ""))
    assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
    client.run(_import_all, warm_modules)
    yield client
    cluster.shutdown()


def _import_all(names) -> None:
    for name in names:
        importlib.import_module(name)


def panel_factory(cls, qtbot, tmp_path):
    """Generator for a fixture: ``make()`` builds a ``cls`` panel with its studies in ``tmp_path/studies``;
    every panel made is shut down after the test."""
    made = []

    def make():
        p = cls()
        p.study_dir = tmp_path / "studies"
        qtbot.addWidget(p)
        made.append(p)
        return p

    yield make
    for p in made:
        p.shutdown()
