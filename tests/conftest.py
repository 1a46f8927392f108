"""Test set-up shared by all layers.

``VISUAL_LAB_BLOCK_QT=1`` makes importing PySide6, vispy or pyqtgraph fail: `make test` runs the backend
tests that way to prove backends never import Qt. Tests marked ``gl`` are skipped when no OpenGL context
can be created (run them under Xvfb + Mesa: pytest-xvfb does that).
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

BLOCKED = ("PySide6", "shiboken6", "vispy", "pyqtgraph", "superqt")


class _BlockGUI(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: backends must not import GUI libraries")
        return None


from app.device import limit_native_threads  # noqa: E402 - before numpy, as the GUI entry point does

limit_native_threads()

if os.environ.get("VISUAL_LAB_BLOCK_QT") == "1":
    sys.meta_path.insert(0, _BlockGUI())
else:
    os.environ.setdefault(
        "VISUAL_LAB_CONFIG_DIR",
        str(Path(os.environ.get("TMPDIR", "/tmp")) / f"visual-lab-test-{os.getpid()}"),
    )
    try:
        from app.gl import setup_qt_for_vispy

        setup_qt_for_vispy()
    except ImportError:
        pass


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test when it is absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p}")
    return p


def pytest_runtest_setup(item):
    if "gl" in item.keywords:
        from PySide6.QtWidgets import QApplication

        from app.gl import gl_info

        QApplication.instance() or QApplication([])
        info = gl_info()
        if "error" in info:
            pytest.skip(f"no OpenGL context: {info['error']}")


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_main_thread():
    """GUI tests: no automatic garbage collection during a test (it could run in a worker thread and destroy
    Qt widgets of earlier tests there, which deadlocks PySide); collect on the main thread between tests."""
    if os.environ.get("VISUAL_LAB_BLOCK_QT") == "1":
        yield
        return
    import gc

    gc.disable()
    yield
    gc.collect()
