"""The Panel contract: what the shell needs from every domain panel.

The shell builds docks, the Export menu, session files, the CLI ``snapshot`` and the smoke tests from this
contract alone, identically for every panel. A panel owns a config dataclass (the source of truth, not the
widgets), runs its backend through :mod:`app.worker`, draws with vispy/pyqtgraph and offers exports.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget


@dataclass(frozen=True)
class ExportAction:
    """One entry of the Export menu. ``write(path)`` writes the file; the shell adds a sidecar session file."""

    label: str  # "Orbit MP4", "Energy plot SVG/CSV", ...
    suffixes: tuple[str, ...]  # allowed file endings without dot; the first is the default
    write: Callable[[Path], None]


class Panel(QWidget):
    """Base class of every panel. Subclasses set ``key``/``title`` and override the methods below."""

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: file dialog filter for File > Open, e.g. "Gaussian splats (*.ply *.splat *.spz)"; '' = opens nothing
    open_filter: ClassVar[str] = ""

    status = Signal(str)  # a short message for the status bar and the log dock

    # -- parameters -------------------------------------------------------------------------------------
    def params(self) -> Any:
        """The current config dataclass."""
        raise NotImplementedError

    def set_params(self, cfg: Any) -> None:
        raise NotImplementedError

    # -- computation ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or resume) the live computation in a worker."""

    def stop(self) -> None:
        """Cancel the live computation; results computed so far stay."""

    def advance(self, steps: int) -> None:
        """Run the default computation for ``steps`` steps synchronously (CLI snapshot, smoke tests)."""
        raise NotImplementedError

    # -- output -----------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        """The main view as an RGBA uint8 image of ``size`` = (width, height)."""
        raise NotImplementedError

    def canvas(self):
        """The primary vispy canvas, or None (used for "Render view as PNG")."""
        return None

    def exports(self) -> list[ExportAction]:
        return []

    def open_path(self, path: Path) -> None:
        """Open a file chosen in File > Open (only called when ``open_filter`` is set)."""
        raise NotImplementedError

    # -- sessions ---------------------------------------------------------------------------------------
    def state(self) -> dict:
        """JSON-able state: parameters, camera, seed, time. Default: the config dataclass."""
        return {"params": config_to_dict(self.params())}

    def restore(self, state: dict) -> None:
        if "params" in state:
            self.set_params(config_from_dict(type(self.params()), state["params"]))

    def shutdown(self) -> None:
        """Stop workers and timers; called when the window closes or the panel is removed."""
        self.stop()


# -- config (de)serialisation for session files -----------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return config_to_dict(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def config_to_dict(cfg: Any) -> dict:
    """A dataclass as a JSON-able dict (nested dataclasses, tuples, arrays and paths included)."""
    return {f.name: _jsonable(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def config_from_dict(cls: type, data: dict) -> Any:
    """Rebuild a dataclass from :func:`config_to_dict` output; unknown keys are ignored, missing keep defaults."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data or not f.init:
            continue
        value, hint = data[f.name], hints.get(f.name)
        origin = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif (hint is tuple or origin is tuple) and isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        elif hint is Path or (origin in (typing.Union, types.UnionType) and Path in typing.get_args(hint)):
            value = Path(value) if value is not None else None
        kwargs[f.name] = value
    return cls(**kwargs)
