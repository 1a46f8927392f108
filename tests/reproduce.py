"""The check every panel shares: an export's sidecar session reproduces its figure, in a fresh window and from
the command line (``visual-lab snapshot PANEL --session FILE``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (inf when identical)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    mse = np.mean((a[..., :3].astype(float) - b[..., :3].astype(float)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def not_blank(img: np.ndarray, min_std: float = 2.0) -> bool:
    """True when an image shows something (its pixels are not one flat colour)."""
    return float(img[..., :3].astype(float).std()) > min_std


def open_window(qtbot, key: str):
    from app.window import MainWindow

    win = MainWindow([key], restore_layout=False)
    qtbot.addWidget(win)
    win.show()
    win.load_all_now()
    assert key in win.panels, win.last_error
    return win


def export_and_reload(
    qtbot,
    key: str,
    tmp_path: Path,
    mutate: Callable[[object], None],
    size: tuple[int, int] = (320, 240),
    settle: Callable[[object], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, Path]:
    """Open ``key``, let ``mutate(panel)`` change parameters/camera/time/selection, export the view as PNG
    through the window (which writes the sidecar), then open a fresh window, load the sidecar and render
    again. ``settle(panel)`` waits for work a restore starts (e.g. a scene load). Returns (exported image,
    reloaded image, PNG path)."""
    win = open_window(qtbot, key)
    mutate(win.panels[key])
    out = tmp_path / f"{key}.png"
    assert win.render_png(out, size), win.last_error
    first = iio.imread(out)
    win.close()
    sidecar = out.with_name(out.name + ".session.json")
    assert sidecar.is_file()
    fresh = open_window(qtbot, key)
    assert fresh.load_session(sidecar), fresh.last_error
    if settle is not None:
        settle(fresh.panels[key])
    second = fresh.panels[key].render(size)
    fresh.close()
    return first, second, out


def snapshot_from_session(
    key: str, sidecar: Path, out: Path, size: tuple[int, int] = (320, 240)
) -> subprocess.CompletedProcess:
    """Run ``visual-lab snapshot KEY --session SIDECAR --out OUT`` (no --steps) in a subprocess."""
    env = dict(os.environ)
    env.setdefault("VISUAL_LAB_CONFIG_DIR", str(out.parent / "cfg"))
    cmd = [sys.executable, "-m", "app", "snapshot", key, "--session", str(sidecar), "--out", str(out)]
    cmd += ["--size", f"{size[0]}x{size[1]}"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
