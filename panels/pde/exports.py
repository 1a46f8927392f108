"""Data exports of the PDE panel, written from the model (one writer per file: NPZ, line CSV, spectrum CSV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.export import save_csv, save_npz
from backends.common import UserError
from backends.pde.probes import line_points, line_profile

from .model import LINE_SAMPLES, PDEModel


def write_npz(model: PDEModel, path: Path) -> None:
    """Darcy: the last system's a, u, residual histories and iteration totals. Fields: every recorded frame
    (t, one (T, n, n) array per field), the histories, the line probe and the spectrum shown."""
    if model.params.model == "darcy":
        d = model.darcy
        if d is None:
            raise UserError("no Darcy solve yet: press Run")
        totals = np.asarray(model.darcy_totals)
        save_npz(path, a=d["a"], u=d["u"], res_plain=d["res_plain"], res_rec=d["res_rec"], totals=totals)
        return
    frames = model.frames
    if not frames:
        raise UserError("nothing recorded yet: press Run or Step")
    arrays = {"t": np.array([f["t"] for f in frames])}
    for name in frames[-1]["fields"]:
        arrays[name] = np.stack([f["fields"][name] for f in frames])
    for k, v in model.hist.items():
        arrays[f"hist_{k}"] = np.asarray(v, dtype=float)
    if model.line is not None and model.line_hist:
        arrays["line_points"] = np.asarray(model.line, dtype=float)
        arrays["line_t"] = np.array([h[0] for h in model.line_hist])
        arrays["line_values"] = np.stack([h[1] for h in model.line_hist])
    if model.current is not None and model.current.get("spectrum") is not None:
        arrays["spectrum_k"], arrays["spectrum_E"] = model.current["spectrum"]
    save_npz(path, **arrays)


def write_line_csv(model: PDEModel, path: Path) -> None:
    """distance, x, y and the viewed field along the line probe (no line drawn: the horizontal midline)."""
    f, _ = model.display()
    if f is None or model.params.model == "darcy":
        raise UserError("no field to probe yet: press Run or Step")
    line = model.line or ((0.0, 0.5), (1.0, 0.5))
    xy = line_points(*line, LINE_SAMPLES)
    dist, v = line_profile(f, *line, num=LINE_SAMPLES)
    save_csv(path, ["distance", "x", "y", model.params.view], [dist, xy[:, 0], xy[:, 1], v])


def write_spectrum_csv(model: PDEModel, path: Path) -> None:
    fr = model.current
    if fr is None or fr.get("spectrum") is None:
        raise UserError(f"no spectrum to export: {model.params.model} has none, or nothing was computed yet")
    k, E = fr["spectrum"]
    save_csv(path, ["k", "E"], [k, E])
