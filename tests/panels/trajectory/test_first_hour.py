"""A new user's first hour with the trajectory panel, through the main window: play, change three
parameters in the form, focus an agent, export PNG, video and data, reload the sidecar, read the help."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from tests.reproduce import not_blank, open_window, psnr

pytestmark = pytest.mark.gl


def test_first_hour(qtbot, tmp_path):
    from app.video import VideoOptions

    win = open_window(qtbot, "trajectory")
    panel = win.panels["trajectory"]
    m = panel.model
    assert m.stale == "" and m.forecast.model == "eigentrajectory"  # defaults show the bundled model
    # the plots describe that model at launch: its basis and its training curve
    assert "k = 6" in panel.plots.basis_plot.getPlotItem().titleLabel.text
    assert "15/15 epochs" in panel.plots.loss_plot.getPlotItem().titleLabel.text
    # play a few windows, then pause: the slider follows what is drawn
    panel.playbar.run_button.click()
    qtbot.waitUntil(lambda: m.window >= 2, timeout=20_000)
    panel.playbar.run_button.click()
    assert panel.playbar.slider.value() == m.window
    # three parameters through the form, as a user types them
    panel.form.widget("model").setCurrentText("cv20")
    panel.form.widget("anchors").setValue(12)
    panel.form.widget("seed").setValue(4)
    assert (m.params.model, m.params.anchors, m.params.seed) == ("cv20", 12, 4)
    assert m.forecast.samples.shape[0] == 12 and m.stale == "" and panel.stale_label.text() == ""
    m.focus_agent(m.windows.window(m.window).start)
    # exports: the view as PNG, a video of the windows, the data
    png = tmp_path / "scene.png"
    assert win.render_png(png, (480, 360)), win.last_error
    shown = iio.imread(png)
    assert not_blank(shown)
    video = tmp_path / "scene.mp4"
    assert win.export_video(panel.video(), video, VideoOptions((320, 240), fps=10.0, duration=1.0))
    qtbot.waitUntil(lambda: not win.video_job.running, timeout=60_000)
    frames = iio.imread(video, index=None)
    assert frames.shape[:3] == (10, 240, 320) and win.last_error is None
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1  # first and last window differ
    actions = {a.label: a for a in panel.exports()}
    csv = tmp_path / "window.csv"
    assert win.run_export(actions["Predictions of this window CSV"], csv), win.last_error
    assert csv.read_text().splitlines()[0] == "window,frame,ped,sample,step,x_m,y_m"
    side = json.loads((tmp_path / "scene.png.session.json").read_text())
    assert set(side["panels"]) == {"trajectory"} and side["panels"]["trajectory"]["params"]["seed"] == 4
    # wander off, then reload the PNG's sidecar: the same figure and the same form
    m.set_params(model="cv", seed=9)
    m.set_window(0)
    assert win.load_session(tmp_path / "scene.png.session.json"), win.last_error
    assert psnr(shown, panel.render((480, 360))) >= 40
    assert panel.form.values()["seed"] == 4 and panel.form.values()["model"] == "cv20"
    assert m.stale == "" and win.last_error is None
    assert "focus it" in win.controls_text()
    win.close()
