"""Safe file I/O shared by every backend and the export service.

* :func:`check_writable` validates an output path *before* the work (folder, permissions, suffix, inputs),
  so a long run never ends in "cannot write".
* :func:`atomic_write` / :func:`atomic_path` write to a temporary file in the same folder, flush and fsync,
  then ``os.replace`` it over the target: a crash or a kill leaves the previous file or none, never half a file.
* :func:`load_weights`, :func:`load_npz`, :func:`load_json` and :func:`read_text` read files in forms that
  cannot run code (``weights_only=True``, ``allow_pickle=False``) and turn every failure into one
  :class:`UserError` line that names the file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

from backends.common import UserError

PathLike = str | os.PathLike


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file: mkstemp makes 0600 files


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_writable(
    path: PathLike,
    *,
    suffixes: Iterable[str] | None = None,
    inputs: Iterable[PathLike] = (),
    what: str = "",
) -> Path:
    """The output path as a Path, or one clear :class:`UserError` line, checked before any work.

    ``suffixes`` (e.g. ``(".npz",)``) are the ones the writer produces: another suffix is refused instead of
    silently written as ``x.dat.npz`` or as PNG bytes in ``x.jpg``. ``inputs`` are never overwritten."""
    p = Path(path).expanduser()
    label = f"{what} " if what else ""
    if not str(path).strip():
        raise UserError(f"empty {label}output file name")
    if p.is_dir() or str(path).endswith(os.sep):
        raise UserError(f"cannot write {label}{p}: it is a folder; give a file name")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"cannot write {label}{p}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UserError(f"cannot write {label}{p}: permission denied")
    if suffixes is not None:
        allowed = tuple(s.lower() for s in suffixes)
        if p.suffix.lower() not in allowed:
            raise UserError(
                f"cannot write {label}{p}: the file name must end in {' or '.join(allowed)} "
                f"(got {p.suffix or 'no suffix'})"
            )
    for src in inputs:
        q = Path(src).expanduser()
        if _same_file(p, q) or p.resolve() == q.resolve():
            raise UserError(f"cannot write {p}: it is also an input; choose another output file")
    return p


@contextmanager
def atomic_write(path: PathLike, mode: str = "wb", **open_kw: Any) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success flush, fsync and ``os.replace`` it
    over ``path``; on any error (or a kill) the temporary file goes and ``path`` keeps its old content."""
    if not any(c in mode for c in "wx"):
        raise ValueError(f"atomic_write needs a write mode, got {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode.replace("x", "w"), **open_kw) as fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """A temporary path in the same folder (same suffix, so libraries that choose a format by suffix
    still do) for writers that want a file name; renamed over ``path`` after an fsync when the block ends
    without error, removed otherwise."""
    p = Path(path).expanduser()
    folder = p.parent if str(p.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{p.stem}.", suffix=f".tmp{p.suffix}", dir=folder)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # the writer may have closed its own handle: sync the data we rename
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, p)
        with suppress(OSError):  # make the rename itself durable
            dfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
    except BaseException:
        with suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes(path: PathLike, data: bytes) -> Path:
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path).expanduser()


def write_text(path: PathLike, text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return Path(path).expanduser()


def json_safe(obj: Any) -> Any:
    """Plain JSON values: NumPy scalars and arrays become numbers and lists, NaN and infinity ``null``."""
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json(path: PathLike, data: Any, indent: int | None = 2) -> Path:
    """Strict JSON (NaN and infinity are refused: other readers cannot parse them), written atomically."""
    try:
        text = json.dumps(data, indent=indent, allow_nan=False)
    except ValueError as exc:
        raise UserError(f"cannot write {path}: {exc}") from None
    return write_text(path, text + "\n")


def write_npz(path: PathLike, **arrays: Any) -> Path:
    """Compressed NPZ, atomically (``np.savez_compressed`` to a file handle never appends ``.npz``)."""
    import numpy as np

    with atomic_write(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path).expanduser()


# -- readers ---------------------------------------------------------------------------------------------
def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _existing(path: PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"{what} file {p} does not exist" if not p.exists() else f"{what} {p} is not a file")
    return p


def load_weights(path: PathLike, what: str = "weights") -> Any:
    """``torch.load(..., weights_only=True)``: tensors, numbers, strings, lists and dicts only. A pickle
    that would construct other objects (and so could run code) is refused with one line."""
    import torch

    p = _existing(path, what)
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable or unsafe: one line either way
        import pickle

        text = str(exc)
        if isinstance(exc, pickle.UnpicklingError) and "Unsupported global" in text:
            g = re.search(r"GLOBAL ([\w.]+)", text)
            reason = (
                f"it holds Python objects ({g.group(1) if g else 'a global'}), not only tensors and plain "
                "values; refused because loading them could run code"
            )
        elif isinstance(exc, pickle.UnpicklingError | EOFError | RuntimeError | ValueError):
            reason = "not a PyTorch weights file, or corrupt or truncated"
        else:
            reason = _first_line(exc)
        raise UserError(f"cannot read {what} {p}: {reason}") from None
    _require_finite_tensors(blob, f"{what} {p}")
    return blob


def _require_finite_tensors(obj: Any, where: str, key: str = "") -> None:
    """Weights with NaN or infinity (a damaged file) would only produce NaN results later: refuse now."""
    import torch

    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and not bool(torch.isfinite(obj).all()):
            raise UserError(f"{where}: tensor {key or '(top level)'} holds NaN or infinity (damaged file)")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _require_finite_tensors(v, where, f"{key}.{k}" if key else str(k))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            _require_finite_tensors(v, where, f"{key}[{i}]")


def load_npz(path: PathLike, what: str = "array file") -> dict:
    """All arrays of an NPZ file, read with ``allow_pickle=False`` (object arrays are refused)."""
    import zipfile

    import numpy as np

    p = _existing(path, what)
    try:
        z = np.load(p, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("not an NPZ archive (a single .npy array or text)")
        with z:
            out = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise UserError(f"cannot read {what} {p}: {_first_line(exc)}") from None
    bad = [k for k, v in out.items() if not isinstance(v, np.ndarray)]
    if bad:
        raise UserError(f"cannot read {what} {p}: member {bad[0]!r} is not a NumPy array")
    return out


def read_text(path: PathLike, what: str = "text file", max_bytes: int | None = None) -> str:
    """UTF-8 text with a message that names the file when it is not (e.g. a binary file passed by mistake)."""
    p = _existing(path, what)
    if max_bytes is not None and p.stat().st_size > max_bytes:
        raise UserError(
            f"{what} {p} is {p.stat().st_size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:.0f} MiB allowed"
        )
    try:
        return p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {p} is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise UserError(f"cannot read {what} {p}: {exc.strerror or exc}") from None


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


MAX_JSON_DEPTH = 64


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def _depth(text: str) -> int:
    """Maximum bracket nesting outside strings (vectorised: deep input must not hit Python's recursion)."""
    import numpy as np

    b = np.frombuffer(_JSON_STRING.sub('""', text).encode("utf-8", "replace"), np.uint8)
    step = np.isin(b, (ord("["), ord("{"))).astype(np.int64) - np.isin(b, (ord("]"), ord("}")))
    return int(np.cumsum(step).max()) if len(step) else 0


def parse_json(text: str, where: str) -> Any:
    """Strict JSON (no NaN/Infinity, at most MAX_JSON_DEPTH levels) or one line naming ``where``."""
    if _depth(text) > MAX_JSON_DEPTH:
        raise UserError(f"{where}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{where}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise UserError(f"{where}: invalid JSON: {_first_line(exc)}") from None


def load_json(path: PathLike, what: str = "JSON file", max_bytes: int = 64 * 2**20) -> Any:
    p = Path(path).expanduser()
    return parse_json(read_text(p, what, max_bytes), f"{what} {p}")
