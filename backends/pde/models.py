"""Build any live field simulation from a model name: the one place that knows every model module."""

from __future__ import annotations

from backends.common import UserError

from .base import MODELS, FieldSim
from .fields import Burgers, BurgersConfig, GrayScott, GrayScottConfig, Heat, HeatConfig, Wave, WaveConfig
from .ns import NavierStokes2D, NSConfig


def make_simulation(model: str, **kwargs) -> FieldSim:
    """Build a simulation from a model name (see :data:`MODELS`) and its config keyword arguments."""
    if model == "navier-stokes":
        return NavierStokes2D(NSConfig(**kwargs))
    if model == "gray-scott":
        return GrayScott(GrayScottConfig(**kwargs))
    if model == "heat":
        return Heat(HeatConfig(**kwargs))
    if model == "wave":
        return Wave(WaveConfig(**kwargs))
    if model == "burgers":
        return Burgers(BurgersConfig(**kwargs))
    raise UserError(f"unknown model {model!r}: choose one of {', '.join(MODELS)} (or darcy)")
