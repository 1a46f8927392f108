from __future__ import annotations

import pytest

from backends.batch import Study

from .helpers import SMALL_MAP


@pytest.fixture(scope="session")
def reference_store(tmp_path_factory):
    """The small escape map computed in this process (scheduler none): the reference every run must equal."""
    path = tmp_path_factory.mktemp("batch-ref") / "ref.zarr"
    report = Study(SMALL_MAP, path).run("none")
    assert report.done == report.total == 16 and not report.failed
    return path
