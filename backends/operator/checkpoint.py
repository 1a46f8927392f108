"""Checkpoints: ``DIR/weights.safetensors`` (tensors only, nothing is ever unpickled) + ``DIR/config.json``.

The JSON holds the model configuration (enough to rebuild the network, normalisers included in the
weights) and free-form training/data notes. Both files are written atomically.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backends.common import UserError

from .models import ModelConfig, OperatorModel

FORMAT = "visual-lab-operator"
VERSION = 1
WEIGHTS = "weights.safetensors"
CONFIG = "config.json"


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: dict) -> None:
    """Strict JSON (no NaN/Infinity), atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2, allow_nan=False)
    _atomic_write(p, lambda tmp: Path(tmp).write_text(text + "\n"))


def tensor_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict's tensors (neuraloperator adds a ``_metadata`` dict of Python objects: left out)."""
    return {
        k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if isinstance(v, torch.Tensor)
    }


def save(directory: str | os.PathLike, model: OperatorModel, notes: dict | None = None) -> Path:
    from safetensors.torch import save_file

    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise UserError(f"--save-weights {d}: exists and is not a directory")
    d.mkdir(parents=True, exist_ok=True)
    state = tensor_state(model)
    _atomic_write(d / WEIGHTS, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT}))
    write_json(
        d / CONFIG, {"format": FORMAT, "version": VERSION, "model": model.cfg.to_dict(), **(notes or {})}
    )
    return d


def read_config(directory: str | os.PathLike) -> dict:
    d = Path(directory)
    if not d.is_dir():
        raise UserError(f"--weights {d}: not a directory (expected one holding {WEIGHTS} and {CONFIG})")
    try:
        meta = json.loads((d / CONFIG).read_text())
    except FileNotFoundError:
        raise UserError(f"--weights {d}: no {CONFIG}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"--weights {d / CONFIG}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"--weights {d / CONFIG}: not a {FORMAT} checkpoint")
    if meta.get("version") != VERSION:
        raise UserError(
            f"--weights {d / CONFIG}: unsupported version {meta.get('version')!r} (expected {VERSION})"
        )
    return meta


def load(directory: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[OperatorModel, dict]:
    """Rebuild the model from ``config.json`` and load ``weights.safetensors``; any problem is one UserError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    meta = read_config(d)
    cfg = ModelConfig.from_dict(meta.get("model"))
    path = d / WEIGHTS
    if not path.is_file():
        raise UserError(f"--weights {d}: no {WEIGHTS}")
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserError(
            f"--weights {path}: not a readable safetensors file ({str(e).splitlines()[0][:120]})"
        ) from None
    model = network_from_weights(cfg, state, f"--weights {path}")
    return model.to(device).eval(), meta


def network_from_weights(cfg: ModelConfig, weights: dict[str, Any], where: str) -> OperatorModel:
    """Rebuild a network from its configuration and tensors (a checkpoint's or a session's); a missing,
    misshapen or non-finite tensor is one UserError naming ``where``; nothing is unpickled."""
    net = OperatorModel(cfg)
    want = tensor_state(net)
    missing, extra = sorted(set(want) - set(weights)), sorted(set(weights) - set(want))
    if missing or extra:
        raise UserError(
            f"{where}: weights do not match a {cfg.kind} model (missing {missing[:2]}, extra {extra[:2]})"
        )
    state = {}
    for k, v in weights.items():
        t = torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
        if t.shape != want[k].shape or t.dtype != want[k].dtype:
            raise UserError(
                f"{where}: weight {k!r} is {tuple(t.shape)} {t.dtype}, the model needs "
                f"{tuple(want[k].shape)} {want[k].dtype}"
            )
        if not torch.isfinite(torch.view_as_real(t) if t.is_complex() else t).all():
            raise UserError(f"{where}: weight {k!r} contains NaN or infinity")
        state[k] = t.clone()
    net.load_state_dict(state, strict=False)
    return net
