"""Learned time-stepping (after Saz Ulibarrena & Portegies Zwart 2025): a DQN picks the Hermite step parameter.

Environment: a random equal-mass three-body system integrated with our 4th-order Hermite and Aarseth's step
criterion (dt = sqrt(eta x ...), as AMUSE's Hermite uses its dt_param). Every ``interval`` time units the agent
picks eta from 10 log-spaced values in [1e-4, 1e-1]. Observation: positions and
velocities in the centre-of-mass frame (N x 6 numbers) and log10 |dE/E| (scaled); ``features="extended"``
adds the elapsed fraction of the episode and log10 of the force evaluations spent so far.
An episode ends at ``t_end`` or on a blow-up (|dE/E| > 0.1, -2 extra reward). Rewards:

- ``"final"`` (the bundled policy): r_k = -w (log10 e_k - log10 e_k-1) - lambda evals_k with e_0 = 1e-16,
  which telescopes over an episode to -w (log10 e_final + 16) - lambda (all evaluations): the evaluation
  objective (final error at a given cost) as a Lagrangian. It lets the agent spend an error budget: once an
  encounter has set the error, later intervals can be cheap as long as they add well under it.
- ``"cumulative"``: r = -( w (log10 |dE/E| + 16) / 16 + w_cost log10(evaluations in the interval) / 4 ).
- ``"interval"``: as cumulative with the energy change of the interval, |E(t_k+1) - E(t_k)| / |E0|.

Training is double DQN; ``all_actions`` stores all 10 actions at each visited state, ``lam_range`` makes
lambda a network input (one network for the whole accuracy-cost family). See docs/nbody.md.
"""

from __future__ import annotations

import copy
import math
import os
import random
import tempfile
from collections.abc import Generator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from backends.common import UserError
from backends.nbody.core import energy, random_system, to_com_frame
from backends.nbody.integrators import Hermite

ACTIONS = np.logspace(-4, -1, 10)
MAX_STEPS_PER_INTERVAL = 5000
DEFAULT_POLICY = Path(__file__).resolve().parents[2] / "assets" / "nbody" / "dqn_policy.pt"


REWARDS = ("cumulative", "interval", "final")
FEATURES = ("basic", "extended")
E_FLOOR = 1e-16


