"""Qt-free panel models: the one source of truth of what a panel draws (the napari pattern).

A model holds the parameters (a frozen dataclass whose fields carry their label, range and choices), the run
state, histories, camera and selections of one panel, and tells listeners when they change through plain
callbacks (:class:`Events`). Views, plots and exports read the model; widgets write it. Sessions are the
model's state: :meth:`PanelModel.restore` validates a whole state dict (JSON part and arrays) before it changes
anything, so an invalid session changes nothing and says which key and value are wrong.

This module must import with Qt blocked (import-linter checks ``panels.*.model``).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.common import UserError, memory_budget


# -- events -----------------------------------------------------------------------------------------------
class Events:
    """Named callback lists: ``events.connect("params", cb)``; ``events.emit("params", changed={...})``.

    Callbacks get keyword arguments only. Emitting is synchronous, on the caller's thread: a model is changed
    on the GUI thread only (workers hand results over through the panel), so views may draw in a callback.
    """

    def __init__(self) -> None:
        self._subs: dict[str, list[Callable[..., None]]] = defaultdict(list)
        self._blocked = 0

    def connect(self, name: str, callback: Callable[..., None]) -> Callable[..., None]:
        self._subs[name].append(callback)
        return callback

    def disconnect(self, name: str, callback: Callable[..., None]) -> None:
        if callback in self._subs.get(name, ()):
            self._subs[name].remove(callback)

    def emit(self, name: str, **info: Any) -> None:
        if self._blocked:
            return
        for cb in list(self._subs.get(name, ())):
            cb(**info)


# -- parameters with their ranges -------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    """How a parameter is shown and which values are valid. ``kind``: float, int, bool, choice or text."""

    label: str
    kind: str = "float"
    minimum: float = -1e9
    maximum: float = 1e9
    choices: tuple[str, ...] = ()
    log: bool = False  # float spin box steps multiplicatively (dt, nu, tolerances)
    decimals: int = 4
    step: float | None = None
    tooltip: str = ""
    form: bool = True  # False: validated and saved, but not a row of the form (camera, custom tables, ...)


def param(default: Any, label: str, kind: str | None = None, **spec: Any) -> Any:
    """A dataclass field with its :class:`ParamSpec` (the one list both the form and validation use)."""
    if kind is None:
        kind = {bool: "bool", int: "int", float: "float", str: "text"}.get(type(default), "float")
        if spec.get("choices"):
            kind = "choice"
    return dataclasses.field(default=default, metadata={"param": ParamSpec(label, kind, **spec)})


def param_specs(cls: type) -> dict[str, ParamSpec]:
    """Name -> spec of every field of ``cls`` declared with :func:`param`, in declaration order."""
    return {f.name: f.metadata["param"] for f in dataclasses.fields(cls) if "param" in f.metadata}


def check_value(name: str, spec: ParamSpec, value: Any) -> Any:
    """``value`` converted to the parameter's type, or a :class:`UserError` naming key, value and range."""
    shown = repr(value) if not isinstance(value, float) else f"{value:g}"
    if spec.kind == "bool":
        if not isinstance(value, bool):
            raise UserError(f"{name} must be true or false, got {shown}")
        return value
    if spec.kind == "choice":
        if not isinstance(value, str) or value not in spec.choices:
            raise UserError(f"{name} must be one of {', '.join(spec.choices)}; got {shown}")
        return value
    if spec.kind == "text":
        if not isinstance(value, str):
            raise UserError(f"{name} must be text, got {shown}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise UserError(f"{name} must be a number, got {shown}")
    if spec.kind == "int":
        if isinstance(value, float | np.floating) and not (math.isfinite(value) and value == int(value)):
            raise UserError(f"{name} must be a whole number, got {shown}")
        value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise UserError(f"{name} must be a finite number, got {shown}")
    if not spec.minimum <= value <= spec.maximum:
        fmt = "d" if spec.kind == "int" else "g"  # whole numbers in full: not "2.14748e+09"
        lo, hi = (int(v) if fmt == "d" else v for v in (spec.minimum, spec.maximum))
        raise UserError(f"{name} = {value:{fmt}} is out of range [{lo:{fmt}}, {hi:{fmt}}]")
    return value


def validate_params(cls: type, data: Any, *, where: str = "params", base: Any = None) -> Any:
    """Build ``cls`` from a dict, checking every key against its spec; missing keys keep ``base``'s values.

    Unknown keys are errors (a typo must not be ignored silently). Fields without a spec must be handled by
    the model (``validate_extra``) and are passed through only if their JSON type matches the default's.
    """
    if not isinstance(data, dict):
        raise UserError(f"{where} must be an object, got {type(data).__name__}")
    base = base if base is not None else cls()
    specs = param_specs(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(names))})")
    changes = {}
    for key, value in data.items():
        if key in specs:
            changes[key] = check_value(f"{where}.{key}", specs[key], value)
        else:
            changes[key] = _plain_value(cls, key, value, where)
    try:
        return dataclasses.replace(base, **changes)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: {exc}") from None


def _plain_value(cls: type, key: str, value: Any, where: str) -> Any:
    """A field without a spec: rebuild tuples/paths/nested dataclasses from JSON, else keep as is."""
    hint = typing.get_type_hints(cls).get(key)
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return validate_params(hint, value, where=f"{where}.{key}")
    if hint is tuple or origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{where}.{key} must be a list, got {value!r:.60}")
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    if hint is Path or (origin in (typing.Union, types.UnionType) and Path in typing.get_args(hint)):
        if value is None:
            return None
        if not isinstance(value, str):
            raise UserError(f"{where}.{key} must be a path, got {value!r:.60}")
        return Path(value)
    return value


