"""Panels: one package per domain. Widgets, vispy visuals and plots; no heavy math."""
