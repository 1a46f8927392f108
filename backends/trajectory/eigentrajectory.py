"""EigenTrajectory (Bae, Oh, Jeon, ICCV 2023): forecasting in a low-rank "ET space" of trajectories.

Our own implementation of the method as described in the paper and in the authors' public code
(InhwanBae/EigenTrajectory, ``EigenTrajectory/{normalizer,descriptor,anchor,model}.py``):

1. **Normalisation** per agent from its observed track: origin = last observed position, heading =
   ``atan2`` of ``p[-1] - p[-3]``, scale = ``2 / |p[-1] - p[-3]|`` (unit mean speed over the last two
   steps). Agents whose speed ``|p[-1] - p[-3]| / 2`` is at most ``static_dist`` are *static*: they get
   their own descriptor and anchors and are not scaled.
2. **Descriptors**: truncated SVD (rank ``k``) of the normalised past (8 x 2) and future (12 x 2)
   tracks of the training + validation agents, with a y-flip augmentation, separately for moving and
   static agents. Coefficients ``C = U^T vec(traj)``.
3. **Anchors**: k-means (``num_samples`` = 20 clusters) on the future coefficients; sample ``s`` is
   ``anchor_s + correction_s``. We order anchors by cluster size, so sample 0 is the most common mode
   (used for the single-sample ADE/FDE; the paper reports best-of-20 only).
4. **Network** (ours; the paper plugs in existing backbones): per-agent embedding of the past
   coefficients and of the scene-centred last position, a Transformer encoder whose attention is
   restricted to the agents of the same window (social interaction), and a head that outputs the
   ``num_samples x k`` anchor corrections. ``backbone="mlp"`` instead mirrors the authors' strongest
   variant (their LB-EBM bridge calls only its ``predict`` path: MLP encoders of the past coefficients
   and of the centred position, a wide MLP predictor, no social pooling).
5. **Loss** (as in the reference trainer): ``min_s |C_s - C_gt|`` + minADE + minFDE (best-of-20,
   metres, after de-normalisation); AdamW, gradient clipping 10, step learning-rate decay (x0.5 every
   quarter of the epochs, as 64 of 256 in the authors' configs); the epoch with the lowest validation
   minFDE is kept. Batches are whole windows of about 128 agents (the authors' ``TrajBatchSampler``).
6. **Augmentation** (ours; the authors only mirror the tracks that fit the descriptors): every training
   window is rotated by a random angle and mirrored with probability 1/2, as a whole.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from backends.common import Progress, UserError, drain
from backends.safeio import check_writable, load_weights, write_bytes
from backends.trajectory.data import Windows


@contextmanager
def torch_threads(n: int | None):
    """Run torch ops with ``n`` intra-op threads and restore the previous count (None: unchanged).
    This model is small: one thread is fastest, and avoids OpenMP spin-waits on a busy machine."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


BACKBONES = ("transformer", "mlp")

#: ``static_dist`` per held-out scene from the authors' configs (config/eigentrajectory-*-<scene>.json)
STATIC_DIST = {"eth": 0.419, "hotel": 0.353, "univ": 0.227, "zara1": 0.338, "zara2": 0.350}


