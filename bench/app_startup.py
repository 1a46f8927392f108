"""Cold-start timings of the shell: `--version`, `panels`, and launch to a visible main window.

Each figure is the median of several fresh processes. The reference is a bare `python -c pass` measured in the
same run, so the ratio says how much the app adds to the interpreter start. Needs a display (xvfb-run).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOW = (
    "import time, sys; t0 = time.perf_counter()\n"
    "from app.gl import setup_qt_for_vispy; setup_qt_for_vispy(False)\n"
    "from PySide6.QtWidgets import QApplication; app = QApplication([])\n"
    "from app.window import MainWindow; w = MainWindow(restore_layout=False); w.show()\n"
    "from PySide6.QtTest import QTest; QTest.qWaitForWindowExposed(w)\n"
    "print(time.perf_counter() - t0); w.close()\n"
)


def wall(cmd: list[str], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    py = sys.executable
    bare = wall([py, "-c", "pass"])
    version = wall([py, "-m", "app", "--version"])
    panels = wall([py, "-m", "app", "panels"])
    window = wall([py, "-c", SHOW], repeat=3)
    print(f"python -c pass            {bare:.3f} s (reference)")
    print(f"visual-lab --version      {version:.3f} s  ({version / bare:.1f}x bare python)")
    print(f"visual-lab panels         {panels:.3f} s  ({panels / bare:.1f}x bare python)")
    print(f"cold start to visible window {window:.3f} s (process start to exposed window)")


if __name__ == "__main__":
    main()
