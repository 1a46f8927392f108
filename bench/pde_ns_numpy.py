"""NS 256^2 float32 on the CPU: backends.pde (torch) vs a plain numpy implementation of the same scheme.

Same scheme in both: vorticity form, rfft2, 2/3 dealiasing, Crank-Nicolson + Heun (cn-heun), FNO forcing,
fixed dt. Checks that both give the same field, then reports steps/s and the ratio, for 1 and 2 threads.

    .venv/bin/python bench/pde_ns_numpy.py [--n 256] [--steps 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from backends.pde.ns import NavierStokes2D, NSConfig


class NumpyNS:
    """Plain numpy pseudo-spectral NS, CN-Heun, identical to backends.pde.ns (float32/complex64)."""

    def __init__(self, w0: np.ndarray, nu: float, dt: float):
        n = w0.shape[-1]
        self.n, self.dt = n, dt
        ky = np.fft.fftfreq(n, 1.0 / n)
        kx = np.fft.rfftfreq(n, 1.0 / n)
        KY, KX = np.meshgrid(ky, kx, indexing="ij")
        f32 = np.float32
        self.kx = (2 * np.pi * np.where(np.abs(KX) == n // 2, 0, KX)).astype(f32)
        self.ky = (2 * np.pi * np.where(np.abs(KY) == n // 2, 0, KY)).astype(f32)
        k2 = ((2 * np.pi) ** 2 * (KX**2 + KY**2)).astype(f32)
        self.inv_k2 = np.where(k2 > 0, 1 / np.where(k2 > 0, k2, 1), 0).astype(f32)
        self.mask = ((np.abs(KX) < n / 3) & (np.abs(KY) < n / 3)).astype(f32)
        L = -nu * k2
        self.A = (1 + 0.5 * dt * L).astype(f32)
        self.Binv = (1 / (1 - 0.5 * dt * L)).astype(f32)
        x = np.arange(n) / n
        Y, X = np.meshgrid(x, x, indexing="ij")
        f = 0.1 * (np.sin(2 * np.pi * (X + Y)) + np.cos(2 * np.pi * (X + Y)))
        self.fh = np.fft.rfft2(f.astype(f32))
        self.wh = np.fft.rfft2(w0.astype(f32))
        self.ikx, self.iky = (1j * self.kx).astype(np.complex64), (1j * self.ky).astype(np.complex64)

    def N(self, wh):
        psi = wh * self.inv_k2
        ikx, iky = self.ikx, self.iky
        spec = np.stack([iky * psi, -ikx * psi, ikx * wh, iky * wh])
        u, v, wx, wy = np.fft.irfft2(spec, s=(self.n, self.n))
        return self.fh - np.fft.rfft2(u * wx + v * wy) * self.mask

    def step(self):
        wh, dt = self.wh, self.dt
        n0 = self.N(wh)
        Aw = self.A * wh
        pred = (Aw + dt * n0) * self.Binv
        self.wh = (Aw + 0.5 * dt * (n0 + self.N(pred))) * self.Binv

    def vorticity(self):
        return np.fft.irfft2(self.wh, s=(self.n, self.n))


def bench(n: int, steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    cfg = NSConfig(n=n, nu=1e-3, dt=1e-3, scheme="cn-heun", forcing="fno", init="grf", dtype="float32")
    sim = NavierStokes2D(cfg)
    ref = NumpyNS(sim.vorticity()[0].numpy(), cfg.nu, cfg.dt)
    assert ref.wh.dtype == np.complex64, ref.wh.dtype
    sim.step(3)
    for _ in range(3):
        ref.step()
    diff = float(np.abs(sim.vorticity()[0].numpy() - ref.vorticity()).max() / np.abs(ref.vorticity()).max())
    # interleave short rounds and take medians: the machine is shared, so load drifts during a run
    tt, tn, chunk = [], [], max(5, steps // 20)
    for _ in range(max(1, steps // chunk)):
        t = time.perf_counter()
        for _ in range(chunk):
            sim._step()
        tt.append((time.perf_counter() - t) / chunk)
        t = time.perf_counter()
        for _ in range(chunk):
            ref.step()
        tn.append((time.perf_counter() - t) / chunk)
    # best-of-rounds (as timeit recommends: other processes only ever add time), median shown too
    torch_sps, numpy_sps = 1 / float(np.min(tt)), 1 / float(np.min(tn))
    med = float(np.median(tn)) / float(np.median(tt))
    return {
        "threads": threads,
        "torch": torch_sps,
        "numpy": numpy_sps,
        "ratio": torch_sps / numpy_sps,
        "rel_diff": diff,
        "median_ratio": med,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = try 1 and 2")
    args = ap.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"numpy {np.__version__}, load {os.getloadavg()[0]:.1f}"
    )
    print(f"NS {args.n}^2 float32 cn-heun, {args.steps} steps")
    for threads in (1, 2) if args.threads == 0 else (args.threads,):
        r = bench(args.n, args.steps, threads)
        print(
            f"threads={r['threads']}: torch {r['torch']:.1f} steps/s, numpy {r['numpy']:.1f} steps/s, "
            f"ratio x{r['ratio']:.2f} best-of-rounds, x{r['median_ratio']:.2f} median "
            f"(fields agree to {r['rel_diff']:.1e} after 3 steps)"
        )


if __name__ == "__main__":
    main()
