"""The three-body model without Qt: initial states, stale marking, the IC table, sessions all-or-nothing, the
bounded recording and the trained policy steering the learned integrator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from backends.common import UserError
from backends.nbody.core import angular_momentum, preset
from backends.nbody.ensemble import ESCAPED, EnsembleResult
from backends.nbody.live import SyncRun
from panels.model import param_specs
from panels.threebody.model import CAMERA_FIT, ThreeBodyModel, ThreeBodyParams


def run_chunks(m: ThreeBodyModel, chunks: int = 5) -> None:
    system, cfg, policy = m.begin_run()
    for c in SyncRun(system, cfg, policy).chunks(chunks):
        m.add_chunk(c)
    m.set_time(m.rec.t_last)


def test_initial_state_is_the_presets_in_the_centre_of_mass_frame():
    m = ThreeBodyModel()
    s = preset("figure8")
    assert len(m.rec) == 1 and m.rec.t[0] == 0.0
    np.testing.assert_allclose(m.rec.pos[0], s.pos - s.mass @ s.pos / s.mass.sum(), atol=1e-15)
    assert m.camera.distance == pytest.approx(CAMERA_FIT * np.abs(s.pos).max())
    np.testing.assert_allclose(m.ic_table()[:, 0], s.mass)


def test_preset_change_replaces_the_run_at_once_and_clears_custom_ics():
    m = ThreeBodyModel()
    m.set_params(ics=m.ic_table() * [2, 1, 1, 1, 1, 1, 1])
    run_chunks(m)
    assert len(m.rec) > 10 and m.time > 0
    seen = []
    m.events.connect("reset", lambda: seen.append("reset"))
    m.set_params(preset="pythagorean")
    assert seen == ["reset"]
    assert m.params.ics == ()
    assert len(m.rec) == 1 and m.time == 0.0 and m.stale == ""
    assert list(m.rec.mass) == [3.0, 4.0, 5.0]
    assert list(m.ic_table()[:, 0]) == [3.0, 4.0, 5.0]
    assert m.camera.distance == pytest.approx(CAMERA_FIT * np.abs(preset("pythagorean").pos).max())


def test_run_settings_changed_after_a_run_mark_it_stale_until_restart():
    m = ThreeBodyModel()
    m.set_params(eta=0.02)  # no run yet: nothing to mark
    assert m.stale == ""
    run_chunks(m, 2)
    whys = []
    m.events.connect("stale", lambda why: whys.append(why))
    m.set_params(integrator="rk4")
    assert "Restart run" in m.stale and whys == [m.stale]
    m.set_params(trail=100)  # display only: still stale, not re-marked
    assert len(whys) == 1
    m.begin_run()
    assert m.stale == "" and whys[-1] == ""


def test_table_edit_keeps_full_precision_and_bad_entries_change_nothing():
    m = ThreeBodyModel()
    before = m.ic_table().copy()
    m.set_ic(0, 0, 6.0)
    table = m.ic_table()
    assert table[0, 0] == 6.0
    np.testing.assert_array_equal(table[1:], before[1:])  # 0.97000436..., not a rounded copy
    assert table[0, 1] == before[0, 1]
    assert m.rec.mass[0] == 6.0
    with pytest.raises(UserError, match="mass"):
        m.set_ic(1, 0, -1.0)
    with pytest.raises(UserError, match="NaN"):
        m.set_ic(1, 4, math.nan)
    assert m.ic_table()[1, 0] == before[1, 0] and np.isfinite(m.ic_table()).all()


INVALID = {
    "preset": ["warp", 3],
    "integrator": ["warp-drive", None],
    "eta": ["fast", math.nan, 0.0, 2.0, True],
    "dt": ["x", -1.0, math.inf],
    "tol": ["x", 1e-2],
    "t_end": ["x", 0.0, 1e9],
    "aarseth": ["yes", 1],
    "seed": [-1, 1.5, "x"],
    "controller": ["mine"],
    "speed": [0.0, "x"],
    "trail": [1, 10**9, 2.5],
    "compare_rebound": ["no"],
    "ens_n": [1, 500, "x"],
    "ens_t_end": [0.0, "x"],
    "ens_tile": [0, 201, 2.5, "x"],
    "train_episodes": [0, "x"],
    "ics": ["x", [[1, 2, 3]], [[-1, 0, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0, 0]], [["a"] * 7] * 2],
}


def snapshot(m):
    return json.dumps(m.state(), sort_keys=True), {k: v.copy() for k, v in m.arrays().items()}


def test_every_field_with_an_invalid_value_changes_nothing_and_names_key_and_value():
    assert set(INVALID) == set(param_specs(ThreeBodyParams)) | {"ics"}
    m = ThreeBodyModel()
    m.set_params(preset="pythagorean", eta=0.02)
    run_chunks(m, 2)
    m.set_camera(azimuth=33.0)
    before_json, before_arr = snapshot(m)
    for key, values in INVALID.items():
        for bad in values:
            with pytest.raises(UserError) as err:
                m.restore({"params": {"preset": "figure8", key: bad}}, m.arrays())
            assert f"params.{key}" in str(err.value) or key in str(err.value), (key, bad, str(err.value))
            after_json, after_arr = snapshot(m)
            assert after_json == before_json, (key, bad)
            assert all(np.array_equal(before_arr[k], after_arr[k]) for k in before_arr)
    for bad_state, words in [
        ({"warp": 1}, "unknown key 'warp'"),
        ({"params": {"warp": 1}}, "unknown key 'warp'"),
        ({"camera": {"elevation": 120.0}}, "camera.elevation = 120"),
        ({"camera": {"center": [0, "x", 0]}}, "camera.center"),
        ({"time": math.nan}, "time"),
        ({"time": "late"}, "'late'"),
        ({"run": {"events": [1]}}, "events"),
        ({"rewards": [math.inf]}, "rewards"),
    ]:
        with pytest.raises(UserError, match=words.replace("(", r"\(")):
            m.restore(bad_state, m.arrays())
        assert snapshot(m)[0] == before_json
    eta_fast = {"params": {"integrator": "warp-drive", "eta": "fast"}}
    with pytest.raises(UserError, match="warp-drive|fast"):
        m.restore(eta_fast)
    assert m.params.integrator == "hermite" and m.params.eta == 0.02


def test_bad_arrays_change_nothing():
    m = ThreeBodyModel()
    run_chunks(m, 2)
    st, arr = m.state(), m.arrays()
    before = snapshot(m)[0]
    for name, bad in [("pos", arr["pos"][:, :2]), ("t", arr["t"][::-1].copy()), ("mass", arr["mass"] * 2)]:
        with pytest.raises(UserError, match=name if name != "t" else "time axis"):
            m.restore(st, {**arr, name: bad})
        assert snapshot(m)[0] == before


def _ensemble() -> EnsembleResult:
    x, y = np.linspace(0, 1, 4), np.linspace(0, 1, 3)
    status = np.full((3, 4), ESCAPED)
    status[0, 0] = 1
    t = np.linspace(0.5, 9.0, 12).reshape(3, 4)
    t[status != ESCAPED] = np.nan
    return EnsembleResult(
        x, y, t, np.ones((3, 4), int), status, np.full((3, 4), 1e-10), np.full((3, 4), 100), 10.0, 1.0
    )


def test_session_round_trip_restores_run_time_camera_ensemble_and_policy():
    from backends.nbody.learned import Policy, make_qnet, obs_dim

    m = ThreeBodyModel()
    m.set_params(preset="pythagorean", t_end=3.0, trail=50, ens_n=12)
    run_chunks(m, 10)
    m.set_time(m.rec.t[len(m.rec) // 2])
    m.set_camera(azimuth=40.0, elevation=20.0, distance=9.0)
    m.set_ensemble(_ensemble())
    pol = Policy(make_qnet(obs_dim(3)), obs_dim(3), {"features": "basic", "t_end": 1.0})
    m.set_policy(pol, "trained")
    m.set_rewards([1.0, 2.0], "done")
    state = json.loads(json.dumps(m.state(), allow_nan=False))  # strict JSON
    arrays = m.arrays()

    fresh = ThreeBodyModel()
    events = []
    fresh.events.connect("restored", lambda: events.append("restored"))
    fresh.restore(state, arrays)
    assert events == ["restored"]
    assert fresh.state() == state
    fa = fresh.arrays()
    assert set(fa) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(fa[k], arrays[k], err_msg=k)
    assert fresh.frame == m.frame and fresh.camera == m.camera
    obs = np.random.default_rng(0).random(obs_dim(3)).astype(np.float32)
    assert fresh.policy.act(obs) == pol.act(obs)


def test_recording_is_bounded_and_keeps_its_span(monkeypatch):
    import backends.nbody.live as live

    monkeypatch.setattr(live, "MAX_SAMPLES", 64)
    m = ThreeBodyModel()
    run_chunks(m, 20)
    assert len(m.rec) <= 64
    assert m.rec.t[0] == 0.0 and np.all(np.diff(m.rec.t) > 0)
    assert m.rec.steps == 400  # 20 chunks of 20 steps, all counted
    # the recording's angular momentum stays the initial one (thinning dropped samples, not physics)
    s = preset("figure8")
    l0 = angular_momentum(s.mass, s.pos, s.vel)
    for x, v in zip(m.rec.pos, m.rec.vel):
        assert np.abs(angular_momentum(m.rec.mass, x, v) - l0).max() < 1e-9


def test_run_config_takes_every_shared_field_from_the_params():
    from panels.threebody.model import SHARED_RUN_FIELDS

    assert set(SHARED_RUN_FIELDS) == {"preset", "integrator", "eta", "dt", "tol", "t_end", "aarseth", "seed"}
    m = ThreeBodyModel()
    m.set_params(integrator="rk4", dt=0.002, t_end=7.0, seed=3, preset="random")
    cfg = m.run_config()
    assert (cfg.integrator, cfg.dt, cfg.t_end, cfg.seed, cfg.preset) == ("rk4", 0.002, 7.0, 3, "random")


def test_trained_policy_steers_the_learned_integrator():
    import torch

    from backends.nbody.learned import ACTIONS, Policy, make_qnet, obs_dim
    from backends.nbody.run import make_integrator

    m = ThreeBodyModel()
    m.set_params(integrator="learned", controller="trained", t_end=0.2)
    with pytest.raises(UserError, match="no trained policy"):
        m.begin_run()
    net = make_qnet(obs_dim(3))
    with torch.no_grad():  # a policy that always picks action 2
        net[-1].weight.zero_()
        net[-1].bias.copy_(torch.arange(len(ACTIONS)) == 2)
    m.set_policy(Policy(net, obs_dim(3), {"features": "basic"}), "trained")
    system, cfg, policy = m.begin_run()
    integ = make_integrator(cfg, system, policy)
    integ.step(cfg.t_end)
    assert integ.etas == [ACTIONS[2]]
    m.set_params(controller="bundled")
    assert m.begin_run()[2] is None  # the bundled file
