"""Three-body panel: advance, draw, scrub, exports, sessions."""

from __future__ import annotations

import numpy as np
import pytest

from panels.threebody.panel import ThreeBodyPanel, ThreeBodyParams


@pytest.fixture
def panel(qtbot):
    p = ThreeBodyPanel()
    qtbot.addWidget(p)
    p.resize(1000, 700)
    p.show()
    qtbot.waitExposed(p)
    yield p
    p.shutdown()


def test_table_shows_preset_and_edits_apply(panel):
    assert panel.table.rowCount() == 3
    assert float(panel.table.item(0, 1).text()) == pytest.approx(0.97000436)
    panel.form.widget("preset").setCurrentText("pythagorean")
    assert panel.params().preset == "pythagorean"
    assert [float(panel.table.item(i, 0).text()) for i in range(3)] == [3.0, 4.0, 5.0]
    panel.table.item(0, 0).setText("6")
    assert panel.params().ics[0][0] == 6.0
    assert panel.system().mass[0] == 6.0


def test_bad_table_entry_is_rejected_with_message(panel, qtbot):
    msgs = []
    panel.status.connect(msgs.append)
    panel.table.item(0, 0).setText("-1")
    assert msgs and "mass" in msgs[-1]
    assert panel.params().ics == ()


@pytest.mark.gl
def test_advance_draws_bodies_and_energy(panel):
    panel.advance(5)
    assert len(panel.h_t) > 50
    de = np.abs(panel.h_e / panel.h_e[0] - 1)
    assert de.max() < 1e-6  # Hermite eta=0.01 on the figure eight
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4)
    # the three body colours appear in the image
    rgb = img[..., :3].astype(int)
    bright = (rgb.max(-1) > 150).sum()
    assert bright > 50
    # scrub back to the start: bodies at the initial positions
    panel._on_scrub(0)
    assert np.allclose(panel.h_pos[panel.frame], panel.system().pos)


@pytest.mark.gl
def test_exports_and_session_roundtrip(panel, tmp_path):
    panel.advance(3)
    for i, action in enumerate(panel.exports()):
        out = tmp_path / f"e{i}.{action.suffixes[0]}"
        action.write(out)
        assert out.stat().st_size > 0, action.label
    d = np.load(tmp_path / "e3.npz")
    assert d["pos"].shape[1:] == (3, 3) and len(d["t"]) == len(d["energy"])
    st = panel.state()
    panel.set_params(ThreeBodyParams(preset="lagrange"))
    panel.restore(st)
    assert panel.params().preset == "figure8"
    assert st["camera"]["elevation"] == panel.view.camera.elevation


def test_training_tab_draws_reward_curve(panel, qtbot):
    panel.set_params(ThreeBodyParams(train_episodes=2))
    panel.start_training()
    qtbot.waitUntil(lambda: len(panel.rewards) == 2, timeout=60_000)
    x, y = panel.reward_curve.getData()
    assert len(x) == 2 and np.all(np.isfinite(y))
