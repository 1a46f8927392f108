"""Three-body integrator panel (wiring): the form and the initial-condition table write the model; the orbit view
(:mod:`.view`) and the plots (:mod:`.plots`) draw what the model holds; runs, the escape map and DQN training
go through this panel's task set and hand their results to the model on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.export import export_plot, save_csv, save_png
from backends.common import UserError
from backends.nbody.live import SyncRun
from backends.nbody.run import simulate
from panels.base import ExportAction, Panel, VideoSpec
from panels.threebody.model import IC_COLUMNS, ThreeBodyModel, ThreeBodyParams
from panels.threebody.plots import EnergyPlots, EnsembleMap, RewardPlot
from panels.threebody.studies import EnsembleStudies
from panels.threebody.view import OrbitView
from panels.widgets import ParamForm, PlayBar, bind_form, fill_with_splitter, param_fields

TICK_MS = 33  # playback timer interval
FORM_FIELDS = (
    "preset",
    "integrator",
    "eta",
    "dt",
    "tol",
    "t_end",
    "aarseth",
    "seed",
    "controller",
    "speed",
    "trail",
    "compare_rebound",
)
VIDEO_SECONDS = (4.0, 60.0)  # default video length: the replay at the playback speed, within these bounds
IC_FORMAT = ".4g"  # table text (the model keeps full precision; the tooltip shows all digits)
IC_WIDEST = "-0.9324"  # a column fits this (4 digits and a sign; e-notation may elide); no scrollbar


def _form(names: tuple[str, ...]) -> ParamForm:
    return ParamForm([f for f in param_fields(ThreeBodyParams) if f.name in names])


class ThreeBodyPanel(EnsembleStudies, Panel):
    key = "threebody"
    title = "Three-body integrator"
    study_workloads = ("escape-map", "dqn-eval")
    quick_start = (
        "<p>Pick a <b>Preset</b> (figure-8, Pythagorean, random, ...) and an <b>Integrator</b>, then press "
        "<b>Run</b>: the orbit plays live, the plots show the relative energy error and the step size (REBOUND's "
        "IAS15 beside ours when <i>compare with REBOUND</i> is on). <b>Step</b> advances one frame; the slider "
        "replays the recorded run; <b>Restart run</b> starts over with the current settings.</p>"
        "<p>Edit the <b>initial conditions</b> table to run your own system. <b>Learned stepping</b> trains a "
        "DQN step controller that the <i>learned</i> integrator can use.</p>"
        "<p><b>Ensemble map</b> &gt; <b>Compute escape map</b> integrates a grid of systems as a batch study "
        "(the store <tt>visual-lab batch escape-map</tt> writes for the same grid, t_end and tile), on the "
        "cluster of <b>Compute &gt; Cluster…</b> when one is running, in this process otherwise; the map fills "
        "in tile by tile (pale tiles: not computed yet) and <b>Stop</b> keeps the finished tiles. Each grid, "
        "t_end and tile gets its own store under <tt>~/.local/share/visual-lab/studies</tt> (or "
        "<tt>$VISUAL_LAB_STUDIES_DIR</tt>): pressing the button again resumes it, or shows it at once when it "
        "is complete. <b>Compute into store…</b> picks the folder yourself; <b>File &gt; Open study…</b> shows "
        "any escape-map store, e.g. one a cluster job wrote.</p>"
        "<p><b>File &gt; Open study…</b> on a <tt>visual-lab batch dqn-eval</tt> store shows, in <b>Learned "
        "stepping</b>, the policy (red star) against each fixed eta: mean force evaluations against the log-mean "
        "|dE/E| over the systems finished so far; <b>Export &gt; DQN study table CSV</b> saves the table.</p>"
    )
    controls = (
        ("Left-drag", "orbit the camera"),
        ("Shift+drag or middle-drag", "pan"),
        ("Wheel", "zoom"),
        ("Slider", "replay the recorded run"),
    )

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = ThreeBodyModel()
        self._sync: SyncRun | None = None  # a run advanced by Step / advance() on the GUI thread
        self._timer = QTimer(self)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._build()
        ev = self.model.events
        for name in ("reset", "history", "restored"):
            ev.connect(name, self._sync_run_widgets)
        ev.connect("frame", self._sync_slider)
        ev.connect("reset", self._drop_old_run)
        ev.connect("params", self._on_params)
        self._fill_table()
        self._sync_run_widgets()

    # -- UI -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        m = self.model
        self.form = _form(FORM_FIELDS)
        bind_form(self.form, m, self.status.emit)
        self.play = PlayBar()
        self.play.run_toggled.connect(self._on_play)
        self.play.step_clicked.connect(lambda: self.advance(1))
        self.play.scrubbed.connect(lambda i: self.model.set_time(float(self.model.rec.t[i])))
        self.restart_button = QPushButton("Restart run")
        self.restart_button.clicked.connect(self.restart)

        self.table = QTableWidget(0, len(IC_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(IC_COLUMNS))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        self.table.setMinimumHeight(110)
        col = self.table.fontMetrics().horizontalAdvance(IC_WIDEST) + 10
        self.table.horizontalHeader().setMinimumSectionSize(col)
        self.table.setMinimumWidth(col * len(IC_COLUMNS) + 30)
        self.table.itemChanged.connect(self._on_table)
        self.event_list = QListWidget()
        self.event_list.setMinimumHeight(80)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(2, 2, 2, 2)
        lv.addWidget(self.form)
        lv.addWidget(self.restart_button)
        lv.addWidget(QLabel("Initial conditions (edit to run a custom system)"))
        lv.addWidget(self.table, 1)
        lv.addWidget(QLabel("Event log"))
        lv.addWidget(self.event_list, 1)

        self.orbit = OrbitView(m)
        self.plots = EnergyPlots(m)
        self.ens_form = _form(("ens_n", "ens_t_end", "ens_tile"))
        bind_form(self.ens_form, m, self.status.emit)
        self.ens_button = QPushButton("Compute escape map")
        self.ens_button.setToolTip("a batch study into this map's own store; again: resume (or show) it")
        self.ens_button.clicked.connect(lambda: self.start_ensemble())
        self.ens_store_button = QPushButton("Compute into store…")
        self.ens_store_button.setToolTip("the same study into a Zarr store (a .zarr folder) you choose")
        self.ens_store_button.clicked.connect(self._choose_store)
        buttons = QWidget()
        bl = QHBoxLayout(buttons)
        bl.setContentsMargins(0, 0, 0, 0)
        bl.addWidget(self.ens_button, 1)
        bl.addWidget(self.ens_store_button)
        self.ensemble_map = EnsembleMap(m, [self.ens_form, buttons])
        self.train_form = _form(("train_episodes",))
        bind_form(self.train_form, m, self.status.emit)
        self.train_button = QPushButton("Train DQN policy")
        self.train_button.clicked.connect(self.start_training)
        self.rewards = RewardPlot(m, [self.train_form, self.train_button])

        self.tabs = QTabWidget()
        self.tabs.addTab(self.plots, "Energy / step")
        self.tabs.addTab(self.ensemble_map, "Ensemble map")
        self.tabs.addTab(self.rewards, "Learned stepping")

        center = QWidget()
        cv = QVBoxLayout(center)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self.orbit, 1)
        cv.addWidget(self.play)
        split = fill_with_splitter(self, [left, center, self.tabs], [0, 3, 2])
        split.setChildrenCollapsible(False)
        split.setSizes([380, 520, 420])

    # -- model -> widgets -----------------------------------------------------------------------------------
    def _on_params(self, changed, **_) -> None:
        if changed & {"preset", "seed", "ics"}:
            self._fill_table()

    def _fill_table(self, **_) -> None:
        rows = self.model.ic_table()
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, val in enumerate(row):
                item = QTableWidgetItem(f"{val:{IC_FORMAT}}")
                item.setToolTip(f"{IC_COLUMNS[j]} = {val:.17g}")
                self.table.setItem(i, j, item)
        self.table.blockSignals(False)

    def _on_table(self, item: QTableWidgetItem) -> None:
        try:
            value = float(item.text())
            self.model.set_ic(item.row(), item.column(), value)
        except ValueError as exc:  # UserError is a ValueError
            self.status.emit(f"initial conditions not applied: {exc}")
            self._fill_table()
            return
        self.status.emit("custom initial conditions applied")

    def _sync_run_widgets(self, **_) -> None:
        rec = self.model.rec
        if self.event_list.count() != len(rec.events) or not rec.events:
            self.event_list.clear()
            self.event_list.addItems(rec.events)
        self.play.set_frames(len(rec), follow=False)
        self._sync_slider()
        if len(rec) == 1:
            self._fill_table()

    def _drop_old_run(self, **_) -> None:
        """A new initial state: no chunk of the previous run may land on it."""
        self.tasks.cancel("run")
        self.tasks.cancel("ref")
        self._sync = None

    def _sync_slider(self, **_) -> None:
        self.play.slider.blockSignals(True)
        self.play.slider.setValue(self.model.frame)
        self.play.slider.blockSignals(False)

    # -- playback -------------------------------------------------------------------------------------------
    def _on_play(self, on: bool) -> None:
        if not on:
            self._timer.stop()
            return
        running = self.tasks.busy("run")
        if len(self.model.rec) <= 1 and not running:
            self.restart()
        elif self.model.at_end() and not running:
            self.model.set_time(0.0)  # Run at the end replays the run
        self._timer.start()

    def _tick(self) -> None:
        m = self.model
        m.set_time(m.time + m.params.speed * TICK_MS / 1000.0)
        if m.at_end() and not self.tasks.busy("run"):
            self._timer.stop()
            self.play.set_running(False)

    # -- computation ----------------------------------------------------------------------------------------
    def restart(self) -> None:
        """A fresh run from the initial conditions (and the REBOUND reference run if enabled)."""
        try:
            system, cfg, policy = self.model.begin_run()  # its reset event cancels the previous run
        except UserError as exc:
            self.status.emit(str(exc))
            self.play.set_running(False)
            return
        self.tasks.submit(
            simulate,
            system,
            cfg,
            policy=policy,
            group="run",
            label="three-body run",
            throttle_ms=0,
            on_yield=self._on_chunk,
            on_done=self._on_done,
            on_error=self.status.emit,
        )
        if self.model.params.compare_rebound and cfg.integrator != "rebound":
            from dataclasses import replace

            from backends.nbody.reference import rebound_available

            if rebound_available():
                self.tasks.submit(
                    simulate,
                    system,
                    replace(cfg, integrator="rebound"),
                    group="ref",
                    label="REBOUND reference",
                    throttle_ms=0,
                    on_yield=self.model.add_reference,
                    on_error=self.status.emit,
                )

    def _on_chunk(self, chunk) -> None:
        self.model.add_chunk(chunk)
        if not self._timer.isActive():
            self.model.set_time(self.model.rec.t_last)

    def _on_done(self, result) -> None:
        if result is None:
            return
        self.model.finish_run(result.status, result.summary())
        self.status.emit(result.summary())

    def start(self) -> None:
        self.play.run_button.setChecked(True)

    def stop(self) -> None:
        """Cancel every task at once (threads end in the background) and pause playback; a running escape
        map study keeps its finished tiles in its store."""
        study_running = self.tasks.busy("ensemble")
        super().stop()
        self._timer.stop()
        self.play.set_running(False)
        if study_running and self.model.ens_store:
            done, total = self.model.ens_tiles
            self.model.set_ensemble_message(
                f"stopped: {done}/{total} tiles kept in {self.model.ens_store}; "
                "press Compute escape map to resume"
            )
            self.status.emit(f"escape map stopped at {done}/{total} tiles")

    def advance(self, steps: int) -> None:
        """Integrate ``steps`` chunks of 20 steps on this thread, continuing the current synchronous run."""
        if self._sync is None or self._sync.done or self.model.stale:
            system, cfg, policy = self.model.begin_run()
            self._sync = SyncRun(system, cfg, policy)
        for chunk in self._sync.chunks(int(steps)):
            self.model.add_chunk(chunk)
        self.model.set_time(self.model.rec.t_last)
        self.plots.draw_run()  # the plots redraw at most every 100 ms while chunks stream in: now, all of it

    def _export_energy_plot(self, path) -> None:
        self.plots.draw_run()
        export_plot(self.plots.energy_plot, path)

    def start_training(self) -> None:
        from backends.nbody.learned import bundled_train_config, train

        cfg = bundled_train_config(self.model.params.train_episodes)  # the bundled policy's method
        self.model.set_rewards([], f"training {cfg.episodes} episodes ...")
        self.tasks.submit(
            train,
            cfg,
            group="train",
            label="DQN training",
            on_yield=lambda item: self.model.set_rewards(
                list(item[2]), f"episode {item[0]}: reward {item[1]:.3f}"
            ),
            on_done=self._on_trained,
            on_error=self.status.emit,
        )

    def _on_trained(self, policy) -> None:
        if policy is None:
            return
        self.model.set_policy(
            policy,
            f"training done: {len(self.model.rewards)} episodes. Choose integrator 'learned' with step "
            f"controller 'trained' to run with it; Export > DQN policy weights saves it.",
        )

    # -- output ---------------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        return self.orbit.render(size)

    def canvas(self):
        return self.orbit.canvas

    def video(self) -> VideoSpec:
        """The recorded run replayed from t = 0 to its end (the frame at fraction u shows t = u * t_end)."""
        rec, speed = self.model.rec, self.model.params.speed
        seconds = float(np.clip(rec.t_last / speed, *VIDEO_SECONDS))

        def frame(u: float, size: tuple[int, int]) -> np.ndarray:
            rec = self.model.rec
            return self.orbit.render(size, frame=rec.frame_at(float(np.clip(u, 0, 1)) * rec.t_last))

        return VideoSpec("Orbit", seconds, frame)

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Orbit PNG", ("png",), lambda p: save_png(p, self.render((1200, 900)))),
            ExportAction(
                "Energy plot SVG/CSV",
                ("svg", "csv", "png"),
                self._export_energy_plot,
            ),
            ExportAction("Trajectory NPZ", ("npz",), lambda p: self.model.rec.save(p)),
            ExportAction("Ensemble map PNG", ("png",), self._write_ens_png),
            ExportAction("Ensemble map NPZ", ("npz",), self._write_ens_npz),
            ExportAction("DQN policy weights", ("pt",), self._write_policy),
            ExportAction("DQN study table CSV", ("csv",), lambda p: save_csv(p, *self.model.dqn_columns())),
            ExportAction("DQN study plot PNG/SVG", ("png", "svg"), self._write_dqn_plot),
        ]

    def _write_policy(self, path: Path) -> None:
        if self.model.policy is None:
            raise UserError("no trained policy yet: press Train DQN policy in the Learned stepping tab")
        self.model.policy.save(path)

    def shutdown(self) -> None:
        self._timer.stop()
        self._sync = None
        super().shutdown()
