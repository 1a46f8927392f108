"""Video export: the chosen size, rate and duration; off the GUI thread's long blocks; atomic; cancel."""

from __future__ import annotations

import time

import imageio.v3 as iio
import numpy as np
import pytest

from app.video import VideoOptions, run_blocking
from backends.common import UserError

pytestmark = pytest.mark.gl


@pytest.fixture
def window(qtbot, demo_registry, config_dir):
    from app.window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    win.load_all_now()
    win.panels["demo"].advance(3)
    yield win
    win.close()


def _frames(path):
    return iio.imread(path, index=None)


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_size_rate_and_duration_are_honoured(window, tmp_path, suffix):
    spec = window.panels["demo"].video()
    out = run_blocking(spec, tmp_path / f"v.{suffix}", VideoOptions((160, 90), fps=10.0, duration=1.5))
    frames = _frames(out)
    assert frames.shape[:3] == (15, 90, 160)
    # the animation moves: the first and the middle frame differ, the field is back at the end
    assert np.abs(frames[0].astype(int) - frames[7].astype(int)).mean() > 0.2
    assert not list(tmp_path.glob(".*part*"))


def test_window_export_writes_file_and_sidecar_and_keeps_gui_responsive(qtbot, window, tmp_path):
    from PySide6.QtCore import QTimer

    spec = window.panels["demo"].video()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    out = tmp_path / "w.mp4"
    assert window.export_video(spec, out, VideoOptions((320, 240), fps=30.0, duration=1.0))
    qtbot.waitUntil(lambda: not window.video_job.running, timeout=60_000)
    timer.stop()
    assert window.last_error is None
    assert _frames(out).shape[:3] == (30, 240, 320)
    assert (tmp_path / "w.mp4.session.json").is_file()
    # frames are rendered one per event-loop turn: the GUI never waits for the whole video (loose bound: CI)
    assert np.diff(ticks).max() < 1.0


def test_cancel_keeps_the_previous_file(qtbot, window, tmp_path):
    out = tmp_path / "keep.gif"
    out.write_bytes(b"previous")
    spec = window.panels["demo"].video()
    assert window.export_video(spec, out, VideoOptions((64, 48), fps=30.0, duration=20.0))
    qtbot.wait(200)
    window.cancel_tasks()
    qtbot.waitUntil(lambda: not window.video_job.running, timeout=10_000)
    qtbot.wait(300)
    assert out.read_bytes() == b"previous"


@pytest.mark.parametrize(
    "options, suffix, words",
    [
        (VideoOptions((101, 50)), "mp4", "even width and height"),
        (VideoOptions((5000, 50)), "gif", "out of range"),
        (VideoOptions((64, 48), fps=0.5), "gif", "frame rate"),
        (VideoOptions((64, 48), duration=1e6), "gif", "duration"),
    ],
)
def test_bad_options_are_one_clear_line(window, tmp_path, options, suffix, words):
    with pytest.raises(UserError, match=words):
        run_blocking(window.panels["demo"].video(), tmp_path / f"x.{suffix}", options)
