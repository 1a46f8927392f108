"""The one place that names panels. Imports are lazy: listing panels must not import torch, Qt or vispy.

Third-party packages add panels through the entry-point group ``visual_lab.panels``; each entry point
loads to a :class:`PanelSpec`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from backends.common import UserError


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    panel: str  # "package.module:PanelClass" (a QWidget subclass of panels.base.Panel)
    cli: str | None = None  # "package.module:main" for `visual-lab run KEY ...` (must not need Qt)
    render_cli: str | None = None  # "package.module:main" for `visual-lab render KEY ...`


BUILTIN = (
    PanelSpec(
        "threebody",
        "Three-body integrator",
        "panels.threebody.panel:ThreeBodyPanel",
        cli="backends.nbody.cli:main",
    ),
    PanelSpec("pde", "PDE fields", "panels.pde.panel:PDEPanel", cli="backends.pde.cli:main"),
    PanelSpec(
        "diffusion",
        "Diffusion sampler",
        "panels.diffusion.panel:DiffusionPanel",
        cli="backends.diffusion.cli:main",
    ),
    PanelSpec(
        "trajectory",
        "Trajectory forecaster",
        "panels.trajectory.panel:TrajectoryPanel",
        cli="backends.trajectory.cli:main",
    ),
    PanelSpec(
        "splat",
        "Gaussian splat viewer",
        "panels.splat.panel:SplatPanel",
        cli="backends.splat.cli:main",
        render_cli="panels.splat.render_cli:main",
    ),
    PanelSpec(
        "operator",
        "Operator learning",
        "panels.operator.panel:OperatorPanel",
        cli="backends.operator.cli:main",
    ),
)


def _external() -> list[PanelSpec]:
    specs = []
    for ep in entry_points(group="visual_lab.panels"):
        try:
            spec = ep.load()
            spec = spec() if callable(spec) and not isinstance(spec, PanelSpec) else spec
            if isinstance(spec, PanelSpec):
                specs.append(spec)
        except Exception:  # a broken plug-in must not stop the app
            continue
    return specs


def panels() -> dict[str, PanelSpec]:
    """All registered panels, built-in first, by key."""
    out = {s.key: s for s in BUILTIN}
    for s in _external():
        out.setdefault(s.key, s)
    return out


def spec(key: str) -> PanelSpec:
    specs = panels()
    if key not in specs:
        raise UserError(f"unknown panel {key!r}; known panels: {', '.join(specs)}")
    return specs[key]


def load(target: str) -> Any:
    """Import "package.module:attr" and return the attribute."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def panel_class(key: str) -> type:
    return load(spec(key).panel)


def cli_main(key: str, render: bool = False) -> Callable[[list[str]], int]:
    s = spec(key)
    target = s.render_cli if render else s.cli
    if not target:
        what = "render" if render else "run"
        raise UserError(f"panel {key!r} has no headless `{what}` command")
    return load(target)
