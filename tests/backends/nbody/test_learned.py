"""Learned time-stepping: environment, DQN training, save/load, the bundled policy and the CLI integrator."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import UserError, drain

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
    rewards = []
    pol = drain(train(TrainConfig(episodes=3, env=EnvConfig(t_end=0.2))), rewards.append)
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


def test_final_reward_telescopes_to_the_final_error_and_total_cost():
    """reward="final": r_k = -w (log10 e_k - log10 e_k-1) - lam evals_k with e_0 = 1e-16, so an episode's
    rewards sum to -w (log10 e_final + 16) - lam (all force evaluations): the evaluation objective."""
    w, lam = 1.5, 0.004
    env = StepEnv(EnvConfig(t_end=0.3, reward="final", w_energy=w, cost_per_eval=lam))
    env.reset(seed=5)
    total, evals, done = 0.0, 0, False
    for a in (6, 2, 8):
        _, r, done, info = env.step(a)
        total += r
        evals += info["evals"]
        assert not info["blown"]
    assert done and evals == env.evals
    assert total == pytest.approx(-w * (np.log10(env.de) + 16) - lam * evals, rel=1e-12)


def test_extended_features_and_learned_integrator():
    """The extended observation appends the episode fraction and log10 of the evaluations so far; a policy
    trained on it is stored with its layout and drives LearnedHermite."""
    from backends.nbody.core import random_system
    from backends.nbody.learned import LearnedHermite, Policy, make_qnet, obs_dim

    env = StepEnv(EnvConfig(t_end=0.2, features="extended"))
    obs = env.reset(seed=3)
    assert obs.shape == (obs_dim(3, "extended"),) == (21,)
    assert obs[-2] == 0.0 and obs[-1] == pytest.approx(np.log10(1.0) / 2 - 1)
    env.step(9)
    obs = env.step(9)[0]
    assert obs[-2] == pytest.approx(1.0) and obs[-1] == pytest.approx(np.log10(1 + env.evals) / 2 - 1)
    torch.manual_seed(0)
    pol = Policy(make_qnet(21), 21, {"features": "extended", "t_end": 1.0})
    s = random_system(3)
    it = LearnedHermite(s.mass, s.pos, s.vel, policy=pol)
    while it.t < 0.25:
        it.step(0.25 - it.t)
    assert len(it.etas) == 3 and all(e in ACTIONS for e in it.etas)
    with pytest.raises(UserError):
        LearnedHermite(s.mass, s.pos, s.vel, policy=Policy(make_qnet(19), 19, {"features": "extended"}))


def test_compiled_hermite_advance_matches_numpy_steps():
    """The compiled interval loop (numba) is the numpy Hermite step to rounding: same steps, same state."""
    from backends.nbody.core import random_system
    from backends.nbody.integrators import HERMITE_COMPILED, Hermite

    if not HERMITE_COMPILED:
        pytest.skip("numba not installed")
    s = random_system(100)
    a = Hermite(s.mass, s.pos, s.vel, eta=4.64e-3, criterion="aarseth")
    b = Hermite(s.mass, s.pos, s.vel, eta=4.64e-3, criterion="aarseth")
    for k in range(1, 4):
        assert a.advance(0.1 * k, 5000, compiled=False) == b.advance(0.1 * k, 5000, compiled=True) == 0
    assert a.steps == b.steps > 50 and a.force_evals == b.force_evals and a.t == pytest.approx(0.3, abs=1e-15)
    assert np.allclose(a.x, b.x, rtol=0, atol=1e-9) and np.allclose(a.v, b.v, rtol=0, atol=1e-9)
    assert b.advance(10.0, 7) == 2 and b.steps == a.steps + 7  # step cap reached


def test_lambda_conditioned_training_saves_and_moves_along_the_trade_off(tmp_path):
    """With lam_range the network takes lambda as an input; it is stored in the file and can be changed."""
    cfg = TrainConfig(
        episodes=2,
        batch=8,
        all_actions=True,
        gamma=1.0,
        lam_range=(0.002, 0.01),
        env=EnvConfig(t_end=0.2, reward="final", cost_per_eval=0.004, features="extended"),
    )
    pol = drain(train(cfg))
    again = load_policy(pol.save(tmp_path / "c.pt"))
    assert again.lam == pytest.approx(0.004) and again.features == "extended" and again.net_inputs == 22
    obs = StepEnv(cfg.env).reset(seed=1)
    for lam in (0.002, 0.01):
        pol.lam = again.lam = lam
        assert again.act(obs) == pol.act(obs)
    with pytest.raises(UserError):
        pol.lam = -1.0
    with pytest.raises(UserError):
        TrainConfig(lam_range=(0.01, 0.002), env=EnvConfig(reward="final"))
    plain = drain(train(TrainConfig(episodes=1, env=EnvConfig(t_end=0.1))))
    assert plain.lam is None
    with pytest.raises(UserError):
        plain.lam = 0.005


def test_bundled_policy_matches_its_documented_configuration():
    """The bundled file records the training configuration of bundled_train_config and runs at lambda 0.008."""
    from dataclasses import asdict

    from backends.nbody.learned import bundled_train_config

    if not DEFAULT_POLICY.exists():
        pytest.skip("bundled policy not generated")
    pol = load_policy()
    want = asdict(bundled_train_config())
    want["lam_range"] = list(want["lam_range"])
    got = dict(pol.meta["train"])
    got["lam_range"] = list(got["lam_range"])
    assert got == want and pol.lam == pytest.approx(0.008) and pol.features == "extended"
