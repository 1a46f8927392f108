"""PDE fields panel: live Navier-Stokes / Gray-Scott / heat / wave / Burgers fields and Darcy recycling.

Wiring only: the form and the "Show" box write the model (:mod:`panels.pde.model`); the field view
(:mod:`.view`), the side plots (:mod:`.plots`) and the exports (:mod:`.figure`, :mod:`.exports`) read it. The
simulation runs in this panel's task set as a backend generator (:func:`backends.pde.live.live_frames`) that
yields copies; while it runs, only that thread touches the simulation (paint requests are queued to it), and
after a stop the panel continues from the last frame's saved solver state with a fresh simulation, so it never
waits for the worker. Left-drag paints; right-click (or Ctrl+click) places the probe; Shift+drag draws the
line probe.
"""

from __future__ import annotations

import queue
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from app.export import export_plot, save_png
from backends.common import UserError, drain
from backends.pde.live import FIELD_NAMES, build_simulation, darcy_job, live_frames, snapshot
from panels.base import ExportAction, Panel, VideoSpec
from panels.widgets import ParamForm, PlayBar, bind_form, fill_with_splitter, param_fields

from . import exports
from .figure import render_field, render_figure
from .model import PDEModel, PDEParams, nice_limits
from .plots import Plots
from .view import FieldView

REPLAY_INTERVAL_MS = 40  # 25 recorded frames per second
LIVE_THROTTLE_MS = 15.0
VIDEO_SECONDS_PER_FRAME = 1 / 30  # a recording plays at 30 frames/s by default ...
MIN_VIDEO_SECONDS = 2.0  # ... and lasts at least this long


