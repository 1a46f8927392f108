"""Documented ranges of the command-line options, checked before any work.

Every backend CLI keeps one table ``BOUNDS: dict[dest, Bound]`` next to its parser; :func:`check` applies it
to the parsed arguments (one :class:`UserError` line naming the option, the value and the range) and
``python -m backends.options`` writes ``docs/options.md`` from the same tables, so the documentation cannot
drift from what is enforced. Large jobs also estimate their memory up front (:func:`require_memory`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

from backends.common import UserError


@dataclass(frozen=True)
class Bound:
    """``lo <= value <= hi`` (``lo`` excluded when ``open_lo``); ``note`` says why or what it costs."""

    lo: float
    hi: float
    open_lo: bool = False
    note: str = ""

    def text(self) -> str:
        def fmt(v: float) -> str:
            if v == 2**63 - 1:
                return "2^63-1"
            if v == int(v) and abs(v) <= 1e7:
                return str(int(v))
            return f"{v:g}"

        left = "(" if self.open_lo else "["
        return f"{left}{fmt(self.lo)}, {fmt(self.hi)}]"

    def ok(self, v: float) -> bool:
        return math.isfinite(v) and (v > self.lo if self.open_lo else v >= self.lo) and v <= self.hi


class ArgParser(argparse.ArgumentParser):
    """argparse whose usage errors are one-line :class:`UserError`s (exit 2 through the shell, no usage
    block), e.g. ``--count 1e12`` -> "argument --count: invalid int value: '1e12'"."""

    def error(self, message: str):
        raise UserError(f"{self.prog}: {message}")


def _flag(parser: argparse.ArgumentParser | None, dest: str) -> str:
    if parser is not None:
        for a in parser._actions:
            if a.dest == dest and a.option_strings:
                return max(a.option_strings, key=len)
    return "--" + dest.replace("_", "-")


def check(args: argparse.Namespace, bounds: dict[str, Bound], parser: argparse.ArgumentParser | None = None):
    """Raise one :class:`UserError` for the first option outside its range (options left at None skip)."""
    for dest, b in bounds.items():
        values = getattr(args, dest, None)
        if values is None:
            continue
        for v in values if isinstance(values, list | tuple) else [values]:
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if not b.ok(v):
                why = f" ({b.note})" if b.note else ""
                shown = str(v) if isinstance(v, int) else f"{v:g}"
                raise UserError(f"{_flag(parser, dest)} {shown} out of range {b.text()}{why}")
    return args


def check_device(name: str, allow_auto: bool = False) -> str:
    """'cpu', 'cuda', 'cuda:N' (or 'auto'), refused with one line when unknown or absent."""
    import torch

    if allow_auto and name == "auto":
        return name
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        choices = "cpu, cuda, cuda:N" + (", auto" if allow_auto else "")
        raise UserError(f"--device {name!r} is not a device; use {choices}") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name!r}: only cpu and cuda are supported")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name!r} requested but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return name


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def require_memory(need: float, what: str, hint: str = "") -> None:
    """Refuse a job whose estimated peak memory exceeds what is available, before it starts."""
    avail = available_memory()
    if avail is not None and need > avail:
        raise UserError(
            f"{what} needs about {need / 2**30:.1f} GiB of memory but only {avail / 2**30:.1f} GiB is free"
            + (f"; {hint}" if hint else "")
        )
