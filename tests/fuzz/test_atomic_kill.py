"""SIGKILL a writer in the middle of rewriting a file: the previous file stays intact (or the new one is
complete), never truncated. One writer subprocess per format, all killed together to keep the test short."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Each writer rewrites P in a loop with data big enough that one write takes a good fraction of a second.
SETUP = """
import sys, numpy as np
P = sys.argv[1]
rng = np.random.default_rng(0)


def scene(n, per):
    from backends.splat.gaussians import Gaussians

    f = np.float32
    return Gaussians(
        means=rng.standard_normal((n, 3)).astype(f), scales=np.full((n, 3), 0.01, f),
        quats=np.tile(np.array([1, 0, 0, 0], f), (n, 1)), opacities=np.full(n, 0.5, f),
        sh=np.zeros((n, 1 + per, 3), f),
    )
"""
WRITERS = {
    "png": (
        "a.png",
        "from app.export import save_png\nimg = rng.integers(0, 256, (700, 700, 3), np.uint8)\n"
        "w = lambda: save_png(P, img)",
    ),
    "npz": (
        "a.npz",
        "from app.export import save_npz\nx = rng.standard_normal(800_000)\nw = lambda: save_npz(P, x=x)",
    ),
    "csv": (
        "a.csv",
        "from app.export import save_csv\nx = rng.standard_normal(60_000)\n"
        "w = lambda: save_csv(P, ['a', 'b'], [x, x])",
    ),
    "gif": (
        "a.gif",
        "from app.export import write_video\nfr = [rng.integers(0, 256, (300, 300, 3), np.uint8) for _ in range(8)]\n"
        "w = lambda: write_video(P, fr, fps=10)",
    ),
    "mp4": (
        "a.mp4",
        "from app.export import write_video\nfr = [rng.integers(0, 256, (144, 192, 3), np.uint8) for _ in range(12)]\n"
        "w = lambda: write_video(P, fr, fps=10)",
    ),
    "sidecar": (
        "a.png.session.json",
        "from app.export import write_sidecar\nd = {'kind': 'k', 'x': rng.standard_normal(80_000).tolist()}\n"
        "w = lambda: write_sidecar(P[: -len('.session.json')], d)",
    ),
    "ply": (
        "a.ply",
        "from backends.splat import io\ng = scene(60_000, 15)\nw = lambda: io.save(P, g)",
    ),
    "splat": (
        "a.splat",
        "from backends.splat import io\ng = scene(200_000, 0)\nw = lambda: io.save(P, g)",
    ),
    "pt": (
        "a.pt",
        "import io as _io, torch\nfrom backends.safeio import write_bytes\nb = _io.BytesIO()\n"
        "torch.save({'w': torch.randn(1_000_000)}, b)\nw = lambda: write_bytes(P, b.getvalue())",
    ),
    "txt": (
        "a.txt",
        "from backends.trajectory.data import Tracks\nfrom backends.trajectory.synthetic import write_ethucy\n"
        "from pathlib import Path\nrows = np.c_[np.repeat(np.arange(20_000.0) * 10, 3), np.tile([1.0, 2, 3], 20_000),"
        " rng.standard_normal((60_000, 2))]\nw = lambda: write_ethucy(Tracks('t', rows), Path(P))",
    ),
}


def _program(paths: dict[str, Path]) -> str:
    """One process, one thread per format, each rewriting its file in a loop (one import of
    numpy/torch/imageio instead of ten; a kill catches every writer mid-loop). Imports, data and the first
    complete write happen in the main thread, one format after the other (parallel imports can deadlock)."""
    parts = [SETUP.replace("P = sys.argv[1]\n", ""), "import threading\nwriters = []\n"]
    for kind, (_, code) in WRITERS.items():
        body = f"P = {str(paths[kind])!r}\n{code}".replace("\n", "\n    ")
        parts.append(
            f"def make_{kind}():\n    {body}\n    w()\n    return w\nwriters.append(make_{kind}())\n"
        )
    parts.append(
        "def loop(w):\n    while True:\n        w()\n"
        "for w in writers:\n    threading.Thread(target=loop, args=(w,), daemon=True).start()\n"
        "print('ready', flush=True)\nthreading.Event().wait()\n"
    )
    return "\n".join(parts)


def _complete(kind: str, p: Path) -> bool:
    """Does ``p`` hold a whole file of this format (parsed to the end, with the expected size)?"""
    try:
        if kind == "png":
            import imageio.v3 as iio

            return iio.imread(p).shape == (700, 700, 3)
        if kind == "npz":
            with np.load(p, allow_pickle=False) as z:
                return z["x"].shape == (800_000,)
        if kind == "csv":
            return len(p.read_text().splitlines()) == 60_001
        if kind in ("gif", "mp4"):
            import imageio.v3 as iio

            return iio.imread(p, index=None).shape[0] == (8 if kind == "gif" else 12)
        if kind == "sidecar":
            return len(json.loads(p.read_text())["x"]) == 80_000
        if kind in ("ply", "splat"):
            from backends.splat import io

            return io.load(p).count == (60_000 if kind == "ply" else 200_000)
        if kind == "pt":
            import torch

            return torch.load(p, weights_only=True)["w"].shape == (1_000_000,)
        if kind == "txt":
            return len(p.read_text().splitlines()) == 60_000
    except Exception:  # any parse failure means "not complete"
        return False
    raise AssertionError(kind)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_sigkill_mid_write_leaves_previous_or_complete_file(tmp_path):
    previous = b"PREVIOUS CONTENT\n" * 10
    paths = {}
    for kind, (name, _) in WRITERS.items():
        (tmp_path / kind).mkdir()
        paths[kind] = tmp_path / kind / name
        paths[kind].write_bytes(previous)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    err = open(tmp_path / "stderr.txt", "wb")  # a file, not a pipe: a full pipe would block the writers
    proc = subprocess.Popen(
        [sys.executable, "-c", _program(paths)], stdout=subprocess.PIPE, stderr=err, env=env
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 300)
        line = proc.stdout.readline() if ready else b"(no answer in 300 s)"
        assert line.strip() == b"ready", (line, (tmp_path / "stderr.txt").read_text()[-3000:])
        time.sleep(float(np.random.default_rng().uniform(0.3, 0.8)))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        err.close()
    for kind, (name, _) in WRITERS.items():
        f = tmp_path / kind / name
        # the previous file was replaced at least once (the first rewrite finished), so a complete file it is
        assert f.exists() and f.read_bytes() != previous, kind
        assert _complete(kind, f), f"{kind}: {f} is truncated or corrupt after SIGKILL"
        leftovers = [x.name for x in f.parent.iterdir() if x.name not in (name, "stderr.txt")]
        assert all(".tmp" in x for x in leftovers), leftovers  # only our temporary files may remain
