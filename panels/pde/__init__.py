"""PDE fields panel (see :mod:`panels.pde.panel`)."""
