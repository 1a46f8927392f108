"""Session files: the state of the open panels' models, with the app version.

A versioned, strict JSON file (no NaN/Infinity). Large arrays (painted fields, trained weights, the computed
state shown) go to a sibling NPZ file, ``NAME.arrays.npz``, referenced from the JSON by file name and SHA-256
and read with ``allow_pickle=False``. Loading validates every panel's whole state before any panel changes,
so an invalid file changes nothing and its message names the panel, key and value.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from app import __version__
from backends.common import UserError
from backends.safeio import write_bytes

SCHEMA = 2
KIND = "visual-lab-session"
MAX_BYTES = 64 * 2**20  # a session JSON is small; anything bigger is not one of ours
MAX_ARRAY_BYTES = 4 * 2**30


def build(
    panel_states: dict[str, dict], active: str | None = None, arrays: dict[str, dict] | None = None
) -> dict[str, Any]:
    """A session dict; ``arrays`` (panel key -> name -> array) travel with it until :func:`save`."""
    data = {
        "kind": KIND,
        "schema": SCHEMA,
        "app_version": __version__,
        "python": platform.python_version(),
        "active": active,
        "panels": panel_states,
    }
    if arrays and any(arrays.values()):
        data["_arrays"] = {k: v for k, v in arrays.items() if v}
    return data


def arrays_path(path: str | Path) -> Path:
    p = Path(path)
    stem = p.name[: -len(".json")] if p.name.endswith(".json") else p.name
    return p.with_name(stem + ".arrays.npz")


def dumps(data: dict[str, Any]) -> str:
    """Strict JSON text of a session (NaN/Infinity are refused with the offending panel named)."""
    public = {k: v for k, v in data.items() if k != "_arrays"}
    try:
        return json.dumps(public, indent=2, allow_nan=False)
    except ValueError as exc:
        raise UserError(f"session not saved: a value is NaN or infinite ({exc})") from None


def save(path: str | Path, data: dict[str, Any]) -> Path:
    """Write the JSON and, when the session has arrays, ``NAME.arrays.npz`` beside it (both atomically)."""
    from app.export import check_writable

    p = check_writable(path)
    data = dict(data)
    arrays = data.pop("_arrays", None)
    if arrays:
        flat = {
            f"{key}/{name}": np.ascontiguousarray(a)
            for key, named in arrays.items()
            for name, a in named.items()
        }
        buf = io.BytesIO()
        np.savez(buf, **flat)
        payload = buf.getvalue()
        apath = arrays_path(p)
        write_bytes(apath, payload)
        data["arrays"] = {"file": apath.name, "sha256": hashlib.sha256(payload).hexdigest()}
    write_bytes(p, dumps(data).encode())
    return p


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in a session")


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a session file (and its arrays); raises UserError with a message naming the problem."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"session file not found: {p}")
    if p.stat().st_size > MAX_BYTES:
        raise UserError(f"{p} is not a session file (larger than {MAX_BYTES // 2**20} MiB)")
    try:
        data = json.loads(p.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise UserError(f"{p} is not a valid session file (not UTF-8 text)") from None
    except RecursionError:
        raise UserError(f"{p} is not a valid session file (JSON nested too deeply)") from None
    except ValueError as exc:
        raise UserError(f"{p} is not a valid session file (corrupt JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UserError(f"{p} is not a Visual Lab session file")
    schema = data.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise UserError(f"{p}: session schema is missing")
    if schema > SCHEMA:
        raise UserError(
            f"{p} was written by a newer Visual Lab (session schema {schema}, this version reads "
            f"up to {SCHEMA}); please update Visual Lab"
        )
    panels = data.get("panels")
    if not isinstance(panels, dict) or not all(isinstance(v, dict) for v in panels.values()):
        raise UserError(f"{p}: the 'panels' section is malformed")
    data["_arrays"] = _load_arrays(p, data.get("arrays"))
    return data


def _load_arrays(p: Path, ref: Any) -> dict[str, dict[str, np.ndarray]]:
    if ref is None:
        return {}
    if (
        not isinstance(ref, dict)
        or not isinstance(ref.get("file"), str)
        or not isinstance(ref.get("sha256"), str)
    ):
        raise UserError(f"{p}: the 'arrays' entry is malformed")
    name = ref["file"]
    if Path(name).name != name or not name.endswith(".npz"):
        raise UserError(f"{p}: the arrays file {name!r} must be an .npz file beside the session")
    apath = p.with_name(name)
    if not apath.is_file():
        raise UserError(f"{p}: its arrays file {apath} is missing")
    payload = apath.read_bytes()
    if hashlib.sha256(payload).hexdigest() != ref["sha256"]:
        raise UserError(f"{apath} does not match its session (SHA-256 differs): it was changed or replaced")
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as zf:
            if sum(i.file_size for i in zf.infolist()) > MAX_ARRAY_BYTES:
                raise UserError(f"{apath}: arrays larger than {MAX_ARRAY_BYTES // 2**30} GiB")
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            for key in npz.files:
                panel, _, arr_name = key.partition("/")
                out.setdefault(panel, {})[arr_name] = npz[key]
    except UserError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{apath} is not a valid arrays file ({exc})") from None
    return out


def apply(data: dict[str, Any], panels: dict[str, Any], only: set[str] | None = None) -> list[str]:
    """Restore the open panels named in ``data`` (or in ``only``): every state is validated first, then all
    are applied; an invalid state changes no panel. Returns the keys restored."""
    arrays = data.get("_arrays", {})
    staged = {}
    for key, state in data["panels"].items():
        if key not in panels or (only is not None and key not in only):
            continue
        try:
            staged[key] = panels[key].validate_state(state, arrays.get(key, {}))
        except UserError as exc:
            raise UserError(f"session not applied (panel {key!r}): {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise UserError(f"session not applied (panel {key!r}): {type(exc).__name__}: {exc}") from None
    for key, st in staged.items():
        panels[key].stop()
        panels[key].apply_staged(st)
    return list(staged)