@dataclass(frozen=True)
class ETConfig:
    k: int = 6
    num_samples: int = 20
    static_dist: float = 0.353
    obs_len: int = 8
    pred_len: int = 12
    hidden: int = 128
    heads: int = 4
    layers: int = 2
    epochs: int = 40
    lr: float = 1e-3
    weight_decay: float = 1e-4
    clip_grad: float = 10.0
    batch_agents: int = 128
    kmeans_init: int = 10  # k-means restarts (n_init) for the anchors, as in the reference code
    threads: int | None = 1  # torch intra-op threads while training (None: leave the global setting)
    #: random rotation + mirror of whole windows while training; the held-out scene has other headings
    #: and layouts than the training scenes (ETH most of all; docs/benchmarks/trajectory.md)
    augment: bool = True
    #: "transformer": attention over the agents of a window; "mlp": per-agent encoders + wide predictor,
    #: the shape of the authors' strongest variant (LB-EBM's predict path: no social pooling, no EBM)
    backbone: str = "transformer"
    seed: int = 0

    def validate(self) -> None:
        if not 1 <= self.k <= 2 * min(self.obs_len, self.pred_len):
            raise UserError(f"k must be in 1..{2 * min(self.obs_len, self.pred_len)}, got {self.k}")
        if not 1 <= self.num_samples <= 100:
            raise UserError(f"num_samples (anchors) must be in 1..100, got {self.num_samples}")
        if not (self.static_dist >= 0 and math.isfinite(self.static_dist)):
            raise UserError(f"static_dist must be >= 0, got {self.static_dist}")
        if self.hidden % self.heads:
            raise UserError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if self.kmeans_init < 1:
            raise UserError(f"kmeans_init must be >= 1, got {self.kmeans_init}")
        if self.epochs < 0:
            raise UserError(f"epochs must be >= 0, got {self.epochs}")
        if not self.lr > 0:
            raise UserError(f"lr must be > 0, got {self.lr}")
        if self.backbone not in BACKBONES:
            raise UserError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")


# -- normalisation and descriptors (torch, differentiable where needed) -----------------------------------
def moving_mask(obs: torch.Tensor, static_dist: float) -> torch.Tensor:
    return (obs[:, -1] - obs[:, -3]).norm(dim=-1) / 2 > static_dist


def norm_params(obs: torch.Tensor, moving: torch.Tensor):
    """origin (N,1,2), rotation (N,2,2) such that ``(x - o) @ R`` turns the heading onto +x, scale (N,1,1)."""
    ori = obs[:, -1:, :]
    d = obs[:, -1] - obs[:, -3]
    th = torch.atan2(d[:, 1], d[:, 0])
    c, s = torch.cos(th), torch.sin(th)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    speed = d.norm(dim=-1)
    sca = torch.where(moving, 2.0 / speed.clamp_min(1e-6), torch.ones_like(speed))[:, None, None]
    return ori, rot, sca


def normalize(traj, ori, rot, sca):
    return ((traj - ori) @ rot) * sca


def denormalize(traj, ori, rot, sca):
    """traj (..., N, T, 2)."""
    return (traj / sca) @ rot.transpose(-1, -2) + ori


def truncated_basis(traj_norm: torch.Tensor, k: int) -> torch.Tensor:
    """(T*2, k) left singular vectors of the (T*2, N) data matrix."""
    M = traj_norm.reshape(traj_norm.shape[0], -1).T.double()
    if M.shape[1] == 0:
        return torch.eye(M.shape[0], k, dtype=torch.float32)
    U, _, _ = torch.linalg.svd(M, full_matrices=False)
    U = U[:, :k]
    if U.shape[1] < k:  # fewer agents than k: pad with identity directions
        U = torch.cat([U, torch.eye(M.shape[0], k - U.shape[1], dtype=U.dtype)], dim=1)
    return U.float()


def kmeans_anchors(C: np.ndarray, n: int, seed: int, n_init: int = 10) -> np.ndarray:
    """(n, k) cluster centres ordered by cluster size (largest first)."""
    if len(C) == 0:
        return np.zeros((n, C.shape[1] if C.ndim == 2 else 1), np.float32)
    if len(C) < n:
        reps = np.resize(np.arange(len(C)), n)
        return C[reps].astype(np.float32)
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small problem: one thread, no OpenMP spin-waits on a busy machine
        km = KMeans(n_clusters=n, random_state=seed, init="k-means++", n_init=n_init).fit(C)
    counts = np.bincount(km.labels_, minlength=n)
    return km.cluster_centers_[np.argsort(-counts, kind="stable")].astype(np.float32)


# -- the model ------------------------------------------------------------------------------------------
def _mlp(n_in: int, hidden: list[int], n_out: int) -> nn.Sequential:
    dims = [n_in, *hidden, n_out]
    mods: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:], strict=True):
        mods += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*mods[:-1])


