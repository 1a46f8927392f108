"""Large animated point clouds drawn fast on a software OpenGL.

``PointImage`` stamps the dots into an image on the CPU (``backends.dots``) and draws it as one texture.
Earlier versions used vispy ``Markers`` (ten attributes per point, a signed-distance shader per fragment) and
then plain ``GL_POINTS``; on Mesa's llvmpipe both pay ~0.75 us of per-primitive setup for every point.
"""

from __future__ import annotations

import numpy as np
from vispy import gloo
from vispy.scene.visuals import create_visual_node
from vispy.visuals import Visual

from backends import dots

_IMAGE_VERT = """
attribute vec2 a_ndc;
varying vec2 v_uv;
void main() {
    v_uv = 0.5 * (a_ndc + 1.0);
    gl_Position = vec4(a_ndc, 0.0, 1.0);
}
"""

_IMAGE_FRAG = """
uniform sampler2D u_tex;
varying vec2 v_uv;
void main() { gl_FragColor = texture2D(u_tex, v_uv); }
"""


def _rgba_u32(rgba: np.ndarray) -> np.ndarray:
    """(N, 4) floats in [0, 1] -> one packed RGBA8 word per row (the texture's byte order)."""
    u8 = np.ascontiguousarray(np.clip(np.round(np.asarray(rgba, np.float32) * 255), 0, 255).astype(np.uint8))
    return u8.view(np.uint32).reshape(-1)


class PointImageVisual(Visual):
    """An animated point cloud drawn as one opaque image: dots stamped on the CPU, uploaded, drawn as one quad.

    Why: on Mesa's software rasterizer every GL point costs ~0.75 us of per-primitive setup, so 20,000 points
    take 15-20 ms a frame however small they are, while ``backends.dots`` stamps them in a fraction of a ms
    and one opaque, unblended texture over the canvas costs llvmpipe ~10 ms. The dots are placed at draw time with
    the visual's transform to the framebuffer, so any camera and any ``canvas.render(size)`` work.

    What it draws, bottom to top, over ``background``: an optional underlay of translucent points of one
    colour, composited exactly as GL blending would (per pixel: 1 - (1 - a)^count), then the points, each
    pre-blended over the background with its own alpha; where dots overlap the later one wins. The image is
    opaque, covers the whole viewport and is not clipped: use it as the bottom layer of a view that fills its
    canvas, and draw lines and overlays after it.
    """

    def __init__(self, size: float = 4.0, background=(0.0, 0.0, 0.0, 1.0)) -> None:
        super().__init__(vcode=_IMAGE_VERT, fcode=_IMAGE_FRAG)
        self._draw_mode = "triangle_strip"
        self._size = float(size)
        self._n = 0
        self._pos = np.zeros((0, 2), np.float32)
        self._rgba = np.zeros(0, np.uint32)
        self._colors = np.zeros((0, 4), np.float32)
        self._bg = np.asarray(background, np.float32)[:3]
        self._under: tuple[np.ndarray, np.ndarray, float] | None = None
        self._image = np.zeros((1, 1), np.uint32)
        self._counts = np.zeros((1, 1), np.int32)
        self._tex = gloo.Texture2D(np.zeros((1, 1, 4), np.uint8), interpolation="nearest")
        self.shared_program["u_tex"] = self._tex
        quad = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        self.shared_program["a_ndc"] = gloo.VertexBuffer(quad)
        self.set_gl_state(None, blend=False, depth_test=False, cull_face=False)

    @property
    def count(self) -> int:
        return self._n

    def set_data(self, pos=None, color=None, size: float | None = None) -> None:
        """``pos`` (N, 2) data coordinates; ``color`` (N, 4) or one RGBA; ``size`` in pixels (as PointCloud)."""
        if size is not None:
            self._size = float(size)
        if pos is not None:
            pos = np.ascontiguousarray(np.asarray(pos, np.float32)[:, :2])
            if len(pos) != self._n and color is None:
                raise ValueError("a new point count needs colours")
            self._n = len(pos)
            self._pos = pos
        if color is not None:
            c = np.asarray(color, np.float32)
            c = np.broadcast_to(c[:4], (self._n, 4)) if c.ndim == 1 else c
            if len(c) != self._n:
                raise ValueError(f"{len(c)} colours for {self._n} points")
            self._colors = c
            a = c[:, 3:4]
            self._rgba = _rgba_u32(np.concatenate([a * c[:, :3] + (1 - a) * self._bg, np.ones_like(a)], 1))
        self.update()

    def set_underlay(self, pos: np.ndarray | None, color=(1.0, 1.0, 1.0, 0.3), size: float = 3.0) -> None:
        """Translucent points of one colour under the others (e.g. target samples); None removes them."""
        if pos is None or len(pos) == 0:
            self._under = None
        else:
            self._under = (np.ascontiguousarray(np.asarray(pos, np.float32)[:, :2]), np.asarray(color), size)
        self.update()

    def _prepare_transforms(self, view) -> None:
        pass  # the quad is in normalized device coordinates; the dots are placed on the CPU

    def _prepare_draw(self, view) -> bool:
        fb = view.transforms.framebuffer_transform
        corners = fb.imap(np.array([[-1.0, -1.0], [1.0, 1.0]]))[:, :2]
        w, h = (int(round(v)) for v in np.abs(corners[1] - corners[0]))
        if w < 1 or h < 1:
            return False
        # visual -> normalized device coordinates -> viewport pixels, y up (the rows GL expects in a texture);
        # the map is affine in 2-D views
        m = view.transforms.get_transform("visual", "render").map(np.array([[0.0, 0], [1, 0], [0, 1]]))
        m = (m[:, :2] / m[:, 3:4] + 1.0) * (0.5 * np.array([w, h]))
        lin = np.stack([m[1] - m[0], m[2] - m[0]]).astype(np.float32)
        shift = m[0].astype(np.float32)
        if self._image.shape != (h, w):
            self._image = np.empty((h, w), np.uint32)
            self._counts = np.empty((h, w), np.int32)
        img = self._image
        scale = float(getattr(view.transforms, "pixel_scale", 1.0))
        bg = np.concatenate([self._bg, [1.0]])
        if self._under is not None:
            upos, ucol, usize = self._under
            px = upos @ lin + shift
            self._counts.fill(0)
            dots.count(self._counts, px[:, 0], px[:, 1], max(1, round(usize * scale)))
            cover = 1.0 - (1.0 - float(ucol[3])) ** np.arange(64)  # GL blending of k equal dots (k >= 63: 63)
            shades = _rgba_u32(bg[None] + cover[:, None] * (np.r_[ucol[:3], 1.0] - bg)[None])
            dots.lookup(self._counts, shades, img)
        else:
            img.fill(_rgba_u32(bg[None])[0])
        if self._n:
            px = self._pos @ lin + shift
            dots.stamp(img, px[:, 0], px[:, 1], self._rgba, max(1, round(self._size * scale)))
        self._tex.set_data(img.view(np.uint8).reshape(h, w, 4))
        return True

    def _compute_bounds(self, axis: int, view):
        if self._n == 0 or axis > 1:
            return None
        v = self._pos[:, axis]  # on demand (a camera's set_range): a per-frame min/max would cost ~2 ms
        return float(np.nanmin(v)), float(np.nanmax(v))


class PointImage(create_visual_node(PointImageVisual)):
    def _set_clipper(self, node, clipper) -> None:
        """No view clipper: the image is opaque and full-viewport by design, and a per-fragment clip test
        would double its fill cost on llvmpipe."""
