"""What a new user does in the first hour with the three-body panel, checked by outcome."""

from __future__ import annotations

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest

from app.export import write_video
from tests.reproduce import not_blank, open_window, psnr


@pytest.mark.gl
def test_first_hour(qtbot, tmp_path):
    win = open_window(qtbot, "threebody")
    p = win.panels["threebody"]
    m = p.model
    # run with the defaults, then pause
    p.play.run_button.click()
    qtbot.waitUntil(lambda: m.rec.t_last > 0.3, timeout=30_000)
    p.play.run_button.click()
    assert not p.play.run_button.isChecked() and m.stale == ""
    # change three parameters in the form: the view follows at once
    p.form.widget("preset").setCurrentText("pythagorean")
    p.form.widget("trail").setValue(500)
    p.form.widget("t_end").setValue(3.0)
    assert len(m.rec) == 1 and list(m.rec.mass) == [3.0, 4.0, 5.0]
    p.advance(40)
    assert not p.orbit.stale_label.isVisible()
    # PNG through the window (writes the sidecar)
    png = tmp_path / "orbit.png"
    assert win.render_png(png, (640, 360)), win.last_error
    first = iio.imread(png)
    assert first.shape[:2] == (360, 640) and not_blank(first)
    # a video of the run at 1280x720, 30 frames/s, 0.2 s
    spec = p.video()
    n, size = 6, (1280, 720)
    mp4 = write_video(tmp_path / "orbit.mp4", (spec.frame(i / (n - 1), size) for i in range(n)), fps=30)
    with iio2.get_reader(mp4) as reader:
        frames = [f for f in reader]
        assert reader.get_meta_data()["fps"] == 30
    assert len(frames) == n and frames[0].shape == (720, 1280, 3)
    assert psnr(frames[0], frames[-1]) < 40  # the bodies moved
    # data by label, through the window's export (with its sidecar)
    action = next(a for a in p.exports() if a.label == "Trajectory NPZ")
    assert win.run_export(action, tmp_path / "run.npz"), win.last_error
    with np.load(tmp_path / "run.npz") as d:
        assert d["pos"].shape == (len(m.rec), 3, 3) and float(d["t"][-1]) == pytest.approx(m.rec.t_last)
    # wander off, then reload the PNG's sidecar: the same picture, nothing marked stale
    p.form.widget("preset").setCurrentText("lagrange")
    assert win.load_session(png.with_name(png.name + ".session.json")), win.last_error
    assert p.form.widget("preset").currentText() == "pythagorean"
    assert psnr(first, p.render((640, 360))) >= 40
    assert not p.orbit.stale_label.isVisible()
    win.close()