class EigenTrajectoryNet(nn.Module):
    def __init__(self, cfg: ETConfig):
        super().__init__()
        self.cfg = cfg
        k, S = cfg.k, cfg.num_samples
        two_obs, two_pred = 2 * cfg.obs_len, 2 * cfg.pred_len
        # ET descriptors and anchors: [moving, static]
        self.register_buffer("U_obs", torch.zeros(2, two_obs, k))
        self.register_buffer("U_pred", torch.zeros(2, two_pred, k))
        self.register_buffer("anchors", torch.zeros(2, S, k))
        self.register_buffer("coef_scale", torch.ones(2, k))
        H = cfg.hidden
        if cfg.backbone == "mlp":
            # widths of the authors' LB-EBM bridge at hidden=128: past 512-256, position 256-128,
            # predictor 1024-512-256, 16-d features each
            self.enc_past = _mlp(k + 1, [4 * H, 2 * H], 16)
            self.enc_pos = _mlp(2, [2 * H, H], 16)
            self.head = _mlp(32, [8 * H, 4 * H, 2 * H], S * k)
        else:
            self.embed = nn.Sequential(nn.Linear(k + 3, H), nn.ReLU(), nn.Linear(H, H))
            layer = nn.TransformerEncoderLayer(
                H,
                cfg.heads,
                dim_feedforward=2 * H,
                dropout=0.0,
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
            self.head = nn.Sequential(nn.Linear(H, H), nn.ReLU(), nn.Linear(H, S * k))
        nn.init.zeros_(self.head[-1].weight)  # start exactly at the anchors
        nn.init.zeros_(self.head[-1].bias)

    # descriptor fitting ----------------------------------------------------------------------------------
    @torch.no_grad()
    def fit_descriptors(self, obs: torch.Tensor, pred: torch.Tensor) -> None:
        """SVD bases and k-means anchors from (augmented) training tracks."""
        cfg = self.cfg
        flip = torch.tensor([1.0, -1.0])
        obs = torch.cat([obs, obs * flip])
        pred = torch.cat([pred, pred * flip])
        mov = moving_mask(obs, cfg.static_dist)
        ori, rot, sca = norm_params(obs, mov)
        on, pn = normalize(obs, ori, rot, sca), normalize(pred, ori, rot, sca)
        for g, sel in enumerate([mov, ~mov]):
            self.U_obs[g] = truncated_basis(on[sel], cfg.k)
            self.U_pred[g] = truncated_basis(pn[sel], cfg.k)
            Cp = pn[sel].reshape(int(sel.sum()), -1) @ self.U_pred[g]
            Co = on[sel].reshape(int(sel.sum()), -1) @ self.U_obs[g]
            if len(Co):
                self.coef_scale[g] = Co.std(dim=0).clamp_min(1e-3)
            self.anchors[g] = torch.from_numpy(
                kmeans_anchors(Cp.numpy(), cfg.num_samples, cfg.seed, cfg.kmeans_init)
            )

    # projection ------------------------------------------------------------------------------------------
    def project(self, obs: torch.Tensor, pred: torch.Tensor | None = None):
        mov = moving_mask(obs, self.cfg.static_dist)
        ori, rot, sca = norm_params(obs, mov)
        g = (~mov).long()
        on = normalize(obs, ori, rot, sca).reshape(len(obs), -1)
        C_obs = torch.einsum("nd,ndk->nk", on, self.U_obs[g])
        C_gt = None
        if pred is not None:
            pn = normalize(pred, ori, rot, sca).reshape(len(pred), -1)
            C_gt = torch.einsum("nd,ndk->nk", pn, self.U_pred[g])
        return C_obs, C_gt, (ori, rot, sca, mov, g)

    def _attend(self, h: torch.Tensor, window_of: torch.Tensor, nwin: int) -> torch.Tensor:
        """Transformer over the agents of each window, padded to (W, n_max, H): attention costs
        sum(n_w^2), not (sum n_w)^2."""
        N = h.shape[0]
        counts = torch.bincount(window_of, minlength=nwin)
        first = torch.cumsum(counts, 0) - counts
        slot = torch.arange(N) - first[window_of]
        n_max = int(counts.max()) if N else 1
        padded = h.new_zeros(nwin, n_max, h.shape[-1])
        padded[window_of, slot] = h
        pad_mask = torch.arange(n_max)[None, :] >= counts[:, None]  # True = no agent there
        return self.encoder(padded, src_key_padding_mask=pad_mask)[window_of, slot]

    def forward(self, obs: torch.Tensor, window_of: torch.Tensor, pred: torch.Tensor | None = None):
        """obs (N, 8, 2), window_of (N,) window index per agent, non-decreasing (windows contiguous).
        Returns samples (S, N, 12, 2) and the coefficients (C_pred (N, S, k), C_gt (N, k) or None)."""
        cfg = self.cfg
        N = obs.shape[0]
        C_obs, C_gt, (ori, rot, sca, mov, g) = self.project(obs, pred)
        # scene-centred last positions (per window)
        last = obs[:, -1]
        nwin = int(window_of.max()) + 1 if N else 0
        sums = torch.zeros(nwin, 2).index_add_(0, window_of, last)
        cnt = torch.zeros(nwin).index_add_(0, window_of, torch.ones(N)).clamp_min(1)
        centred = last - (sums / cnt[:, None])[window_of]
        c_obs, flag = C_obs / self.coef_scale[g], mov.float()[:, None]
        if cfg.backbone == "mlp":
            h = torch.cat([self.enc_past(torch.cat([c_obs, flag], -1)), self.enc_pos(centred / 5.0)], -1)
        else:
            h = self._attend(self.embed(torch.cat([c_obs, centred / 5.0, flag], -1)), window_of, nwin)
        corr = self.head(h).view(N, cfg.num_samples, cfg.k) * self.coef_scale[g][:, None, :]
        C_pred = self.anchors[g] + corr  # (N, S, k)
        traj_n = torch.einsum("nsk,ndk->snd", C_pred, self.U_pred[g]).reshape(
            cfg.num_samples, N, cfg.pred_len, 2
        )
        samples = denormalize(traj_n, ori, rot, sca)
        return samples, C_pred, C_gt


def augment_windows(obs, pred, window_of, rng: np.random.Generator):
    """Rotate every window about the origin by a random angle and mirror half of them (a whole window
    moves together, so interactions and the metrics are unchanged)."""
    nwin = int(window_of.max()) + 1
    th = torch.from_numpy(rng.uniform(0, 2 * np.pi, nwin).astype(np.float32))
    flip = torch.from_numpy(np.where(rng.random(nwin) < 0.5, -1.0, 1.0).astype(np.float32))
    c, s = torch.cos(th), torch.sin(th)
    R = torch.stack([torch.stack([c, -s * flip], -1), torch.stack([s, c * flip], -1)], -2)[window_of]
    return obs @ R.transpose(-1, -2), pred @ R.transpose(-1, -2)


def loss_terms(samples, C_pred, C_gt, pred):
    err_c = (C_pred - C_gt[:, None, :]).norm(dim=-1).min(dim=1)[0].mean()
    d = (samples - pred[None]).norm(dim=-1)  # (S, N, T)
    ade = d.mean(-1).min(0)[0].mean()
    fde = d[..., -1].min(0)[0].mean()
    return err_c, ade, fde


# -- batching -------------------------------------------------------------------------------------------
def batches(w: Windows, batch_agents: int, order: np.ndarray | None = None):
    """Groups of whole windows with about ``batch_agents`` agents: (obs, pred, window_of, agent_idx)."""
    order = np.arange(w.num_windows) if order is None else order
    cur: list[int] = []
    n = 0
    for wi in order:
        cur.append(int(wi))
        n += int(w.starts[wi + 1] - w.starts[wi])
        if n >= batch_agents:
            yield _collate(w, cur)
            cur, n = [], 0
    if cur:
        yield _collate(w, cur)


def _collate(w: Windows, wins: list[int]):
    idx = np.concatenate([np.arange(w.starts[i], w.starts[i + 1]) for i in wins])
    wo = np.repeat(np.arange(len(wins)), [w.starts[i + 1] - w.starts[i] for i in wins])
    return (torch.from_numpy(w.obs[idx]), torch.from_numpy(w.pred[idx]), torch.from_numpy(wo), idx)


@dataclass
class TrainSnapshot:
    epoch: int
    epochs: int
    train_loss: list[float]
    val_minade: list[float]
    val_minfde: list[float]
    seconds: float
    best_state: dict | None = None  # a copy of the best weights so far (Stop keeps them)
    model: ETModel | None = None  # the live model (touch it only after the training thread ended)


@dataclass
class ETModel:
    cfg: ETConfig
    net: EigenTrajectoryNet
    history: TrainSnapshot | None = None

    @torch.no_grad()
    def predict(self, w: Windows, batch_agents: int = 512, threads: int | None = 1) -> np.ndarray:
        """(S, N, pred_len, 2) samples in world coordinates for every agent of ``w``."""
        with torch_threads(threads):
            return self._predict(w, batch_agents)

    def _predict(self, w: Windows, batch_agents: int) -> np.ndarray:
        self.net.eval()
        out = np.zeros((self.cfg.num_samples, w.num_agents, self.cfg.pred_len, 2), np.float32)
        for obs, _pred, wo, idx in batches(w, batch_agents):
            s, _, _ = self.net(obs, wo)
            out[:, idx] = s.numpy()
        return out

    @torch.no_grad()
    def coefficients(self, w: Windows) -> dict[str, np.ndarray]:
        """Past/future ET coefficients and moving flags of every agent (for plots)."""
        obs, pred = torch.from_numpy(w.obs), torch.from_numpy(w.pred)
        with torch_threads(1):
            C_obs, C_gt, (_, _, _, mov, _) = self.net.project(obs, pred)
        return {"obs": C_obs.numpy(), "pred": C_gt.numpy(), "moving": mov.numpy()}

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        h = self.history
        hist = None
        if h is not None:
            hist = {
                "epoch": h.epoch,
                "epochs": h.epochs,
                "train_loss": [float(v) for v in h.train_loss],
                "val_minade": [float(v) for v in h.val_minade],
                "val_minfde": [float(v) for v in h.val_minfde],
                "seconds": float(h.seconds),
            }
        blob = {
            "format": "visual-lab-eigentrajectory-1",
            "config": asdict(self.cfg),
            "state": self.net.state_dict(),
            "history": hist,
        }
        buf = io.BytesIO()
        torch.save(blob, buf)
        return write_bytes(check_writable(p, suffixes=(".pt",), what="model"), buf.getvalue())

    @staticmethod
    def load(path: str | Path) -> ETModel:
        p = Path(path)
        if not p.is_file():
            raise UserError(f"no model file {p}")
        blob = load_weights(p, "EigenTrajectory model")
        if not isinstance(blob, dict) or blob.get("format") != "visual-lab-eigentrajectory-1":
            raise UserError(f"{p}: not a saved EigenTrajectory model")
        try:
            conf = dict(blob["config"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{p}: not a saved EigenTrajectory model (no config)") from None
        conf.setdefault("backbone", "transformer")  # files written before the option existed
        conf.setdefault("augment", False)
        try:
            cfg = ETConfig(**conf)
            cfg.validate()
            net = EigenTrajectoryNet(cfg)
            net.load_state_dict(blob["state"])
        except (
            TypeError,
            RuntimeError,
            KeyError,
            ValueError,
            AttributeError,
        ) as exc:  # options, layer shapes
            raise UserError(f"{p}: saved model does not match this version ({type(exc).__name__})") from None
        h = blob.get("history")
        try:
            hist = TrainSnapshot(**h) if isinstance(h, dict) else None
        except TypeError:
            raise UserError(f"{p}: saved training history does not match this version") from None
        return ETModel(cfg, net, hist)


@torch.no_grad()
def evaluate(model: ETModel, w: Windows) -> tuple[float, float]:
    from backends.trajectory.metrics import min_ade_fde

    ade, fde = min_ade_fde(model.predict(w), w.pred)
    return float(ade.mean()), float(fde.mean())


def train_eigentrajectory(
    cfg: ETConfig, train: Windows, val: Windows | None = None, device: str | torch.device = "cpu"
) -> Iterator[Progress]:
    """Fit descriptors/anchors, then train; yields Progress(data=TrainSnapshot) per epoch (and within long
    epochs) and returns the :class:`ETModel` with the best validation minFDE weights."""
    cfg.validate()
    if torch.device(device).type != "cpu":
        raise UserError("this EigenTrajectory implementation runs on the CPU only")
    if train.num_agents < 2:
        raise UserError("training set is empty: need windows with >= 2 agents")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = EigenTrajectoryNet(cfg)
    t0 = time.perf_counter()
    yield Progress(0.0, "fitting ET descriptors and anchors")
    obs_all = torch.from_numpy(np.concatenate([train.obs] + ([val.obs] if val is not None else [])))
    pred_all = torch.from_numpy(np.concatenate([train.pred] + ([val.pred] if val is not None else [])))
    net.fit_descriptors(obs_all, pred_all)
    model = ETModel(cfg, net)
    snap = TrainSnapshot(0, cfg.epochs, [], [], [], time.perf_counter() - t0)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = max(1, cfg.epochs // 4)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step, gamma=0.5)
    best_state, best = None, math.inf
    nb = max(1, train.num_agents // cfg.batch_agents)
    for epoch in range(cfg.epochs):
        net.train()
        total, count = 0.0, 0
        for bi, (obs, pred, wo, _) in enumerate(
            batches(train, cfg.batch_agents, rng.permutation(train.num_windows))
        ):
            if cfg.augment:
                obs, pred = augment_windows(obs, pred, wo, rng)
            with torch_threads(cfg.threads):
                samples, C_pred, C_gt = net(obs, wo, pred)
                lc, la, lf = loss_terms(samples, C_pred, C_gt, pred)
                loss = lc + la + lf
                if not torch.isfinite(loss):
                    continue
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), cfg.clip_grad)
                opt.step()
            total += float(loss.detach())
            count += 1
            if bi % 50 == 49:
                yield Progress((epoch + bi / nb) / max(cfg.epochs, 1), f"epoch {epoch + 1}/{cfg.epochs}")
        sched.step()
        snap.train_loss.append(total / max(count, 1))
        if val is not None and val.num_agents:
            ade, fde = evaluate(model, val)
        else:
            ade, fde = math.nan, math.nan
        snap.val_minade.append(ade)
        snap.val_minfde.append(fde)
        snap.epoch = epoch + 1
        snap.seconds = time.perf_counter() - t0
        if not math.isfinite(snap.train_loss[-1]):
            raise UserError(f"training diverged at epoch {epoch + 1} (loss is not finite)")
        score = fde if math.isfinite(fde) else snap.train_loss[-1]
        if score < best:
            best = score
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        model.history = snap
        yield Progress(
            (epoch + 1) / cfg.epochs,
            f"epoch {epoch + 1}/{cfg.epochs}: loss {snap.train_loss[-1]:.3f}, "
            f"val minADE/minFDE {ade:.3f}/{fde:.3f} m",
            TrainSnapshot(
                snap.epoch,
                snap.epochs,
                list(snap.train_loss),
                list(snap.val_minade),
                list(snap.val_minfde),
                snap.seconds,
                best_state,
                model,
            ),
        )
    if best_state is not None:
        net.load_state_dict(best_state)
    model.history = snap
    return model


def run_training(cfg: ETConfig, train: Windows, val: Windows | None = None) -> ETModel:
    """Drive :func:`train_eigentrajectory` to the end (scripts, CLI, tests)."""
    return drain(train_eigentrajectory(cfg, train, val))
