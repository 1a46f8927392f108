"""The main window: docks from the registry, menus from the Panel contract, sessions, layout, shutdown."""

from __future__ import annotations

import json

import imageio.v3 as iio
import pytest

from app.worker import manager


@pytest.fixture
def window(qtbot, demo_registry, config_dir):
    from app.window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.load_all_now()
    yield win
    win.close()


def test_docks_and_menus(window):
    assert set(window.panels) == {"demo"}
    dock = window.docks["demo"]
    assert dock.objectName() == "dock_demo"
    assert not dock.features() & dock.DockWidgetFeature.DockWidgetFloatable
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Export", "View", "Compute", "Help"]
    compute = window.menuBar().actions()[3].menu()
    assert "Cluster…" in [a.text().replace("&", "") for a in compute.actions()]
    window._fill_export_menu()
    labels = [a.text() for a in window.export_menu.actions() if a.text()]
    assert labels[0].startswith("Render view as PNG") and "Field NPZ…" in labels


@pytest.mark.gl
def test_render_png_any_size_with_sidecar(window, tmp_path):
    window.panels["demo"].advance(3)
    out = tmp_path / "view.png"
    assert window.render_png(out, (1234, 321))
    assert iio.imread(out).shape[:2] == (321, 1234)
    side = json.loads((tmp_path / "view.png.session.json").read_text())
    assert side["panels"]["demo"]["params"]["n"] == 64


def test_export_error_is_a_dialog_not_a_crash(window, tmp_path):
    action = window.panels["demo"].exports()[0]
    assert not window.run_export(action, tmp_path / "missing" / "x.npz")
    assert "does not exist" in window.last_error


def test_session_roundtrip_and_bad_file(window, tmp_path):
    panel = window.panels["demo"]
    panel.model.set_params(rate=0.35, n=128)
    path = tmp_path / "s.json"
    assert window.save_session(path)
    panel.model.set_params(rate=0.1, n=8)
    assert window.load_session(path)
    assert panel.params().rate == 0.35 and panel.params().n == 128
    assert panel.form.values()["n"] == 128
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "visual-lab-session", "schema": 7, "panels": {}}')
    assert not window.load_session(bad)
    assert "newer Visual Lab" in window.last_error
    assert panel.params().n == 128


def test_open_routes_files_to_the_panel(window, tmp_path):
    f = tmp_path / "x.demo"
    f.write_text("1")
    assert window.open_path(f)
    assert window.panels["demo"].opened == f
    assert not window.open_path(tmp_path / "x.unknown")


def test_layout_and_recent_persist(qtbot, demo_registry, config_dir, tmp_path):
    from app import settings
    from app.window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.load_all_now()
    win.log_dock.show()
    win.save_session(tmp_path / "s.json")
    win.close()
    assert settings.recent_files()[0].endswith("s.json")
    win2 = MainWindow()
    qtbot.addWidget(win2)
    win2.show()
    assert win2.log_dock.isVisible()
    win2.close()


def test_task_progress_shows_and_close_stops_workers(qtbot, window):
    panel = window.panels["demo"]
    panel.start(steps=10_000_000)
    qtbot.waitUntil(lambda: window.cancel_button.isVisible(), timeout=5000)
    window.close()
    assert manager().running() == []


def test_task_failure_shows_dialog(qtbot, window):
    panel = window.panels["demo"]
    panel.model.set_params(rate=0.9)
    panel.start()
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=5000)
    assert "rate must be in" in window.last_error


def test_about_mentions_versions(window):
    text = window.about_text()
    assert "Visual Lab" in text and "PySide6" in text and "OpenGL" in text and "torch" in text


def test_qt_calls_do_not_leak_references_to_none(qtbot):
    """PySide6 6.12.0 on CPython 3.11 dropped a reference to None per Qt call returning None until the
    interpreter aborted ("none_dealloc"); pyproject excludes it. Guard against any such binding."""
    import sys

    from PySide6.QtWidgets import QApplication, QWidget

    w = QWidget()
    qtbot.addWidget(w)
    before = sys.getrefcount(None)
    for _ in range(2000):
        w.setWindowTitle("x")
        QApplication.processEvents()
    assert sys.getrefcount(None) >= before - 50


@pytest.mark.gl
def test_sidecar_reproduces_the_figure_in_a_fresh_window(qtbot, demo_registry, config_dir, tmp_path):
    """The worked example of the check every panel has: change parameters, run, export, reload the sidecar."""
    from tests.reproduce import export_and_reload, not_blank, psnr

    def mutate(panel):
        panel.model.set_params(n=200, rate=0.3, seed=4)
        panel.advance(5)

    first, second, out = export_and_reload(qtbot, "demo", tmp_path, mutate)
    assert not_blank(first)
    assert psnr(first, second) >= 40
    assert (tmp_path / "demo.png.session.arrays.npz").is_file()


def test_invalid_session_changes_nothing_and_names_key_and_value(window, tmp_path):
    panel = window.panels["demo"]
    panel.model.set_params(n=100)
    for bad, words in [
        ({"n": -5}, "demo.params.n = -5 is out of range"),
        ({"n": 2.5}, "whole number"),
        ({"rate": "fast"}, "must be a number"),
        ({"warp": 1}, "unknown key 'warp'"),
    ]:
        path = tmp_path / "bad.json"
        path.write_text(
            json.dumps({"kind": "visual-lab-session", "schema": 2, "panels": {"demo": {"params": bad}}})
        )
        assert not window.load_session(path)
        assert words in window.last_error
        assert panel.params().n == 100 and panel.form.values()["n"] == 100


def test_session_of_another_panel_changes_nothing(window, tmp_path):
    path = tmp_path / "other.json"
    path.write_text(
        json.dumps({"kind": "visual-lab-session", "schema": 2, "panels": {"pde": {"params": {}}}})
    )
    assert not window.load_session(path)
    assert "holds no open panel" in window.last_error


def test_help_and_memory_budget(window):
    text = window.controls_text()
    assert "Ctrl+S" in text and "Save session" in text
    assert "Memory" in window.memory_label.text() and "budget 2,048 MiB" in window.memory_label.text()
    window.set_memory_budget(512)
    from backends.common import memory_budget

    assert memory_budget() == 512 * 2**20 and "budget 512 MiB" in window.memory_label.text()
    window.set_memory_budget(5)  # out of range: a dialog, nothing changes
    assert "out of range" in window.last_error and memory_budget() == 512 * 2**20
