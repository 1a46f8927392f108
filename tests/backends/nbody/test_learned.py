"""Learned time-stepping: environment, DQN training, save/load, the bundled policy and the CLI integrator."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import UserError

torch = pytest.importorskip("torch")

from backends.nbody.learned import (  # noqa: E402
    ACTIONS,
    DEFAULT_POLICY,
    EnvConfig,
    StepEnv,
    TrainConfig,
    evaluate,
    load_policy,
    train,
)


def test_actions_are_ten_log_spaced_values():
    assert len(ACTIONS) == 10 and ACTIONS[0] == pytest.approx(1e-4) and ACTIONS[-1] == pytest.approx(1e-1)
    assert np.allclose(np.diff(np.log10(ACTIONS)), 1 / 3)


def test_env_reward_trades_accuracy_for_cost():
    env = StepEnv(EnvConfig(interval=0.1, t_end=0.3))
    out = {}
    for a in (0, 9):
        env.reset(seed=7)
        done, evals, rew = False, 0, 0.0
        while not done:
            obs, r, done, info = env.step(a)
            evals += info["evals"]
            rew += r
        out[a] = (env.de, evals)
        assert obs.shape == (env.obs_dim,) and np.all(np.isfinite(obs))
    assert out[0][0] < out[9][0]  # small eta: smaller energy error
    assert out[0][1] > 5 * out[9][1]  # ... at a much higher cost


def test_training_runs_and_saves(tmp_path):
    gen = train(TrainConfig(episodes=3, env=EnvConfig(t_end=0.2)))
    rewards = []
    while True:
        try:
            rewards.append(next(gen))
        except StopIteration as stop:
            pol = stop.value
            break
    assert [e for e, _, _ in rewards] == [1, 2, 3] and all(np.isfinite(r) for _, r, _ in rewards)
    assert rewards[-1][2] == tuple(r for _, r, _ in rewards)
    p = pol.save(tmp_path / "p.pt")
    again = load_policy(p)
    obs = np.zeros(pol.obs_dim, np.float32)
    assert again.act(obs) == pol.act(obs)
    with pytest.raises(UserError):
        load_policy(tmp_path / "missing.pt")


def test_bundled_policy_runs_through_the_cli(capsys):
    if not DEFAULT_POLICY.exists():
        pytest.skip("bundled policy not generated")
    from backends.nbody.cli import main

    assert main(["--preset", "figure8", "--integrator", "learned", "--t-end", "1"]) == 0
    assert "learned:" in capsys.readouterr().out
    pol = load_policy()
    lg, ev, blown, _ = evaluate(pol, [10**9 + 1], EnvConfig(t_end=0.3))
    assert np.isfinite(lg) and ev > 0 and blown == 0


def test_interval_reward_charges_only_the_energy_change_of_the_interval():
    with pytest.raises(UserError):
        EnvConfig(reward="bogus")
    cum, inter = StepEnv(EnvConfig(t_end=0.3)), StepEnv(EnvConfig(t_end=0.3, reward="interval"))
    cum.reset(seed=11)
    inter.reset(seed=11)
    from backends.nbody.core import energy

    e_prev = inter.e0
    for k in range(3):
        _, rc, _, ic = cum.step(5)
        _, ri, _, ii = inter.step(5)
        assert ic == ii  # same dynamics, only the reward differs
        e_now = energy(inter.mass, inter.integ.x, inter.integ.v)
        step_de = max(abs(e_now - e_prev) / abs(inter.e0), 1e-16)
        cost = np.log10(ii["evals"]) / 4
        assert ri == pytest.approx(-((np.log10(step_de) + 16) / 16 + cost), rel=1e-12)
        if k == 0:
            assert ri == pytest.approx(rc, rel=1e-12)  # first interval: change = accumulated error
        e_prev = e_now


def test_evaluate_runs_gives_both_averages():
    from backends.nbody.learned import evaluate_runs

    seeds = [10**9 + 2, 10**9 + 3]
    d = evaluate_runs(None, seeds, EnvConfig(t_end=0.2), fixed=6)
    lg, ev, blown, eta = evaluate(None, seeds, EnvConfig(t_end=0.2), fixed=6)
    assert d["de"].shape == (2,) and lg == pytest.approx(np.mean(np.log10(d["de"])))
    assert np.mean(d["de"]) >= 10**lg  # arithmetic mean >= geometric mean
    assert ev == pytest.approx(np.mean(d["evals"])) and eta == pytest.approx(ACTIONS[6])
