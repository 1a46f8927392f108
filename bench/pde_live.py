"""Live PDE panel at 256^2 while simulating: displayed frames/s (canvas draws) and simulation steps/s.

xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/pde_live.py [--n 256] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import time

from app.gl import gl_info, setup_qt_for_vispy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--model", default="navier-stokes")
    ap.add_argument("--quiver", action="store_true")
    ap.add_argument("--window", default="1500x850", help="panel size WIDTHxHEIGHT")
    args = ap.parse_args()
    setup_qt_for_vispy()
    from PySide6.QtWidgets import QApplication

    app = QApplication([])
    from panels.pde.panel import PDEPanel

    p = PDEPanel()
    p.model.set_params(model=args.model)
    p.model.set_params(n=args.n, quiver=args.quiver)
    ww, wh = (int(v) for v in args.window.split("x"))
    p.resize(ww, wh)
    p.show()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.01)
    p.start()
    t0 = time.perf_counter()
    shown = []
    p.model.events.connect("frame", lambda: shown.append(1))
    d0 = p.field_view.draws
    step0 = p.model.current["step"]
    while time.perf_counter() - t0 < args.seconds:
        app.processEvents()
        time.sleep(0.001)
    dt = time.perf_counter() - t0
    draws, shown = p.field_view.draws - d0, len(shown)
    steps = p.model.current["step"] - step0
    cw_ch = p.field_view.canvas.size
    p.shutdown()
    info = gl_info()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, GL {info.get('renderer', info)}")
    print(
        f"{args.model} {args.n}^2 live for {dt:.1f} s, canvas {cw_ch[0]}x{cw_ch[1]}: "
        f"{draws / dt:.1f} displayed frames/s (canvas draws), "
        f"{shown / dt:.1f} new fields/s, {steps / dt:.1f} simulation steps/s"
    )


if __name__ == "__main__":
    main()