@dataclass(frozen=True)
class EnvConfig:
    interval: float = 0.1
    t_end: float = 1.0
    w_energy: float = 1.0
    w_cost: float = 1.0
    n_bodies: int = 3
    reward: str = "cumulative"  # "interval" or "final": see the module docstring
    cost_per_eval: float = 0.005  # lambda of reward="final" (per force evaluation)
    features: str = "basic"  # "extended" adds time and cost-so-far: see make_obs

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise UserError(f"reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.features not in FEATURES:
            raise UserError(f"features must be one of {', '.join(FEATURES)}, got {self.features!r}")
        if not self.cost_per_eval >= 0:
            raise UserError(f"cost_per_eval must be >= 0, got {self.cost_per_eval}")


def obs_dim(n_bodies: int, features: str = "basic") -> int:
    return n_bodies * 6 + (1 if features == "basic" else 3)


class StepEnv:
    """Gym-like environment: reset(seed) -> obs; step(action) -> (obs, reward, done, info)."""

    def __init__(self, cfg: EnvConfig = EnvConfig()):
        self.cfg = cfg
        self.obs_dim = obs_dim(cfg.n_bodies, cfg.features)

    def reset(self, seed: int) -> np.ndarray:
        s = random_system(seed, self.cfg.n_bodies)
        self.mass = s.mass
        self.integ = Hermite(s.mass, s.pos, s.vel, eta=ACTIONS[-1], criterion="aarseth")
        self.e0 = energy(s.mass, s.pos, s.vel)
        self.e_last = self.e0
        self.de = E_FLOOR
        self.t = 0.0
        self.evals = 0
        return self.observe()

    def clone(self) -> StepEnv:
        """An independent copy of the current state (the integrator's arrays included)."""
        return copy.deepcopy(self)

    def observe(self) -> np.ndarray:
        if self.cfg.features == "basic":
            return make_obs(self.mass, self.integ.x, self.integ.v, self.de)
        return make_obs(self.mass, self.integ.x, self.integ.v, self.de, self.t / self.cfg.t_end, self.evals)

    def step(self, action: int):
        self.integ.eta = float(ACTIONS[action])
        fe0 = self.integ.force_evals
        t_next = min(self.t + self.cfg.interval, self.cfg.t_end)
        with np.errstate(all="ignore"):  # flag 1: non-finite; 2: a near-collision (too many steps)
            blown = self.integ.advance(t_next, MAX_STEPS_PER_INTERVAL) != 0
        self.t = t_next
        e = energy(self.mass, self.integ.x, self.integ.v)
        de = abs(e - self.e0) / abs(self.e0)
        if not math.isfinite(de) or de > 0.1:
            blown = True
        de_before = min(self.de, 1.0)
        self.de = max(de, E_FLOOR) if math.isfinite(de) else 1.0
        evals = self.integ.force_evals - fe0
        self.evals += evals
        info = {"de": self.de, "blown": blown, "evals": evals}
        if self.cfg.reward == "final":  # telescoping: sums to -w log10(final error) - lambda (all evals)
            # "gain": the reward without the cost term (lambda-conditioned training charges its own lambda)
            gain = -self.cfg.w_energy * (math.log10(min(self.de, 1.0)) - math.log10(de_before))
            info["gain"] = gain - (2.0 if blown else 0.0)
            reward = info["gain"] - self.cfg.cost_per_eval * evals
        else:
            charged = self.de
            if self.cfg.reward == "interval":
                step_de = abs(e - self.e_last) / abs(self.e0)
                charged = max(step_de, E_FLOOR) if math.isfinite(step_de) else 1.0
            reward = -(
                self.cfg.w_energy * (math.log10(charged) + 16) / 16
                + self.cfg.w_cost * math.log10(max(evals, 1)) / 4
            )
            reward -= 2.0 if blown else 0.0
        self.e_last = e
        done = blown or self.t >= self.cfg.t_end * (1 - 1e-14)
        return self.observe(), reward, done, info


def make_obs(mass, x, v, de, t_frac: float | None = None, evals: int | None = None) -> np.ndarray:
    """CoM positions and velocities, scaled log10 |dE/E|; with ``t_frac`` and ``evals`` ("extended"
    features) also the elapsed fraction of the episode and the scaled log10 of the force evaluations so far
    (how expensive this system has been: the budget a cost-aware schedule needs)."""
    p, u = to_com_frame(mass, x, v)
    extra = [(math.log10(max(de, E_FLOOR)) + 8) / 8]
    if t_frac is not None:
        extra += [min(max(t_frac, 0.0), 1.0), math.log10(1.0 + (evals or 0)) / 2 - 1]
    return np.concatenate([p.ravel(), u.ravel(), extra]).astype(np.float32)


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
    # all_actions: at every visited state, simulate the interval with each of the 10 values (clones of the
    # environment) and store all 10 transitions; the episode goes on along the epsilon-greedy one. The network
    # then sees every action from the same state, so the small differences between neighbouring eta values
    # are not buried in the system-to-system spread of the error (which is decades).
    all_actions: bool = False
    updates_per_step: int = 1
    lam_range: tuple[float, float] | None = None  # lambda as a network input: see train()
    env: EnvConfig = EnvConfig()

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise UserError(f"episodes must be >= 1, got {self.episodes}")
        if not 0 <= self.gamma <= 1:  # 1 is fine: episodes end after t_end / interval decisions
            raise UserError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.updates_per_step < 1 or self.batch < 1 or self.buffer < self.batch:
            raise UserError("need updates_per_step >= 1, batch >= 1 and buffer >= batch")
        if self.lam_range is not None:
            lo, hi = self.lam_range
            if not 0 < lo <= hi or self.env.reward != "final":
                raise UserError("lam_range needs 0 < low <= high and reward='final'")


def bundled_train_config(episodes: int = 5000, seed: int = 1) -> TrainConfig:
    """The configuration the bundled policy was trained with (docs/nbody.md): telescoping "final" reward,
    gamma 1, all actions stored, lambda an input in [0.002, 0.012], run at lambda = 0.008."""
    return TrainConfig(
        episodes=episodes,
        seed=seed,
        gamma=1.0,
        lr=3e-4,
        buffer=50000,
        all_actions=True,
        updates_per_step=2,
        lam_range=(0.002, 0.012),
        env=EnvConfig(reward="final", cost_per_eval=0.008, features="extended"),
    )


class Policy:
    """A trained Q-network: ``act(obs)`` returns the greedy action index."""

    def __init__(self, net, obs_dim: int, meta: dict | None = None):
        self.net = net
        self.obs_dim = obs_dim
        self.meta = meta or {}

    @property
    def features(self) -> str:
        """Observation layout the network was trained on ("basic" for files written before it was stored)."""
        return str(self.meta.get("features", "basic"))

    @property
    def t_end(self) -> float:
        return float(self.meta.get("t_end", 1.0))

    @property
    def lam(self) -> float | None:
        """Cost per force evaluation the greedy action is taken for (networks conditioned on lambda only);
        set ``policy.lam`` to move along the accuracy-cost trade-off without retraining."""
        return float(self.meta["lam"]) if self.meta.get("lam_input") else None

    @lam.setter
    def lam(self, value: float) -> None:
        if not self.meta.get("lam_input"):
            raise UserError("this policy was trained for one cost per evaluation; it has no lambda input")
        if not value > 0:
            raise UserError(f"lambda must be > 0, got {value}")
        self.meta["lam"] = float(value)

    @property
    def net_inputs(self) -> int:
        return self.obs_dim + (1 if self.meta.get("lam_input") else 0)

    def act(self, obs: np.ndarray) -> int:
        import torch

        if self.meta.get("lam_input"):
            obs = np.append(obs, lam_feature(self.meta["lam"]))
        with torch.no_grad():
            q = self.net(torch.as_tensor(obs, dtype=torch.float32)[None])
        return int(q.argmax(1).item())

    def save(self, path: str | Path) -> Path:
        """Write the weights as a plain dict of tensors and numbers (loads with ``weights_only=True``),
        atomically: a temporary sibling, synced, then renamed over ``path``."""
        import torch

        p = Path(path)
        if not p.parent.is_dir():
            raise UserError(f"cannot write {p}: folder {p.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(
                    {
                        "state_dict": self.net.state_dict(),
                        "obs_dim": self.obs_dim,
                        "actions": ACTIONS.tolist(),
                        "meta": self.meta,
                    },
                    fh,
                )
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p

    def weights(self) -> dict[str, np.ndarray]:
        """The network's parameters as numpy arrays (copies), e.g. for a session's array file."""
        return {k: v.detach().cpu().numpy().copy() for k, v in self.net.state_dict().items()}

    @classmethod
    def from_weights(cls, obs_dim: int, meta: dict, weights: dict[str, np.ndarray]) -> Policy:
        """Rebuild a policy from :meth:`weights` and its ``obs_dim``/``meta``; a clear error if they do not fit."""
        import torch

        net = make_qnet(int(obs_dim) + (1 if meta.get("lam_input") else 0))
        try:
            net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()})
        except (RuntimeError, KeyError) as exc:
            raise UserError(
                f"the policy weights do not fit a Q-network for {obs_dim} inputs: {exc}"
            ) from None
        net.eval()
        return cls(net, int(obs_dim), dict(meta))


