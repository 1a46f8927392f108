"""Trajectory forecaster panel: ETH/UCY or a synthetic crowd, constant velocity or EigenTrajectory, live.

Wiring only: the model (:mod:`panels.trajectory.model`) holds everything drawn, the view
(:mod:`panels.trajectory.view`) draws the scene at the last observed step of the current 20-step window,
the plots (:mod:`panels.trajectory.plots`) show the ET basis, ET space and the training curve. Click an
agent to focus it. Training runs in this panel's task set; Stop returns at once and keeps the best epoch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from app.export import check_writable, export_plot, save_npz, save_png
from backends.batch.places import studies_dir
from backends.common import UserError
from backends.safeio import write_text
from backends.trajectory.data import STEP_SECONDS
from backends.trajectory.live import (
    WINDOW_CSV_HEADER,
    history_dict,
    train_job,
    window_table,
)
from panels.base import ExportAction, Panel, VideoSpec
from panels.model import config_to_dict
from panels.trajectory.model import TrajectoryModel, TrajectoryParams
from panels.trajectory.plots import TrajectoryPlots
from panels.trajectory.studies import SceneSweepStudies
from panels.trajectory.view import TrajectoryView
from panels.widgets import ParamForm, PlayBar, bind_form, fill_with_splitter, param_fields

__all__ = ["TrajectoryPanel", "TrajectoryParams"]

PLAY_INTERVAL_MS = 200  # on-screen playback: one window (0.4 s of the recording) per 0.2 s
VIDEO_MAX_SECONDS = 60.0  # default video length: the scene in real time (0.4 s a window), at most this
EXPORT_SIZE = (1280, 960)


class TrajectoryPanel(SceneSweepStudies, Panel):
    key = "trajectory"
    title = "Trajectory forecaster"
    open_filter = "Pedestrian tracks (*.txt *.csv)"
    study_workloads = ("trajectory-sweep",)
    quick_start = (
        "<p>The scene shows one 20-step window (8 observed, 12 forecast steps of 0.4 s) of the held-out test "
        "split: pasts in blue, true futures in green, the model's samples in orange, the best sample in red."
        "</p><ol><li>Press <b>Run</b> (under the scene) to play the windows, or drag the slider.</li>"
        "<li><b>Click an agent</b> to focus it: its past, samples and truth are drawn on top and its "
        "minADE/minFDE appear in the title and under the buttons.</li>"
        "<li>Choose <b>Model</b> cv, cv20 or eigentrajectory; with settings that have no trained model, "
        "press <b>Train EigenTrajectory</b> (Stop keeps the best epoch).</li>"
        "<li>File &gt; Open shows your own tracks (ETH/UCY text or CSV frame, ped, x, y at 2.5 fps).</li></ol>"
    )
    controls = (
        ("Click an agent", "focus it (click empty space to clear)"),
        ("Drag", "pan the scene"),
        ("Wheel", "zoom the scene"),
        ("Run / Step / slider", "play, step or scrub the windows"),
    )

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = TrajectoryModel()
        self.study_dir = studies_dir()  # where scene sweep stores go (one per settings)
        self.studies: dict[str, object] = {}  # "sweep" / "baseline" -> the Study running or last run
        self.view = TrajectoryView(self.model)
        self._build_ui()
        for name in ("scene", "forecast", "frame", "restored"):
            self.model.events.connect(name, self._sync_controls)
        self.model.events.connect("stale", self._show_stale)
        self._timer = QTimer(self)
        self._timer.setInterval(PLAY_INTERVAL_MS)
        self._timer.timeout.connect(lambda: self.advance(1))
        self.view.draw()
        self._sync_controls()
        self._show_stale(self.model.stale)

    # -- UI ---------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.form = ParamForm(param_fields(TrajectoryParams))
        bind_form(self.form, self.model, self._report)
        self.train_button = QPushButton("Train EigenTrajectory")
        self.train_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        self.sweep_button = QPushButton("Sweep scenes × seeds")
        self.sweep_button.setToolTip(
            "the model of these settings on every scene of the dataset folder (ETH/UCY for 'auto') x "
            "'Sweep seeds', with constant velocity as the baseline: a batch study (Compute > Cluster…)"
        )
        self.sweep_button.clicked.connect(lambda: self.sweep())
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.info.setToolTip("click an agent in the scene to focus it; drag to pan, wheel to zoom")
        self.stale_label = QLabel("")
        self.stale_label.setStyleSheet("color: #b00020; font-weight: bold;")
        # fixed heights: the canvas and the plots never jump when these texts change length
        self.stale_label.setFixedHeight(self.stale_label.fontMetrics().lineSpacing() + 4)
        self.info.setFixedHeight(3 * self.info.fontMetrics().lineSpacing() + 4)
        self.playbar = PlayBar(with_step=True)
        self.playbar.run_toggled.connect(self._on_play)
        self.playbar.step_clicked.connect(lambda: self.advance(1))
        self.playbar.scrubbed.connect(self._on_scrub)
        self.plots = TrajectoryPlots(self.model)
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.addWidget(self.form)
        row = QHBoxLayout()
        row.addWidget(self.train_button)
        row.addWidget(self.stop_button)
        sl.addLayout(row)
        sl.addWidget(self.sweep_button)
        sl.addWidget(self.info)
        sl.addWidget(self.plots, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.stale_label)
        ll.addWidget(self.view.canvas.native, 1)
        ll.addWidget(self.playbar)
        fill_with_splitter(self, [left, side], [3, 2])

    def _report(self, message: str) -> None:
        self.status.emit(message)
        self.info.setText(message)

    def _show_stale(self, why: str = "", **_info) -> None:
        self.stale_label.setText(f"Stale: {why}" if why else "")
        self.stale_label.setToolTip(why)

    def _sync_controls(self, **_info) -> None:
        """Slider range and position, and the info line, from the model (the slider shows the window drawn)."""
        m = self.model
        self.playbar.set_frames(m.num_windows, follow=False)
        self.playbar.slider.blockSignals(True)
        self.playbar.slider.setValue(m.window)
        self.playbar.slider.blockSignals(False)
        if m.scene is None or m.forecast is None:
            self.info.setText(m.error or "no data")
            return
        w, mt = m.windows, m.forecast.metrics
        text = (
            f"{m.scene.label} test: {w.num_windows} windows, {w.num_agents} agents. minADE/minFDE "
            f"{mt['minADE']:.3f}/{mt['minFDE']:.3f} m, single-sample ADE/FDE {mt['ADE']:.3f}/{mt['FDE']:.3f} m"
        )
        fm = m.focus_metrics()
        if fm is not None:
            text += f". Focus: pedestrian {m.focus:g}, minADE {fm[0]:.3f} m, minFDE {fm[1]:.3f} m"
        self.info.setText(text)

    # -- data -------------------------------------------------------------------------------------------
    def open_path(self, path: Path) -> None:
        """Show one recording: ETH/UCY ``frame ped x y`` text, or CSV with columns frame, ped, x, y at 2.5 fps
        (other layouts: ``visual-lab run trajectory --csv FILE --columns ... --fps ...``)."""
        self.model.open_path(path)
        w = self.model.windows
        self.status.emit(f"opened {Path(path).name}: {w.num_windows} windows, {w.num_agents} agents")

    # -- computation ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Train EigenTrajectory on the fold's train/val splits in a worker (cancellable)."""
        try:
            cfg = self.model.et_config()
        except UserError as exc:
            self._report(str(exc))
            return
        key = self.model.training_started(cfg)
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.info.setText("training EigenTrajectory: fitting descriptors and anchors ...")
        self.tasks.submit(
            train_job,
            cfg,
            self.model.data_root(),
            self.model.params.scene,
            group="train",
            label="EigenTrajectory training",
            on_yield=self.model.training_progress,
            on_progress=lambda _f, msg: msg and self.info.setText(f"training: {msg}"),
            on_done=lambda et, key=key: self._on_trained(key, et),
            on_error=self._on_train_error,
        )

    def stop(self) -> None:
        """Cancel at once (never waits for the worker); a training run keeps its best epoch so far."""
        self._timer.stop()
        self.playbar.set_running(False)
        super().stop()
        if self.model.training is not None:
            self.status.emit(self.model.training_stopped())
        self._training_ui_done()

    def _on_trained(self, key, et) -> None:
        self.model.training_finished(key, et)
        self._training_ui_done()
        self._sync_controls()
        self.status.emit("EigenTrajectory trained")

    def _on_train_error(self, msg: str) -> None:
        self.model.training_finished(self.model.training.key if self.model.training else (), None)
        self._training_ui_done()
        self._report(f"training failed: {msg}")

    def _training_ui_done(self) -> None:
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def advance(self, steps: int) -> None:
        """Show the window ``steps`` on (wrapping)."""
        self.model.step(steps)

    def _on_play(self, on: bool) -> None:
        self._timer.start() if on else self._timer.stop()

    def _on_scrub(self, i: int) -> None:
        if 0 <= i < self.model.num_windows:
            self.model.set_window(i)

    # -- output -----------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int], window: int | None = None) -> np.ndarray:
        """The scene of window ``window`` (default: the one shown) as RGBA uint8 of ``size`` = (w, h), from
        the model alone (its camera rectangle fitted into the image), whatever the widget's size."""
        return self.view.render(size, window)

    def canvas(self):
        return self.view.canvas

    def video(self) -> VideoSpec | None:
        """Every window of the scene in order, each one for 0.4 s (real time) by default."""
        n = self.model.num_windows
        if n == 0:
            return None

        def frame(u: float, size: tuple[int, int]) -> np.ndarray:
            return self.view.render(size, window=min(int(round(float(u) * (n - 1))), n - 1), hold=True)

        duration = min(n * STEP_SECONDS, VIDEO_MAX_SECONDS)
        return VideoSpec("Scene windows", duration, frame, end=self.view.release)

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Scene PNG", ("png",), lambda p: save_png(p, self.render(EXPORT_SIZE))),
            ExportAction("Predictions of this window CSV", ("csv",), self._write_predictions),
            ExportAction("Predictions of the scene NPZ", ("npz",), self._write_predictions_npz),
            ExportAction("Metrics JSON", ("json",), self._write_metrics),
            ExportAction("Scene sweep table CSV", ("csv",), self._write_sweep_csv),
            ExportAction(
                "Training plot PNG/SVG/CSV",
                ("png", "svg", "csv"),
                lambda p: export_plot(self.plots.loss_plot, p),
            ),
        ]

    def _require_forecast(self):
        m = self.model
        if m.windows is None or m.forecast is None:
            raise UserError("no predictions to export: load a scene first")
        return m.windows, m.forecast

    def _write_predictions(self, path: Path) -> None:
        """The current window as CSV: window, frame (last observed), ped, sample, step, x, y (m); sample -1 is
        the ground truth. (The whole scene goes to the NPZ export: CSV text of every sample is too slow.)"""
        w, fc = self._require_forecast()
        p = check_writable(path)
        table = window_table(w, fc.samples, self.model.window)
        fmt = ("%d", "%g", "%g", "%d", "%d", "%.4f", "%.4f")
        lines = [WINDOW_CSV_HEADER] + [",".join(f % v for f, v in zip(fmt, row)) for row in table]
        write_text(p, "\n".join(lines) + "\n")

    def _write_predictions_npz(self, path: Path) -> None:
        """The whole test scene: samples (S, N, 12, 2), obs, gt, window offsets, ped ids, frames, best."""
        w, fc = self._require_forecast()
        save_npz(
            path,
            samples=fc.samples,
            obs=w.obs,
            gt=w.pred,
            starts=w.starts,
            ped_ids=w.ped_ids,
            frames=w.frames,
            best=fc.best,
        )

    def _write_metrics(self, path: Path) -> None:
        w, fc = self._require_forecast()
        m = self.model
        p = check_writable(path)
        out = dict(fc.metrics)
        out.update(
            opened_file=None if m.scene.opened is None else str(m.scene.opened),
            scene=m.params.scene,
            model=fc.model,
            windows=w.num_windows,
            data=str(m.data_root()),
            params=config_to_dict(m.params),
        )
        h = m.shown_history()
        if h is not None:
            hist = history_dict(h)
            out["training"] = {"train_loss": hist["train_loss"], "val_minFDE": hist["val_minfde"]}
        write_text(p, json.dumps(out, indent=2, allow_nan=False))

    def shutdown(self) -> None:
        self._timer.stop()
        super().shutdown()
