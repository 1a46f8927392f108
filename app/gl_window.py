"""vispy canvases as native OpenGL child windows (``QOpenGLWindow`` in a window container).

vispy's stock PySide6 backend is a ``QOpenGLWidget``. One of those anywhere in a window switches Qt to composing
the *whole* top-level window with OpenGL on every frame: the canvas is drawn into a texture, then the window's
backing store and that texture are drawn again and the full window is swapped. With a software rasterizer
(Mesa llvmpipe) that costs 50–70 ms a frame in a 1600x1000 window, whatever the canvas shows. A native child
window swaps only its own pixels, and the rest of the window stays a plain raster surface: an empty canvas goes
from about 15 to about 100 frames/s on the 2-core development machine.

``canvas.native`` stays a ``QWidget`` (the container), so panels lay it out like any widget. Two things differ:
``QWidget.grab()`` does not see native child windows (use :func:`grab_widget`), and a synchronous repaint is
:func:`paint_now`. Set ``VISUAL_LAB_GL_WIDGET=1`` to get vispy's ``QOpenGLWidget`` back.
"""

from __future__ import annotations

import atexit
import weakref

import numpy as np
import shiboken6
import vispy
from PySide6 import QtCore, QtGui
from PySide6.QtOpenGL import QOpenGLWindow
from PySide6.QtWidgets import QVBoxLayout, QWidget

vispy.use(app="pyside6")  # vispy's Qt module must be imported through its PySide6 proxy

from vispy.app.backends import _qt  # noqa: E402

_CANVASES: weakref.WeakSet = weakref.WeakSet()  # live backends: grab_widget and the exit clean-up


class _CanvasHost(QWidget):
    """The widget panels lay out: holds the window container and reports the canvas size as its size hint
    (a bare window container hints a small default size, which squeezes the canvas in splitters)."""

    def __init__(self, window: QOpenGLWindow, parent=None) -> None:
        super().__init__(parent)
        self._hint = QtCore.QSize(640, 480)
        inner = QWidget.createWindowContainer(window, self)
        inner.setFocusPolicy(QtCore.Qt.FocusPolicy.WheelFocus)
        self.setFocusProxy(inner)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(inner)

    def sizeHint(self) -> QtCore.QSize:
        return self._hint

    def resize_hint(self, w: int, h: int) -> None:
        self._hint = QtCore.QSize(int(w), int(h))
        self.updateGeometry()


