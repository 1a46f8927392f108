"""The instanced GL splat visual: every Gaussian is one instance of a 4-vertex quad.

Per instance (``VertexBuffer(divisor=1)``, float32): the mean, the six entries of the 3D covariance and
RGB + opacity. The vertex shader projects the covariance exactly as the reference rasterizer does
(EWA: J W S W^T J^T + 0.3 I with gsplat's frustum clamp), sizes the quad to the 3-sigma radius and passes
the inverse 2D covariance; the fragment shader evaluates alpha = min(0.99, o exp(-1/2 d^T S2D^-1 d)),
discards alpha < 1/255 and writes premultiplied colour. Instances are drawn back to front (sorted off the
GUI thread) with blend (ONE, ONE_MINUS_SRC_ALPHA), which equals front-to-back compositing.

Speed on Mesa llvmpipe (2 cores; docs/benchmarks/splat.md): the vertex stage and primitive setup run on one
thread (100k splats into a 64x48 target still take ~0.18 s on the loaded machine) and the fill takes the rest
of a full-resolution frame. Alternatives measured side by side and not taken: one GL_POINTS sprite per splat
(less setup, but square sprites fill more for elongated splats, so the real guitar scene drew slower; capped at
255 px and dropped when their centre leaves the view) and projecting on the CPU so the vertex shader is
trivial (~5% less GL time, more CPU time than it saves). What helps while the view moves is drawing fewer
splats (the panel's level of detail) at a lower resolution: ``scale`` < 1 draws into an off-screen texture of
``scale`` times the canvas size (fill falls with the square of ``scale``) that is stretched over the canvas
with the same premultiplied blend. Still frames of many splats can be drawn progressively (``chunk``).
"""

from __future__ import annotations

import time

import numpy as np
from vispy import gloo, scene
from vispy.visuals import Visual

from backends.splat import tile_raster
from backends.splat.camera import Camera
from backends.splat.gaussians import Gaussians
from backends.splat.live import sort_back_to_front
from backends.splat.tile_raster import scene_rows

gloo.gl.use_gl("gl+")  # instancing (glDrawArraysInstanced, glVertexAttribDivisor) needs the PyOpenGL backend

VERT = """
uniform mat4 u_view;
uniform vec4 u_intr;
uniform vec2 u_size;
attribute vec2 a_corner;
attribute vec3 a_center;
attribute vec3 a_cov_a;
attribute vec3 a_cov_b;
attribute vec4 a_color;
varying vec4 v_color;
varying vec2 v_d;
varying vec3 v_conic;
void main() {
    vec4 pc = u_view * vec4(a_center, 1.0);
    float z = pc.z;
    v_color = a_color;
    v_conic = vec3(0.0);
    v_d = vec2(0.0);
    if (z <= 0.01) { gl_Position = vec4(0.0, 0.0, 2.0, 1.0); return; }
    float fx = u_intr.x; float fy = u_intr.y; float cx = u_intr.z; float cy = u_intr.w;
    float tanx = 0.5 * u_size.x / fx; float tany = 0.5 * u_size.y / fy;
    float tx = z * clamp(pc.x / z, -(cx / fx + 0.3 * tanx), (u_size.x - cx) / fx + 0.3 * tanx);
    float ty = z * clamp(pc.y / z, -(cy / fy + 0.3 * tany), (u_size.y - cy) / fy + 0.3 * tany);
    vec3 j0 = vec3(fx / z, 0.0, -fx * tx / (z * z));
    vec3 j1 = vec3(0.0, fy / z, -fy * ty / (z * z));
    mat3 W = mat3(u_view);
    vec3 t0 = j0 * W;
    vec3 t1 = j1 * W;
    mat3 S = mat3(a_cov_a.x, a_cov_a.y, a_cov_a.z,
                  a_cov_a.y, a_cov_b.x, a_cov_b.y,
                  a_cov_a.z, a_cov_b.y, a_cov_b.z);
    float a = dot(t0, S * t0) + 0.3;
    float b = dot(t0, S * t1);
    float c = dot(t1, S * t1) + 0.3;
    float det = a * c - b * b;
    if (det <= 0.0) { gl_Position = vec4(0.0, 0.0, 2.0, 1.0); return; }
    float mid = 0.5 * (a + c);
    float disc = sqrt(max(0.0, mid * mid - det));
    float lam1 = mid + disc;
    float lam2 = max(mid - disc, 1e-6);  // exact eigenvalues (the 3DGS 0.1 guard is for tile culling only)
    // oriented quad: +- k sigma along the eigenvectors, k = the radius where alpha falls to 1/255 (<= 3.33)
    float k = sqrt(max(2.0 * log(255.0 * a_color.a), 0.0));
    if (k <= 0.0) { gl_Position = vec4(0.0, 0.0, 2.0, 1.0); return; }
    vec2 e1 = abs(b) > 1e-9 ? normalize(vec2(b, lam1 - a)) : (a >= c ? vec2(1.0, 0.0) : vec2(0.0, 1.0));
    vec2 e2 = vec2(-e1.y, e1.x);
    v_conic = vec3(c / det, -b / det, a / det);
    vec2 uv = vec2(fx * pc.x / z + cx, fy * pc.y / z + cy);
    vec2 off = a_corner.x * k * sqrt(lam1) * e1 + a_corner.y * k * sqrt(lam2) * e2;
    v_d = off;
    vec2 p = uv + off;
    gl_Position = vec4(2.0 * p.x / u_size.x - 1.0, 1.0 - 2.0 * p.y / u_size.y, 0.0, 1.0);
}
"""

