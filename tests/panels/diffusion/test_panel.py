"""Diffusion panel: cheap constructor, advance/render/exports, NaN flagging, state round trip."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from backends.common import UserError


@pytest.fixture
def panel(qtbot):
    from panels.diffusion.panel import DiffusionPanel

    p = DiffusionPanel()
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def test_constructor_is_cheap(qtbot):
    from panels.diffusion.panel import DiffusionPanel

    times = []
    for _ in range(2):
        t = time.perf_counter()
        p = DiffusionPanel()
        times.append(time.perf_counter() - t)
        qtbot.addWidget(p)
        p.shutdown()
    assert min(times) < 1.0, times  # no training, no dataset loading in the constructor


@pytest.mark.gl
def test_exact_model_advance_render_exports(panel, tmp_path):
    panel.set_params(dataclasses.replace(panel.params(), dataset="gmm", model="exact", nfe=15, lines=True))
    panel.advance(2)
    res = panel._result
    assert res.trajectory.shape == (16, 1000, 2) and res.ok
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4) and img.dtype == np.uint8
    # particles are drawn: many non-background pixels, coloured (not grey)
    rgb = img[..., :3].astype(int)
    colourful = (rgb.max(-1) - rgb.min(-1)) > 60
    assert colourful.sum() > 200
    for action in panel.exports():
        if action.suffixes[0] == "pt":
            with pytest.raises(UserError, match="no trained weights"):
                action.write(tmp_path / "x.pt")
            continue
        out = tmp_path / f"x.{action.suffixes[0]}"
        action.write(out)
        assert out.exists() and out.stat().st_size > 0
    z = np.load(tmp_path / "x.npz")
    assert z["traj"].shape == (16, 1000, 2)
    panel.exports()[3].write(tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text().startswith("x0,x1")


@pytest.mark.gl
def test_trained_model_advance_and_weights(panel, tmp_path):
    panel.set_params(dataclasses.replace(panel.params(), dataset="moons", model="edm", nfe=9, count=500))
    panel.advance(2)
    assert len(panel._losses) == 20 and panel._result.samples.shape == (500, 2)
    panel.exports()[-1].write(tmp_path / "w.pt")
    from backends.diffusion.models import load_trained

    assert load_trained(tmp_path / "w.pt").family == "edm"
    st = panel.state()
    panel._set_frame(3)
    panel.restore(st)
    assert panel.params().dataset == "moons" and panel._frame == pytest.approx(st["frame"])


def test_bad_particles_are_flagged_not_drawn(panel):
    from backends.diffusion.samplers import SampleResult

    traj = np.random.default_rng(0).standard_normal((5, 100, 2))
    traj[:, :7] = np.nan
    res = SampleResult(traj[-1], traj, 4, np.isnan(traj[-1]).any(1), "7 of 100 particles became NaN")
    panel._ensure_dataset()
    panel._on_sampled(res)
    assert "WARNING" in panel.info.text()
    # the point visual holds only the 93 finite particles
    assert panel._particles.count == 93


def test_bad_parameters_are_reported(panel):
    panel._on_param("D", -1.0)
    assert "D must be > 0" in panel.info.text() and panel.params().D > 0
    panel.set_params(dataclasses.replace(panel.params(), dataset="swissroll", model="exact"))
    panel.sample()
    assert "Gaussian-mixture" in panel.info.text()


@pytest.mark.gl
def test_training_in_worker_is_cancellable(panel, qtbot):
    panel.set_params(dataclasses.replace(panel.params(), dataset="moons", model="edm", train_steps=100000))
    panel.start()
    qtbot.waitUntil(lambda: len(panel._losses) >= 25, timeout=20000)
    panel.stop()
    task = panel._tasks["diffusion-train"]
    assert task.wait(10000)
    assert panel._model is not None  # the weights trained so far are kept


@pytest.mark.gl
def test_digits_inverse_problem_view(panel, qtbot):
    from panels.diffusion.panel import DIGITS_ASSET

    if not DIGITS_ASSET.exists():
        pytest.skip("bundled digits model missing")
    panel.set_params(
        dataclasses.replace(panel.params(), dataset="digits", model="edm", inverse="inpaint box", nfe=10)
    )
    panel.sample()
    qtbot.waitUntil(lambda: panel._inverse is not None, timeout=30000)
    assert "DDS" in panel.info.text() and panel._inverse["rmse_dds"] < panel._inverse["rmse_dps"]
    img = panel.render((400, 200))
    assert img.shape == (200, 400, 4)
    assert img[..., :3].max() > 150  # bright digit strokes are drawn


@pytest.mark.parametrize(
    ("model", "sampler"), [("lightsb", "bridge"), ("interpolant", "sde"), ("pfgmpp", "heun")]
)
def test_other_model_families_in_panel(panel, model, sampler):
    panel.set_params(
        dataclasses.replace(
            panel.params(),
            dataset="8gaussians",
            model=model,
            sampler=sampler,
            nfe=6,
            count=300,
            D=4.0,
            eps=0.2,
        )
    )
    panel.advance(1)
    res = panel._result
    assert res.samples.shape == (300, 2) and res.trajectory.shape[0] == res.nfe + 1
    assert len(panel._losses) > 0
    # heavy PFGM++ tails (D = 4): the first frame is auto-zoomed out far beyond the data
    panel._set_frame(0)
    if model == "pfgmpp":
        assert panel.view.camera.rect.width > 20
    panel._set_frame(len(res.trajectory) - 1)


def test_user_drawn_point_set(panel):
    panel.set_params(dataclasses.replace(panel.params(), dataset="points", model="edm", nfe=5, count=200))
    with pytest.raises(UserError, match="draw points first"):
        panel.advance(1)
    t = np.linspace(0, 2 * np.pi, 40)
    panel.add_drawn_points(np.stack([np.cos(t), np.sin(t)], 1))
    assert panel._dataset.points.shape == (200, 2)  # 40 strokes + 4 jittered copies each
    panel.advance(1)
    assert panel._result.samples.shape == (200, 2)
