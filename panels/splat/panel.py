"""Gaussian-splat viewer panel: load 3D/4D scenes, look around (orbit / fly), edit, colour by attribute,
keep a camera path, export PNG (GL or reference rasterizer), video (turntable, camera path, 4D playback) and
the edited .ply. Streamed SOG scenes refine as the camera moves: the model chooses the levels, a worker decodes
the missing chunks, the model inserts them on this thread. Wiring only: the model holds the state, the view
draws it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from app.export import VideoSpec, check_writable, save_png
from backends.common import UserError, parse_size
from backends.splat import edits, io, tile_raster
from backends.splat.live import warmup_job
from panels.base import ExportAction, Panel
from panels.splat.camera_path import CameraPath
from panels.splat.model import BACKGROUNDS, Orbit, SplatModel, open_source_gen
from panels.splat.stream import resolve_folder
from panels.splat.streaming import StreamDriver
from panels.splat.view import SplatView
from panels.widgets import ParamForm, bind_form, param_fields

SLIDER_STEPS = 1000


class SplatPanel(Panel):
    key = "splat"
    title = "Gaussian splat viewer"
    open_filter = (
        "Gaussian splats, SOG scenes and point clouds "
        "(*.ply *.splat *.spz *.sog meta.json lod-meta.json *.npz)"
    )
    quick_start = (
        "<p>A sample scene opens at once. <b>File &gt; Open</b> (or <b>Scene = file</b>) opens your own: 3DGS "
        "<code>.ply</code>, compressed <code>.ply</code>, <code>.splat</code>, <code>.spz</code>, SOG "
        "(<code>.sog</code>, a folder's <code>meta.json</code>) and streamed SOG (<code>lod-meta.json</code>, "
        "which refines where you look within the <b>stream budget</b>), point clouds and SfM cameras.</p>"
        "<p>Drag to orbit, wheel to zoom, WASD/QE to fly. <b>Colour by</b> shows an attribute with its legend; "
        "<b>Add keyframe</b> builds a camera path that Export &gt; Video flies along (or a turntable, or 4D "
        "playback with <b>Play</b> and the time slider).</p>"
    )
    controls = (
        ("Left-drag", "orbit around the target"),
        ("Wheel", "zoom"),
        ("W A S D / Q E", "fly forward, left, back, right / down, up"),
        ("Click a camera frustum", "look through that camera"),
        ("Double-click a keyframe", "look through it"),
    )

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = SplatModel()
        self.view = SplatView(self.model, self.tasks, self)
        self.canvas_obj, self.node = self.view.canvas, self.view.node
        self._chooser: QFileDialog | None = None
        self.streaming = StreamDriver(self.model, self.tasks, self.status.emit, self._on_stream, self)

        self.form = ParamForm(param_fields(type(self.model.params)))
        self.form.changed.connect(self._on_form_edit)  # before bind_form: 'file' opens the chooser first
        bind_form(self.form, self.model, on_error=self._form_error)
        self.color_combo = QComboBox()
        self.color_combo.setObjectName("param_color_by")
        self.color_combo.setToolTip("colour the splats by an attribute of the scene (legend below)")
        self.color_combo.currentTextChanged.connect(self._on_color_edit)
        self.form.layout().insertRow(5, "Colour by", self.color_combo)

        self.legend_label = QLabel()
        self.legend_label.setTextFormat(Qt.TextFormat.RichText)
        self.legend_label.setWordWrap(True)
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        self.camera_path = CameraPath(self.model, self.status.emit)
        self.keyframe_list = self.camera_path.keyframe_list
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._on_play)
        self.time_slider = QSlider(Qt.Orientation.Horizontal)
        self.time_slider.setRange(0, SLIDER_STEPS)
        self.time_slider.valueChanged.connect(self._on_slider)
        self.time_label = QLabel("t = 0.000")

        side = QVBoxLayout()
        side.addWidget(self.form)
        side.addWidget(self.camera_path)
        side.addWidget(QLabel("<b>Legend</b>"))
        side.addWidget(self.legend_label)
        side.addWidget(self.info_label)
        side.addStretch(1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setMaximumWidth(340)
        time_row = QHBoxLayout()
        for w, k in ((QLabel("Time"), 0), (self.play_button, 0), (self.time_slider, 1), (self.time_label, 0)):
            time_row.addWidget(w, k)
        left = QVBoxLayout()
        left.addWidget(self.canvas_obj.native, 1)
        left.addWidget(self.view.overlay)
        left.addLayout(time_row)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 1)
        lay.addWidget(side_w)

        ev = self.model.events
        ev.connect("params", self._on_params)
        ev.connect("scene", self._on_scene)
        ev.connect("rows", self._on_rows)
        ev.connect("restored", self._on_restored)
        ev.connect("camera", lambda moving: self.streaming.soon())
        ev.connect("stream", self._on_stream)
        # where the rows live is known after the first draw resolves the renderer
        self.canvas_obj.events.draw.connect(lambda _ev: self._refresh_where(), position="last")
        # the bundled sample is small: load synchronously so the panel shows something at once
        self.model.load_now()
        self.model.runner = self._build_rows  # from now on big scenes build their rows in a worker
        if not tile_raster.ready():
            self.tasks.submit(
                warmup_job,
                group="warmup",
                label="CPU rasterizer",
                on_done=lambda _r: self.view.renderer_ready(),
            )

    # -- form -----------------------------------------------------------------------------------------
    def _guard(self, fn, *args, **kwargs) -> None:
        try:
            fn(*args, **kwargs)
        except UserError as exc:
            self.status.emit(str(exc))

    def _on_form_edit(self, name: str, value) -> None:
        if name == "scene" and value == "file" and self.model.params.scene != "file":
            self.choose_scene_file()

    def _form_error(self, message: str) -> None:
        if self._chooser is None or not self._chooser.isVisible():  # choosing a file: not an error yet
            self.status.emit(message)

    def choose_scene_file(self) -> QFileDialog:
        """A (window-modal, non-blocking) file chooser for Scene = file; a chosen file opens as the scene."""
        self._chooser = QFileDialog(
            self, "Open a Gaussian splat scene", "", f"{self.open_filter};;All files (*)"
        )
        self._chooser.setFileMode(QFileDialog.FileMode.ExistingFiles)
        self._chooser.filesSelected.connect(lambda files: self._guard(self.open_path, ";".join(files)))
        self._chooser.open()
        return self._chooser

    def _on_color_edit(self, text: str) -> None:
        if text and text != self.model.params.color_by:
            self._guard(self.model.set_params, color_by=text)
            self._sync_color()

    def _sync_color(self) -> None:
        combo = self.color_combo
        combo.blockSignals(True)
        combo.clear()
        combo.addItems(self.model.attribute_names())
        combo.setCurrentText(self.model.params.color_by)
        combo.blockSignals(False)

    # -- model events ---------------------------------------------------------------------------------
    def _on_params(self, changed: set[str]) -> None:
        if "color_by" in changed:
            self._sync_color()
        if "time" in changed:
            self._sync_time()
        if self.model.needs_load() and not self.model.restoring:
            self._load()
        if "stream_budget" in changed:
            self.streaming.soon()

    def _on_scene(self) -> None:
        g = self.model.scene
        for w in (self.play_button, self.time_slider, self.time_label):
            w.setEnabled(g.is_4d)
        self._sync_color()
        self._sync_time()
        streamed = ", streamed: coarsest level first" if self.model.stream is not None else ""
        self.status.emit(
            f"loaded {g.count:,} Gaussians ({g.source}); SH degree {g.sh_degree}{', 4D' if g.is_4d else ''}"
            f"{streamed}"
        )
        self.streaming.soon()

    def _on_rows(self) -> None:
        m = self.model
        lg = m.legend
        if lg is None:
            self.legend_label.setText("scene colours (spherical harmonics)")
        else:
            rows = [
                f"<span style='background:#{''.join(f'{int(255 * c):02x}' for c in rgb)}'>&nbsp;&nbsp;&nbsp;"
                f"&nbsp;</span> {label}"
                for label, rgb in lg.swatches()
            ]
            self.legend_label.setText(f"<i>{lg.title}</i><br>" + "<br>".join(rows))
        e, g = m.edited, m.scene
        span = "4D, t in [{:.2f}, {:.2f}]".format(*m.time_range) if e.is_4d else "3D"
        streamed = f"<br>{m.stream.info()}" if m.stream is not None else ""
        self.info_label.setText(
            f"{g.source}: {e.count:,} of {g.count:,} Gaussians after edits; SH degree {e.sh_degree}; {span}; "
            f"{m.rows.rows.nbytes / 2**20:.1f} MiB of splat rows {self.view.memory_where()}{streamed}"
        )

    def _refresh_where(self) -> None:
        if self.model.rows is not None and self.view.memory_where() not in self.info_label.text():
            self._on_rows()

    def _on_restored(self) -> None:
        self._sync_color()
        self._sync_time()
        if tile_raster.ready():  # a warm-up cancelled by the restore finished anyway
            self.view.renderer_ready()

    # -- scene ----------------------------------------------------------------------------------------
    def open_path(self, path) -> None:
        """Open a scene file; a SOG folder opens through its lod-meta.json (streamed) or meta.json."""
        self.model.set_params(scene="file", path=str(resolve_folder(Path(path))))

    def _load(self) -> None:
        p, old = self.model.params, self.model.source
        source = (p.scene, p.path)

        def failed(message: str) -> None:
            self.status.emit(message)
            if self.model.needs_load() and (self.model.params.scene, self.model.params.path) == source:
                self.model.set_params(scene=old[0], path=old[1])  # back to the scene that is shown
            self.model.mark_stale("")

        self.tasks.submit(
            open_source_gen,
            *source,
            group="load",
            label="load splats",
            on_done=lambda s: self.model.set_loaded(s, reset=True, source=source),
            on_error=failed,
            on_progress=lambda f, m: self.model.mark_stale(m),
        )

    def _build_rows(self, make, on_done) -> None:
        """The model's runner: one rows build in a worker (the model queues the next request behind it)."""
        self.tasks.submit(
            make,
            group="rows",
            label="splat rows",
            on_done=on_done,
            on_error=self.model.rows_failed,
            on_progress=lambda _f, message: self.status.emit(message),
        )

    def _on_stream(self) -> None:
        if self.model.rows is not None:
            self._on_rows()

    # -- camera path and time -------------------------------------------------------------------------
    def _sync_time(self) -> None:
        lo, hi = self.model.time_range
        t = self.model.params.time
        self.time_slider.blockSignals(True)
        self.time_slider.setValue(int(round(SLIDER_STEPS * (t - lo) / max(hi - lo, 1e-12))))
        self.time_slider.blockSignals(False)
        self.time_label.setText(f"t = {t:.3f}")

    def _on_slider(self, v: int) -> None:
        lo, hi = self.model.time_range
        self.model.set_time(lo + (hi - lo) * v / SLIDER_STEPS)

    def _on_play(self, on: bool) -> None:
        self.view.playing = on
        self.play_button.setText("Pause" if on else "Play")
        if on:
            self.view.ensure_timer()

    def start(self) -> None:
        if self.model.scene is not None and self.model.scene.is_4d:
            self.play_button.setChecked(True)

    def stop(self) -> None:
        self.play_button.setChecked(False)
        super().stop()
        self.model.rows_cancelled()  # the rows still owe the parameters: their build starts again
        if self.model.stream is not None and self.model.stream.loading:  # those loads were cancelled
            self.model.stream.loading.clear()
            self._on_stream()

    def advance(self, steps: int) -> None:
        """Synchronous: step 4D time by ``steps`` frames of 1/30 s (3D: turn the orbit by 2 degrees a step)."""
        m = self.model
        if m.scene is None or steps <= 0:
            return
        if m.scene.is_4d:
            for _ in range(int(steps)):
                m.step_time(1 / 30)
        else:
            m.set_orbit(
                Orbit(m.orbit.target, m.orbit.azimuth + 2.0 * steps, m.orbit.elevation, m.orbit.distance)
            )

    # -- output ---------------------------------------------------------------------------------------
    def canvas(self):
        return self.canvas_obj

    def current_camera(self, size: tuple[int, int] | None = None):
        return self.view.camera(size)

    def render(self, size: tuple[int, int]) -> np.ndarray:
        """The current view at any size, full detail, through the viewer's renderer (a streamed scene first
        loads every chunk its selection needs, so the figure depends on the camera and budget alone)."""
        self.model.stream_complete()
        self.model.rows_complete()
        img = self.view.render_camera(self.model.camera((int(size[0]), int(size[1]))))
        self._refresh_where()
        return img

    def render_reference(self, size: tuple[int, int]) -> np.ndarray:
        from backends.splat import raster  # torch: imported on first use (seconds), not with the panel

        self.model.stream_complete()
        self.model.rows_complete()
        e = self.model.edited
        if e is None:
            raise UserError("no scene loaded")
        p = self.model.params
        img = raster.render(
            e, self.model.camera(size), BACKGROUNDS[p.background], time=p.time if e.is_4d else None
        )
        return raster.to_rgba8(img)

    def _export_png(self, path: Path) -> None:
        p = self.model.params
        size = parse_size(p.export_size)
        check_writable(path)
        save_png(path, self.render_reference(size) if p.export_renderer == "reference" else self.render(size))

    def _export_ply(self, path: Path) -> None:
        if self.model.scene is None:
            raise UserError("no scene loaded")
        check_writable(path)
        e = edits.apply_edits(self.model.scene, self.model.params.edit_config())  # original colours
        if e.count == 0:
            raise UserError("the edits removed every Gaussian: nothing to save")
        io.write_ply(path, e)

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Render PNG (GL or reference, export size)", ("png",), self._export_png),
            ExportAction("Edited scene PLY", ("ply",), self._export_ply),
        ]

    def video(self) -> VideoSpec:
        """Export > Video: the Video parameter's animation (turntable, camera path or 4D playback)."""
        m = self.model
        kind = m.params.video
        keep = {"time": m.params.time}

        def frame(u: float, size: tuple[int, int]) -> np.ndarray:
            m.rows_complete()
            if kind == "turntable":
                return self.view.render_camera(m.turntable_camera(u, size))
            if kind == "camera path":
                return self.view.render_camera(m.path_camera(u, size))
            lo, hi = m.time_range
            m.set_time(lo + (hi - lo) * u)
            m.rows_complete()
            return self.view.render_camera(m.camera(size))

        def end() -> None:
            if m.params.time != keep["time"]:
                m.set_params(time=keep["time"])

        duration = {"turntable": 6.0, "camera path": 8.0, "4D playback": 4.0}[kind]
        return VideoSpec(
            kind.capitalize(), duration, frame, begin=lambda: keep.update(time=m.params.time), end=end
        )

    def shutdown(self) -> None:
        self.view.playing = False
        self.model.runner = None  # nothing new starts while the tasks stop
        super().shutdown()