class CanvasBackendWindow(_qt.QtBaseCanvasBackend, QOpenGLWindow):
    """vispy's Qt canvas backend on a ``QOpenGLWindow``; the container widget is ``canvas.native``."""

    def _init_specific(self, p, kwargs) -> None:
        fmt = _qt._set_config(p.context.config)
        fmt.setSwapInterval(0)  # never wait for a vertical blank: frames are paced by the panels
        p.context.shared.add_ref("qt", self)
        QOpenGLWindow.__init__(self, QOpenGLWindow.UpdateBehavior.NoPartialUpdate)
        self.setFormat(fmt)
        self._container = _CanvasHost(self, p.parent)
        # PySide leaves this window owned by Python after createWindowContainer. Were its wrapper collected
        # while the container lives, the container would point at a deleted window: the host keeps it.
        self._container.gl_window = self
        # GL work before the window is first exposed (uploads, off-screen renders) runs in a context that
        # shares objects with every window's context (AA_ShareOpenGLContexts), on an off-screen surface.
        self._offscreen_context = QtGui.QOpenGLContext(self)
        self._offscreen_context.setShareContext(QtGui.QOpenGLContext.globalShareContext())
        self._offscreen_context.setFormat(fmt)
        self._offscreen_context.create()
        self._surface = QtGui.QOffscreenSurface(None, self)
        self._surface.setFormat(fmt)
        self._surface.create()
        self._offscreen_context.makeCurrent(self._surface)
        self._size_override: tuple[int, int] | None = None
        self._initialized = True
        _CANVASES.add(self)

    # -- QWidget-isms the base class uses -----------------------------------------------------------------
    def setMouseTracking(self, on: bool) -> None:  # a QWindow always receives mouse moves
        pass

    def setWindowTitle(self, title: str) -> None:
        self.setTitle(title)

    def devicePixelRatioF(self) -> float:
        return float(self.devicePixelRatio())

    def setFixedSize(self, size) -> None:
        self._container.setFixedSize(size)

    def _vispy_get_native_canvas(self) -> QWidget:
        return self._container

    def _vispy_set_size(self, w: int, h: int) -> None:
        """Resize at once, as a widget does. Off-screen renders set the canvas size, draw and set it back;
        in a layout the container owns the on-screen size, so vispy is told the requested size directly
        (a native window's own resize event would arrive late, or never when the size is set back)."""
        w, h = int(w), int(h)
        self._container.resize_hint(w, h)
        if self._container.parentWidget() is None:
            self._container.resize(w, h)
            self.resize(w, h)
        self._size_override = None if (w, h) == (self.width(), self.height()) else (w, h)
        self._emit_resize()

    def _vispy_get_size(self) -> tuple[int, int]:
        return getattr(self, "_size_override", None) or (self.width(), self.height())

    def _emit_resize(self) -> None:
        if self._vispy_canvas is None:
            return
        w, h = self._vispy_get_size()
        r = self.devicePixelRatioF()
        phys = (int(w * r), int(h * r))
        self._vispy_set_physical_size(*phys)
        self._vispy_canvas.events.resize(size=(w, h), physical_size=phys)

    def _vispy_set_position(self, x: int, y: int) -> None:
        self._container.move(x, y)

    def _vispy_set_visible(self, visible: bool) -> None:
        self._container.setVisible(bool(visible))

    # -- GL ----------------------------------------------------------------------------------------------
    def _vispy_set_current(self) -> None:
        if self._vispy_canvas is None:
            return
        if self.context() is not None and self.isExposed():
            self.makeCurrent()
        else:
            self._offscreen_context.makeCurrent(self._surface)

    def _vispy_swap_buffers(self) -> None:
        pass  # QOpenGLWindow swaps after paintGL

    def _vispy_get_fb_bind_location(self) -> int:
        ctx = QtGui.QOpenGLContext.currentContext()
        return int(self.defaultFramebufferObject()) if ctx is self.context() else 0

    def _vispy_close(self) -> None:
        """Delete the host widget now (with its window container and this window). Left to deleteLater, a
        parentless host could outlive this window's Python wrapper and crash QApplication's destructor."""
        _CANVASES.discard(self)
        box = self._container
        if shiboken6.isValid(box):
            box.hide()
            shiboken6.delete(box)

    def initializeGL(self) -> None:
        if self._vispy_canvas is not None:
            self._vispy_canvas.events.initialize()

    def resizeGL(self, w: int, h: int) -> None:  # the window system resized the window
        self._size_override = None
        self._emit_resize()

    def paintGL(self) -> None:
        if self._vispy_canvas is None:
            return
        self._vispy_canvas.set_current()
        self._vispy_canvas.events.draw(region=None)

    def paint_now(self) -> bool:
        """Draw and swap synchronously (what ``QWidget.repaint`` is for a widget); False if not on screen."""
        if not self.isExposed():
            return False
        QtCore.QCoreApplication.sendEvent(self, QtCore.QEvent(QtCore.QEvent.Type.UpdateRequest))
        return True


@atexit.register
def _delete_canvases_before_qt() -> None:
    """At exit PySide first deletes the Python-owned objects (these windows among them), then QApplication
    destroys the remaining widgets, and a window container whose window is gone crashes there. Registered
    after PySide's own exit hook, this runs before it and deletes each canvas host (container and window
    with it) while everything is still consistent."""
    for backend in list(_CANVASES):
        box = getattr(backend, "_container", None)
        if box is not None and shiboken6.isValid(box):
            shiboken6.delete(box)
    _CANVASES.clear()


def install() -> None:
    """Make every vispy canvas created from now on a native GL window (call after ``vispy.use``)."""
    from vispy.app.backends import _pyside6

    _pyside6.CanvasBackend = CanvasBackendWindow


def paint_now(canvas) -> None:
    """Synchronous draw of a vispy canvas on screen, whichever backend it uses."""
    backend = canvas._backend
    if isinstance(backend, CanvasBackendWindow):
        backend.paint_now()
    else:
        canvas.native.repaint()


def grab_widget(widget: QWidget) -> QtGui.QImage:
    """``widget.grab()`` with the vispy canvases inside it drawn in (native windows are not grabbed by Qt)."""
    image = widget.grab().toImage().convertToFormat(QtGui.QImage.Format.Format_RGBA8888)
    painter = QtGui.QPainter(image)
    try:
        for backend in list(_CANVASES):
            box = backend._container
            canvas = backend._vispy_canvas
            if not shiboken6.isValid(box) or not shiboken6.isValid(backend):
                continue  # the widget tree it lived in is gone
            if canvas is None or not box.isVisible() or not widget.isAncestorOf(box):
                continue
            w, h = box.width(), box.height()
            if w < 1 or h < 1:
                continue
            rgba = np.ascontiguousarray(canvas.render(size=(w, h), alpha=False)[..., :3])
            tile = QtGui.QImage(rgba.data, w, h, 3 * w, QtGui.QImage.Format.Format_RGB888).copy()
            origin = box.mapTo(widget, QtCore.QPoint(0, 0))
            painter.drawImage(QtCore.QRectF(origin.x(), origin.y(), w, h), tile)
    finally:
        painter.end()
    return image