FRAG = """
varying vec4 v_color;
varying vec2 v_d;
varying vec3 v_conic;
void main() {
    float power = -0.5 * (v_conic.x * v_d.x * v_d.x + v_conic.z * v_d.y * v_d.y) - v_conic.y * v_d.x * v_d.y;
    if (power > 0.0) discard;
    float alpha = min(0.99, v_color.a * exp(max(power, -30.0)));
    if (alpha < 1.0 / 255.0) discard;
    gl_FragColor = vec4(v_color.rgb * alpha, alpha);
}
"""


# off-screen frames are stretched with nearest sampling: smooth splats look the same at 2x, and on llvmpipe it
# makes the 800x600 stretch ~3x cheaper than linear (5.6 vs 16.7 ms a moving frame on the loaded machine)
STRETCH_FILTER = "nearest"
BLIT_VERT = """
attribute vec2 a_pos;
varying vec2 v_uv;
void main() { v_uv = 0.5 * (a_pos + 1.0); gl_Position = vec4(a_pos, 0.0, 1.0); }
"""
BLIT_FRAG = """
uniform sampler2D u_tex;
varying vec2 v_uv;
void main() { gl_FragColor = texture2D(u_tex, v_uv); }
"""
# a CPU-rasterized frame: image rows top to bottom, opaque (the background is composited in)
IMAGE_VERT = """
attribute vec2 a_pos;
varying vec2 v_uv;
void main() { v_uv = vec2(0.5 * (a_pos.x + 1.0), 0.5 * (1.0 - a_pos.y)); gl_Position = vec4(a_pos, 0.0, 1.0); }
"""
SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "software")
#: the fewest splats an adaptive progressive paint draws (see ``SplatVisual.chunk_target_s``)
MIN_CHUNK = 5000
#: the per-instance GL attributes and their columns of the (N, 13) rows
PARTS = {"a_center": (0, 3), "a_cov_a": (3, 6), "a_cov_b": (6, 9), "a_color": (9, 13)}


def instance_parts(rows: np.ndarray) -> dict[str, np.ndarray]:
    """The GL instance buffers' contiguous float32 columns of the rows (a worker can make them: 0.1 s for 300k
    rows on the loaded 2 cores, which the GUI thread then saves)."""
    return {name: np.ascontiguousarray(rows[:, a:b], np.float32) for name, (a, b) in PARTS.items()}


