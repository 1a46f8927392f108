"""PDE fields: pseudo-spectral Navier-Stokes, Gray-Scott, heat, wave, Burgers, Darcy with Krylov recycling.

Pure numpy/torch. Every model is a *simulation* object with the same small API (see :mod:`.base`):
``sim.step(k)``, ``sim.t``, ``sim.field()``, ``sim.velocity()``, ``sim.diagnostics()``, ``sim.spectrum()``,
``sim.paint(x, y, amount, radius, target)``; :func:`make_simulation` builds one from a model name.
"""

from .base import MODELS, FieldSim, Frame, run
from .models import make_simulation

__all__ = ["MODELS", "Frame", "FieldSim", "make_simulation", "run"]
