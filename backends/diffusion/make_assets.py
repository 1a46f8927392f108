"""Generate the bundled digits model: ``python -m backends.diffusion.make_assets [--steps N]``.

Trains a small EDM denoiser on scikit-learn's 8x8 digits (scaled to [-1, 1]) on CPU and writes
``assets/diffusion/digits_edm.pt`` (about 0.7 MB). Used by the panel's digits view and the DDS tests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from backends.common import drain

from .data import make_dataset
from .models import TrainConfig, train

ASSET = Path(__file__).resolve().parents[2] / "assets" / "diffusion" / "digits_edm.pt"
DIGITS_CONFIG = TrainConfig(family="edm", steps=6000, batch=256, lr=2e-3, hidden=256, depth=3, seed=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backends.diffusion.make_assets")
    ap.add_argument("--steps", type=int, default=DIGITS_CONFIG.steps)
    ap.add_argument("--out", default=str(ASSET))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    cfg = TrainConfig(**{**DIGITS_CONFIG.__dict__, "steps": a.steps})
    t = time.perf_counter()

    def report(p) -> None:
        if p.data.step % 500 == 0:
            print(p.message, flush=True)

    tr = drain(train(make_dataset("digits"), cfg), report)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    tr.save(a.out)
    print(f"wrote {a.out} after {time.perf_counter() - t:.0f} s, final loss {tr.losses[-200:].mean():.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
