"""OpenGL availability and renderer info, asked once through a tiny hidden vispy canvas."""

from __future__ import annotations

import functools


def setup_qt_for_vispy() -> None:
    """Must run before the QApplication exists: vispy on PySide6 with shared GL contexts (floating docks)."""
    import vispy
    from PySide6.QtCore import QCoreApplication, Qt

    QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    vispy.use(app="pyside6")


@functools.lru_cache(maxsize=1)
def gl_info() -> dict[str, str]:
    """{'renderer': ..., 'version': ...} or {'error': why} when no OpenGL context can be made."""
    try:
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
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable GL"
        return {"error": f"{type(exc).__name__}: {exc}"}


def gl_available() -> bool:
    return "error" not in gl_info()
