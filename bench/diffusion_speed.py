"""Diffusion backend speed, side by side with plain reference loops of the same math (one run, ratios).

  .venv/bin/python bench/diffusion_speed.py

1. Training steps/s: backends.diffusion Trainer (EDM, swiss roll, batch 512, MLP 128x3) vs a plain loop with
   torch.optim.Adam that draws a fresh numpy batch each step.
2. Sampling particles x steps / s, exact Gaussian-mixture denoiser, Heun NFE 35, 20,000 particles: the torch
   sampler vs a plain numpy loop (per-component Python loop, np.linalg.solve per step).
3. Sampling with the trained MLP, 20,000 particles, Heun NFE 35: one batch vs mini-batches of 256.
"""

from __future__ import annotations

import math
import platform
import time

import numpy as np
import torch

from backends.diffusion.data import make_dataset
from backends.diffusion.edm import karras_sigmas, loss_weight, sample_training_sigma
from backends.diffusion.gmm import MixtureDenoiser
from backends.diffusion.models import EDMDenoiser, TrainConfig, Trainer
from backends.diffusion.samplers import sample_heun


def timed(fn, repeat=1):
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def bench_training(steps=300):
    ds = make_dataset("swissroll")
    cfg = TrainConfig(family="edm", steps=steps, batch=512, report_every=steps)
    tr = Trainer(ds, cfg)
    t_ours, _ = timed(lambda: list(tr.run(steps)))

    torch.manual_seed(0)
    net = EDMDenoiser(2, ds.std(), 128, 3)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    opt.zero_grad()  # pay torch.optim's first-use import outside the timing

    def ref():
        for _ in range(steps):
            y = torch.as_tensor(ds.sample(512, rng))
            sigma = sample_training_sigma(512, gen)
            d = net(y + torch.randn(y.shape, generator=gen) * sigma[:, None], sigma)
            loss = (loss_weight(sigma, net.sigma_data)[:, None] * (d - y) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()

    t_ref, _ = timed(ref)
    return steps / t_ours, steps / t_ref


def numpy_mixture_denoiser(mix):
    def d(x, sigma):
        logp, cond = [], []
        for w, mu, cov in zip(mix.weights, mix.means, mix.covs):
            c = cov + sigma * sigma * np.eye(len(mu))
            diff = x - mu
            sol = np.linalg.solve(c, diff.T).T
            logp.append(math.log(w) - 0.5 * (diff * sol).sum(1) - 0.5 * np.linalg.slogdet(c)[1])
            cond.append(mu + sol @ cov.T)
        logp = np.stack(logp, 1)
        r = np.exp(logp - logp.max(1, keepdims=True))
        r /= r.sum(1, keepdims=True)
        return np.einsum("nk,nkd->nd", r, np.stack(cond, 1))

    return d


def numpy_heun(d, x, sigmas):
    for i in range(len(sigmas) - 1):
        s, s2 = sigmas[i], sigmas[i + 1]
        k1 = (x - d(x, s)) / s
        xp = x + (s2 - s) * k1
        if s2 == 0:
            x = xp
        else:
            x = x + (s2 - s) * 0.5 * (k1 + (xp - d(xp, s2)) / s2)
    return x


def bench_sampling_exact(n=20000, nfe=35):
    mix = make_dataset("gmm").mixture
    steps = (nfe + 1) // 2
    sig = karras_sigmas(steps)
    x0 = torch.randn(n, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 80
    t_ours, a = timed(lambda: sample_heun(MixtureDenoiser(mix), x0, sig), repeat=2)
    t_ref, b = timed(lambda: numpy_heun(numpy_mixture_denoiser(mix), x0.numpy(), sig.numpy()))
    err = float(np.abs(a.numpy() - b).max())
    work = n * steps
    return work / t_ours, work / t_ref, err


def bench_sampling_mlp(n=20000, nfe=35):
    net = EDMDenoiser(2, 0.8, 128, 3).eval()
    steps = (nfe + 1) // 2
    sig = karras_sigmas(steps, dtype=torch.float32)
    x0 = torch.randn(n, 2, generator=torch.Generator().manual_seed(0)) * 80
    t_ours, a = timed(lambda: sample_heun(net, x0, sig), repeat=2)

    def ref():
        return torch.cat([sample_heun(net, x0[i : i + 256], sig) for i in range(0, n, 256)])

    t_ref, b = timed(ref)
    return n * steps / t_ours, n * steps / t_ref, float((a - b).abs().max())


def main() -> None:
    torch.set_num_threads(1)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread")
    ours, ref = bench_training()
    print(f"training steps/s (EDM, batch 512): ours {ours:.0f}, plain loop {ref:.0f}, ratio {ours / ref:.2f}")
    ours, ref, err = bench_sampling_exact()
    print(
        f"exact-GMM Heun particles*steps/s: torch {ours:.3g}, numpy loop {ref:.3g}, ratio {ours / ref:.2f} "
        f"(max diff {err:.1e})"
    )
    ours, ref, err = bench_sampling_mlp()
    print(
        f"MLP Heun particles*steps/s: one batch {ours:.3g}, batches of 256 {ref:.3g}, ratio {ours / ref:.2f} "
        f"(max diff {err:.1e})"
    )


if __name__ == "__main__":
    main()
