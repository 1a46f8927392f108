"""A lean point-sprite visual for animated particle clouds: one vertex and one colour per point.

vispy's ``Markers`` packs ten attributes per point on every ``set_data`` and runs a signed-distance shader per
fragment. On Mesa's software rasterizer a frame of 20,000 markers costs tens of milliseconds, most of it per
vertex. This visual uploads only what changed (positions every frame, colours only when they change) and draws
``GL_POINTS`` with a round cut-out, which keeps a 20,000-particle animation above 30 frames/s there.
"""

from __future__ import annotations

import numpy as np
from vispy import gloo
from vispy.scene.visuals import create_visual_node
from vispy.visuals import Visual

_VERT = """
attribute vec2 a_position;
attribute vec4 a_color;
uniform float u_size;
varying vec4 v_color;
void main() {
    gl_Position = $transform(vec4(a_position, 0.0, 1.0));
    gl_PointSize = u_size;
    v_color = a_color;
}
"""

_FRAG = """
varying vec4 v_color;
void main() {
    vec2 d = gl_PointCoord - vec2(0.5);
    if (dot(d, d) > 0.25) discard;
    gl_FragColor = v_color;
}
"""


class PointCloudVisual(Visual):
    """Round dots of one pixel size; ``set_data`` accepts any subset of positions, colours and size."""

    def __init__(self, size: float = 4.0) -> None:
        super().__init__(vcode=_VERT, fcode=_FRAG)
        self._draw_mode = "points"
        self._size = float(size)
        self._n = 0
        self._pos = gloo.VertexBuffer(np.zeros((1, 2), np.float32))
        self._color = gloo.VertexBuffer(np.ones((1, 4), np.float32))
        self.shared_program["a_position"] = self._pos
        self.shared_program["a_color"] = self._color
        self._bounds = np.zeros((2, 2))
        self.set_gl_state("translucent", depth_test=False)

    @property
    def count(self) -> int:
        return self._n

    def set_data(
        self,
        pos: np.ndarray | None = None,
        color: np.ndarray | tuple | None = None,
        size: float | None = None,
    ) -> None:
        """``pos`` (N, 2) data coordinates; ``color`` (N, 4) or one RGBA for all; ``size`` in pixels.

        New positions with a different count need colours too (one RGBA is broadcast).
        """
        if size is not None:
            self._size = float(size)
        if pos is not None:
            pos = np.ascontiguousarray(np.asarray(pos, np.float32)[:, :2])
            if len(pos) != self._n and color is None:
                raise ValueError("a new point count needs colours")
            self._n = len(pos)
            self._pos.set_data(pos if self._n else np.zeros((1, 2), np.float32))
            if self._n:
                self._bounds = np.stack([pos.min(axis=0), pos.max(axis=0)], axis=1)
        if color is not None:
            c = np.asarray(color, np.float32)
            if c.ndim == 1:
                c = np.broadcast_to(c[:4], (max(self._n, 1), 4))
            if len(c) != max(self._n, 1) and self._n:
                raise ValueError(f"{len(c)} colours for {self._n} points")
            self._color.set_data(np.ascontiguousarray(c if self._n else np.ones((1, 4), np.float32)))
        self.update()

    def _prepare_transforms(self, view) -> None:
        view.view_program.vert["transform"] = view.get_transform()

    def _prepare_draw(self, view) -> bool:
        if self._n == 0:
            return False
        scale = float(getattr(view.transforms, "pixel_scale", 1.0))
        view.view_program["u_size"] = self._size * scale
        return True

    def _compute_bounds(self, axis: int, view):
        if self._n == 0 or axis > 1:
            return None
        return tuple(self._bounds[axis])


PointCloud = create_visual_node(PointCloudVisual)