def is_software_gl() -> bool:
    """The current OpenGL context is a software rasterizer (its buffers live in host memory)."""
    name = str(gloo.gl.glGetParameter(gloo.gl.GL_RENDERER)).lower()
    return any(k in name for k in SOFTWARE_GL)


def resolve_renderer(choice: str) -> str:
    """'auto' -> 'cpu' on a software OpenGL (its per-primitive cost makes instanced quads slow) once the
    rasterizer's kernels are compiled (``tile_raster.warmup``, ~17 s the very first time), else 'gl'.
    Call with a current GL context."""
    if choice != "auto":
        return choice
    return "cpu" if is_software_gl() and tile_raster.ready() else "gl"


class SplatVisual(Visual):
    """All splats as one instanced draw call, or (``renderer`` 'cpu') as one image from the numba tile
    rasterizer (``backends.splat.tile_raster``, exact 3DGS compositing) drawn as a texture. 'auto' picks 'cpu'
    on a software OpenGL such as Mesa llvmpipe, where 100k instanced quads cost ~0.14 s of primitive setup
    alone, and 'gl' on a GPU.

    ``scale`` < 1 draws at ``scale`` times the camera's resolution and stretches the result over the canvas.
    ``chunk`` > 0 (and more splats than that) draws a still frame progressively: each paint adds the next
    ``chunk`` splats (back to front) into an off-screen texture and shows the last reduced-resolution frame
    of the same view until the texture is complete (``pending`` tells the caller to paint again), so the GUI
    answers between chunks; a finished still frame is redrawn as one texture copy. ``chunk_target_s`` > 0 sizes
    each chunk (at most ``chunk``) from the measured time per splat so that a paint takes about that long: on a
    software OpenGL under load 50k splats took 0.3-0.6 s, far over the GUI's 100 ms. With ``timed`` set, each
    draw waits for the GL (glFinish) and stores its wall time in ``last_draw_s`` (always set by 'cpu' draws)."""

    def __init__(self):
        Visual.__init__(self, vcode=VERT, fcode=FRAG)
        self._draw_mode = "triangle_strip"
        self.set_gl_state(
            blend=True, blend_func=("one", "one_minus_src_alpha"), depth_test=False, cull_face=False
        )
        corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
        self.shared_program["a_corner"] = gloo.VertexBuffer(corners)
        self._bufs: dict[str, gloo.VertexBuffer] = {}
        self.count = 0
        self.camera: Camera | None = None
        self.scale = 1.0
        self.chunk = 0
        self.chunk_target_s = 0.0
        self._chunk_now = MIN_CHUNK  # the adaptive chunk: grows (at most doubling) or shrinks to the target
        self.timed = False
        self.last_draw_s = 0.0
        self._uploads = 0  # counts set_rows calls: a new upload restarts a progressive frame
        self._low: gloo.FrameBuffer | None = None  # the reduced-resolution frame
        self._low_view = None  # the camera it shows
        self._acc: gloo.FrameBuffer | None = None  # the progressive still frame
        self._acc_key = None
        self._acc_done = 0
        self._blit: gloo.Program | None = None
        self.renderer = "auto"  # auto | gl | cpu
        self.active_renderer = ""  # what 'auto' resolved to at the last draw
        self.software_gl: bool | None = None  # the OpenGL is a software one (known after the first draw)
        self._host_rows = np.zeros((0, 13), np.float32)  # the rows as set (the CPU rasterizer reads them)
        self._host_sorted = True
        self._parts: dict[str, np.ndarray] | None = None
        self._gl_uploaded = True
        self._front_first = np.zeros(0, np.int64)
        self._cpu_img: np.ndarray | None = None
        self.cpu_timings: dict = {}  # seconds per stage of the last CPU frame (sort_s, project_s, ...)
        self._cpu_tex: gloo.Texture2D | None = None
        self._cpu_prog: gloo.Program | None = None

    @property
    def rows(self) -> np.ndarray:
        """The rows as set (in the order drawn when :attr:`rows_sorted`)."""
        return self._host_rows

    @property
    def rows_sorted(self) -> bool:
        """The rows were set sorted back to front (else only the 'cpu' renderer can draw them)."""
        return self._host_sorted

    @property
    def pending(self) -> bool:
        """A progressive still frame is unfinished: paint again to add the next chunk."""
        return (
            self.active_renderer == "gl"
            and self._acc_key is not None
            and 0 < self._acc_done < self.count
            and self._acc_key[0] == self._uploads
        )

    @property
    def refined(self) -> float:
        """Fraction of the splats already in the progressive still frame."""
        return self._acc_done / max(self.count, 1)

    def set_rows(
        self, rows: np.ndarray, back_to_front: bool = True, parts: dict[str, np.ndarray] | None = None
    ) -> None:
        """Take (N, 13) instance rows, sorted back to front. Unsorted rows (``back_to_front=False``) are for the
        'cpu' renderer only, which then sorts them by view depth itself (~2 ms for 100k). The GL instance
        buffers are uploaded when the GL renderer first needs them, from ``parts`` (:func:`instance_parts` of
        these rows) when given."""
        self._host_rows = np.ascontiguousarray(rows, np.float32)
        self._parts = parts
        self._host_sorted = back_to_front
        self.count = len(rows)
        self._uploads += 1
        self._gl_uploaded = False
        if len(self._front_first) != self.count:
            self._front_first = np.arange(self.count - 1, -1, -1, dtype=np.int64)

    def _upload(self) -> None:
        """The instance buffers of the GL renderer, from the host rows."""
        if not self._host_sorted:
            raise RuntimeError("the GL renderer needs rows sorted back to front")
        parts = self._parts if self._parts is not None else instance_parts(self._host_rows)
        self._parts = None  # uploaded: the host copy of the columns is not kept
        for name, arr in parts.items():
            buf = self._bufs.get(name)
            if buf is None or buf.size != len(arr):
                buf = gloo.VertexBuffer(arr, divisor=1)
                self._bufs[name] = buf
                self.shared_program[name] = buf
            else:
                buf.set_data(arr)
        self._gl_uploaded = True

    def set_camera(self, cam: Camera) -> None:
        self.camera = cam
        self._set_camera_uniforms(cam)

    def _set_camera_uniforms(self, cam: Camera) -> None:
        self.shared_program["u_view"] = np.asarray(cam.viewmat, np.float32).T.copy()
        self.shared_program["u_intr"] = (cam.fx, cam.fy, cam.cx, cam.cy)
        self.shared_program["u_size"] = (float(cam.width), float(cam.height))

    def _prepare_transforms(self, view):  # camera math is done by our own uniforms
        pass

    def _prepare_draw(self, view):
        return self.count > 0 and self.camera is not None

    def draw(self):
        t0 = time.perf_counter()
        if not self.active_renderer or self.renderer != "auto":
            self.active_renderer = resolve_renderer(self.renderer)
        if self.software_gl is None:
            self.software_gl = is_software_gl()
        if not self.visible or self.camera is None or self.count == 0:
            Visual.draw(self)
        elif self.active_renderer == "cpu":
            self._draw_cpu()
            self.last_draw_s = time.perf_counter() - t0  # the CPU frame is timed whether or not ``timed``
        else:
            if not self._gl_uploaded:
                self._upload()
            if self.scale < 1.0:
                self._draw_reduced()
            elif self.chunk > 0 and self.count > self.chunk:
                self._draw_progressive()
            else:
                Visual.draw(self)
        if self.timed:
            self.transforms.canvas.context.flush_commands()
            gloo.gl.glFinish()
            self.last_draw_s = time.perf_counter() - t0

    @staticmethod
    def _view_key(cam: Camera) -> tuple:
        return (cam.viewmat.tobytes(), cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)

    @staticmethod
    def _target(fbo: gloo.FrameBuffer | None, w: int, h: int) -> gloo.FrameBuffer:
        if fbo is not None and fbo.color_buffer.shape[:2] == (h, w):
            return fbo
        tex = gloo.Texture2D((h, w, 4), interpolation=STRETCH_FILTER, wrapping="clamp_to_edge")
        return gloo.FrameBuffer(color=tex)

    def _draw_into(
        self, fbo: gloo.FrameBuffer, cam: Camera, clear: bool, first: int = 0, last: int | None = None
    ):
        """Draw splats [first, last) from ``cam`` into ``fbo`` (premultiplied, transparent background)."""
        canvas = self.transforms.canvas
        h, w = fbo.color_buffer.shape[:2]
        canvas.push_fbo(fbo, (0, 0), (w, h))
        ranged = first > 0 or (last is not None and last < self.count)
        try:
            if clear:
                gloo.clear(color=(0.0, 0.0, 0.0, 0.0))
            self._set_camera_uniforms(cam)
            if ranged:  # views on the instance buffers: the draw covers only these instances
                for name, buf in self._bufs.items():
                    view = buf[first:last]
                    view.divisor = 1
                    self.shared_program[name] = view
            Visual.draw(self)
        finally:
            if ranged:
                for name, buf in self._bufs.items():
                    self.shared_program[name] = buf
            canvas.pop_fbo()
            self._set_camera_uniforms(self.camera)

    def _show(self, fbo: gloo.FrameBuffer) -> None:
        """Stretch an off-screen frame over the canvas, over its background (premultiplied blend)."""
        if self._blit is None:
            self._blit = gloo.Program(BLIT_VERT, BLIT_FRAG)
            quad = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
            self._blit["a_pos"] = gloo.VertexBuffer(quad)
        self._blit["u_tex"] = fbo.color_buffer
        gloo.set_state(blend=True, blend_func=("one", "one_minus_src_alpha"), depth_test=False)
        self._blit.draw("triangle_strip")

    def _reduced_camera(self) -> Camera:
        """The camera at ``scale`` times the resolution: the same view on a coarser pixel grid."""
        cam = self.camera
        w = max(8, int(round(cam.width * self.scale)))
        h = max(8, int(round(cam.height * self.scale)))
        sx, sy = w / cam.width, h / cam.height
        return Camera(cam.viewmat, cam.fx * sx, cam.fy * sy, cam.cx * sx, cam.cy * sy, w, h)

    def _draw_cpu(self) -> None:
        """Rasterize the rows on the CPU (front to back: the reversed rows if they were set back to front, else
        by its own depth sort) and draw the image."""
        cam = self._reduced_camera() if self.scale < 1.0 else self.camera
        shape = (cam.height, cam.width, 3)
        if self._cpu_img is None or self._cpu_img.shape != shape:
            self._cpu_img = np.empty(shape, np.uint8)
        bg = tuple(self.transforms.canvas.bgcolor.rgb)  # composited into the image
        order = self._front_first if self._host_sorted else None
        tile_raster.render_rows(self._host_rows, cam, bg, order, self._cpu_img, timings=self.cpu_timings)
        if self._cpu_prog is None:
            self._cpu_prog = gloo.Program(IMAGE_VERT, BLIT_FRAG)
            quad = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
            self._cpu_prog["a_pos"] = gloo.VertexBuffer(quad)
            self._cpu_tex = gloo.Texture2D(
                self._cpu_img, interpolation=STRETCH_FILTER, wrapping="clamp_to_edge"
            )
            self._cpu_prog["u_tex"] = self._cpu_tex
        elif self._cpu_tex.shape[:2] != shape[:2]:
            self._cpu_tex.resize(shape)
            self._cpu_tex.set_data(self._cpu_img)
        else:
            self._cpu_tex.set_data(self._cpu_img)
        gloo.set_state(blend=False, depth_test=False, cull_face=False)
        self._cpu_prog.draw("triangle_strip")

    def _draw_reduced(self) -> None:
        cam = self.camera
        low = self._reduced_camera()
        w, h = low.width, low.height
        self._low = self._target(self._low, w, h)
        self._draw_into(self._low, low, clear=True)
        self._low_view = self._view_key(cam)
        self._show(self._low)

    def _adapt_chunk(self, n: int, seconds: float) -> None:
        """Size the next progressive chunk from this one's time per splat (at most doubling per paint)."""
        want = n * self.chunk_target_s / max(seconds, 1e-6)
        self._chunk_now = int(min(max(want, MIN_CHUNK), 2 * n, max(self.chunk, MIN_CHUNK)))

    def _draw_progressive(self) -> None:
        cam = self.camera
        key = (self._uploads, self._view_key(cam))
        acc = self._target(self._acc, cam.width, cam.height)
        if acc is not self._acc or key != self._acc_key:
            self._acc, self._acc_key, self._acc_done = acc, key, 0
        if self._acc_done < self.count:
            n = min(self.chunk, self._chunk_now) if self.chunk_target_s > 0 else self.chunk
            first, last = self._acc_done, min(self._acc_done + n, self.count)
            t0 = time.perf_counter()
            self._draw_into(acc, cam, clear=first == 0, first=first, last=last)
            if self.chunk_target_s > 0:
                gloo.gl.glFinish()  # the chunk's real cost (a software OpenGL draws lazily)
                self._adapt_chunk(last - first, time.perf_counter() - t0)
            self._acc_done = last
        done = self._acc_done >= self.count
        self._show(acc if done or self._low is None or self._low_view != key[1] else self._low)


