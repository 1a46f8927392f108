"""Regenerate the README screenshots: the main window on each panel after a short run.

Run under a display: `make screenshots` (uses xvfb-run). Writes docs/screenshots/<panel>.png (< 500 kB each)
and docs/screenshot.png (the first panel), as small 8-bit PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = {"threebody": 400, "pde": 200, "diffusion": 1500, "trajectory": 3, "splat": 1}


def main(keys: list[str]) -> None:
    from app.gl import setup_qt_for_vispy

    setup_qt_for_vispy()
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from app import registry
    from app.gl_window import grab_widget
    from app.window import MainWindow

    keys = keys or list(registry.panels())
    win = MainWindow(keys, restore_layout=False)
    win.resize(1500, 930)
    win.show()
    win.load_all_now()
    out_dir = ROOT / "docs" / "screenshots"
    out_dir.mkdir(parents=True, exist_ok=True)
    for key in keys:
        panel = win.panels.get(key)
        if panel is None:
            print(f"{key}: failed to load ({win.last_error})")
            continue
        win.activate(key)
        panel.advance(STEPS.get(key, 5))
        for _ in range(30):
            app.processEvents()
        img = grab_widget(win).convertToFormat(QImage.Format.Format_RGB888)
        path = out_dir / f"{key}.png"
        img.save(str(path), "PNG", 9)
        print(f"{path} {path.stat().st_size // 1024} kB")
    first = out_dir / f"{keys[0]}.png"
    if first.exists():
        (ROOT / "docs" / "screenshot.png").write_bytes(first.read_bytes())
    win.close()


if __name__ == "__main__":
    main(sys.argv[1:])
