"""Gaussian-splat viewer panel: load 3D/4D scenes, look around (orbit / fly), edit, colour by attribute,
export PNG (GL or reference rasterizer), MP4 (turntable, camera path, 4D playback) and the edited .ply."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app import worker
from app.export import check_writable, parse_size, save_png, write_video
from backends.common import Progress, UserError
from backends.splat import camera as cm
from backends.splat import edits, gauss4d, io, raster, samples, tile_raster
from backends.splat.gaussians import Gaussians
from backends.splat.sh import eval_sh_colors
from backends.splat.tile_raster import pack_rows
from panels.base import ExportAction, Panel, config_to_dict
from panels.splat import visuals
from panels.widgets import Field, ParamForm

BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey": (0.5, 0.5, 0.5)}
SCENES = ("sample 3D", "dynamic 4D", "file")
# still frames of more splats than this are drawn in chunks of it, one per paint, so the GUI answers
# between them (llvmpipe, 2 cores, 800x600: 0.3 s per 100k splats idle, 1-1.4 s loaded)
PROGRESSIVE_CHUNK = 50_000


@dataclass(frozen=True)
class SplatConfig:
    scene: str = "sample 3D"  # sample 3D | dynamic 4D | file
    path: str = ""  # file(s) for scene == "file"; several separated by ';' load as blocks
    camera_mode: str = "orbit"  # orbit | fly
    up_axis: str = "-y"
    fov: float = 50.0
    background: str = "black"
    color_by: str = "colour"
    min_opacity: float = 0.0
    max_scale: float = 0.0
    sh_degree: int = 3
    subsample: float = 1.0
    crop: str = ""  # "XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX" keeps the Gaussians inside that box; '' = no crop
    seed: int = 0
    time: float = 0.0
    play_speed: float = 0.25  # scene time units per second
    lod_count: int = 300_000  # at most this many splats are drawn while the view moves
    moving_fps: float = 15.0  # while moving, the splat count adapts to reach this frame rate
    moving_scale: float = 0.5  # render resolution (fraction of the canvas) while moving
    viewer: str = "auto"  # gl: instanced quads; cpu: numba tile rasterizer; auto: cpu on a software OpenGL
    export_renderer: str = "gl"  # gl | reference
    export_size: str = "1280x960"
    video_frames: int = 36  # frames of a turntable / camera path / 4D playback video (30 frames/s)

    def __post_init__(self) -> None:
        if self.scene not in SCENES:
            raise UserError(f"scene must be one of {SCENES}, got {self.scene!r}")
        if self.camera_mode not in ("orbit", "fly"):
            raise UserError(f"camera mode must be orbit or fly, got {self.camera_mode!r}")
        if self.up_axis not in cm.UP_AXES:
            raise UserError(f"up axis must be one of {sorted(cm.UP_AXES)}")
        if not 5.0 <= self.fov <= 120.0:
            raise UserError(f"field of view must be 5..120 degrees, got {self.fov}")
        if self.background not in BACKGROUNDS:
            raise UserError(f"background must be one of {sorted(BACKGROUNDS)}")
        if self.viewer not in ("auto", "gl", "cpu"):
            raise UserError(f"viewer must be auto, gl or cpu, got {self.viewer!r}")
        if self.export_renderer not in ("gl", "reference"):
            raise UserError("export renderer must be gl or reference")
        if not 2 <= self.video_frames <= 3600:
            raise UserError(f"video frames must be 2..3600, got {self.video_frames}")
        if self.lod_count < 1000:
            raise UserError("moving-detail count must be >= 1000")
        if not 1.0 <= self.moving_fps <= 120.0:
            raise UserError(f"target frames/s while moving must be 1..120, got {self.moving_fps}")
        if not 0.25 <= self.moving_scale <= 1.0:
            raise UserError(f"resolution while moving must be 0.25..1, got {self.moving_scale}")
        parse_size(self.export_size)
        self.edit_config()  # validates the edit fields and the crop box

    def crop_box(self):
        if not self.crop.strip():
            return None, None
        try:
            v = [float(x) for x in self.crop.split(",")]
        except ValueError:
            v = []
        if len(v) != 6 or not all(math.isfinite(x) for x in v):
            raise UserError(f"crop box {self.crop!r}: expected XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX")
        return tuple(v[:3]), tuple(v[3:])

    def edit_config(self) -> edits.EditConfig:
        lo, hi = self.crop_box()
        return edits.EditConfig(
            crop_min=lo,
            crop_max=hi,
            min_opacity=self.min_opacity,
            max_scale=self.max_scale,
            sh_degree=self.sh_degree,
            subsample=self.subsample,
            seed=self.seed,
        )


@dataclass
class OrbitState:
    target: np.ndarray
    azimuth: float = 30.0
    elevation: float = 20.0
    distance: float = 5.0


def _load_scene_gen(cfg: SplatConfig):
    if cfg.scene == "sample 3D":
        g = yield from io.load_gen(samples.SAMPLE_3D)
    elif cfg.scene == "dynamic 4D":
        g = yield from io.load_gen(samples.SAMPLE_4D)
    else:
        paths = [p for p in cfg.path.split(";") if p.strip()]
        if not paths:
            raise UserError("choose a .ply/.splat/.spz file (File > Open)")
        scenes = []
        for i, p in enumerate(paths):
            yield Progress(i / len(paths), f"loading {Path(p).name}")
            scenes.append((yield from io.load_gen(p.strip())))
        if len(scenes) == 1:
            g = scenes[0]
        else:
            from backends.splat.gaussians import concat

            g = concat(scenes)
    return g


def _warmup_job():
    """Worker: compile (or load from numba's cache) the CPU rasterizer before 'auto' switches to it."""
    yield Progress(None, "preparing the CPU splat rasterizer")
    tile_raster.warmup()


def _sort_job(rows: np.ndarray, viewmat: np.ndarray, key, sh=None):
    """Worker: view-dependent colours and depth sort (numpy only, no GL)."""
    t0 = time.perf_counter()
    out = visuals.sort_back_to_front(rows, viewmat, sh)
    yield Progress(1.0, "sorted")
    return out, (time.perf_counter() - t0) * 1000.0, key


class SplatPanel(Panel):
    key = "splat"
    title = "Gaussian splat viewer"
    open_filter = "Gaussian splats (*.ply *.splat *.spz)"

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cfg = SplatConfig()
        self._scene: Gaussians | None = None  # as loaded
        self._edited: Gaussians | None = None  # after edits and colouring
        self._legend: edits.Legend | None = None
        self._rows_full: np.ndarray | None = None  # unsorted instance rows at the current time
        self._rows_lod: np.ndarray | None = None  # the moving subset: a prefix of _imp_order
        self._imp_order: np.ndarray | None = None  # row indices by decreasing importance
        self._lod_budget = self._cfg.lod_count  # splats drawn while moving, adapted to the frame rate
        self._sh_full: np.ndarray | None = None  # SH aligned with the rows, when view dependent (degree > 0)
        self._sh_lod: np.ndarray | None = None
        self._shown_key = None
        self._sorted_view: np.ndarray | None = None
        self._sort_ms = 0.0
        self._fps = 0.0
        self._frame_times: list[float] = []
        self._last_move = 0.0
        self._moving_drawn = False
        self._overlay_clock = 0.0
        self._full_frame_s = 0.0  # the last full-scene, full-resolution CPU frame (s); 0 = not measured
        self._keys: set[str] = set()
        self._drag: tuple[float, float] | None = None
        self._orbit = OrbitState(target=np.zeros(3))
        self._time_range = (0.0, 1.0)
        self._path_keys: list[cm.Camera] = []
        self._playing = False
        self._load_task = None
        self._sort_task = None

        self.canvas_obj, self.node = visuals.make_splat_canvas(
            bgcolor=BACKGROUNDS[self._cfg.background], renderer=self._cfg.viewer
        )
        self.node.chunk = PROGRESSIVE_CHUNK
        self.canvas_obj.events.draw.connect(self._on_draw)
        self.canvas_obj.events.draw.connect(self._after_draw, position="last")
        self.canvas_obj.events.mouse_press.connect(self._on_mouse_press)
        self.canvas_obj.events.mouse_release.connect(self._on_mouse_release)
        self.canvas_obj.events.mouse_move.connect(self._on_mouse_move)
        self.canvas_obj.events.mouse_wheel.connect(self._on_wheel)
        self.canvas_obj.events.key_press.connect(self._on_key_press)
        self.canvas_obj.events.key_release.connect(self._on_key_release)
        self.canvas_obj.events.resize.connect(lambda ev: self._view_changed(moving=False))

        self.form = ParamForm(
            [
                Field("scene", "Scene", "choice", choices=SCENES),
                Field(
                    "camera_mode",
                    "Camera",
                    "choice",
                    choices=("orbit", "fly"),
                    tooltip="orbit: drag turns around the target; fly: drag looks around, WASD/QE move",
                ),
                Field("up_axis", "Up axis", "choice", choices=tuple(sorted(cm.UP_AXES))),
                Field("fov", "Field of view (deg)", "float", 5, 120, 1, 5),
                Field("background", "Background", "choice", choices=tuple(BACKGROUNDS)),
                Field("color_by", "Colour by", "choice", choices=("colour", "opacity", "scale", "depth")),
                Field("min_opacity", "Min opacity", "float", 0, 1, 3, 0.01),
                Field("max_scale", "Max scale (0 = off)", "float", 0, 1e6, 4, 0.01),
                Field("sh_degree", "SH degree limit", "int", 0, 3),
                Field("subsample", "Subsample fraction", "float", 0.001, 1, 3, 0.05),
                Field(
                    "crop",
                    "Crop box",
                    "text",
                    tooltip="XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX in scene units; empty = off",
                ),
                Field(
                    "lod_count",
                    "Max splats while moving",
                    "int",
                    1000,
                    5_000_000,
                    step=50_000,
                    tooltip="while the view moves the most opaque and largest splats are drawn, as many "
                    "as the target frame rate allows, up to this count",
                ),
                Field("moving_fps", "Target frames/s while moving", "float", 1, 120, 1, 5),
                Field("moving_scale", "Resolution while moving", "float", 0.25, 1, 2, 0.25),
                Field(
                    "viewer",
                    "Viewer renderer",
                    "choice",
                    choices=("auto", "gl", "cpu"),
                    tooltip="gl: one instanced quad per splat; cpu: exact tile rasterizer on the CPU (numba) "
                    "shown as one texture; auto: cpu on a software OpenGL (llvmpipe), gl on a GPU",
                ),
                Field(
                    "export_renderer",
                    "Export renderer",
                    "choice",
                    choices=("gl", "reference"),
                    tooltip="gl: the viewer's renderer (GL quads or CPU tiles, see Viewer renderer); "
                    "reference: the torch reference rasterizer",
                ),
                Field("export_size", "Export size", "text"),
                Field("video_frames", "Video frames (30/s)", "int", 2, 3600, step=30),
            ],
            config_to_dict(self._cfg),
        )
        self.form.changed.connect(self._on_param)

        self.legend_label = QLabel()
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setWordWrap(True)
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.overlay = QLabel("loading ...")
        self.overlay.setObjectName("splat_overlay")
        self.overlay.setStyleSheet("font-family: monospace;")

        reset = QPushButton("Reset view")
        reset.clicked.connect(self.reset_view)
        key_btn = QPushButton("Add path keyframe")
        key_btn.clicked.connect(self.add_keyframe)
        clear_btn = QPushButton("Clear path")
        clear_btn.clicked.connect(self.clear_keyframes)
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._on_play)
        self.time_slider = QSlider(Qt.Orientation.Horizontal)
        self.time_slider.setRange(0, 1000)
        self.time_slider.valueChanged.connect(self._on_slider)
        self.time_label = QLabel("t = 0.000")

        side = QVBoxLayout()
        side.addWidget(self.form)
        for b in (reset, key_btn, clear_btn):
            side.addWidget(b)
        side.addWidget(QLabel("<b>Legend</b>"))
        side.addWidget(self.legend_label)
        side.addWidget(self.info_label)
        side.addStretch(1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setMaximumWidth(340)

        time_row = QHBoxLayout()
        time_row.addWidget(QLabel("Time"))
        time_row.addWidget(self.play_button)
        time_row.addWidget(self.time_slider, 1)
        time_row.addWidget(self.time_label)
        left = QVBoxLayout()
        left.addWidget(self.canvas_obj.native, 1)
        left.addWidget(self.overlay)
        left.addLayout(time_row)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addWidget(side_w)

        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._tick)
        self._last_tick = time.monotonic()
        self._set_time_widgets_enabled(False)
        # the bundled sample is small: load synchronously so the panel shows something at once
        self._apply_scene(io.run_gen(_load_scene_gen(self._cfg)), reset=True)
        if not tile_raster.ready():
            self._warm_task = worker.submit(
                _warmup_job, group="splat-warmup", label="CPU rasterizer", on_done=self._on_rasterizer_ready
            )

    # -- parameters -----------------------------------------------------------------------------------
    def params(self) -> SplatConfig:
        return self._cfg

    def set_params(self, cfg: SplatConfig) -> None:
        old = self._cfg
        self._cfg = cfg
        self.form.set_values(config_to_dict(cfg))
        if (cfg.scene, cfg.path) != (old.scene, old.path):
            self._load(reset=True)
        else:
            self._refresh(old)

    def _on_param(self, name: str, value) -> None:
        try:
            self.set_params(replace(self._cfg, **{name: value}))
        except UserError as exc:
            self.status.emit(str(exc))
            self.form.set_values(config_to_dict(self._cfg))

    def _refresh(self, old: SplatConfig) -> None:
        cfg = self._cfg
        self.canvas_obj.bgcolor = BACKGROUNDS[cfg.background]
        if old.viewer != cfg.viewer:
            self.node.renderer = cfg.viewer
            self.node.active_renderer = ""  # resolved again at the next draw
            self._shown_key = None  # the GL renderer needs sorted rows again
        if old.up_axis != cfg.up_axis:
            self.reset_view()
        needs_edit = (
            old.edit_config() != cfg.edit_config()
            or old.color_by != cfg.color_by
            or old.lod_count != cfg.lod_count
        )
        if old.lod_count != cfg.lod_count:
            self._lod_budget = cfg.lod_count
        if needs_edit:
            self._rebuild()
        else:
            self._view_changed(moving=False)

    # -- scene loading and editing ------------------------------------------------------------------
    def open_path(self, path: Path) -> None:
        self.set_params(replace(self._cfg, scene="file", path=str(path)))

    def _load(self, reset: bool) -> None:
        self.overlay.setText("loading ...")
        self._load_task = worker.submit(
            _load_scene_gen,
            self._cfg,
            group="splat-load",
            label="load splats",
            on_done=lambda g: self._apply_scene(g, reset),
            on_error=lambda msg: self.status.emit(msg),
            on_progress=lambda f, m: self.overlay.setText(m),
        )

    def _apply_scene(self, g: Gaussians, reset: bool) -> None:
        self._scene = g
        self._time_range = gauss4d.time_range(g)
        self._set_time_widgets_enabled(g.is_4d)
        names = edits.attribute_names(g)
        combo = self.form.widget("color_by")
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(names)
        if self._cfg.color_by not in names:
            self._cfg = replace(self._cfg, color_by="colour")
        combo.setCurrentText(self._cfg.color_by)
        combo.blockSignals(False)
        if g.is_4d and not self._time_range[0] <= self._cfg.time <= self._time_range[1]:
            self._cfg = replace(self._cfg, time=self._time_range[0])
        if reset:
            self.reset_view(update=False)
        self._rebuild()
        self.status.emit(
            f"loaded {g.count:,} Gaussians ({g.source}); SH degree {g.sh_degree}{', 4D' if g.is_4d else ''}"
        )

    def _rebuild(self) -> None:
        """Edits + colour mode -> the edited scene; then instance rows for the current time."""
        if self._scene is None:
            return
        try:
            e = edits.apply_edits(self._scene, self._cfg.edit_config())
            e, self._legend = edits.color_by(e, self._cfg.color_by, self.current_camera().position)
        except UserError as exc:
            self.status.emit(str(exc))
            return
        self._edited = e
        self._update_legend()
        self._make_rows()

    def _make_rows(self) -> None:
        e = self._edited
        if e is None:
            return
        cam = self.current_camera()
        if e.is_4d:
            means, covs, opac = gauss4d.slice_at(e, self._cfg.time)
        else:
            means, covs, opac = e.means, e.covariances(), e.opacities
        colors = eval_sh_colors(e.sh, means, cam.position)
        self._rows_full = pack_rows(means, covs, colors, opac)
        self._sh_full = e.sh if e.sh.shape[1] > 1 else None
        # reduced detail while moving: the most opaque-and-large splats first; the moving set is a prefix of
        # this order whose length follows the measured frame time
        importance = opac * np.prod(np.sqrt(np.maximum(np.einsum("nii->ni", covs), 1e-30)), 1) ** (1 / 3)
        self._imp_order = np.argsort(-importance, kind="stable")
        self._set_lod(self._lod_budget)
        self._shown_key = None
        self._sort_now(self._rows_full, moving=False)
        self.info_label.setText(
            f"{self._scene.source}: {e.count:,} of {self._scene.count:,} Gaussians after edits; "
            f"SH degree {e.sh_degree}; "
            f"{'4D, t in [{:.2f}, {:.2f}]'.format(*self._time_range) if e.is_4d else '3D'}; "
            f"{(self._rows_full.nbytes) / 2**20:.1f} MiB on the GPU"
        )

    def _set_lod(self, budget: int) -> None:
        """The moving subset: the ``budget`` most important rows (None: all rows are drawn while moving)."""
        n = len(self._rows_full)
        k = int(min(max(budget, 1000), self._cfg.lod_count, n))
        if k >= n:
            self._rows_lod = self._sh_lod = None
        else:
            keep = self._imp_order[:k]
            self._rows_lod = self._rows_full[keep]
            self._sh_lod = self._sh_full[keep] if self._sh_full is not None else None
        self._lod_n = k

    def _update_legend(self) -> None:
        lg = self._legend
        if lg is None:
            self.legend_label.setText("scene colours (spherical harmonics)")
            return
        rows = []
        for label, rgb in lg.swatches():
            hexc = "#" + "".join(f"{int(255 * c):02x}" for c in rgb)
            rows.append(f"<span style='background:{hexc}'>&nbsp;&nbsp;&nbsp;&nbsp;</span> {label}")
        self.legend_label.setText(f"<i>{lg.title}</i><br>" + "<br>".join(rows))

    # -- camera ---------------------------------------------------------------------------------------
    def reset_view(self, update: bool = True) -> None:
        if self._scene is None:
            return
        c, r = self._scene.robust_center_radius()
        self._orbit = OrbitState(target=c, azimuth=30.0, elevation=20.0, distance=3.0 * r)
        self._scene_radius = r
        if update:
            self._view_changed(moving=False)

    def current_camera(self, size: tuple[int, int] | None = None) -> cm.Camera:
        w, h = size or self._canvas_size()
        o = self._orbit
        return cm.orbit_camera(
            o.target, o.azimuth, o.elevation, o.distance, w, h, self._cfg.fov, cm.UP_AXES[self._cfg.up_axis]
        )

    def _canvas_size(self) -> tuple[int, int]:
        w, h = self.canvas_obj.size
        return max(int(w), 16), max(int(h), 16)

    def _on_mouse_press(self, ev) -> None:
        self._drag = tuple(ev.pos[:2])

    def _on_mouse_release(self, ev) -> None:
        self._drag = None
        self._view_changed(moving=False)

    def _on_mouse_move(self, ev) -> None:
        if self._drag is None or not ev.is_dragging:
            return
        x, y = ev.pos[:2]
        dx, dy = x - self._drag[0], y - self._drag[1]
        self._drag = (x, y)
        self.rotate(-0.3 * dx, 0.3 * dy)

    def rotate(self, d_az: float, d_el: float) -> None:
        o = self._orbit
        if self._cfg.camera_mode == "fly":  # look around: the eye stays, the target moves
            eye = cm.orbit_eye(o.target, o.azimuth, o.elevation, o.distance, cm.UP_AXES[self._cfg.up_axis])
            o.azimuth += d_az
            o.elevation = float(np.clip(o.elevation - d_el, -89, 89))
            back = cm.orbit_eye(
                np.zeros(3), o.azimuth, o.elevation, o.distance, cm.UP_AXES[self._cfg.up_axis]
            )
            o.target = eye - back
        else:
            o.azimuth += d_az
            o.elevation = float(np.clip(o.elevation + d_el, -89, 89))
        self._view_changed(moving=True)

    def _on_wheel(self, ev) -> None:
        self.zoom(0.9 ** float(ev.delta[1]))

    def zoom(self, factor: float) -> None:
        o = self._orbit
        if self._cfg.camera_mode == "fly":
            self.move(forward=(1 - factor) * o.distance)
        else:
            o.distance = float(np.clip(o.distance * factor, 1e-3, 1e6))
            self._view_changed(moving=True)

    def move(self, forward: float = 0.0, right: float = 0.0, up: float = 0.0) -> None:
        cam = self.current_camera()
        r = cam.R  # rows: right, down, forward
        self._orbit.target = self._orbit.target + forward * r[2] + right * r[0] - up * r[1]
        self._view_changed(moving=True)

    def _on_key_press(self, ev) -> None:
        if ev.key is not None and ev.key.name.upper() in ("W", "A", "S", "D", "Q", "E"):
            self._keys.add(ev.key.name.upper())
            self._ensure_timer()

    def _on_key_release(self, ev) -> None:
        if ev.key is not None:
            self._keys.discard(ev.key.name.upper())

    # -- time -----------------------------------------------------------------------------------------
    def _set_time_widgets_enabled(self, on: bool) -> None:
        for w in (self.play_button, self.time_slider, self.time_label):
            w.setEnabled(on)

    def _on_slider(self, v: int) -> None:
        lo, hi = self._time_range
        self.set_time(lo + (hi - lo) * v / 1000.0)

    def set_time(self, t: float) -> None:
        self._cfg = replace(self._cfg, time=float(t))
        lo, hi = self._time_range
        self.time_slider.blockSignals(True)
        self.time_slider.setValue(int(round(1000 * (t - lo) / max(hi - lo, 1e-12))))
        self.time_slider.blockSignals(False)
        self.time_label.setText(f"t = {t:.3f}")
        if self._edited is not None and self._edited.is_4d:
            self._make_rows()

    def _on_play(self, on: bool) -> None:
        self._playing = on
        self.play_button.setText("Pause" if on else "Play")
        if on:
            self._ensure_timer()

    def start(self) -> None:
        if self._scene is not None and self._scene.is_4d:
            self.play_button.setChecked(True)

    def stop(self) -> None:
        self.play_button.setChecked(False)
        for t in (self._load_task, self._sort_task):
            if t is not None:
                t.cancel()

    def advance(self, steps: int) -> None:
        """Synchronous: step 4D time by ``steps`` frames of 1/30 s (3D: turn the orbit by 2 degrees a step)."""
        if self._scene is None:
            return
        for _ in range(max(int(steps), 0)):
            if self._scene.is_4d:
                lo, hi = self._time_range
                t = self._cfg.time + self._cfg.play_speed / 30.0
                self.set_time(lo + (t - lo) % (hi - lo))
            else:
                self._orbit.azimuth += 2.0
        self._sort_now(self._rows_full, moving=False)

    def _ensure_timer(self) -> None:
        if not self._timer.isActive():
            self._last_tick = time.monotonic()
            self._timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        dt = min(now - self._last_tick, 0.2)
        self._last_tick = now
        busy = False
        if self._keys:
            step = 0.6 * self._scene_radius * dt
            f = ("W" in self._keys) - ("S" in self._keys)
            r = ("D" in self._keys) - ("A" in self._keys)
            u = ("E" in self._keys) - ("Q" in self._keys)
            self.move(forward=f * step, right=r * step, up=u * step)
            busy = True
        if self._playing and self._scene is not None and self._scene.is_4d:
            lo, hi = self._time_range
            self.set_time(lo + (self._cfg.time + self._cfg.play_speed * dt - lo) % (hi - lo))
            busy = True
        if self._moving_drawn and now - self._last_move > 0.25:  # still again: full detail
            self._moving_drawn = False
            self._view_changed(moving=False)
        if not busy and not self._moving_drawn:
            self._timer.stop()

    # -- drawing ----------------------------------------------------------------------------------------
    def _view_changed(self, moving: bool) -> None:
        if self._rows_full is None:
            return
        cam = self.current_camera()
        self.node.set_camera(cam)
        if moving:
            self._last_move = time.monotonic()
            self._moving_drawn = True
            self._ensure_timer()
            if self._lod_n != min(self._lod_budget, self._cfg.lod_count, len(self._rows_full)):
                self._set_lod(self._lod_budget)
            full = self._full_detail_affordable() or self._rows_lod is None
            rows = self._rows_full if full else self._rows_lod
            if self._shown_key is None or not self._shown_key[1]:
                # the node still holds the full-detail rows: switch to the moving set before the next
                # frame, or that frame would be a full-quality one
                self._sort_now(rows, moving=True, cam=cam)
            else:
                self._request_sort(rows, cam, moving=True)
        else:
            self._request_sort(self._rows_full, cam, moving=False)
        self.canvas_obj.update()

    def _request_sort(self, rows: np.ndarray, cam: cm.Camera, moving: bool) -> None:
        key = (id(rows), moving)
        vm = cam.viewmat
        if self._rasterizer_sorts(rows):
            self._show_unsorted(rows, key, vm)
            return
        if self._shown_key == key and self._sorted_view is not None:
            # skip the sort when the view direction and position barely changed
            d_rot = np.abs(vm[:3, :3] - self._sorted_view[:3, :3]).max()
            d_pos = np.linalg.norm(cm.Camera(vm).position - cm.Camera(self._sorted_view).position)
            if d_rot < 0.01 and d_pos < 0.01 * getattr(self, "_scene_radius", 1.0):
                return
        if len(rows) <= 50_000:  # small scenes sort faster than a thread round trip
            self._sort_now(rows, moving, cam)
            return
        self._sort_task = worker.submit(
            _sort_job,
            rows,
            vm.copy(),
            (key, vm.copy()),
            self._sh_for(rows),
            group="splat-sort",
            label="depth sort",
            on_done=self._sorted,
        )

    def _sort_now(self, rows: np.ndarray | None, moving: bool, cam: cm.Camera | None = None) -> None:
        if rows is None:
            return
        cam = cam or self.current_camera()
        if self._rasterizer_sorts(rows):
            self._show_unsorted(rows, (id(rows), moving), cam.viewmat)
            return
        t0 = time.perf_counter()
        out = visuals.sort_back_to_front(rows, cam.viewmat, self._sh_for(rows))
        self._sorted((out, (time.perf_counter() - t0) * 1000.0, ((id(rows), moving), cam.viewmat.copy())))

    def _on_rasterizer_ready(self, _result=None) -> None:
        if self.node.renderer == "auto":
            self.node.active_renderer = ""  # resolved again at the next draw: now 'cpu' on llvmpipe
            self._shown_key = None
            self._view_changed(moving=False)

    def _rasterizer_sorts(self, rows: np.ndarray) -> bool:
        """The CPU renderer sorts by view depth itself, faster than a sort job; rows whose colours depend on
        the view (SH degree > 0) still go through the job, which recolours them."""
        return self.node.active_renderer == "cpu" and self._sh_for(rows) is None

    def _show_unsorted(self, rows: np.ndarray, key, vm: np.ndarray) -> None:
        if self._shown_key != key or self.node.rows_sorted:  # the same unsorted rows serve every view
            self.node.set_rows(rows, back_to_front=False)
        self._shown(key, vm.copy(), 0.0)

    def _sh_for(self, rows):
        if rows is self._rows_full:
            return self._sh_full
        if rows is self._rows_lod:
            return self._sh_lod
        return None

    def _sorted(self, result) -> None:
        rows, ms, (key, vm) = result
        self.node.set_rows(rows)
        self._shown(key, vm, ms)

    def _shown(self, key, vm: np.ndarray, sort_ms: float) -> None:
        """The node holds the rows of ``key`` = (rows id, moving): set its camera and resolution, and draw."""
        self.node.set_camera(self.current_camera())
        moving = key[1]
        self.node.scale = self._moving_scale(moving)
        self.node.timed = moving  # moving frames are timed to size the moving set
        self._shown_key, self._sorted_view, self._sort_ms = key, vm, sort_ms
        self.canvas_obj.update()

    def _full_detail_affordable(self) -> bool:
        """The CPU renderer drew the whole scene at full resolution within the moving frame budget last time:
        then moving frames are full-quality frames too (a GL frame is only timed while moving)."""
        return (
            self.node.active_renderer == "cpu"
            and 0 < self._full_frame_s <= 0.7 / self._cfg.moving_fps
            and self._rows_full is not None
        )

    def _moving_scale(self, moving: bool) -> float:
        return self._cfg.moving_scale if moving and not self._full_detail_affordable() else 1.0

    def _after_draw(self, ev) -> None:
        """After a timed (moving) frame: resize the moving set so the GL draw takes ~70% of the frame budget
        (the rest is the Qt composition, sorting and uploads). Applied at the next view change."""
        if self.node.pending:  # a progressive still frame: paint the next chunk once events are handled
            QTimer.singleShot(0, self.canvas_obj.update)
        n, t = self.node.count, self.node.last_draw_s
        full = self._rows_full is not None and n == len(self._rows_full)
        if self.node.active_renderer == "cpu" and self.node.scale == 1.0 and full:
            self._full_frame_s = t  # every CPU frame is timed
        if not self.node.timed or n == 0 or t <= 0:
            return
        want = n * min(max(0.7 / self._cfg.moving_fps / t, 0.25), 2.0)
        if abs(want - self._lod_budget) > 0.15 * self._lod_budget:
            self._lod_budget = int(min(max(round(want, -3), 1000), self._cfg.lod_count))

    def _on_draw(self, ev) -> None:
        now = time.perf_counter()
        self._frame_times = [t for t in self._frame_times if now - t < 1.0] + [now]
        n = len(self._frame_times)
        self._fps = (n - 1) / max(now - self._frame_times[0], 1e-3) if n > 1 else 0.0
        fps = f"{self._fps:4.0f} frames/s" if n > 1 else "still"
        moving = self._shown_key is not None and self._shown_key[1]
        if moving and now - self._overlay_clock < 0.25:
            return  # a label repaint every frame costs the canvas frames: 4 Hz while moving
        self._overlay_clock = now
        detail = f"moving: {self.node.scale:g}x resolution" if moving else "full detail"
        if self.node.pending:
            detail += f", refining {self.node.refined:.0%}"
        cpu = self.node.active_renderer == "cpu"
        if cpu:  # the CPU renderer sorts by depth inside its draw
            sort_ms = 1e3 * self.node.cpu_timings.get("sort_s", 0.0) if self._sort_ms == 0 else self._sort_ms
            timing = f"draw {1e3 * self.node.last_draw_s:5.1f} ms, sort {sort_ms:4.1f} ms"
        else:
            timing = f"sort {self._sort_ms:5.1f} ms"
        self.overlay.setText(
            f"{self.node.count:,} splats drawn ({detail}, {self.node.active_renderer or '?'}) | "
            f"{fps} | {timing} | "
            f"{self._cfg.camera_mode} camera, up {self._cfg.up_axis}, fov {self._cfg.fov:.0f} deg"
        )

    # -- output ---------------------------------------------------------------------------------------
    def canvas(self):
        return self.canvas_obj

    def render(self, size: tuple[int, int]) -> np.ndarray:
        """GL render of the current view at any size (full detail)."""
        if self._rows_full is None:
            return np.zeros((size[1], size[0], 4), np.uint8)
        cam = self.current_camera((int(size[0]), int(size[1])))
        try:
            img = visuals.render_rows(self.canvas_obj, self.node, self._rows_full, cam, self._sh_full)
        finally:
            self._shown_key = None
            self._sort_now(self._rows_full, moving=False)
        return img

    def render_reference(self, size: tuple[int, int]) -> np.ndarray:
        if self._edited is None:
            raise UserError("no scene loaded")
        cam = self.current_camera(size)
        img = raster.render(
            self._edited,
            cam,
            BACKGROUNDS[self._cfg.background],
            time=self._cfg.time if self._edited.is_4d else None,
        )
        return raster.to_rgba8(img)

    def _export_png(self, path: Path) -> None:
        size = parse_size(self._cfg.export_size)
        check_writable(path)
        img = self.render_reference(size) if self._cfg.export_renderer == "reference" else self.render(size)
        save_png(path, img)

    def _frames(self, cams: list[cm.Camera], times: list[float | None]):
        for cam, t in zip(cams, times, strict=True):
            if t is not None:
                self.set_time(t)
            yield visuals.render_rows(self.canvas_obj, self.node, self._rows_full, cam, self._sh_full)

    def _video(self, path: Path, cams: list[cm.Camera], times: list[float | None]) -> None:
        t_keep = self._cfg.time
        try:
            write_video(path, self._frames(cams, times), fps=30)
        finally:
            if self._edited is not None and self._edited.is_4d:
                self.set_time(t_keep)
            self._shown_key = None
            self._sort_now(self._rows_full, moving=False)

    def _video_size(self) -> tuple[int, int]:
        w, h = self._canvas_size()
        s = min(1.0, 512 / w, 384 / h)
        return max(16, int(w * s) // 2 * 2), max(16, int(h * s) // 2 * 2)

    def _export_turntable(self, path: Path) -> None:
        o = self._orbit
        w, h = self._video_size()
        cams = cm.turntable(
            o.target,
            o.distance,
            o.elevation,
            self._cfg.video_frames,
            w,
            h,
            self._cfg.fov,
            cm.UP_AXES[self._cfg.up_axis],
            start_deg=o.azimuth,
        )
        self._video(path, cams, [None] * len(cams))

    def _export_path(self, path: Path) -> None:
        w, h = self._video_size()
        keys = [k.resized(w, h) for k in self._path_keys]
        if len(keys) < 2:  # no keyframes yet: a default sweep from the current view
            o = self._orbit
            keys = [
                cm.orbit_camera(
                    o.target,
                    o.azimuth + a,
                    o.elevation + e,
                    o.distance * d,
                    w,
                    h,
                    self._cfg.fov,
                    cm.UP_AXES[self._cfg.up_axis],
                )
                for a, e, d in ((0, 0, 1.0), (40, 15, 0.8), (90, -5, 1.1))
            ]
        cams = cm.CameraPath(tuple(keys)).sample(self._cfg.video_frames)
        self._video(path, cams, [None] * len(cams))

    def _export_4d(self, path: Path) -> None:
        w, h = self._video_size()
        cam = self.current_camera((w, h))
        lo, hi = self._time_range
        n = self._cfg.video_frames
        self._video(path, [cam] * n, [lo + (hi - lo) * i / (n - 1) for i in range(n)])

    def _export_ply(self, path: Path) -> None:
        if self._scene is None:
            raise UserError("no scene loaded")
        check_writable(path)
        e = edits.apply_edits(self._scene, self._cfg.edit_config())  # geometry edits, original colours
        if e.count == 0:
            raise UserError("the edits removed every Gaussian: nothing to save")
        io.write_ply(path, e)

    def add_keyframe(self) -> None:
        self._path_keys.append(self.current_camera())
        self.status.emit(f"camera path: {len(self._path_keys)} keyframes")

    def clear_keyframes(self) -> None:
        self._path_keys.clear()

    def exports(self) -> list[ExportAction]:
        acts = [
            ExportAction("Render PNG (GL or reference, export size)", ("png",), self._export_png),
            ExportAction("Turntable MP4", ("mp4", "gif"), self._export_turntable),
            ExportAction("Camera path MP4", ("mp4", "gif"), self._export_path),
            ExportAction("Edited scene PLY", ("ply",), self._export_ply),
        ]
        if self._scene is not None and self._scene.is_4d:
            acts.insert(2, ExportAction("4D playback MP4", ("mp4", "gif"), self._export_4d))
        return acts

    # -- sessions -------------------------------------------------------------------------------------
    def state(self) -> dict:
        st = super().state()
        o = self._orbit
        st["camera"] = {
            "target": np.asarray(o.target).tolist(),
            "azimuth": o.azimuth,
            "elevation": o.elevation,
            "distance": o.distance,
        }
        st["time"] = self._cfg.time
        st["path"] = [k.to_dict() for k in self._path_keys]
        return st

    def restore(self, state: dict) -> None:
        super().restore(state)
        cam = state.get("camera")
        if cam:
            self._orbit = OrbitState(
                np.asarray(cam["target"], float),
                float(cam["azimuth"]),
                float(cam["elevation"]),
                float(cam["distance"]),
            )
        self._path_keys = [cm.Camera.from_dict(d) for d in state.get("path", [])]
        if "time" in state:
            self.set_time(float(state["time"]))
        self._view_changed(moving=False)

    def shutdown(self) -> None:
        self._timer.stop()
        self.stop()
        for t in (self._load_task, self._sort_task):
            if t is not None:
                t.cancel()
                t.wait(5000)
