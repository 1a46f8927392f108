"""Diffusion sampler panel."""
