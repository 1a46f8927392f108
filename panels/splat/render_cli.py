"""`visual-lab render splat ...`: the backend's CLI, with the GL renderer plugged in from this (GUI) layer.

The reference renderer path imports no Qt or vispy; ``--renderer gl`` imports the instanced GL visual on demand.
"""

from __future__ import annotations

from backends.common import UserError
from backends.splat.cli import render_main


def _gl_renderer(g, camera, background, time=None):
    import os
    import sys

    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        raise UserError(
            "the GL renderer needs a display (DISPLAY is not set): use --renderer cpu or reference, or xvfb-run"
        )
    try:
        from panels.splat import visuals
    except ImportError as exc:
        raise UserError(
            f"the GL renderer needs vispy and an OpenGL context ({exc}); use --renderer reference"
        ) from None
    from app.gl import gl_info

    info = gl_info()
    if "error" in info:
        raise UserError(f"no OpenGL available for --renderer gl ({info['error']}); use --renderer cpu")
    return visuals.render_offscreen(g, camera, background, time=time)


def main(argv: list[str]) -> int:
    return render_main(argv, gl_renderer=_gl_renderer)
