"""Backends: pure numpy/torch compute. Never import Qt, vispy, pyqtgraph, app or panels."""
