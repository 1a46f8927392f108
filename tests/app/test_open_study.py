"""File > Open study…: a Zarr store routed by its workload to the panel that lists it in ``study_workloads``
(the shell names no domain); anything else is one line in a dialog naming the path and the problem."""

from __future__ import annotations

import json
from typing import ClassVar

import pytest

from app import registry
from backends.batch import DarcyDataset, Study
from tests.app.demo_panel import DemoPanel


class StudyDemoPanel(DemoPanel):
    """The demo panel that shows Darcy data-set stores (it records what it was asked to open)."""

    study_workloads: ClassVar[tuple[str, ...]] = ("pde-dataset",)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.opened: list = []

    def open_study(self, path, meta):
        self.opened.append((path, meta))


@pytest.fixture
def window(qtbot, monkeypatch, config_dir):
    from app.window import MainWindow

    specs = {
        "demo": registry.PanelSpec("demo", "Demo", "tests.app.demo_panel:DemoPanel"),
        "studies": registry.PanelSpec("studies", "Studies", "tests.app.test_open_study:StudyDemoPanel"),
    }
    monkeypatch.setattr(registry, "panels", lambda: specs)
    win = MainWindow(restore_layout=False)
    qtbot.addWidget(win)
    win.show()
    win.load_all_now()
    yield win
    win.close()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("s") / "darcy.zarr"
    Study(DarcyDataset(count=2, n=16, chunk=1), path).run("none")
    return path


def test_a_store_opens_in_the_panel_that_lists_its_workload(window, store):
    window.activate("demo")
    assert window.open_path(store), window.last_error  # a .zarr folder routes to Open study
    ((path, meta),) = window.panels["studies"].opened
    assert path == store and meta["workload"] == "pde-dataset" and meta["params"]["count"] == 2
    assert window.active_key() == "studies"
    assert window.open_study(store.parent / "darcy.zarr")  # also without the .zarr routing
    from app import settings

    assert str(store.resolve()) in settings.recent_files()


def one_line(text: str | None) -> str:
    assert text and "\n" not in text and "Traceback" not in text, text
    return text


def test_not_a_store_unknown_workload_corrupt_meta_are_one_line_each(window, tmp_path, store):
    plain = tmp_path / "photos"
    plain.mkdir()
    assert not window.open_study(plain)
    assert one_line(window.last_error) == f"cannot open study: {plain}: not a batch store (no zarr.json)"

    broken = tmp_path / "broken.zarr"
    broken.mkdir()
    (broken / "zarr.json").write_text("{not json")
    assert not window.open_path(broken)
    assert str(broken) in one_line(window.last_error) and "not a readable Zarr group" in window.last_error

    other = tmp_path / "other.zarr"
    import shutil

    shutil.copytree(store, other)
    meta_file = other / "zarr.json"
    meta = json.loads(meta_file.read_text())
    meta["attributes"]["visual_lab_batch"]["workload"] = "weather"
    meta_file.write_text(json.dumps(meta))
    assert not window.open_path(other)
    assert one_line(window.last_error) == f"cannot open study: {other}: no open panel shows 'weather' studies"
    assert not window.panels["studies"].opened


def test_gui_command_line_takes_a_path_and_refuses_a_missing_one(tmp_path, capsys):
    from app.__main__ import main

    missing = tmp_path / "nope.zarr"
    assert main(["gui", str(missing)]) == 2
    assert capsys.readouterr().err.strip() == f"visual-lab: error: {missing}: no such file or folder"
    assert main(["gui", str(tmp_path), "extra"]) == 2
    assert "unexpected arguments: extra" in capsys.readouterr().err
