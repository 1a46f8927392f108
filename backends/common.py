"""Small shared pieces every backend may use: progress records, validation, CLI error type."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar


@dataclass(frozen=True)
class Progress:
    """Yielded by long backend generators so any caller (GUI worker, CLI) can show progress.

    ``fraction`` is in [0, 1] or ``None`` when the total is unknown; ``data`` carries a partial result.
    """

    fraction: float | None
    message: str = ""
    data: Any = None


class UserError(ValueError):
    """A problem the user can fix (bad parameter, bad file). The CLI prints it on one line, exit code 2."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`UserError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise UserError(message)


def require_finite(name: str, value: Any) -> None:
    """Reject NaN/inf in a scalar or an array, naming the offending parameter."""
    import numpy as np  # lazy: the CLI must list panels without importing numpy

    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{name} contains NaN or infinity")


def require_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """Reject non-finite and non-positive scalars with a message that names the parameter."""
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise UserError(f"{name} must be a finite number {bound}, got {value}")


def parse_size(text: str) -> tuple[int, int]:
    """'800x600' -> (800, 600) with a clear error for anything else or absurd sizes."""
    try:
        w_s, h_s = text.lower().split("x")
        w, h = int(w_s), int(h_s)
    except ValueError:
        raise UserError(f"malformed size {text!r}: expected WIDTHxHEIGHT, e.g. 800x600") from None
    if not (1 <= w <= 16384 and 1 <= h <= 16384):
        raise UserError(f"size {w}x{h} out of range: each side must be 1..16384 pixels")
    return w, h


_Y = TypeVar("_Y")
_R = TypeVar("_R")


def drain(gen: Generator[_Y, Any, _R], on_yield: Callable[[_Y], object] | None = None) -> _R:
    """Run a long-work generator to its end and return its result (headless callers: CLI, tests, benches).
    ``on_yield`` sees every yielded item (e.g. to print progress)."""
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_yield is not None:
            on_yield(item)


#: bytes that all panels' recordings and histories may hold together (Compute > Memory budget in the GUI)
_MEMORY_BUDGET = {"bytes": 2048 * 2**20}


def set_memory_budget(nbytes: int) -> None:
    _MEMORY_BUDGET["bytes"] = max(16 * 2**20, int(nbytes))


def memory_budget() -> int:
    return _MEMORY_BUDGET["bytes"]
