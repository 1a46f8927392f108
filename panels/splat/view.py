"""The splat viewer's canvas: draws the model's rows from the model's camera, turns mouse and keys into camera
changes on the model, and keeps moving frames fast with the :class:`DetailScheduler`.

It keeps no state that determines the figure (that is the model's): only what is on the GPU now (which rows,
sorted for which view) and frame timings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
from PySide6.QtCore import QObject, QTimer
from PySide6.QtWidgets import QLabel

from backends.splat import camera as cm
from backends.splat.live import sort_job
from panels.splat import visuals
from panels.splat.frusta import FrustumNode, pick_camera
from panels.splat.model import BACKGROUNDS, SplatModel, most_important
from panels.splat.scheduler import DetailScheduler

# still frames of more splats than this are drawn in chunks of it, one per paint, so the GUI answers
# between them (llvmpipe, 2 cores, 800x600: 0.3 s per 100k splats idle, 1-1.4 s loaded) ...
PROGRESSIVE_CHUNK = 50_000
# ... and smaller, so that a paint takes about this long (s), whatever the load (the brief's 100 ms rule)
PROGRESSIVE_TARGET_S = 0.05
#: after this long without camera changes the view draws full detail again (s)
STILL_AFTER_S = 0.25
#: fly speed: scene radii per second
FLY_SPEED = 0.6
FLY_KEYS = ("W", "A", "S", "D", "Q", "E")


def sort_upload_job(rows: np.ndarray, viewmat: np.ndarray, key, sh: np.ndarray | None = None) -> Iterator:
    """Worker: :func:`~backends.splat.live.sort_job`, then the GL instance columns of the sorted rows, so the GUI
    thread only hands them to the GL; returns (rows, milliseconds, key, parts)."""
    rows, ms, key = yield from sort_job(rows, viewmat, key, sh)
    return rows, ms, key, visuals.instance_parts(rows)


class SplatView(QObject):
    """``canvas`` (vispy) + ``overlay`` (a label: splats drawn, frame rate, timings, the stale marker)."""

    def __init__(self, model: SplatModel, tasks, parent=None) -> None:
        super().__init__(parent)
        self.model, self.tasks = model, tasks
        p = model.params
        self.canvas, self.node = visuals.make_splat_canvas(
            bgcolor=BACKGROUNDS[p.background], renderer=p.viewer
        )
        self.node.chunk = PROGRESSIVE_CHUNK
        self.node.chunk_target_s = PROGRESSIVE_TARGET_S
        self.frusta = FrustumNode(parent=self.canvas.scene)  # scene cameras, over the splats
        self.scheduler = DetailScheduler(p.lod_count, p.moving_fps, p.moving_scale, p.lod_count)
        self.overlay = QLabel("loading ...")
        self.overlay.setObjectName("splat_overlay")
        self.overlay.setStyleSheet("font-family: monospace;")
        self.playing = False
        self._lod: tuple[np.ndarray, np.ndarray | None] | None = None  # the moving subset (rows, sh)
        self._lod_n = 0
        self._shown_key = None  # (which rows, moving) the node holds
        self._sorted_view: np.ndarray | None = None
        self._sort_ms = 0.0
        self._frame_times: list[float] = []
        self._last_move = 0.0
        self._moving_drawn = False
        self._overlay_clock = 0.0
        self._keys: set[str] = set()
        self._drag: tuple[float, float] | None = None
        self._press: tuple[float, float] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._tick)
        self._last_tick = time.monotonic()
        c = self.canvas.events
        c.draw.connect(self._on_draw)
        c.draw.connect(self._after_draw, position="last")
        c.mouse_press.connect(self._on_mouse_press)
        c.mouse_release.connect(self._on_mouse_release)
        c.mouse_move.connect(self._on_mouse_move)
        c.mouse_wheel.connect(lambda ev: self.model.zoom(0.9 ** float(ev.delta[1])))
        c.key_press.connect(self._on_key_press)
        c.key_release.connect(lambda ev: ev.key is not None and self._keys.discard(ev.key.name.upper()))
        c.resize.connect(lambda ev: self.view_changed(moving=False))
        ev = model.events
        ev.connect("rows", self._rows_changed)
        ev.connect("camera", lambda moving: self.view_changed(moving))
        ev.connect("params", self._params_changed)
        ev.connect("stale", lambda why: self._on_draw(None, force=True))
        ev.connect("scene", self._scene_changed)
        ev.connect("restored", self._scene_changed)

    # -- model events ---------------------------------------------------------------------------------
    def _params_changed(self, changed: set[str]) -> None:
        p = self.model.params
        self.canvas.bgcolor = BACKGROUNDS[p.background]
        self.scheduler.configure(p.lod_count, p.moving_fps, p.moving_scale)
        if "viewer" in changed and self.node.renderer != p.viewer:
            self.node.renderer = p.viewer
            self.node.active_renderer = ""  # resolved again at the next draw
            self._shown_key = None  # the GL renderer needs sorted rows again
        if changed & {"lod_count"}:
            self._set_lod()
        self.view_changed(moving=False)

    def _scene_changed(self) -> None:
        self.frusta.set_segments(self.model.frusta())
        self.frusta.set_camera(self.camera())

    def _rows_changed(self) -> None:
        """New rows: small sets are sorted and shown at once; large ones (a streamed scene refining) are sorted
        by the sort job, so the GUI thread never sorts them (the node shows the previous rows meanwhile)."""
        self._set_lod()
        self._shown_key = None
        rows = self.model.rows
        self.view_changed(moving=False, now=rows is None or self.scheduler.sort_inline(rows.count))

    def _set_lod(self) -> None:
        rows = self.model.rows
        if rows is None:
            return
        k = self.scheduler.moving_count(rows.count)
        self._lod = None if k >= rows.count else most_important(rows, k)
        self._lod_n = k

    def renderer_ready(self) -> None:
        """The CPU rasterizer is compiled: 'auto' resolves again (now 'cpu' on llvmpipe)."""
        if self.node.renderer == "auto":
            self.node.active_renderer = ""
            self._shown_key = None
            self.view_changed(moving=False)

    # -- camera ---------------------------------------------------------------------------------------
    def size(self) -> tuple[int, int]:
        w, h = self.canvas.size
        return max(int(w), 16), max(int(h), 16)

    def camera(self, size: tuple[int, int] | None = None) -> cm.Camera:
        return self.model.camera(size or self.size())

    def _on_mouse_press(self, ev) -> None:
        self._drag = self._press = tuple(ev.pos[:2])

    def _on_mouse_release(self, ev) -> None:
        self._drag = None
        x, y = ev.pos[:2]
        if self._press is not None and np.hypot(x - self._press[0], y - self._press[1]) < 4:
            self.click(x, y)
        self.view_changed(moving=False)

    def click(self, x: float, y: float) -> int | None:
        """A click on a scene camera's frustum looks through that camera; returns its index (or None)."""
        i = pick_camera(self.model.cameras, self.camera(), x, y) if self.model.cameras else None
        if i is not None:
            self.model.look_through(i)
        return i

    def _on_mouse_move(self, ev) -> None:
        if self._drag is None or not ev.is_dragging:
            return
        x, y = ev.pos[:2]
        dx, dy = x - self._drag[0], y - self._drag[1]
        self._drag = (x, y)
        self.model.rotate(-0.3 * dx, 0.3 * dy)

    def _on_key_press(self, ev) -> None:
        if ev.key is not None and ev.key.name.upper() in FLY_KEYS:
            self._keys.add(ev.key.name.upper())
            self.ensure_timer()

    def ensure_timer(self) -> None:
        if not self._timer.isActive():
            self._last_tick = time.monotonic()
            self._timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        dt = min(now - self._last_tick, 0.2)
        self._last_tick = now
        busy = False
        if self._keys:
            step = FLY_SPEED * self.model.radius * dt
            k = self._keys
            f, r, u = (("W" in k) - ("S" in k), ("D" in k) - ("A" in k), ("E" in k) - ("Q" in k))
            self.model.move(forward=f * step, right=r * step, up=u * step)
            busy = True
        if self.playing and self.model.scene is not None and self.model.scene.is_4d:
            self.model.step_time(dt)
            busy = True
        if self._moving_drawn and now - self._last_move > STILL_AFTER_S:  # still again: full detail
            self._moving_drawn = False
            self.view_changed(moving=False)
        if not busy and not self._moving_drawn:
            self._timer.stop()

    # -- drawing --------------------------------------------------------------------------------------
    def view_changed(self, moving: bool, now: bool = False) -> None:
        rows = self.model.rows
        if rows is None:
            return
        cam = self.camera()
        self.node.set_camera(cam)
        self.frusta.set_camera(cam)
        renderer = self.node.active_renderer
        if moving:
            self._last_move = time.monotonic()
            self._moving_drawn = True
            self.ensure_timer()
            if self._lod_n != self.scheduler.moving_count(rows.count):
                self._set_lod()
            full = self.scheduler.full_detail_affordable(renderer) or self._lod is None
            shown = (rows.rows, rows.sh) if full else self._lod
            # the node still holds full-detail rows: switch to the moving set before the next frame
            now = self._shown_key is None or not self._shown_key[1]
        else:
            shown = (rows.rows, rows.sh)
        if now:
            self._sort_now(shown, moving, cam)
        else:
            self._request_sort(shown, cam, moving)
        self.canvas.update()

    def _request_sort(self, shown, cam: cm.Camera, moving: bool) -> None:
        rows, sh = shown
        key = (id(rows), moving)
        if self.scheduler.renderer_sorts(self.node.active_renderer, sh is not None):
            self._show_unsorted(rows, key, cam.viewmat)
        elif self._shown_key == key and self.scheduler.sort_still_valid(
            self._sorted_view, cam.viewmat, self.model.radius
        ):
            return
        elif self.scheduler.sort_inline(len(rows)):
            self._sort_now(shown, moving, cam)
        else:
            vm = cam.viewmat.copy()
            self.tasks.submit(
                sort_upload_job,
                rows,
                vm,
                (key, vm),
                sh,
                group="sort",
                label="depth sort",
                on_done=self._sorted,
            )

    def _sort_now(self, shown, moving: bool, cam: cm.Camera) -> None:
        rows, sh = shown
        key = (id(rows), moving)
        if self.scheduler.renderer_sorts(self.node.active_renderer, sh is not None):
            self._show_unsorted(rows, key, cam.viewmat)
            return
        t0 = time.perf_counter()
        out = visuals.sort_back_to_front(rows, cam.viewmat, sh)
        self._sorted((out, (time.perf_counter() - t0) * 1000.0, (key, cam.viewmat.copy())))

    def _show_unsorted(self, rows: np.ndarray, key, vm: np.ndarray) -> None:
        if self._shown_key != key or self.node.rows_sorted:  # the same unsorted rows serve every view
            self.node.set_rows(rows, back_to_front=False)
        self._shown(key, vm.copy(), 0.0)

    def _sorted(self, result) -> None:
        rows, ms, (key, vm), *parts = result
        self.node.set_rows(rows, parts=parts[0] if parts else None)
        self._shown(key, vm, ms)

    def _shown(self, key, vm: np.ndarray, sort_ms: float) -> None:
        """The node holds the rows of ``key`` = (rows id, moving): set its camera and resolution, and draw."""
        self.node.set_camera(self.camera())
        self.frusta.set_camera(self.camera())
        moving = key[1]
        self.node.scale = self.scheduler.resolution(moving, self.node.active_renderer)
        self.node.timed = moving  # moving frames are timed to size the moving set
        self._shown_key, self._sorted_view, self._sort_ms = key, vm, sort_ms
        self.canvas.update()

    def _after_draw(self, _ev) -> None:
        if self.node.pending:  # a progressive still frame: paint the next chunk once events are handled
            QTimer.singleShot(0, self.canvas.update)
        rows = self.model.rows
        full = rows is not None and self.node.count == rows.count
        self.scheduler.frame_drawn(
            self.node.count,
            self.node.last_draw_s,
            timed=self.node.timed,
            renderer=self.node.active_renderer,
            scale=self.node.scale,
            full=full,
        )

    def _on_draw(self, _ev, force: bool = False) -> None:
        now = time.perf_counter()
        if not force:
            self._frame_times = [t for t in self._frame_times if now - t < 1.0] + [now]
        n = len(self._frame_times)
        fps = (n - 1) / max(now - self._frame_times[0], 1e-3) if n > 1 else 0.0
        moving = self._shown_key is not None and self._shown_key[1]
        if moving and now - self._overlay_clock < 0.25 and not force:
            return  # a label repaint every frame costs the canvas frames: 4 Hz while moving
        self._overlay_clock = now
        detail = f"moving: {self.node.scale:g}x resolution" if moving else "full detail"
        if self.node.pending:
            detail += f", refining {self.node.refined:.0%}"
        if self.node.active_renderer == "cpu":  # the CPU renderer sorts by depth inside its draw
            sort_ms = 1e3 * self.node.cpu_timings.get("sort_s", 0.0) if self._sort_ms == 0 else self._sort_ms
            timing = f"draw {1e3 * self.node.last_draw_s:5.1f} ms, sort {sort_ms:4.1f} ms"
        else:
            timing = f"sort {self._sort_ms:5.1f} ms"
        p = self.model.params
        stale = f"[{self.model.stale}] " if self.model.stale else ""
        self.overlay.setText(
            f"{stale}{self.node.count:,} splats drawn ({detail}, {self.node.active_renderer or '?'}) | "
            f"{f'{fps:4.0f} frames/s' if n > 1 else 'still'} | {timing} | "
            f"{p.camera_mode} camera, up {p.up_axis}, fov {p.fov:.0f} deg"
        )

    # -- off-screen renders ---------------------------------------------------------------------------
    def render_camera(self, cam: cm.Camera) -> np.ndarray:
        """The full scene from ``cam`` at its size (RGBA uint8); the view's own frame is redrawn after."""
        rows = self.model.rows
        if rows is None:
            return np.zeros((cam.height, cam.width, 4), np.uint8)
        try:
            return visuals.render_rows(self.canvas, self.node, rows.rows, cam, rows.sh)
        finally:  # the view's own frame again: a big scene's sort in the worker, as for any new view
            self._shown_key = None
            self.view_changed(moving=False, now=self.scheduler.sort_inline(rows.count))

    def memory_where(self) -> str:
        """Where the drawn rows live: host memory for the CPU renderer and a software OpenGL, else the GPU."""
        if self.node.active_renderer == "cpu":
            return "in host memory (CPU renderer)"
        if self.node.software_gl:
            return "in host memory (software OpenGL)"
        return "on the GPU" if self.node.software_gl is False else "(renderer not chosen yet)"
