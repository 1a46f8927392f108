"""The shared plot throttle: a stream of updates costs one redraw per interval, the last update is always
drawn, a synchronous caller draws at once, and an export taken mid-stream holds the newest data."""

from __future__ import annotations

import time

import numpy as np
import pytest

from panels.widgets import PlotThrottle, make_plot


class Stream:
    """A growing series and a plot curve drawn from it (what a panel's model and plot do)."""

    def __init__(self, qtbot, interval_ms: float = 100.0, live: bool = True) -> None:
        self.plot = make_plot("stream", "t", "y")
        qtbot.addWidget(self.plot)
        self.curve = self.plot.plot([], [], name="y")
        self.values: list[float] = []
        self.is_live = live
        self.throttle = PlotThrottle(
            self.draw, interval_ms, live=lambda: self.is_live, plots=(self.plot,), parent=self.plot
        )

    def draw(self) -> None:
        self.curve.setData(np.arange(len(self.values), dtype=float), np.asarray(self.values, float))

    def append(self, v: float) -> None:
        self.values.append(v)
        self.throttle.request()

    def drawn(self) -> int:
        x, _ = self.curve.getData()
        return 0 if x is None else len(x)


def test_a_burst_draws_once_per_interval_and_ends_on_the_newest_data(qtbot):
    s = Stream(qtbot)
    s.append(0.0)
    assert s.throttle.draws == 1 and s.drawn() == 1  # leading edge: the first update shows at once
    t0 = time.monotonic()
    for _ in range(80):  # a stream of updates, the event loop running between them (~5 ms apart)
        s.append(float(len(s.values)))
        qtbot.wait(5)
    elapsed, n = time.monotonic() - t0, len(s.values)
    # at most one draw per 100 ms (plus the leading one), never one per update (~8 on an idle machine)
    assert s.throttle.draws <= elapsed / 0.1 + 2, (s.throttle.draws, elapsed)
    assert s.throttle.draws < n
    qtbot.waitUntil(lambda: s.drawn() == n, timeout=1000)  # trailing edge: the last update is drawn
    assert not s.throttle.pending


def test_an_idle_plot_draws_every_update_at_once(qtbot):
    s = Stream(qtbot, live=False)  # no run streams in: a synchronous step or a script
    for i in range(20):
        s.append(float(i))
        assert s.drawn() == i + 1
    assert s.throttle.draws == 20


def test_an_export_mid_stream_holds_every_point(qtbot, tmp_path):
    from app.export import export_plot

    s = Stream(qtbot, interval_ms=10_000)  # the trailing draw would come only after 10 s
    for i in range(30):
        s.append(float(i) ** 2)
    assert s.throttle.pending and s.drawn() == 1
    rows = export_plot(s.plot, tmp_path / "p.csv").read_text().splitlines()[1:]
    assert len(rows) == 30
    assert [float(v) for v in rows[-1].split(",")[:2]] == [29.0, 841.0]
    assert not s.throttle.pending


def test_interval_is_checked():
    with pytest.raises(ValueError, match="interval_ms"):
        PlotThrottle(lambda: None, -1.0)


def test_three_body_plots_follow_a_streaming_run_without_a_draw_per_chunk(qtbot):
    """The real panel: a run streams chunks in far faster than 10 per second; the energy plot redraws a few
    times, then shows every recorded sample."""
    from panels.threebody.panel import ThreeBodyPanel

    panel = ThreeBodyPanel()
    qtbot.addWidget(panel)
    from backends.nbody.live import SyncRun

    system, cfg, policy = panel.model.begin_run()
    run = SyncRun(system, cfg, policy)
    panel.plots.throttle.now()
    before = panel.plots.throttle.draws
    t0 = time.monotonic()
    chunks = 0
    for chunk in run.chunks(30):
        panel.model.add_chunk(chunk)
        chunks += 1
        qtbot.wait(1)
    elapsed = time.monotonic() - t0
    draws = panel.plots.throttle.draws - before
    assert chunks == 30
    assert draws <= elapsed / 0.1 + 2, (draws, elapsed)
    n = len(panel.model.rec) - 1  # the plots skip t = 0
    qtbot.waitUntil(lambda: len(panel.plots.e_curve.getData()[0]) == n, timeout=1000)