class PDEPanel(Panel):
    key = "pde"
    title = "PDE fields"
    quick_start = (
        "<p>The view shows the initial field of the chosen <b>Model</b>. Press <b>Run</b> to simulate live "
        "(<b>Pause</b> stops at once), <b>Step</b> for one frame, <b>Reset</b> for the initial state.</p>"
        "<p>Left-drag paints into the field, right-click places the probe, Shift+drag draws a line probe. "
        "<b>Show</b> picks the field; the plots on the right follow. Drag the slider or press <b>Replay</b> "
        "to go back in time. Darcy solves a sequence of systems with plain and recycled CG: press Run.</p>"
    )
    controls = (
        ("Left-drag", "paint a Gaussian blob (vorticity, dye, chemical v, temperature, ...)"),
        ("Right-click or Ctrl+click", "place the point probe"),
        ("Shift+drag", "draw the line probe (profile and space-time plot)"),
        ("Slider", "show a recorded frame"),
    )

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = PDEModel()
        self._sim = None  # the live simulation; only a running task touches it while one runs
        self._paints: queue.SimpleQueue = queue.SimpleQueue()
        self._replay_pos = 0
        self.form = ParamForm(param_fields(PDEParams))
        bind_form(self.form, self.model, on_error=self._report)
        self.view_box = QComboBox()
        self.view_box.setObjectName("view_field")
        self.view_box.currentTextChanged.connect(self._on_view_box)
        self.playbar = PlayBar()
        self.playbar.run_toggled.connect(lambda on: self.start() if on else self.stop())
        self.playbar.step_clicked.connect(lambda: self.advance(self.model.params.steps_per_frame))
        self.playbar.scrubbed.connect(self.model.show_frame)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("rebuild the simulation from the parameters (forgets the recording)")
        self.reset_button.clicked.connect(self.reset)
        self.replay_button = QPushButton("Replay")
        self.replay_button.setCheckable(True)
        self.replay_button.setToolTip("play the recorded frames back (25 frames/s); the simulation pauses")
        self.replay_button.toggled.connect(self.replay)
        self._replay_timer = QTimer(self)
        self._replay_timer.setInterval(REPLAY_INTERVAL_MS)
        self._replay_timer.timeout.connect(self._replay_tick)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.field_view = FieldView(self.model)
        self.field_view.on_paint = self.paint_at
        self.plots = Plots(self.model)
        self.field_view.is_live = self.plots.is_live = lambda: self.tasks.busy("run")
        self._layout()
        ev = self.model.events
        ev.connect("params", self._on_params)
        ev.connect("restored", self._on_restored)
        ev.connect("frame", self._on_shown)
        ev.connect("reset", self._on_shown)
        ev.connect("restored", self._on_shown)
        self._on_params(changed=set())
        self.reset()

    def _layout(self) -> None:
        controls = QWidget()
        cl = QVBoxLayout(controls)
        row = QHBoxLayout()
        row.addWidget(QLabel("Show"))
        row.addWidget(self.view_box, 1)
        row.addWidget(self.replay_button)
        row.addWidget(self.reset_button)
        cl.addLayout(row)
        cl.addWidget(self.form)
        cl.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(controls)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(270)
        centre = QWidget()
        cv = QVBoxLayout(centre)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self.field_view, 1)
        cv.addWidget(self.playbar)
        cv.addWidget(self.info)
        fill_with_splitter(self, [scroll, centre, self.plots], [0, 3, 2])

    # -- parameters --------------------------------------------------------------------------------------
    def _report(self, msg: str) -> None:
        self.info.setText(msg)
        self.status.emit(msg)

    def _on_view_box(self, name: str) -> None:
        if name and name != self.model.params.view:
            self.model.set_params(view=name)

    def _on_params(self, changed: set[str], **_) -> None:
        p = self.model.params
        names = FIELD_NAMES[p.model]
        self.view_box.blockSignals(True)
        if tuple(self.view_box.itemText(i) for i in range(self.view_box.count())) != names:
            self.view_box.clear()
            self.view_box.addItems(list(names))
        self.view_box.setCurrentText(p.view)
        self.view_box.blockSignals(False)
        self._update_form_enabled()
        if not self.model.restoring and self.model.sim_changed(changed):
            self.reset()

    def _update_form_enabled(self) -> None:
        p = self.model.params
        m = p.model
        use = {
            "nu": m in ("navier-stokes", "burgers"), "kappa": m == "heat", "c": m == "wave",
            "scheme": m not in ("gray-scott", "darcy"), "adaptive": m == "navier-stokes",
            "forcing": m == "navier-stokes", "init": m not in ("gray-scott", "darcy"), "preset": m == "gray-scott",
            "darcy_count": m == "darcy", "darcy_recycle_k": m == "darcy", "dt": m != "darcy",
            "steps_per_frame": m != "darcy", "paint_target": m == "navier-stokes",
            "paint_amount": m != "darcy", "paint_radius": m != "darcy", "quiver": m in ("navier-stokes", "burgers"),
            "vmin": p.limits == "fixed", "vmax": p.limits == "fixed",
        }  # fmt: skip
        for name, on in use.items():
            self.form.widget(name).setEnabled(on)

    def _on_shown(self, **_) -> None:
        """Keep the scrub slider on the frame shown."""
        self.playbar.set_frames(len(self.model.frames), follow=False)
        self.playbar.slider.blockSignals(True)
        self.playbar.slider.setValue(max(self.model.shown, 0))
        self.playbar.slider.blockSignals(False)

    # -- the simulation ----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Rebuild the simulation from the parameters and show its initial state (Darcy: nothing to show
        until Run, said by the stale marker). A running simulation restarts from the new initial state."""
        was_running = self.tasks.busy("run")
        self.stop()
        self._sim = None
        p = self.model.params
        if p.model == "darcy":
            self.info.setText("Darcy: press Run to solve a sequence of systems with plain and recycled CG")
            self.model.reset_run(None, stale="Darcy: press Run to solve the sequence of systems")
            return
        try:
            self._sim = build_simulation(p.live_config())
        except UserError as exc:
            self._report(str(exc))
            self.model.reset_run(None, stale=f"{exc} (fix the parameters, then press Reset)")
            return
        self.info.setText("")
        self.model.reset_run(snapshot(self._sim))
        if was_running:
            self.start()

    def _ensure_sim(self) -> bool:
        """A simulation owned by the GUI thread at the model's latest state (rebuilt after a stop, so it never
        shares anything with a worker that may still be finishing its step)."""
        if self.model.params.model == "darcy":
            return False
        if self._sim is None and self.model.sim_state is not None:
            try:
                sim = build_simulation(self.model.params.live_config())
                sim.load_state(self.model.sim_state)
                self._sim = sim
            except UserError as exc:
                self._report(str(exc))
                return False
        if self._sim is None:
            self.reset()
        return self._sim is not None

    def _on_restored(self, **_) -> None:
        self._sim = None
        self._on_params(changed=set())
        if self.model.current is None and self.model.params.model != "darcy":
            self.reset()  # a session without the field arrays: show the parameters' initial state

    def start(self) -> None:
        if self.tasks.busy("run"):
            return
        self.replay(False)
        p = self.model.params
        if p.model == "darcy":
            self.model.reset_run(None)
            gen_args = (darcy_job, p.darcy_count, p.n, p.darcy_recycle_k, p.seed)
            self.tasks.submit(
                *gen_args, group="run", label="Darcy recycling", on_yield=self._on_darcy,
                on_error=self._on_error, on_done=lambda _r: self.playbar.set_running(False),
            )  # fmt: skip
            self.playbar.set_running(True)
            return
        if not self._ensure_sim():
            self.playbar.set_running(False)
            return
        sim, self._sim = self._sim, None  # the worker owns it now; after a stop we rebuild from a copy
        self._paints = queue.SimpleQueue()
        self._fps_clock = (time.perf_counter(), self.field_view.draws)
        self.tasks.submit(
            live_frames, sim, p.steps_per_frame, self._paints, group="run",
            label=f"PDE {p.model}", throttle_ms=LIVE_THROTTLE_MS, on_yield=self.model.record,
            on_error=self._on_error,
        )  # fmt: skip
        self.playbar.set_running(True)

    def stop(self) -> None:
        """Cancel at once (never waits for the worker); the next run continues from the newest recorded frame."""
        super().stop()
        self._replay_timer.stop()
        self.playbar.set_running(False)

    def _on_error(self, msg: str) -> None:
        self.info.setText(f"stopped: {msg}")
        self.status.emit(msg)
        self.playbar.set_running(False)

    def _on_darcy(self, data: dict) -> None:
        self.model.record_darcy(data)
        ratio = data["tot_plain"] / max(data["tot_rec"], 1)
        self.info.setText(
            f"Darcy {data['j'] + 1} systems at n = {self.model.params.n}: total CG iterations plain "
            f"{data['tot_plain']}, recycled {data['tot_rec']} (x{ratio:.2f}); solve time plain "
            f"{data['sec_plain']:.2f} s, recycled {data['sec_rec']:.2f} s"
        )

    def advance(self, steps: int) -> None:
        """Synchronous: step the field model (or solve max(2, ``steps``) Darcy systems) and show the result."""
        self.stop()
        p = self.model.params
        if p.model == "darcy":
            if steps > 0:
                self.model.reset_run(None)
                drain(
                    darcy_job(max(2, int(steps)), p.n, p.darcy_recycle_k, p.seed),
                    lambda it: self._on_darcy(it.data),
                )
            return
        if steps <= 0 or not self._ensure_sim():
            return
        try:
            self._sim.step(int(steps))
        except UserError as exc:
            self._on_error(str(exc))
        self.model.record(snapshot(self._sim))

    def paint_at(self, x: float, y: float) -> None:
        """A Gaussian blob at (x, y) in [0, 1]^2: queued to the running worker, or applied now when paused."""
        args = self.model.paint_args(x, y)
        if args is None:
            return
        if self.tasks.busy("run"):
            self._paints.put(args)
            return
        if not self._ensure_sim():
            return
        try:
            self._sim.paint(*args)
        except UserError as exc:
            self._report(str(exc))
            return
        self.model.record(snapshot(self._sim))

    def set_probe(self, x: float, y: float) -> None:
        self.model.set_probe(x, y)

    def set_line(self, p0, p1) -> None:
        self.model.set_line(p0, p1)

    def displayed_fps(self) -> float:
        """Canvas draws per second since the last start() (the live-panel benchmark reads this)."""
        t0, d0 = getattr(self, "_fps_clock", (time.perf_counter(), self.field_view.draws))
        return (self.field_view.draws - d0) / max(time.perf_counter() - t0, 1e-9)

    # -- replay ------------------------------------------------------------------------------------------
    def replay(self, on: bool = True) -> None:
        """Play the recorded frames from the first (pauses the simulation); off stops on the shown frame."""
        if on and len(self.model.frames) > 1 and self.model.params.model != "darcy":
            self.stop()
            self._replay_pos = 0
            self._replay_timer.start()
        else:
            self._replay_timer.stop()
        self.replay_button.blockSignals(True)
        self.replay_button.setChecked(self._replay_timer.isActive())
        self.replay_button.blockSignals(False)

    def replaying(self) -> bool:
        return self._replay_timer.isActive()

    def _replay_tick(self) -> None:
        if self._replay_pos >= len(self.model.frames):
            self.replay(False)
            return
        self.model.show_frame(self._replay_pos)
        self._replay_pos += 1

    # -- output ------------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        """The field figure at any ``size``: title, field (+ arrows, probe, line), colour bar, stale marker."""
        return render_figure(self.model, size)

    def canvas(self):
        return self.field_view.canvas

    def exports(self) -> list[ExportAction]:
        m, plots = self.model, self.plots
        return [
            ExportAction(
                "Field PNG with colorbar", ("png",), lambda p: save_png(p, self.render((1200, 1000)))
            ),
            ExportAction(
                "Field PNG without colorbar", ("png",), lambda p: save_png(p, render_field(m, (1024, 1024)))
            ),
            ExportAction("Spectrum SVG/CSV/PNG", ("svg", "csv", "png"), lambda p: self._spectrum(p)),
            ExportAction(
                "History plot SVG/CSV/PNG",
                ("svg", "csv", "png"),
                lambda p: self._plot(plots.history_plot, p),
            ),
            ExportAction(
                "Darcy residuals SVG/CSV/PNG",
                ("svg", "csv", "png"),
                lambda p: self._plot(plots.darcy_plot, p),
            ),
            ExportAction("Fields NPZ", ("npz",), lambda p: exports.write_npz(m, p)),
            ExportAction("Line probe CSV", ("csv",), lambda p: exports.write_line_csv(m, p)),
        ]

    def _plot(self, plot, path: Path) -> None:
        self.plots.update_plots()  # a live run throttles plot updates: export what the model holds now
        export_plot(plot, path)

    def _spectrum(self, path: Path) -> None:
        if Path(path).suffix.lower() == ".csv":
            exports.write_spectrum_csv(self.model, path)
        else:
            self._plot(self.plots.spectrum_plot, path)

    def video(self) -> VideoSpec | None:
        """The recording (every recorded frame, colour limits fixed over the recording so nothing flickers)."""
        m = self.model
        frames = [f for f in m.frames if m.display(f)[0] is not None] or [m.current]
        if frames[0] is None:
            return None
        duration = max(MIN_VIDEO_SECONDS, len(frames) * VIDEO_SECONDS_PER_FRAME)
        last = m.cmap_and_clim(m.display(frames[-1])[0])[1]
        clim = (
            last
            if m.params.limits == "fixed"
            else nice_limits(np.stack([m.display(f)[0] for f in frames[-50:]]), symmetric=last[0] < 0)
        )

        def frame(u: float, size: tuple[int, int]) -> np.ndarray:
            fr = frames[min(len(frames) - 1, int(round(u * (len(frames) - 1))))]
            return render_figure(m, size, frame=fr, clim=clim)

        return VideoSpec("Recording", duration, frame)

    def shutdown(self) -> None:
        self._replay_timer.stop()
        super().shutdown()