# -- JSON conversion --------------------------------------------------------------------------------------
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


# -- the model base class ---------------------------------------------------------------------------------
class PanelModel:
    """Base of every panel model. Subclasses set ``Params`` and extend the three state hooks.

    - :meth:`state` / :meth:`arrays`: the JSON part and the large arrays of a session (arrays go to a sibling
      NPZ file, referenced from the JSON by name and hash).
    - :meth:`validate_state`: check a whole state and return a *staged* object; raise :class:`UserError`
      naming the key and value. Must not change the model.
    - :meth:`apply_state`: apply a staged object; must not fail.

    Events every model emits: ``params(changed: set[str])`` and ``restored()``; subclasses add their own
    (``frame``, ``camera``, ``stale``, ...).
    """

    Params: ClassVar[type]
    key: ClassVar[str] = ""

    def __init__(self) -> None:
        self.events = Events()
        self.params = self.Params()
        #: why the view no longer shows what the parameters describe ('' when it does); views show it
        self.stale = ""

    # -- parameters ---------------------------------------------------------------------------------------
    def set_params(self, **changes: Any) -> set[str]:
        """Validate and apply parameter changes (all or none); emits ``params`` with the changed names."""
        new = validate_params(type(self.params), changes, base=self.params)
        changed = {k for k in changes if getattr(new, k) != getattr(self.params, k)}
        if changed:
            self.params = new
            self.params_changed(changed)
            self.events.emit("params", changed=changed)
        return changed

    def params_changed(self, changed: set[str]) -> None:
        """Hook: invalidate what the changed parameters make stale (called before the ``params`` event)."""

    def mark_stale(self, why: str) -> None:
        """The view no longer matches the parameters: ``why`` says what to press (''=up to date)."""
        if why != self.stale:
            self.stale = why
            self.events.emit("stale", why=why)

    # -- sessions -----------------------------------------------------------------------------------------
    def state(self) -> dict:
        return {"params": config_to_dict(self.params)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def validate_state(self, state: Any, arrays: dict[str, np.ndarray]) -> Any:
        if not isinstance(state, dict):
            raise UserError(f"{self.key}: the panel state must be an object")
        known = self.state_keys()
        unknown = sorted(set(state) - known)
        if unknown:
            raise UserError(f"{self.key}: unknown key {unknown[0]!r} in the session")
        params = self.params
        if "params" in state:
            params = validate_params(type(self.params), state["params"], where=f"{self.key}.params")
        return {"params": params}

    def state_keys(self) -> set[str]:
        """The top-level keys :meth:`validate_state` accepts."""
        return {"params"}

    def apply_state(self, staged: Any) -> None:
        old = self.params
        self.params = staged["params"]
        changed = {
            f.name for f in dataclasses.fields(old) if getattr(old, f.name) != getattr(self.params, f.name)
        }
        self.params_changed(changed)

    def restore(self, state: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        """Validate ``state`` as a whole, then apply it; an invalid state changes nothing."""
        self.apply(self.validate_state(state, dict(arrays or {})))

    def apply(self, staged: Any) -> None:
        """Apply a validated state and tell every listener (``params`` with all names, then ``restored``)."""
        self.apply_state(staged)
        self.events.emit("params", changed={f.name for f in dataclasses.fields(self.params)})
        self.events.emit("restored")


def require_array(
    arrays: dict[str, np.ndarray],
    name: str,
    *,
    where: str,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    finite: bool = True,
) -> np.ndarray:
    """One array of a session, checked: present, numeric, of the given rank/shape, finite."""
    if name not in arrays:
        raise UserError(f"{where}: the session's array file has no {name!r}")
    arr = np.asarray(arrays[name])
    if arr.dtype.kind not in "biuf":
        raise UserError(f"{where}: array {name!r} has unsupported dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise UserError(f"{where}: array {name!r} must have {ndim} dimensions, has {arr.ndim}")
    if shape is not None and (
        arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape))
    ):
        raise UserError(f"{where}: array {name!r} has shape {arr.shape}, expected {shape}")
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise UserError(f"{where}: array {name!r} contains NaN or infinity")
    return arr


# -- recordings within the memory budget (set by the shell: Compute > Memory budget) ---------------------
class Recording:
    """Frames recorded over time within a share of the memory budget.

    When full, every other frame is dropped and only every ``stride``-th new frame is kept: the recording
    always spans the whole run (for replay and video) at a resolution that fits, instead of forgetting its
    beginning. ``share`` is this recording's fraction of :func:`memory_budget`.
    """

    def __init__(self, share: float = 0.25, minimum: int = 8) -> None:
        self.share, self.minimum = share, minimum
        self.times: list[float] = []
        self.frames: list[np.ndarray] = []
        self.stride = 1
        self._skipped = 0

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.frames)

    def capacity(self, frame_nbytes: int) -> int:
        return max(self.minimum, int(self.share * memory_budget()) // max(1, frame_nbytes))

    def append(self, t: float, frame: np.ndarray) -> bool:
        """Keep ``frame`` (a copy is the caller's job) if the stride allows; True when it was kept."""
        self._skipped += 1
        if self._skipped < self.stride:
            return False
        self._skipped = 0
        self.times.append(float(t))
        self.frames.append(frame)
        if len(self.frames) > self.capacity(frame.nbytes):
            self.times, self.frames = self.times[::2], self.frames[::2]
            self.stride *= 2
        return True

    def clear(self) -> None:
        self.times, self.frames, self.stride, self._skipped = [], [], 1, 0
