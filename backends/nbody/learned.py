"""Learned time-stepping (after Saz Ulibarrena & Portegies Zwart 2025): a DQN picks the Hermite step parameter.

Environment: a random equal-mass three-body system integrated with our 4th-order Hermite and Aarseth's step
criterion (dt = sqrt(eta x ...), as AMUSE's Hermite uses its dt_param). Every ``interval`` time units the agent
picks eta from 10 log-spaced values in [1e-4, 1e-1]. Observation: positions and
velocities in the centre-of-mass frame (N x 6 numbers) and log10 |dE/E| (scaled). Reward per interval:

    r = -( w_energy * (log10 |dE/E| + 16) / 16  +  w_cost * log10(force evaluations in the interval) / 4 )

so the agent trades accuracy against cost. An episode ends at ``t_end`` or on a blow-up (|dE/E| > 0.1).
With ``reward="interval"`` the energy term uses the energy change over the interval, |E(t_k+1) - E(t_k)| / |E0|,
instead of the error accumulated since t = 0: each decision is then charged only for the error it made
(with the cumulative error an early mistake is charged again at every later decision).
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Generator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from backends.common import UserError
from backends.nbody.core import energy, random_system, to_com_frame
from backends.nbody.integrators import Hermite

ACTIONS = np.logspace(-4, -1, 10)
MAX_STEPS_PER_INTERVAL = 5000
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "assets" / "nbody" / "dqn_policy.pt"


@dataclass(frozen=True)
class EnvConfig:
    interval: float = 0.1
    t_end: float = 1.0
    w_energy: float = 1.0
    w_cost: float = 1.0
    n_bodies: int = 3
    reward: str = "cumulative"  # or "interval": see the module docstring

    def __post_init__(self) -> None:
        if self.reward not in ("cumulative", "interval"):
            raise UserError(f"reward must be cumulative or interval, got {self.reward!r}")


class StepEnv:
    """Gym-like environment: reset(seed) -> obs; step(action) -> (obs, reward, done, info)."""

    def __init__(self, cfg: EnvConfig = EnvConfig()):
        self.cfg = cfg
        self.obs_dim = cfg.n_bodies * 6 + 1

    def reset(self, seed: int) -> np.ndarray:
        s = random_system(seed, self.cfg.n_bodies)
        self.mass = s.mass
        self.integ = Hermite(s.mass, s.pos, s.vel, eta=ACTIONS[-1], criterion="aarseth")
        self.e0 = energy(s.mass, s.pos, s.vel)
        self.e_last = self.e0
        self.de = 1e-16
        self.t = 0.0
        return self.observe()

    def observe(self) -> np.ndarray:
        return make_obs(self.mass, self.integ.x, self.integ.v, self.de)

    def step(self, action: int):
        self.integ.eta = float(ACTIONS[action])
        fe0 = self.integ.force_evals
        t_next = min(self.t + self.cfg.interval, self.cfg.t_end)
        blown = False
        with np.errstate(all="ignore"):
            n0 = self.integ.steps
            while self.integ.t < t_next * (1 - 1e-14):
                self.integ.step(t_next - self.integ.t)
                if self.integ.steps % 64 == 0 and not np.all(np.isfinite(self.integ.x)):
                    blown = True
                    break
                if self.integ.steps - n0 > MAX_STEPS_PER_INTERVAL:  # a near-collision: end the episode
                    blown = True
                    break
        self.t = t_next
        e = energy(self.mass, self.integ.x, self.integ.v)
        de = abs(e - self.e0) / abs(self.e0)
        if not math.isfinite(de) or de > 0.1:
            blown = True
        self.de = max(de, 1e-16) if math.isfinite(de) else 1.0
        evals = self.integ.force_evals - fe0
        charged = self.de
        if self.cfg.reward == "interval":
            step_de = abs(e - self.e_last) / abs(self.e0)
            charged = max(step_de, 1e-16) if math.isfinite(step_de) else 1.0
        self.e_last = e
        reward = -(
            self.cfg.w_energy * (math.log10(charged) + 16) / 16
            + self.cfg.w_cost * math.log10(max(evals, 1)) / 4
        )
        if blown:
            reward -= 2.0
        done = blown or self.t >= self.cfg.t_end * (1 - 1e-14)
        return self.observe(), reward, done, {"de": self.de, "evals": evals, "blown": blown}


def make_obs(mass, x, v, de) -> np.ndarray:
    p, u = to_com_frame(mass, x, v)
    return np.concatenate([p.ravel(), u.ravel(), [(math.log10(max(de, 1e-16)) + 8) / 8]]).astype(np.float32)


# -- DQN ------------------------------------------------------------------------------------------------------
def make_qnet(obs_dim: int, n_actions: int = len(ACTIONS), hidden: int = 64):
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(obs_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_actions),
    )


@dataclass(frozen=True)
class TrainConfig:
    episodes: int = 200
    seed: int = 0
    gamma: float = 0.9
    lr: float = 1e-3
    batch: int = 64
    buffer: int = 5000
    eps_start: float = 1.0
    eps_end: float = 0.05
    target_every: int = 50
    env: EnvConfig = EnvConfig()

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise UserError(f"episodes must be >= 1, got {self.episodes}")
        if not 0 <= self.gamma < 1:
            raise UserError(f"gamma must be in [0, 1), got {self.gamma}")


class Policy:
    """A trained Q-network: ``act(obs)`` returns the greedy action index."""

    def __init__(self, net, obs_dim: int, meta: dict | None = None):
        self.net = net
        self.obs_dim = obs_dim
        self.meta = meta or {}

    def act(self, obs: np.ndarray) -> int:
        import torch

        with torch.no_grad():
            q = self.net(torch.as_tensor(obs, dtype=torch.float32)[None])
        return int(q.argmax(1).item())

    def save(self, path: str | Path) -> Path:
        import torch

        p = Path(path)
        if not p.parent.is_dir():
            raise UserError(f"cannot write {p}: folder {p.parent} does not exist")
        torch.save(
            {
                "state_dict": self.net.state_dict(),
                "obs_dim": self.obs_dim,
                "actions": ACTIONS.tolist(),
                "meta": self.meta,
            },
            p,
        )
        return p


def load_policy(path: str | Path | None = None) -> Policy:
    import torch

    p = Path(path) if path else DEFAULT_POLICY
    if not p.exists():
        raise UserError(f"policy file {p} not found (train one: python -m backends.nbody.train_policy)")
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
        net = make_qnet(int(d["obs_dim"]))
        net.load_state_dict(d["state_dict"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise UserError(f"{p} is not a valid policy file: {exc}") from None
    net.eval()
    return Policy(net, int(d["obs_dim"]), d.get("meta", {}))


def train(cfg: TrainConfig = TrainConfig()) -> Generator[tuple[int, float, tuple], None, Policy]:
    """DQN training. Yields (episode, episode reward, all rewards so far) after each episode (a GUI that drops
    intermediate yields still gets the whole curve); returns the :class:`Policy`."""
    import torch

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    env = StepEnv(cfg.env)
    q = make_qnet(env.obs_dim)
    tgt = make_qnet(env.obs_dim)
    tgt.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=cfg.lr)
    buf: deque = deque(maxlen=cfg.buffer)
    updates = 0
    history: list[float] = []
    for ep in range(cfg.episodes):
        eps = cfg.eps_end + (cfg.eps_start - cfg.eps_end) * max(0.0, 1 - ep / max(1, 0.7 * cfg.episodes))
        obs = env.reset(seed=cfg.seed * 100_000 + ep)  # training seeds; evaluation uses >= 10**9
        total, done = 0.0, False
        while not done:
            if rng.random() < eps:
                a = rng.randrange(len(ACTIONS))
            else:
                with torch.no_grad():
                    a = int(q(torch.as_tensor(obs)[None]).argmax(1).item())
            obs2, r, done, _ = env.step(a)
            buf.append((obs, a, r, obs2, float(done)))
            obs = obs2
            total += r
            if len(buf) >= cfg.batch:
                batch = rng.sample(list(buf), cfg.batch)
                o, act, rew, o2, d = (torch.as_tensor(np.array(z)) for z in zip(*batch))
                qa = q(o.float()).gather(1, act.long()[:, None])[:, 0]
                with torch.no_grad():
                    # double DQN target
                    a2 = q(o2.float()).argmax(1, keepdim=True)
                    y = rew.float() + cfg.gamma * (1 - d.float()) * tgt(o2.float()).gather(1, a2)[:, 0]
                loss = torch.nn.functional.smooth_l1_loss(qa, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                updates += 1
                if updates % cfg.target_every == 0:
                    tgt.load_state_dict(q.state_dict())
        history.append(total)
        yield (ep + 1, total, tuple(history))
    q.eval()
    return Policy(q, env.obs_dim, {"train": asdict(cfg)})


def evaluate(policy: Policy | None, seeds, env_cfg: EnvConfig = EnvConfig(), fixed: int | None = None):
    """Mean final log10|dE/E| and mean force evaluations over held-out systems, for the policy or a fixed
    action index. Returns (mean log10 dE, mean evals, blow-ups, mean eta chosen)."""
    d = evaluate_runs(policy, seeds, env_cfg, fixed)
    return (
        float(np.mean(np.log10(d["de"]))),
        float(np.mean(d["evals"])),
        int(d["blown"]),
        float(np.exp(np.mean(np.log(d["etas"])))),
    )


def evaluate_runs(policy: Policy | None, seeds, env_cfg: EnvConfig = EnvConfig(), fixed: int | None = None):
    """Per held-out system: final |dE/E| ("de"), force evaluations ("evals"); plus the blow-up count and
    every eta chosen. Both averages of the error are computed from this: the mean of log10 |dE/E| (the
    typical system, insensitive to one bad system) and the mean |dE/E| (dominated by the worst systems)."""
    env = StepEnv(env_cfg)
    des, evals, blown, etas = [], [], 0, []
    for s in seeds:
        obs = env.reset(seed=s)
        done, n = False, 0
        while not done:
            a = fixed if fixed is not None else policy.act(obs)
            etas.append(ACTIONS[a])
            obs, _, done, info = env.step(a)
            n += info["evals"]
            blown += info["blown"]
        des.append(env.de)
        evals.append(n)
    return {"de": np.asarray(des), "evals": np.asarray(evals), "blown": blown, "etas": np.asarray(etas)}


class LearnedHermite(Hermite):
    """Hermite whose eta is chosen by the policy every ``interval`` time units."""

    name = "learned"

    def __init__(self, mass, x, v, eps=0.0, t=0.0, policy: Policy | None = None, interval: float = 0.1):
        super().__init__(mass, x, v, eps, t, eta=ACTIONS[-1], criterion="aarseth")
        if policy is None:
            policy = load_policy()
        if policy.obs_dim != len(self.mass) * 6 + 1:
            raise UserError(
                f"the policy was trained for {(policy.obs_dim - 1) // 6} bodies, "
                f"this system has {len(self.mass)}"
            )
        self.policy = policy
        self.interval = interval
        self.e0 = energy(self.mass, self.x, self.v, self.eps2)
        self.next_decision = self.t
        self.etas: list[float] = []

    def step(self, dt_max: float) -> float:
        if self.t >= self.next_decision - 1e-14:
            de = abs(energy(self.mass, self.x, self.v, self.eps2) - self.e0) / abs(self.e0 or 1.0)
            self.eta = float(ACTIONS[self.policy.act(make_obs(self.mass, self.x, self.v, de))])
            self.etas.append(self.eta)
            self.next_decision = self.t + self.interval
        return super().step(min(dt_max, max(self.next_decision - self.t, 1e-300)))
