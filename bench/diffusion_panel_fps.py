"""Panel frame rate with 20,000 animated particles (exact GMM model, Heun NFE 35 trajectory).

  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/diffusion_panel_fps.py

Measures frames/s with the widget on screen: the panel's own playback (Play: clock-timed, one tick per drawn
frame; the read-out label and slider at 10 Hz), frames driven by this script (``model.set_frame`` + draw; the Qt
read-out label is repainted every frame), and a redraw without any change, side by side. The particles are a
``panels.points.PointImage`` (dots stamped on the CPU by ``backends.dots``, one texture draw).
"""

from __future__ import annotations

import time

from frame_loop import displayed_fps

from app.gl import gl_info, setup_qt_for_vispy


def main(n: int = 20000, frames: int = 120) -> None:
    setup_qt_for_vispy()
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from backends.diffusion.live import model_for
    from backends.diffusion.pipeline import generate
    from panels.diffusion.panel import DiffusionPanel

    p = DiffusionPanel()
    p.resize(1600, 1000)
    p.show()
    m = p.model
    m.set_params(dataset="gmm", model="exact", count=n, nfe=35)
    cfg = m.sample_config(n)
    m.show_result(
        generate(model_for(None, m.dataset(), "exact", m.interpolant()), cfg, return_trajectory=True), "heun"
    )
    for _ in range(10):
        app.processEvents()
    canvas = p.canvas()
    last = m.last_frame
    fps_anim = displayed_fps(app, canvas, lambda k: m.set_frame(last * k / (frames - 1)), frames)
    fps_bare = displayed_fps(app, canvas, lambda k: None, frames)
    # the panel's own playback (Play button: clock-timed, slider and label throttled), three full flows
    draws: list[float] = []

    def on_draw(_ev) -> None:
        draws.append(time.perf_counter())

    canvas.events.draw.connect(on_draw)
    play_rates = []
    for _ in range(3):
        draws.clear()
        m.set_frame(0.0)
        p.transport.play(True)
        while p.transport.playing():
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        if len(draws) > 1:
            play_rates.append((len(draws) - 1) / (draws[-1] - draws[0]))
    canvas.events.draw.disconnect(on_draw)
    size = tuple(canvas.size)
    t = time.perf_counter()
    for k in range(frames // 2):
        m.set_frame(last * k / (frames // 2 - 1))
        canvas.render(size=size)
    fps_off = (frames // 2) / (time.perf_counter() - t)
    t = time.perf_counter()
    for k in range(frames):
        m.set_frame(last * k / (frames - 1))
    fps_cpu = frames / (time.perf_counter() - t)
    print(f"GL: {gl_info().get('renderer', '?')}, canvas {size[0]}x{size[1]}")
    print(
        f"{n} particles on screen, bench-driven (label every frame): {fps_anim:.1f} frames/s, "
        f"redraw only {fps_bare:.1f} frames/s, "
        f"ratio {fps_anim / fps_bare:.2f}"
    )
    print(
        f"{n} particles, the panel's playback (Play): "
        + ", ".join(f"{r:.1f}" for r in play_rates)
        + " frames/s"
    )
    print(
        f"{n} particles off-screen render at canvas size: {fps_off:.1f} frames/s; "
        f"CPU side only (interpolate + set_data + zoom): {fps_cpu:.1f} frames/s"
    )
    p.shutdown()


if __name__ == "__main__":
    main()
