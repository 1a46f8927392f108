"""Shared pieces of the fuzz suite: real sample files, byte mutations, and the one-line-error contract.

Every bad input must end in valid data (checked for sense by the caller) or in one
:class:`backends.common.UserError` line, within 10 s. Mutations are generated here from the real files in
``../shared/data`` and ``assets/`` (never committed).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from backends.common import UserError

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
TIME_LIMIT_S = 10


def shared(*parts: str) -> Path:
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not available: {p}")
    return p


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout


def outcome(fn: Callable, *args, **kwargs):
    """Run ``fn``; return ``("ok", value)`` or ``("error", message)`` for a one-line UserError. Anything else
    (another exception, a multi-line message, more than TIME_LIMIT_S seconds) fails the test."""
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT_S)
    try:
        value = fn(*args, **kwargs)
    except UserError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, f"multi-line or empty message: {msg!r}"
        assert len(msg) < 600, f"message too long ({len(msg)} chars): {msg[:200]}..."
        return "error", msg
    except _Timeout:
        pytest.fail(f"{getattr(fn, '__name__', fn)} took more than {TIME_LIMIT_S} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return "ok", value


def byte_mutations(data: bytes, header_len: int, seed: int = 0) -> dict[str, bytes]:
    """Generic damage: empty, truncated at several offsets, flipped header bytes, random bytes, doubled,
    a non-UTF-8 start."""
    rng = np.random.default_rng(seed)
    n = len(data)
    out = {"empty": b""}
    for cut in sorted({1, 4, 15, header_len // 2, header_len, header_len + 7, n // 2, n - 1}):
        if 0 < cut < n:
            out[f"truncated@{cut}"] = data[:cut]
    for pos in sorted({0, 1, 3, 5, 8, 12, header_len // 3, header_len - 2}):
        if 0 <= pos < min(n, header_len):
            b = bytearray(data)
            b[pos] ^= 0xFF
            out[f"flip@{pos}"] = bytes(b)
    out["random"] = rng.integers(0, 256, max(n, 64), dtype=np.uint8).tobytes()
    out["doubled"] = data + data
    out["nonutf8"] = b"\xff\xfe\xfa" + data[3:]
    return out


def write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    p = tmp_path / name
    if isinstance(data, str):
        p.write_text(data)
    else:
        p.write_bytes(data)
    return p
