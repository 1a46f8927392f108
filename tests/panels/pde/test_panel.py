"""The PDE panel through its model: initial field at launch, no stale views, live runs that stop at once,
painting and probes, exports checked by content, videos, and sessions that reproduce the exported figure."""

from __future__ import annotations

import json
import time

import imageio.v3 as iio
import numpy as np
import pytest

from panels.pde.panel import PDEPanel
from panels.pde.plots import DecadeAxis
from tests.reproduce import export_and_reload, not_blank, open_window, psnr, snapshot_from_session

#: ColorBrewer RdBu reversed: the stops the field view interpolates linearly (an independent reference)
RDBU_R = ["053061", "2166ac", "4393c3", "92c5de", "d1e5f0", "f7f7f7", "fddbc7", "f4a582", "d6604d", "b2182b"]
RDBU_R += ["67001f"]


def rdbu_reference(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """RGB of ``values`` by linear interpolation between the RdBu_r stops, written out here with np.interp."""
    stops = np.array([[int(h[i : i + 2], 16) for i in (0, 2, 4)] for h in RDBU_R], float)
    x = np.clip((values - lo) / (hi - lo), 0, 1)
    at = np.linspace(0, 1, len(stops))
    return np.stack([np.interp(x, at, stops[:, c]) for c in range(3)], -1)


@pytest.fixture
def panel(qtbot):
    p = PDEPanel()
    qtbot.addWidget(p)
    p.model.set_params(n=64)
    yield p
    p.shutdown()


def test_launch_shows_the_initial_field_with_its_colour_bar(qtbot):
    p = PDEPanel()
    qtbot.addWidget(p)
    m = p.model
    assert m.current is not None and m.current["step"] == 0 and m.stale == ""
    f = m.current["fields"]["vorticity"]
    lo, hi = p.field_view.colorbar.limits()
    assert (lo, hi) == m.cmap_and_clim(f)[1] and lo < 0 < hi and (lo, hi) != (0.0, 1.0)
    assert p.field_view.image.visible and "t = 0" in p.field_view.title.text()
    assert not_blank(p.render((320, 240)))
    p.shutdown()


def test_field_export_matches_an_independent_colour_mapping(panel):
    m = panel.model
    panel.advance(2)
    f = m.current["fields"]["vorticity"]
    cmap, (lo, hi) = m.cmap_and_clim(f)
    assert cmap == "RdBu_r"
    img = iio.imread(_export(panel, "Field PNG without colorbar", "png"))[..., :3].astype(float)
    assert img.shape == (1024, 1024, 3)
    want = rdbu_reference(f[::-1], lo, hi)  # PNG rows run top-down, field rows bottom-up
    got = img[8::16, 8::16]  # one pixel per grid cell (64 cells of 16 px)
    assert np.abs(got - want).max() <= 2.0


@pytest.mark.gl
def test_gl_canvas_shows_the_colour_mapped_field(panel, qtbot):
    """The GPU colour mapping of the float texture agrees with the independent RdBu reference."""
    panel.resize(1200, 700)
    panel.show()
    panel.advance(2)
    qtbot.wait(50)
    view = panel.field_view
    img = view.canvas.render()[..., :3].astype(float)
    f = panel.model.current["fields"]["vorticity"]
    _, (lo, hi) = panel.model.cmap_and_clim(f)
    cx, cy = view.view.scene.node_transform(view.canvas.scene).map([16.5 / 64, 48.5 / 64])[:2]
    px = view.canvas.pixel_scale
    got = img[int(round(cy * px)), int(round(cx * px))]
    assert np.abs(got - rdbu_reference(f[48, 16], lo, hi)).max() < 40


def test_switching_model_shows_its_initial_state_or_a_stale_marker(panel):
    m = panel.model
    m.set_params(model="gray-scott")
    assert m.current["step"] == 0 and set(m.current["fields"]) == {"u", "v"}
    assert panel.field_view.title.text().startswith("gray-scott")
    assert panel.plots.tabs.tabText(0) == "Mean && variance of v"  # "&&" shows one "&"
    panel.advance(5)
    m.set_params(model="darcy")
    assert m.current is None and "press Run" in m.stale
    assert not panel.field_view.image.visible and panel.field_view.stale_label.isVisibleTo(panel.field_view)
    assert not panel.field_view.colorbar.isVisibleTo(panel.field_view)
    panel.advance(3)
    assert m.stale == "" and m.darcy["u"].shape == (64, 64) and m.darcy["res_rec"][-1] < 1e-10
    assert panel.field_view.image.visible and panel.field_view.title.text().startswith("Darcy")


def test_live_run_paint_and_stop_never_blocks(panel, qtbot):
    m = panel.model
    panel.start()
    qtbot.waitUntil(lambda: m.current["step"] >= 5, timeout=15_000)
    panel.paint_at(0.5, 0.5)  # queued to the worker
    t0 = time.perf_counter()
    panel.stop()
    assert time.perf_counter() - t0 < 0.1 and not panel.tasks.busy()
    step = m.current["step"]
    qtbot.wait(100)
    assert m.current["step"] == step  # nothing lands after a stop
    panel.advance(1)  # continues from the last frame shown, with a fresh simulation
    assert m.current["step"] == step + 1
    assert all(len(v) == len(m.hist["t"]) for v in m.hist.values())
    panel.playbar.slider.setValue(0)
    assert m.current["step"] == 0


def test_paint_probe_and_line(panel):
    m = panel.model
    panel.advance(1)
    before = m.current["fields"]["vorticity"][16, 48]
    panel.paint_at(0.75, 0.25)  # x = 0.75 -> column 48, y = 0.25 -> row 16
    assert m.current["fields"]["vorticity"][16, 48] > before + 1.0
    panel.set_probe(0.75, 0.25)
    panel.advance(2)
    assert m.probe_hist[-1][1] == pytest.approx(float(m.current["fields"]["vorticity"][16, 48]))
    assert "(0.75, 0.25)" in panel.plots.probe_plot.getPlotItem().titleLabel.text
    panel.set_line((0.1, 0.25), (0.9, 0.75))
    assert len(m.line_hist) == len(m.frames) and panel.field_view.line_vis.visible
    assert panel.plots.kymo.image.shape[:2] == (200, len(m.line_hist))


def test_exports_by_label_checked_by_content(panel, tmp_path):
    panel.set_line((0.1, 0.25), (0.9, 0.75))
    panel.advance(2)
    panel.advance(2)
    m = panel.model
    with np.load(_export(panel, "Fields NPZ", "npz", tmp_path)) as d:
        assert {"t", "vorticity", "dye", "speed", "hist_energy", "line_values", "spectrum_E"} <= set(d.files)
        assert d["vorticity"].shape == (3, 64, 64) and np.array_equal(
            d["vorticity"][-1], m.current["fields"]["vorticity"]
        )
    line = np.genfromtxt(_export(panel, "Line probe CSV", "csv", tmp_path), delimiter=",", names=True)
    assert line.dtype.names == ("distance", "x", "y", "vorticity") and len(line) == 200
    spec = np.genfromtxt(_export(panel, "Spectrum SVG/CSV/PNG", "csv", tmp_path), delimiter=",", names=True)
    assert spec.dtype.names == ("k", "E") and np.allclose(spec["E"], m.current["spectrum"][1])
    assert not_blank(iio.imread(_export(panel, "Field PNG with colorbar", "png", tmp_path)))
    assert not_blank(iio.imread(_export(panel, "History plot SVG/CSV/PNG", "png", tmp_path)))


def test_video_spans_the_recording_at_the_chosen_size_rate_and_duration(panel, tmp_path):
    from app.video import VideoOptions, run_blocking

    for _ in range(4):
        panel.advance(2)
    spec = panel.video()
    assert spec.label == "Recording" and spec.duration >= 2.0
    out = run_blocking(spec, tmp_path / "v.mp4", VideoOptions((320, 240), fps=10.0, duration=1.0))
    frames = iio.imread(out, index=None)
    assert frames.shape[:3] == (10, 240, 320) and not_blank(frames[0])
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1.0  # t = 0 and t = 0.016 differ
    assert panel.model.current["step"] == 8  # rendering frames left the model as it was


def test_spectrum_axis_labels_decades_only():
    axis = DecadeAxis("bottom")
    axis.setLogMode(True, True)
    values = [np.log10(v) for v in (1, 2, 3, 5, 10, 20, 30, 100)]
    labels = axis.tickStrings(values, 1.0, 1.0)
    assert [bool(s) for s in labels] == [True, False, False, False, True, False, False, True]


@pytest.mark.parametrize("pixels", [12, 22])
def test_colour_bar_labels_are_not_clipped(qtbot, pixels):
    """Tick values and the label under the bar are drawn whole at any font size: the dark text pixels end
    above the bottom edge (a fixed 56 px bar cut the label off)."""
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import QApplication

    from panels.widgets import ColorBar

    old = QApplication.font()
    font = QFont(old)
    font.setPixelSize(pixels)
    QApplication.setFont(font)
    try:
        bar = ColorBar()
    finally:
        QApplication.setFont(old)
    qtbot.addWidget(bar)
    bar.set_limits(-0.652, 0.652)
    bar.set_label("vorticity ω (gypsy descenders)")
    bar.resize(700, bar.minimumHeight())
    img = bar.grab().toImage()
    w, h = img.width(), img.height()
    rows = np.array([[img.pixelColor(x, y).lightness() for x in range(0, w, 2)] for y in range(h)])
    text_rows = np.nonzero((rows < 100).any(axis=1))[0]
    assert text_rows.max() < h - 1


def test_exported_figure_keeps_its_labels_inside(panel):
    panel.advance(1)
    for size in ((320, 240), (900, 700), (1920, 1080)):
        img = panel.render(size)[..., :3]
        assert (img[-2:] == 255).all() and (img[:2] == 255).all()  # nothing drawn up to the edges
        assert (img[-int(size[1] * 0.06) :] < 100).any()  # the colour-bar label sits in the bottom band


def test_invalid_session_changes_nothing_and_says_why(qtbot, tmp_path):
    win = open_window(qtbot, "pde")
    panel = win.panels["pde"]
    panel.model.set_params(n=64)
    before = (panel.model.params, panel.form.values(), panel.model.current["step"])
    for bad, why in (
        ({"n": 97}, "FFT"),
        ({"scheme": "warp-drive"}, "warp-drive"),
        ({"dt": "fast"}, "'fast'"),
    ):
        path = tmp_path / "bad.session.json"
        path.write_text(
            json.dumps({"kind": "visual-lab-session", "schema": 2, "panels": {"pde": {"params": bad}}})
        )
        assert not win.load_session(path)
        assert why in win.last_error
        assert (panel.model.params, panel.form.values(), panel.model.current["step"]) == before
    win.close()


def test_sidecar_reproduces_the_figure_in_a_fresh_window_and_from_the_command_line(qtbot, tmp_path):
    def mutate(p):
        p.model.set_params(n=64, colormap="magma", quiver=True)
        p.advance(4)
        p.paint_at(0.3, 0.7)
        p.set_probe(0.2, 0.8)
        p.set_line((0.1, 0.1), (0.9, 0.6))
        p.advance(3)
        p.model.show_frame(1)  # a past time, not the newest frame

    first, second, png = export_and_reload(qtbot, "pde", tmp_path, mutate)
    assert not_blank(first) and psnr(first, second) >= 40
    out = tmp_path / "cli.png"
    res = snapshot_from_session("pde", png.with_name(png.name + ".session.json"), out)
    assert res.returncode == 0, res.stderr
    assert psnr(first, iio.imread(out)) >= 40


def _export(panel, label: str, suffix: str, folder=None):
    import tempfile
    from pathlib import Path

    action = next(a for a in panel.exports() if a.label == label)
    path = Path(folder or tempfile.mkdtemp()) / f"{label.split()[0].lower()}.{suffix}"
    action.write(path)
    return path


@pytest.mark.parametrize("model", ["heat", "wave", "burgers"])
def test_other_models_step_and_render(panel, model):
    panel.model.set_params(model=model)
    panel.model.set_params(n=64)
    panel.advance(2)
    m = panel.model
    assert m.current["step"] == 2 and m.current["fields"][m.params.view].shape == (64, 64)
    assert panel.plots.tabs.tabText(0).replace("&&", "&") == m.history()[0]
    assert not_blank(panel.render((160, 120)))


def test_a_rejected_form_edit_puts_the_model_value_back(panel):
    msgs = []
    panel.status.connect(msgs.append)
    panel.form.widget("n").setValue(97)  # in range, but not an FFT size
    assert msgs and "FFT" in msgs[-1]
    assert panel.model.params.n == 64 and panel.form.values()["n"] == 64


def test_replay_shows_every_recorded_frame_in_order(panel, qtbot):
    for _ in range(4):
        panel.advance(1)
    m = panel.model
    steps = [f["step"] for f in m.frames]
    seen = []
    m.events.connect("frame", lambda: seen.append(m.current["step"]))
    panel.replay(True)
    qtbot.waitUntil(lambda: not panel.replaying(), timeout=5_000)
    assert seen == steps and panel.playbar.slider.value() == len(steps) - 1


def test_first_hour(qtbot, tmp_path):
    """What a new user does: launch, run with defaults, change three parameters, export PNG, video frames and
    data, reload the sidecar; no stale marker is left and the figure comes back."""
    win = open_window(qtbot, "pde")
    panel, m = win.panels["pde"], win.panels["pde"].model
    assert m.current is not None and m.stale == ""
    panel.playbar.run_button.click()
    qtbot.waitUntil(lambda: m.current["step"] >= 3, timeout=20_000)
    assert win.progress.maximum() == 0  # an open-ended run: indeterminate progress, not "100%"
    panel.playbar.run_button.click()
    assert not panel.tasks.busy()
    panel.form.widget("model").setCurrentText("gray-scott")
    panel.form.widget("n").setValue(64)
    panel.form.widget("colormap").setCurrentText("inferno")
    assert m.params.model == "gray-scott" and m.params.n == 64 and m.stale == ""
    panel.playbar.step_button.click()
    assert m.current["step"] == 1 and panel.field_view.title.text().startswith("gray-scott")
    assert win.render_png(tmp_path / "gs.png", (400, 300)), win.last_error
    spec = panel.video()
    assert spec.frame(1.0, (640, 360)).shape == (360, 640, 4)
    with np.load(_export(panel, "Fields NPZ", "npz", tmp_path)) as d:
        assert d["v"].shape == (2, 64, 64)
    first = iio.imread(tmp_path / "gs.png")
    win.close()
    fresh = open_window(qtbot, "pde")
    assert fresh.load_session(tmp_path / "gs.png.session.json"), fresh.last_error
    p2 = fresh.panels["pde"]
    assert p2.form.values()["colormap"] == "inferno" and p2.model.params == m.params
    assert psnr(first, p2.render((400, 300))) >= 40 and p2.model.stale == ""
    p2.advance(1)  # the next run uses what the form shows: it continues the restored field
    assert p2.model.current["step"] == 2 and p2.model.current["fields"]["v"].shape == (64, 64)
    fresh.close()


def test_changing_a_simulation_parameter_while_running_restarts_from_the_new_initial_state(panel, qtbot):
    m = panel.model
    panel.start()
    qtbot.waitUntil(lambda: m.current["step"] >= 3, timeout=15_000)
    m.set_params(nu=2e-3)
    assert m.frames[0]["step"] == 0 and panel.tasks.busy("run")  # recording restarted, still running
    qtbot.waitUntil(lambda: m.current["step"] >= 2, timeout=15_000)
    panel.stop()
    assert m.hist["t"][0] == 0.0


def test_history_export_holds_every_point_right_after_stepping(panel, tmp_path):
    m = panel.model
    m.set_params(model="gray-scott", n=64)
    for _ in range(3):
        panel.advance(5)
    rows = np.genfromtxt(
        _export(panel, "History plot SVG/CSV/PNG", "csv", tmp_path), delimiter=",", skip_header=1
    )
    assert rows.shape[0] == len(m.hist["t"]) == 4
    np.testing.assert_allclose(rows[:, 0], m.hist["t"])
    np.testing.assert_allclose(rows[:, 1], m.hist["mean_v"], rtol=1e-6)


def test_arrows_switched_on_after_a_live_run_show_at_once(panel, qtbot):
    m = panel.model
    panel.start()
    qtbot.waitUntil(lambda: m.current["step"] >= 2, timeout=15_000)
    panel.stop()
    m.set_params(quiver=True)
    assert m.current["velocity"] is not None and panel.field_view.quiver.visible
