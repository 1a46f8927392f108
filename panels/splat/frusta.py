"""Scene cameras drawn as wireframe frusta over the splats, with the viewer's own pinhole camera (the splat
node sets no vispy transforms), and picking a frustum under the mouse.

The vertex shader outputs homogeneous clip coordinates, so OpenGL clips segments that pass behind the eye.
Frusta are a view aid: off-screen renders (exports, videos) draw the splats only.
"""

from __future__ import annotations

import numpy as np
from vispy import gloo, scene
from vispy.visuals import Visual

from backends.splat.camera import Camera

VERT = """
uniform mat4 u_view;
uniform vec4 u_intr;
uniform vec2 u_size;
attribute vec3 a_pos;
void main() {
    vec4 pc = u_view * vec4(a_pos, 1.0);
    float z = pc.z;
    float n = 1e-3; float f = 1e6;
    float x = 2.0 * (u_intr.x * pc.x + u_intr.z * z) / u_size.x - z;
    float y = z - 2.0 * (u_intr.y * pc.y + u_intr.w * z) / u_size.y;
    gl_Position = vec4(x, y, (f + n) / (f - n) * z - 2.0 * f * n / (f - n), z);
}
"""
FRAG = """
uniform vec4 u_color;
void main() { gl_FragColor = u_color; }
"""
#: a click within this many pixels of a camera's projected centre picks it
PICK_PIXELS = 14


class FrustumVisual(Visual):
    def __init__(self, color=(1.0, 0.6, 0.1, 1.0)):
        Visual.__init__(self, vcode=VERT, fcode=FRAG)
        self._draw_mode = "lines"
        self.set_gl_state(blend=False, depth_test=False, cull_face=False, line_width=1.5)
        self.shared_program["u_color"] = color
        self.shared_program["a_pos"] = gloo.VertexBuffer(np.zeros((2, 3), np.float32))
        self.count = 0

    def set_segments(self, points: np.ndarray) -> None:
        """(2M, 3) world points, pairs of segment ends."""
        pts = np.ascontiguousarray(points, np.float32).reshape(-1, 3)
        self.count = len(pts)
        if self.count:
            self.shared_program["a_pos"] = gloo.VertexBuffer(pts)
        self.update()

    def set_camera(self, cam: Camera) -> None:
        self.shared_program["u_view"] = np.asarray(cam.viewmat, np.float32).T.copy()
        self.shared_program["u_intr"] = (cam.fx, cam.fy, cam.cx, cam.cy)
        self.shared_program["u_size"] = (float(cam.width), float(cam.height))

    def _prepare_transforms(self, view):  # the camera is our own uniforms
        pass

    def _prepare_draw(self, view):
        return self.count > 0


FrustumNode = scene.visuals.create_visual_node(FrustumVisual)


def pick_camera(cams: tuple[Camera, ...], view: Camera, x: float, y: float) -> int | None:
    """The scene camera whose centre projects nearest to pixel (x, y) of ``view``, within PICK_PIXELS."""
    best, best_d = None, float(PICK_PIXELS)
    for i, c in enumerate(cams):
        pc = view.viewmat[:3, :3] @ c.position + view.viewmat[:3, 3]
        if pc[2] <= 1e-6:
            continue
        u, v = view.fx * pc[0] / pc[2] + view.cx, view.fy * pc[1] / pc[2] + view.cy
        d = float(np.hypot(u - x, v - y))
        if d <= best_d:
            best, best_d = i, d
    return best
