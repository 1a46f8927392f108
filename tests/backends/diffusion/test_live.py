"""Live jobs: weights handed over as arrays rebuild the very model that was trained, training resumes from
them, and the flow is interpolated between recorded states."""

from __future__ import annotations

import numpy as np

from backends.common import drain
from backends.diffusion.data import make_dataset
from backends.diffusion.lightsb import LightSBConfig, fit_lightsb
from backends.diffusion.live import generative, lightsb_job, state_at, train_job
from backends.diffusion.models import TrainConfig
from backends.diffusion.pipeline import Generative, SampleConfig, generate

TINY = TrainConfig(family="interpolant", steps=10, batch=64, hidden=16, depth=2, report_every=5)


def test_lightsb_weights_rebuild_the_fitted_bridge():
    ds = make_dataset("8gaussians")
    cfg = LightSBConfig(eps=0.2, steps=30, batch=128, seed=1)
    w = drain(lightsb_job(ds, cfg))
    model, losses = drain(fit_lightsb(lambda n, r: r.standard_normal((n, 2)), ds.sample, 2, cfg))  # direct
    np.testing.assert_array_equal(w.losses, losses)
    direct = Generative("lightsb", 2, lsb=model, source=lambda n, r: r.standard_normal((n, 2)))
    sc = SampleConfig("bridge", 4, 200, seed=3)
    np.testing.assert_array_equal(generate(generative(w), sc).samples, generate(direct, sc).samples)


def test_training_resumes_from_handed_over_weights():
    ds = make_dataset("moons")
    w1 = drain(train_job(ds, TINY, 10))
    w2 = drain(train_job(ds, TINY, 5, start=w1))
    assert len(w2.losses) == 15
    np.testing.assert_array_equal(w2.losses[:10], w1.losses)
    assert any(not np.array_equal(w1.state[k], w2.state[k]) for k in w1.state)
    fresh = drain(train_job(ds, TINY, 5))  # same seed, no start: a different run
    assert not np.array_equal(fresh.losses, w2.losses[10:])


def test_state_at_interpolates_between_recorded_states():
    traj = np.arange(3 * 4 * 2, dtype=float).reshape(3, 4, 2)
    np.testing.assert_array_equal(state_at(traj, 1.0), traj[1])
    np.testing.assert_allclose(state_at(traj, 1.25), 0.75 * traj[1] + 0.25 * traj[2])
    np.testing.assert_array_equal(state_at(traj, 7.0), traj[2])
