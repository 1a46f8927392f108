"""One torch thread: the test machine is small and shared; more threads only oversubscribe it. NFE sweep
stores go to the test's temporary folder (never to the user's data folder)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _study_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VISUAL_LAB_STUDIES_DIR", str(tmp_path / "studies"))