SplatNode = scene.visuals.create_visual_node(SplatVisual)


def make_splat_canvas(size=(800, 600), bgcolor=(0, 0, 0), renderer: str = "auto"):
    """A SceneCanvas (no default key bindings: Escape must not close it) holding one SplatNode."""
    canvas = scene.SceneCanvas(keys=None, bgcolor=bgcolor, size=size, show=False)
    canvas.native.setMinimumSize(200, 150)
    node = SplatNode(parent=canvas.scene)  # no ViewBox: its fragment clipper would cut a border row
    node.renderer = renderer
    return canvas, node


def render_rows(canvas, node, rows: np.ndarray, cam: Camera, sh: np.ndarray | None = None) -> np.ndarray:
    """Render instance rows from ``cam`` off-screen at the camera's size; RGBA uint8 (H, W, 4).

    The node keeps these rows afterwards; the caller re-uploads its own if it shows another view. Only this
    node is drawn (at full resolution), whatever else the canvas shows at the moment."""
    old_cam, old_scale, old_chunk, old_visible = node.camera, node.scale, node.chunk, node.visible
    others = [c for c in canvas.scene.children if c is not node and c.visible]
    node.set_rows(sort_back_to_front(rows, cam.viewmat, sh))
    node.set_camera(cam)
    node.scale, node.chunk, node.visible = 1.0, 0, True
    for c in others:
        c.visible = False
    try:
        img = canvas.render(size=(cam.width, cam.height), alpha=True)
    finally:
        node.scale, node.chunk, node.visible = old_scale, old_chunk, old_visible
        for c in others:
            c.visible = True
        if old_cam is not None:
            node.set_camera(old_cam)
    return np.ascontiguousarray(img[..., :4]).astype(np.uint8)


def render_offscreen(
    g: Gaussians, cam: Camera, background=(0.0, 0.0, 0.0), time: float | None = None, renderer: str = "gl"
) -> np.ndarray:
    """Stand-alone render of a scene through the viewer's visual (CLI ``--renderer gl``: the instanced GL
    quads whatever the OpenGL): RGBA uint8 (H, W, 4)."""
    from PySide6.QtWidgets import QApplication

    from app.gl import setup_qt_for_vispy

    if QApplication.instance() is None:
        setup_qt_for_vispy()
        QApplication([])
    canvas, node = make_splat_canvas((cam.width, cam.height), tuple(background), renderer)
    try:
        img = render_rows(canvas, node, scene_rows(g, cam, time), cam)
    finally:
        canvas.close()
    return img
