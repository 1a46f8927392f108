from dataclasses import replace

import numpy as np
import pytest

from app import worker
from panels.pde.panel import PDEPanel, colormap_rgba


@pytest.fixture
def panel(qtbot):
    p = PDEPanel()
    qtbot.addWidget(p)
    p.set_params(replace(p.params(), n=64))
    yield p
    p.shutdown()


def test_advance_render_and_field_image(panel):
    panel.advance(3)
    fr = panel._current
    assert fr["step"] == 3 and fr["fields"]["vorticity"].shape == (64, 64)
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4) and img.dtype == np.uint8
    assert (img[..., :3] < 250).any(axis=-1).mean() > 0.3  # the field covers a good part of the picture
    field = panel.render_field((64, 64))
    cmap, clim = panel._cmap_and_clim(fr["fields"]["vorticity"])
    ref = colormap_rgba(fr["fields"]["vorticity"][::-1], cmap, clim)
    assert np.array_equal(field, ref)


@pytest.mark.gl
def test_gl_canvas_shows_colormapped_field(panel, qtbot):
    """The GPU colour mapping of the float texture agrees with a numpy mapping at the field centre."""
    panel.resize(1200, 700)
    panel.show()
    panel.advance(2)
    qtbot.wait(50)
    img = panel._canvas.render()[..., :3].astype(int)
    f = panel._current["fields"]["vorticity"]
    cmap, clim = panel._cmap_and_clim(f)
    # locate the view's centre on the canvas through the scene transform
    tr = panel._view.scene.node_transform(panel._canvas.scene)
    cx, cy = tr.map([16.5 / 64, 48.5 / 64])[:2]  # centre of field cell [row 48, col 16] (away from the probe)
    px = panel._canvas.pixel_scale
    got = img[int(round(cy * px)), int(round(cx * px))]
    expected = colormap_rgba(f[48:49, 16:17], cmap, clim)[0, 0, :3].astype(int)
    assert np.abs(got - expected).max() < 40


def test_paint_probe_and_history(panel):
    panel.advance(1)
    before = panel._current["fields"]["vorticity"][16, 48].copy()
    panel.paint_at(0.75, 0.25)  # x = 0.75 -> column 48, y = 0.25 -> row 16
    after = panel._current["fields"]["vorticity"]
    assert after[16, 48] > before + 1.0
    panel.set_probe(0.75, 0.25)
    panel.advance(2)
    assert len(panel._probe_hist) >= 3
    assert panel._probe_hist[-1][1] == pytest.approx(float(panel._current["fields"]["vorticity"][16, 48]))
    assert len(panel._hist["energy"]) == len(panel._hist["t"])


def test_live_run_through_worker(panel, qtbot):
    panel.start()
    qtbot.waitUntil(lambda: panel._current["step"] >= 5, timeout=15_000)
    panel.paint_at(0.5, 0.5)  # queued, applied by the worker between steps
    qtbot.waitUntil(lambda: not panel._paints, timeout=5_000)
    panel.stop()
    assert panel._task is None and not worker.manager().running()
    n = len(panel._frames)
    assert n >= 3
    panel._on_scrub(0)
    assert panel._current["step"] == 0


def test_exports(panel, tmp_path):
    panel.advance(2)
    panel.advance(2)
    for action in panel.exports():
        for suffix in action.suffixes:
            path = tmp_path / f"{action.label.split()[0]}_{len(suffix)}_{suffix}.{suffix}"
            action.write(path)
            assert path.stat().st_size > 0, action.label
    with np.load(tmp_path / "Fields_3_npz.npz") as d:
        assert d["vorticity"].shape[1:] == (64, 64) and d["t"].shape[0] == d["vorticity"].shape[0]


@pytest.mark.parametrize("model", ["gray-scott", "heat", "wave", "burgers"])
def test_other_models(panel, model):
    panel._on_param("model", model)
    panel.set_params(replace(panel.params(), n=64))
    panel.advance(2)
    assert panel._current["step"] == 2
    assert panel.render((160, 120)).shape == (120, 160, 4)


def test_darcy_mode(panel):
    panel._on_param("model", "darcy")
    panel.set_params(replace(panel.params(), n=32))
    panel.advance(3)
    d = panel._darcy
    assert d["u"].shape == (32, 32) and d["res_rec"][-1] < 1e-10
    assert panel._res_rec.getData()[0] is not None


def test_bad_input_is_reported(panel):
    msgs = []
    panel.status.connect(msgs.append)
    panel.set_params(replace(panel.params(), n=97))
    assert msgs and "FFT" in msgs[-1]


def test_state_restore(panel, qtbot):
    panel.set_probe(0.2, 0.3)
    panel.advance(2)
    s = panel.state()
    other = PDEPanel()
    qtbot.addWidget(other)
    other.restore(s)
    assert other.params() == panel.params() and other._probe == (0.2, 0.3)
    other.shutdown()


def test_replay_scrubs_through_recording(panel, qtbot):
    for _ in range(4):
        panel.advance(1)
    steps = [f["step"] for f in panel._frames]
    seen = []
    panel.playbar.slider.valueChanged.connect(lambda i: seen.append(panel._current["step"]))
    panel.replay(True)
    qtbot.waitUntil(lambda: not panel._replay_timer.isActive(), timeout=5_000)
    assert seen == steps[: len(seen)] and len(seen) == len(steps)


def test_line_probe_profile_history_and_csv(panel, tmp_path):
    from backends.pde.probes import line_profile

    panel.advance(1)
    panel.set_line((0.1, 0.25), (0.9, 0.75))
    assert len(panel._line_hist) == len(panel._frames) >= 1  # filled from the recording
    panel.advance(2)
    t, prof = panel._line_hist[-1]
    f = panel._current["fields"]["vorticity"]
    _, want = line_profile(f, (0.1, 0.25), (0.9, 0.75), num=len(prof))
    assert t == panel._current["t"] and np.allclose(prof, want)
    # the kymograph shows one column per recorded frame, coloured like the field view
    assert panel._kymo.image.shape[:2] == (len(prof), len(panel._line_hist))
    assert panel._line_vis.visible
    path = tmp_path / "line.csv"
    panel._write_line_csv(path)
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    assert data.shape == (len(prof), 4) and np.allclose(data[:, 3], want, atol=1e-6)
    assert panel.state()["line"] == [[0.1, 0.25], [0.9, 0.75]]


def test_live_frames_throttle_diagnostics_but_keep_history_consistent(panel, qtbot):
    panel.start()
    qtbot.waitUntil(lambda: panel._current is not None and panel._current["step"] >= 8, timeout=20_000)
    panel.stop()
    h = panel._hist
    assert 1 <= len(h["t"]) <= panel._current["step"] + 1
    assert all(len(v) == len(h["t"]) for v in h.values())
    assert panel._current["diagnostics"] and panel._current["spectrum"] is not None  # carried forward