def load_policy(path: str | Path | None = None) -> Policy:
    import torch

    p = Path(path) if path else DEFAULT_POLICY
    if not p.exists():
        raise UserError(f"policy file {p} not found (train one: python -m backends.nbody.train_policy)")
    try:
        d = torch.load(p, map_location="cpu", weights_only=True)
        meta = d.get("meta", {})
        net = make_qnet(int(d["obs_dim"]) + (1 if meta.get("lam_input") else 0))
        net.load_state_dict(d["state_dict"])
    except (KeyError, RuntimeError, ValueError) as exc:
        raise UserError(f"{p} is not a valid policy file: {exc}") from None
    net.eval()
    return Policy(net, int(d["obs_dim"]), meta)


def lam_feature(lam: float) -> float:
    """Network input for the cost per evaluation: log10(lam / 0.005), O(1) over the useful range."""
    return math.log10(lam / 0.005)


def train(cfg: TrainConfig = TrainConfig()) -> Generator[tuple[int, float, tuple], None, Policy]:
    """DQN training. Yields (episode, episode reward, all rewards so far) after each episode (a GUI that drops
    intermediate yields still gets the whole curve); returns the :class:`Policy`.

    With ``lam_range`` (reward="final" only) the network also takes lambda as an input: transitions store the
    energy part of the reward and the force evaluations separately, and every sampled transition is charged a
    fresh lambda drawn log-uniformly from the range, so one run learns the whole accuracy-cost family."""
    import torch

    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    env = StepEnv(cfg.env)
    lam0 = cfg.env.cost_per_eval
    cond = cfg.lam_range is not None
    n_in = env.obs_dim + (1 if cond else 0)
    q = make_qnet(n_in)
    tgt = make_qnet(n_in)
    tgt.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=cfg.lr)
    buf: list = []  # ring buffer of (obs, action, reward without the cost term, evals, next obs, done)
    pos = 0
    updates = 0

    def remember(o, a, r, info, o2, d) -> None:
        nonlocal pos
        n_evals = info["evals"]
        item = (o, a, info["gain"] if "gain" in info else r + lam0 * n_evals, n_evals, o2, float(d))
        if len(buf) < cfg.buffer:
            buf.append(item)
        else:
            buf[pos] = item
        pos = (pos + 1) % cfg.buffer

    def draw_lam() -> float:
        lo, hi = cfg.lam_range
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))

    def net_in(o: np.ndarray, lam: float) -> np.ndarray:
        return np.append(o, np.float32(lam_feature(lam))) if cond else o

    history: list[float] = []
    for ep in range(cfg.episodes):
        eps = cfg.eps_end + (cfg.eps_start - cfg.eps_end) * max(0.0, 1 - ep / max(1, 0.7 * cfg.episodes))
        obs = env.reset(seed=cfg.seed * 100_000 + ep)  # training seeds; evaluation uses >= 10**9
        lam_ep = draw_lam() if cond else lam0
        total, done = 0.0, False
        while not done:
            if rng.random() < eps:
                a = rng.randrange(len(ACTIONS))
            else:
                with torch.no_grad():
                    a = int(q(torch.as_tensor(net_in(obs, lam_ep))[None]).argmax(1).item())
            if cfg.all_actions:
                branches = [env.clone() for _ in ACTIONS]
                outs = [br.step(b) for b, br in enumerate(branches)]
                for b, (ob2, rb, db, ib) in enumerate(outs):
                    remember(obs, b, rb, ib, ob2, db)
                env = branches[a]
                obs2, r, done, info = outs[a]
            else:
                obs2, r, done, info = env.step(a)
                remember(obs, a, r, info, obs2, done)
            obs = obs2
            total += r + (lam0 - lam_ep) * info["evals"]
            for _ in range(cfg.updates_per_step if len(buf) >= cfg.batch else 0):
                batch = [buf[rng.randrange(len(buf))] for _ in range(cfg.batch)]
                lams = [draw_lam() if cond else lam0 for _ in batch]
                o = torch.as_tensor(np.array([net_in(b[0], lm) for b, lm in zip(batch, lams)]))
                o2 = torch.as_tensor(np.array([net_in(b[4], lm) for b, lm in zip(batch, lams)]))
                act = torch.as_tensor([b[1] for b in batch])
                rew = torch.as_tensor([b[2] - lm * b[3] for b, lm in zip(batch, lams)], dtype=torch.float32)
                d = torch.as_tensor([b[5] for b in batch], dtype=torch.float32)
                qa = q(o).gather(1, act[:, None])[:, 0]
                with torch.no_grad():
                    # double DQN target
                    a2 = q(o2).argmax(1, keepdim=True)
                    y = rew + cfg.gamma * (1 - d) * tgt(o2).gather(1, a2)[:, 0]
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
    meta = {"train": asdict(cfg), "features": cfg.env.features, "t_end": cfg.env.t_end}
    if cond:
        meta.update(lam_input=True, lam=lam0)
    return Policy(q, env.obs_dim, meta)


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
    typical system, insensitive to one bad system) and the mean |dE/E| (dominated by the worst systems).
    A policy is always fed the observation layout it was trained on."""
    if policy is not None and policy.features != env_cfg.features:
        env_cfg = replace(env_cfg, features=policy.features)
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
        if policy.obs_dim != obs_dim(len(self.mass), policy.features):
            raise UserError(
                f"the policy was trained for {(policy.obs_dim - obs_dim(0, policy.features)) // 6} bodies, "
                f"this system has {len(self.mass)}"
            )
        self.policy = policy
        self.interval = interval
        self.e0 = energy(self.mass, self.x, self.v, self.eps2)
        self.t0 = self.t
        self.fe0 = self.force_evals
        self.next_decision = self.t
        self.etas: list[float] = []

    def step(self, dt_max: float) -> float:
        if self.t >= self.next_decision - 1e-14:
            de = abs(energy(self.mass, self.x, self.v, self.eps2) - self.e0) / abs(self.e0 or 1.0)
            if self.policy.features == "basic":
                obs = make_obs(self.mass, self.x, self.v, de)
            else:  # past the training horizon the time feature stays at 1
                t_frac = (self.t - self.t0) / self.policy.t_end
                obs = make_obs(self.mass, self.x, self.v, de, t_frac, self.force_evals - self.fe0)
            self.eta = float(ACTIONS[self.policy.act(obs)])
            self.etas.append(self.eta)
            self.next_decision = self.t + self.interval
        return super().step(min(dt_max, max(self.next_decision - self.t, 1e-300)))
