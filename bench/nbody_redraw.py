"""Live redraw rate of the three-body panel: 3 bodies with 2,000-point trails, render() loop timing.

xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/nbody_redraw.py
"""

from __future__ import annotations

import sys
import time

from frame_loop import displayed_fps

from app.gl import gl_info, setup_qt_for_vispy


def main() -> None:
    setup_qt_for_vispy()
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    from panels.threebody.panel import ThreeBodyPanel

    p = ThreeBodyPanel()
    p.resize(1200, 800)
    p.show()
    for _ in range(10):
        app.processEvents()
    p.advance(120)  # > 2,000 samples of the figure eight
    rec = p.model.rec
    assert len(rec) > 2000, len(rec)
    n = 120
    # 1) what the live view does per frame: new frame -> set_data of markers + 6,000-vertex trail -> draw
    c = p.canvas()
    t0 = time.perf_counter()
    for i in range(n):
        p.orbit.draw_frame(len(rec) - 1 - (i % 50))
        c.render(alpha=True)  # synchronous draw of the on-screen-sized scene
    live = n / (time.perf_counter() - t0)

    # 1b) the on-screen path: update visuals, then run the event loop until the canvas has drawn
    def step(i: int) -> None:
        p.orbit.draw_frame(len(rec) - 1 - (i % 50))

    screen = displayed_fps(app, c, step, n)
    # 2) the panel's render((640, 480)) used by exports
    t0 = time.perf_counter()
    for _ in range(30):
        p.render((640, 480))
    export = 30 / (time.perf_counter() - t0)
    info = gl_info()
    print(f"GL: {info.get('renderer', info)}; canvas {tuple(c.size)}")
    print(f"live redraw, on-screen repaint (3 bodies, 2,000-sample trails): {screen:.0f} frames/s")
    print(f"live redraw, off-screen canvas.render() incl. read-back: {live:.0f} frames/s")
    print(f"render((640, 480)) export path: {export:.0f} frames/s")
    p.shutdown()
    p.close()


if __name__ == "__main__":
    main()
