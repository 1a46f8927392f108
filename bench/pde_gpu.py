"""NS steps/s on a GPU: 256^2 and 1024^2, batch 1 and 64, float32, CN-Heun (and IF-RK4), CUDA-synchronised.

Self-contained apart from the repository's own solver; run from the repository root:

    python bench/pde_gpu.py [--steps 50] [--device cuda] [--schemes cn-heun if-rk4]

Prints one line per case: steps/s and sample-steps/s (batch x steps/s), and the peak GPU memory. Falls back
to the CPU (with a note) when no CUDA device is present, so the script itself can be checked anywhere.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.pde.ns import NavierStokes2D, NSConfig


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def run_case(n: int, batch: int, scheme: str, steps: int, device: str) -> tuple[float, float]:
    cfg = NSConfig(
        n=n,
        nu=1e-4,
        dt=1e-4,
        scheme=scheme,
        forcing="fno",
        init="grf",
        batch=batch,
        dtype="float32",
        device=device,
    )
    sim = NavierStokes2D(cfg)
    dev = sim.device
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    for _ in range(5):  # warm-up (cuFFT plans, allocator)
        sim._step()
    sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        sim._step()
    sync(dev)
    sps = steps / (time.perf_counter() - t)
    if not bool(torch.isfinite(sim.s).all()):
        raise RuntimeError(f"non-finite field at n={n}, batch={batch}")
    mem = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else float("nan")
    return sps, mem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--schemes", nargs="+", default=["cn-heun", "if-rk4"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 1024])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    args = ap.parse_args()
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: running on the CPU instead (numbers are not GPU numbers)")
        device = "cpu"
    name = torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"
    print(f"device: {name}, torch {torch.__version__}")
    for scheme in args.schemes:
        for n in args.sizes:
            for b in args.batches:
                try:
                    sps, mem = run_case(n, b, scheme, args.steps, device)
                    print(
                        f"{scheme:8s} n={n:5d} batch={b:3d}: {sps:9.1f} steps/s, {sps * b:10.1f} sample-steps/s, "
                        f"peak mem {mem:.2f} GiB"
                    )
                except (RuntimeError, torch.OutOfMemoryError) as exc:
                    print(f"{scheme:8s} n={n:5d} batch={b:3d}: failed: {str(exc).splitlines()[0]}")
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
