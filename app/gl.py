"""OpenGL availability and renderer info, asked once through a tiny hidden vispy canvas."""

from __future__ import annotations

import functools


def setup_qt_for_vispy(import_vispy: bool = True) -> None:
    """Must run before the QApplication exists: shared GL contexts (canvases in docks keep drawing).

    ``import_vispy=False`` defers the vispy import (about a second) to :func:`use_vispy`, called before the first
    canvas, so the window can appear first.
    """
    import os

    from PySide6.QtCore import QCoreApplication, Qt

    # A native GL window (app.gl_window) repaints on QWindow.requestUpdate, which Qt delays by an idle
    # timer of 5 ms by default: that caps a canvas updated in a loop near 60 frames/s for no reason.
    os.environ.setdefault("QT_QPA_UPDATE_IDLE_TIME", "0")
    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    if import_vispy:
        use_vispy()


@functools.lru_cache(maxsize=1)
def use_vispy() -> None:
    """Select vispy's PySide6 backend (it reuses the existing QApplication), with canvases as native GL
    child windows (:mod:`app.gl_window`) unless ``VISUAL_LAB_GL_WIDGET=1``."""
    import os

    import vispy

    vispy.use(app="pyside6")
    if os.environ.get("VISUAL_LAB_GL_WIDGET", "") != "1":
        from app.gl_window import install

        install()


@functools.lru_cache(maxsize=1)
def gl_info() -> dict[str, str]:
    """{'renderer': ..., 'version': ...} or {'error': why} when no OpenGL context can be made."""
    try:
        use_vispy()
        from vispy import gloo, scene

        canvas = scene.SceneCanvas(size=(8, 8), show=False)
        try:
            canvas.render(size=(8, 8))
            info = {
                "renderer": gloo.gl.glGetParameter(gloo.gl.GL_RENDERER),
                "version": gloo.gl.glGetParameter(gloo.gl.GL_VERSION),
            }
        finally:
            canvas.close()
        return info
    except Exception as exc:  # any failure means "no usable GL"
        return {"error": f"{type(exc).__name__}: {exc}"}
