"""Three-body integrator panel: a live 3D orbit view, energy/step-size plots (ours and REBOUND), presets and an
editable initial-condition table, an event log, the ensemble escape map and the learned-stepping reward curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.export import export_plot, save_npz, save_png, write_video
from app.worker import submit
from backends.common import UserError
from backends.nbody.core import PRESETS, System, preset
from backends.nbody.run import INTEGRATORS, RunConfig, simulate
from panels.base import ExportAction, Panel
from panels.widgets import (
    Field,
    ParamForm,
    PlayBar,
    fill_with_splitter,
    finite_or_nan,
    grid_segments,
    make_canvas,
    make_plot,
    render_canvas,
)

COLORS = np.array(
    [
        [1.0, 0.45, 0.2],
        [0.3, 0.75, 1.0],
        [0.55, 1.0, 0.35],
        [1.0, 0.85, 0.3],
        [0.85, 0.4, 1.0],
        [1.0, 0.35, 0.55],
    ]
)


@dataclass(frozen=True)
class ThreeBodyParams:
    preset: str = "figure8"
    integrator: str = "hermite"
    eta: float = 0.01
    dt: float = 1e-3
    tol: float = 1e-9
    t_end: float = 50.0
    aarseth: bool = False
    seed: int = 0
    speed: float = 2.0  # simulated time units per second of playback
    trail: int = 2000  # trail length in samples
    compare_rebound: bool = True
    ens_n: int = 48  # ensemble grid side
    ens_t_end: float = 10.0
    train_episodes: int = 30
    ics: tuple = ()  # custom initial conditions: rows (m, x, y, z, vx, vy, vz); () = the preset's


class ThreeBodyPanel(Panel):
    key = "threebody"
    title = "Three-body integrator"

    def __init__(self, parent=None):
        super().__init__(parent)
        self._p = ThreeBodyParams()
        self._task = None
        self._ref_task = None
        self._gen = None
        self._ens_task = None
        self._train_task = None
        self.ensemble = None
        self.rewards: list[float] = []
        self._reset_history()
        self._build()
        self._load_system()
        self._timer = QTimer(self)
        self._timer.setInterval(33)
        self._timer.timeout.connect(self._tick)

    # -- UI -------------------------------------------------------------------------------------------------
    def _build(self) -> None:
        from vispy import scene

        self.form = ParamForm(
            [
                Field("preset", "Preset", "choice", choices=PRESETS),
                Field("integrator", "Integrator", "choice", choices=INTEGRATORS),
                Field(
                    "eta",
                    "eta (Hermite)",
                    log=True,
                    minimum=1e-5,
                    maximum=1.0,
                    tooltip="dt = eta x min collision / free-fall time",
                ),
                Field("dt", "dt (leapfrog, RK4)", log=True, minimum=1e-6, maximum=1.0),
                Field("tol", "tolerance (IAS15 eps)", log=True, minimum=1e-14, maximum=1e-3),
                Field("t_end", "t_end [N-body units]", minimum=0.01, maximum=1e5, decimals=2),
                Field("aarseth", "Aarseth criterion", "bool"),
                Field("seed", "seed (random preset)", "int", minimum=0, maximum=10**6),
                Field("speed", "speed [t units / s]", log=True, minimum=0.01, maximum=1000.0),
                Field("trail", "trail [samples]", "int", minimum=2, maximum=20000),
                Field("compare_rebound", "compare with REBOUND", "bool"),
            ]
        )
        self.form.set_values(self._values())
        self.form.changed.connect(self._on_form)
        self.play = PlayBar()
        self.play.run_toggled.connect(self._on_play)
        self.play.step_clicked.connect(lambda: self.advance(1))
        self.play.scrubbed.connect(self._on_scrub)
        self.restart_button = QPushButton("Restart run")
        self.restart_button.clicked.connect(self.restart)

        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(["m", "x", "y", "z", "vx", "vy", "vz"])
        self.table.setMinimumHeight(110)
        self.table.itemChanged.connect(self._on_table)
        self.events = QListWidget()
        self.events.setMinimumHeight(80)

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(2, 2, 2, 2)
        lv.addWidget(self.form)
        lv.addWidget(self.restart_button)
        lv.addWidget(QLabel("Initial conditions (edit to run a custom system)"))
        lv.addWidget(self.table, 1)
        lv.addWidget(QLabel("Event log"))
        lv.addWidget(self.events, 1)

        # 3D view
        self._canvas = make_canvas(size=(640, 480))
        self.view = self._canvas.central_widget.add_view()
        self.view.camera = scene.TurntableCamera(fov=40, elevation=70, azimuth=0)
        self.trails = scene.visuals.Line(
            pos=np.zeros((2, 3), np.float32),
            color=np.ones((2, 4), np.float32),
            connect="segments",
            method="gl",
            width=2,
            parent=self.view.scene,
            antialias=False,
        )
        self.trails.set_gl_state("translucent", depth_test=False)
        self.bodies = scene.visuals.Markers(parent=self.view.scene)
        self.bodies.set_gl_state("translucent", depth_test=False)
        self.label = scene.visuals.Text(
            "",
            color="white",
            font_size=9,
            anchor_x="left",
            anchor_y="bottom",
            parent=self._canvas.scene,
            pos=(8, 24),
        )
        # a plain segment grid in the orbital plane, resized to the system in _fit_camera (vispy's GridLines
        # is a full-screen fragment shader: ~75 ms a frame under a software rasterizer, 10x the rest)
        self.grid = scene.visuals.Line(
            pos=_plane_grid(1.0),
            connect="segments",
            color=(1, 1, 1, 0.08),
            method="gl",
            parent=self.view.scene,
        )
        self.grid.set_gl_state("translucent", depth_test=False)
        self.grid.order = -1

        # plots
        self.energy_plot = make_plot("Relative energy error", "t [N-body units]", "log10 |dE/E|")
        self.dt_plot = make_plot("Step size", "t [N-body units]", "log10 dt")
        self.e_curve = self.energy_plot.plot(pen="b", name="ours")
        self.e_ref = self.energy_plot.plot(pen="r", name="REBOUND IAS15")
        self.dt_curve = self.dt_plot.plot(pen="b", name="ours")
        self.dt_ref = self.dt_plot.plot(pen="r", name="REBOUND IAS15")
        plots = QWidget()
        pv = QVBoxLayout(plots)
        pv.setContentsMargins(0, 0, 0, 0)
        pv.addWidget(self.energy_plot)
        pv.addWidget(self.dt_plot)

        self.tabs = QTabWidget()
        self.tabs.addTab(plots, "Energy / step")
        self.tabs.addTab(self._build_ensemble_tab(), "Ensemble map")
        self.tabs.addTab(self._build_learning_tab(), "Learned stepping")

        center = QWidget()
        cv = QVBoxLayout(center)
        cv.setContentsMargins(0, 0, 0, 0)
        cv.addWidget(self._canvas.native, 1)
        cv.addWidget(self.play)
        fill_with_splitter(self, [left, center, self.tabs], [0, 3, 2]).setSizes([260, 560, 420])

    def _build_ensemble_tab(self) -> QWidget:
        import pyqtgraph as pg

        w = QWidget()
        v = QVBoxLayout(w)
        self.ens_form = ParamForm(
            [
                Field("ens_n", "grid side", "int", minimum=2, maximum=200),
                Field("ens_t_end", "t_end", minimum=0.1, maximum=1000.0, decimals=2),
            ]
        )
        self.ens_form.set_values({"ens_n": self._p.ens_n, "ens_t_end": self._p.ens_t_end})
        self.ens_form.changed.connect(self._on_form)
        self.ens_button = QPushButton("Compute escape map")
        self.ens_button.clicked.connect(self.start_ensemble)
        self.ens_plot = make_plot(
            "Escape time, third body starting at (x, y), all at rest",
            "x of body 2",
            "y of body 2",
            legend=False,
        )
        self.ens_image = pg.ImageItem()
        self.ens_plot.addItem(self.ens_image)
        self.ens_bar = pg.ColorBarItem(values=(0, 10), colorMap=pg.colormap.get("viridis"), label="escape t")
        self.ens_bar.setImageItem(self.ens_image, insert_in=self.ens_plot.getPlotItem())
        self.ens_readout = QLabel("hover the map for a read-out (grey: no escape, black: close encounter)")
        self.ens_plot.scene().sigMouseMoved.connect(self._on_ens_hover)
        v.addWidget(self.ens_form)
        v.addWidget(self.ens_button)
        v.addWidget(self.ens_plot, 1)
        v.addWidget(self.ens_readout)
        return w

    def _build_learning_tab(self) -> QWidget:
        w = QWidget()
        v = QVBoxLayout(w)
        self.train_form = ParamForm([Field("train_episodes", "episodes", "int", minimum=1, maximum=5000)])
        self.train_form.set_values({"train_episodes": self._p.train_episodes})
        self.train_form.changed.connect(self._on_form)
        self.train_button = QPushButton("Train DQN policy")
        self.train_button.clicked.connect(self.start_training)
        self.reward_plot = make_plot("DQN training reward", "episode", "episode reward")
        self.reward_curve = self.reward_plot.plot(pen="b", symbol="o", symbolSize=4, name="reward")
        self.train_info = QLabel("Run the 'learned' integrator with the bundled policy, or train a new one.")
        self.train_info.setWordWrap(True)
        v.addWidget(self.train_form)
        v.addWidget(self.train_button)
        v.addWidget(self.reward_plot, 1)
        v.addWidget(self.train_info)
        return w

    # -- parameters -----------------------------------------------------------------------------------------
    def _values(self) -> dict:
        p = self._p
        return {
            k: getattr(p, k)
            for k in (
                "preset",
                "integrator",
                "eta",
                "dt",
                "tol",
                "t_end",
                "aarseth",
                "seed",
                "speed",
                "trail",
                "compare_rebound",
            )
        }

    def params(self) -> ThreeBodyParams:
        return self._p

    def set_params(self, cfg: ThreeBodyParams) -> None:
        old = self._p
        self._p = cfg
        self.form.set_values(self._values())
        self.ens_form.set_values({"ens_n": cfg.ens_n, "ens_t_end": cfg.ens_t_end})
        self.train_form.set_values({"train_episodes": cfg.train_episodes})
        if (cfg.preset, cfg.seed, cfg.ics) != (old.preset, old.seed, old.ics):
            self._load_system()
        self._update_view()

    def _on_form(self, name: str, value) -> None:
        if name == "preset":
            self._p = replace(self._p, preset=value, ics=())
            self._load_system()
            return
        if name == "seed":
            self._p = replace(self._p, seed=int(value), ics=())
            self._load_system()
            return
        self._p = replace(self._p, **{name: value})
        if name == "trail":
            self._update_view()

    def run_config(self) -> RunConfig:
        p = self._p
        return RunConfig(
            preset=p.preset,
            integrator=p.integrator,
            eta=p.eta,
            dt=p.dt,
            tol=p.tol,
            t_end=p.t_end,
            aarseth=p.aarseth,
            seed=p.seed,
        )

    def system(self) -> System:
        if self._p.ics:
            a = np.asarray(self._p.ics, float)
            return System(a[:, 0], a[:, 1:4], a[:, 4:7], name="custom")
        return preset(self._p.preset, seed=self._p.seed)

    def _load_system(self) -> None:
        self.stop()
        try:
            s = self.system()
        except UserError as exc:
            self.status.emit(str(exc))
            return
        self._fill_table(s)
        self._reset_history()
        self._append(np.array([0.0]), s.pos[None], s.vel[None], np.array([np.nan]), np.array([np.nan]))
        self._fit_camera(s.pos)
        self._update_view()

    def _fill_table(self, s: System) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(s.n)
        for i in range(s.n):
            vals = [s.mass[i], *s.pos[i], *s.vel[i]]
            for j, val in enumerate(vals):
                self.table.setItem(i, j, QTableWidgetItem(f"{val:.10g}"))
        self.table.blockSignals(False)

    def _on_table(self, _item) -> None:
        rows = []
        try:
            for i in range(self.table.rowCount()):
                rows.append(tuple(float(self.table.item(i, j).text()) for j in range(7)))
            arr = np.asarray(rows)
            System(arr[:, 0], arr[:, 1:4], arr[:, 4:7])  # validate
        except (ValueError, AttributeError) as exc:
            self.status.emit(f"initial conditions not applied: {exc}")
            return
        self._p = replace(self._p, ics=tuple(rows))
        self._load_system()
        self.status.emit("custom initial conditions applied")

    def _fit_camera(self, pos: np.ndarray) -> None:
        r = float(np.max(np.abs(pos))) if pos.size else 1.0
        self.view.camera.center = (0.0, 0.0, 0.0)
        self.view.camera.distance = None
        self.view.camera.scale_factor = max(2.6 * r, 1e-3)
        self.grid.set_data(pos=_plane_grid(r))

    # -- history ---------------------------------------------------------------------------------------------
    def _reset_history(self) -> None:
        self.h_t = np.zeros(0)
        self.h_pos = np.zeros((0, 3, 3))
        self.h_vel = np.zeros((0, 3, 3))
        self.h_e = np.zeros(0)
        self.h_dt = np.zeros(0)
        self.ref_t = np.zeros(0)
        self.ref_de = np.zeros(0)
        self.ref_dt = np.zeros(0)
        self.steps = 0
        self.force_evals = 0
        self.frame = 0
        self.display_t = 0.0
        self.run_status = ""
        self.mass = np.ones(3)
        self.event_texts: list[str] = []
        if hasattr(self, "events"):
            self.events.clear()

    def _append(self, t, pos, vel, e, dt) -> None:
        if self.h_pos.shape[1:] != pos.shape[1:]:
            self.h_pos = np.zeros((0,) + pos.shape[1:])
            self.h_vel = np.zeros((0,) + pos.shape[1:])
        self.h_t = np.concatenate([self.h_t, t])
        self.h_pos = np.concatenate([self.h_pos, pos])
        self.h_vel = np.concatenate([self.h_vel, vel])
        self.h_e = np.concatenate([self.h_e, e])
        self.h_dt = np.concatenate([self.h_dt, dt])

    def _on_chunk(self, chunk) -> None:
        if len(self.h_t) and len(chunk.t) and chunk.t[0] == 0.0:
            self._reset_history()
            self.mass = self.system().mass
        if len(chunk.t):
            self._append(chunk.t, chunk.pos, chunk.vel, chunk.energy, chunk.dt)
        self.steps, self.force_evals = chunk.steps, chunk.force_evals
        for ev in chunk.events:
            self.event_texts.append(ev.text)
            self.events.addItem(ev.text)
        self.play.set_frames(len(self.h_t), follow=False)
        self._update_plots()
        if not self._timer.isActive():
            self.frame = len(self.h_t) - 1
            self.display_t = float(self.h_t[-1])
            self._update_view()

    def _on_ref_chunk(self, chunk) -> None:
        if not len(chunk.t):
            return
        e0 = chunk.energy[0] if chunk.t[0] == 0.0 else self._ref_e0
        if chunk.t[0] == 0.0:
            self._ref_e0 = e0
            self.ref_t, self.ref_de, self.ref_dt = np.zeros(0), np.zeros(0), np.zeros(0)
        self.ref_t = np.concatenate([self.ref_t, chunk.t])
        self.ref_de = np.concatenate([self.ref_de, (chunk.energy - e0) / abs(e0 or 1.0)])
        self.ref_dt = np.concatenate([self.ref_dt, chunk.dt])
        self._update_plots()

    # -- computation -----------------------------------------------------------------------------------------
    def restart(self) -> None:
        """Start a fresh run from the initial conditions (and the REBOUND reference run if enabled)."""
        self.stop()
        try:
            cfg = self.run_config()
            sys_ = self.system()
        except UserError as exc:
            self.status.emit(str(exc))
            return
        self._reset_history()
        self.mass = sys_.mass
        self._task = submit(
            simulate,
            sys_,
            cfg,
            label="three-body run",
            group="threebody-run",
            on_yield=self._on_chunk,
            on_done=self._on_done,
            on_error=self.status.emit,
        )
        if self._p.compare_rebound and cfg.integrator != "rebound":
            from backends.nbody.reference import rebound_available

            if rebound_available():
                rcfg = replace(cfg, integrator="rebound")
                self._ref_task = submit(
                    simulate,
                    sys_,
                    rcfg,
                    label="REBOUND reference",
                    group="threebody-ref",
                    on_yield=self._on_ref_chunk,
                    on_error=self.status.emit,
                )

    def _on_done(self, result) -> None:
        if result is None:
            return
        self.run_status = result.status
        self.status.emit(result.summary())
        self._update_view()

    def start(self) -> None:
        if self._task is None or (not self._task.is_running() and not len(self.h_t) > 1):
            self.restart()
        self.play.set_running(True)
        self._timer.start()

    def stop(self) -> None:
        for name in ("_task", "_ref_task"):
            task = getattr(self, name, None)
            if task is not None:
                task.cancel()
                task.wait(5000)
            setattr(self, name, None)
        if hasattr(self, "_timer"):
            self._timer.stop()
        if hasattr(self, "play"):
            self.play.set_running(False)

    def _on_play(self, on: bool) -> None:
        if on:
            if self._task is None and len(self.h_t) <= 1:
                self.restart()
            if self.frame >= len(self.h_t) - 1 and len(self.h_t) > 1 and self._task is None:
                self.display_t = 0.0  # replay from the start
            self._timer.start()
        else:
            self._timer.stop()

    def _tick(self) -> None:
        if not len(self.h_t):
            return
        self.display_t += self._p.speed * self._timer.interval() / 1000.0
        self.display_t = min(self.display_t, float(self.h_t[-1]))
        self.frame = int(np.searchsorted(self.h_t, self.display_t, side="right") - 1)
        self.play.set_frames(len(self.h_t), follow=False)
        self.play.slider.blockSignals(True)
        self.play.slider.setValue(self.frame)
        self.play.slider.blockSignals(False)
        self._update_view()

    def _on_scrub(self, i: int) -> None:
        if 0 <= i < len(self.h_t):
            self.frame = i
            self.display_t = float(self.h_t[i])
            self._update_view()

    def advance(self, steps: int) -> None:
        """Synchronously integrate ``steps`` chunks of 20 steps (continuing the current run)."""
        if self._gen is None:
            self._reset_history()
            sys_ = self.system()
            self.mass = sys_.mass
            self._gen = simulate(sys_, self.run_config(), yield_every_steps=20)
        for _ in range(int(steps)):
            try:
                p = next(self._gen)
            except StopIteration:
                self._gen = None
                break
            self._on_chunk(p.data)
        self.frame = len(self.h_t) - 1
        self.display_t = float(self.h_t[-1]) if len(self.h_t) else 0.0
        self._update_view()

    # -- drawing ---------------------------------------------------------------------------------------------
    def _update_view(self) -> None:
        if not len(self.h_t):
            return
        f = int(np.clip(self.frame, 0, len(self.h_t) - 1))
        pos = self.h_pos[f]
        n = pos.shape[0]
        cols = COLORS[np.arange(n) % len(COLORS)]
        mass = self.mass if len(self.mass) == n else np.ones(n)
        size = 10.0 + 14.0 * np.cbrt(mass / mass.max())
        self.bodies.set_data(
            pos.astype(np.float32), size=size, face_color=np.c_[cols, np.ones(n)], edge_width=0
        )
        k = int(min(self._p.trail, f + 1))
        if k >= 2:
            seg = self.h_pos[f - k + 1 : f + 1]  # (k, n, 3)
            pts = np.transpose(seg, (1, 0, 2)).reshape(-1, 3).astype(np.float32)
            if getattr(self, "_trail_key", None) != (
                n,
                k,
            ):  # colours and connectivity only change with (n, k)
                alpha = np.linspace(0.0, 1.0, k) ** 1.5
                self._trail_rgba = np.concatenate([np.repeat(cols, k, 0), np.tile(alpha, n)[:, None]], 1)
                self._trail_rgba = self._trail_rgba.astype(np.float32)
                base = (np.arange(n)[:, None] * k + np.arange(k - 1)[None, :]).ravel()
                self._trail_conn = np.stack([base, base + 1], 1).astype(np.uint32)
                self._trail_key = (n, k)
                self.trails.set_data(pos=pts, color=self._trail_rgba, connect=self._trail_conn)
            else:
                self.trails.set_data(pos=pts)
            self.trails.visible = True
        else:
            self.trails.visible = False
        de = (
            self.h_e[f] / self.h_e[0] - 1.0
            if len(self.h_e) and np.isfinite(self.h_e[f]) and self.h_e[0]
            else 0
        )
        txt = f"t = {self.h_t[f]:.3f}   |dE/E| = {abs(de):.2e}   steps = {self.steps}"
        if self.run_status and self.run_status != "ok":
            txt += f"   {self.run_status}"
        self.label.text = txt
        self._canvas.update()

    def _update_plots(self) -> None:
        if len(self.h_t) > 1 and np.isfinite(self.h_e[0]) and self.h_e[0] != 0:
            de = np.abs(self.h_e / self.h_e[0] - 1.0)
            with np.errstate(divide="ignore"):
                self.e_curve.setData(self.h_t[1:], finite_or_nan(np.log10(de[1:])))
                self.dt_curve.setData(self.h_t[1:], finite_or_nan(np.log10(self.h_dt[1:])))
        if len(self.ref_t) > 1:
            with np.errstate(divide="ignore"):
                self.e_ref.setData(self.ref_t[1:], finite_or_nan(np.log10(np.abs(self.ref_de[1:]))))
                self.dt_ref.setData(self.ref_t[1:], finite_or_nan(np.log10(self.ref_dt[1:])))

    def render(self, size: tuple[int, int]) -> np.ndarray:
        return self._render_frames(size, [None])[0]

    def _render_frames(self, size, frames) -> list[np.ndarray]:
        """Render the view at ``size`` for each frame index (None: current). vispy's render(size=...)
        stretches the on-screen viewport and loses markers/lines when the aspect differs, so the canvas is
        resized for the off-screen pass and restored afterwards."""
        c = self._canvas
        old, keep = c.size, self.frame
        w, h = int(size[0]), int(size[1])
        out = []
        try:
            c.size = (w, h)
            for f in frames:
                if f is not None:
                    self.frame = int(f)
                    self._update_view()
                img = c.render(alpha=True) if tuple(c.size) == (w, h) else render_canvas(c, (w, h))
                img = np.ascontiguousarray(img[..., :4]).astype(np.uint8)
                if img.shape[:2] != (h, w):  # the window system refused the size: resample
                    yi = (np.arange(h) * img.shape[0] / h).astype(int)
                    xi = (np.arange(w) * img.shape[1] / w).astype(int)
                    img = img[yi][:, xi]
                out.append(img)
        finally:
            c.size = old
            if self.frame != keep:
                self.frame = keep
                self._update_view()
        return out

    def canvas(self):
        return self._canvas

    # -- ensemble --------------------------------------------------------------------------------------------
    def _ens_config(self, n: int | None = None, t_end: float | None = None):
        from backends.nbody.ensemble import EnsembleConfig

        return EnsembleConfig(nx=n or self._p.ens_n, ny=n or self._p.ens_n, t_end=t_end or self._p.ens_t_end)

    def start_ensemble(self) -> None:
        from backends.nbody.ensemble import escape_map

        try:
            cfg = self._ens_config()
        except UserError as exc:
            self.status.emit(str(exc))
            return
        self.ens_readout.setText(f"integrating {cfg.nx * cfg.ny} systems ...")
        self._ens_task = submit(
            escape_map,
            cfg,
            label="ensemble escape map",
            group="threebody-ensemble",
            on_progress=lambda f, m: self.ens_readout.setText(m),
            on_done=self._show_ensemble,
            on_error=self.status.emit,
        )

    def _compute_ensemble_sync(self, n: int = 3, t_end: float = 0.3) -> None:
        from backends.nbody.ensemble import escape_map

        gen = escape_map(self._ens_config(n, t_end))
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                self._show_ensemble(stop.value)
                return

    def _ens_rgb(self, res) -> np.ndarray:
        import pyqtgraph as pg

        from backends.nbody.ensemble import CLOSE, ESCAPED

        cmap = pg.colormap.get("viridis")
        tn = np.nan_to_num(res.escape_time / res.t_end, nan=0.0)
        rgb = cmap.map(np.clip(tn, 0, 1), mode="float")[..., :3].reshape(tn.shape + (3,))
        rgb[res.status != ESCAPED] = 0.6
        rgb[res.status == CLOSE] = 0.0
        return rgb

    def _show_ensemble(self, res) -> None:
        if res is None:
            return
        self.ensemble = res
        rgb = self._ens_rgb(res)
        self.ens_image.setImage(np.transpose(rgb, (1, 0, 2)), levels=(0, 1))
        dx = (res.x[-1] - res.x[0]) / max(len(res.x) - 1, 1)
        dy = (res.y[-1] - res.y[0]) / max(len(res.y) - 1, 1)
        from PySide6.QtCore import QRectF

        self.ens_image.setRect(QRectF(res.x[0] - dx / 2, res.y[0] - dy / 2, dx * len(res.x), dy * len(res.y)))
        self.ens_bar.setLevels((0, res.t_end))
        self.ens_readout.setText(res.summary())

    def _on_ens_hover(self, pos) -> None:
        res = self.ensemble
        if res is None:
            return
        from backends.nbody.ensemble import STATUS_NAMES

        p = self.ens_plot.getPlotItem().vb.mapSceneToView(pos)
        ix = int(round((p.x() - res.x[0]) / max(res.x[1] - res.x[0], 1e-12))) if len(res.x) > 1 else 0
        iy = int(round((p.y() - res.y[0]) / max(res.y[1] - res.y[0], 1e-12))) if len(res.y) > 1 else 0
        if 0 <= ix < len(res.x) and 0 <= iy < len(res.y):
            st = STATUS_NAMES.get(int(res.status[iy, ix]), "?")
            et = res.escape_time[iy, ix]
            txt = f"x={res.x[ix]:.3f} y={res.y[iy]:.3f}: {st}"
            if math.isfinite(et):
                txt += f" at t={et:.3f} (body {int(res.escaper[iy, ix])})"
            txt += f", |dE/E|={res.energy_error[iy, ix]:.1e}, steps={int(res.steps[iy, ix])}"
            self.ens_readout.setText(txt)

    # -- learned stepping ------------------------------------------------------------------------------------
    def start_training(self) -> None:
        from backends.nbody.learned import bundled_train_config, train

        self.rewards = []
        cfg = bundled_train_config(self._p.train_episodes)  # the method of the bundled policy (docs/nbody.md)
        self._train_task = submit(
            train,
            cfg,
            label="DQN training",
            group="threebody-train",
            on_yield=self._on_reward,
            on_done=self._on_trained,
            on_error=self.status.emit,
        )

    def _on_reward(self, item) -> None:
        ep, reward, history = item
        self.rewards = [float(r) for r in history]
        self.reward_curve.setData(np.arange(1, len(self.rewards) + 1), np.asarray(self.rewards))
        self.train_info.setText(f"episode {ep}: reward {reward:.3f}")

    def _on_trained(self, result) -> None:
        if result is not None:
            self.trained_policy = result
            self.train_info.setText(
                f"training done: {len(self.rewards)} episodes (the 'learned' integrator "
                f"still uses the bundled policy; use the CLI to save new weights)"
            )

    # -- exports ---------------------------------------------------------------------------------------------
    def exports(self) -> list[ExportAction]:
        return [
            ExportAction("Orbit PNG", ("png",), lambda p: save_png(p, self.render((1200, 900)))),
            ExportAction("Animation MP4", ("mp4", "gif"), self._write_video),
            ExportAction(
                "Energy plot SVG/CSV", ("svg", "csv", "png"), lambda p: export_plot(self.energy_plot, p)
            ),
            ExportAction("Trajectory NPZ", ("npz",), self._write_npz),
            ExportAction("Ensemble map PNG", ("png",), self._write_ens_png),
            ExportAction("Ensemble map NPZ", ("npz",), self._write_ens_npz),
        ]

    def _write_video(self, path: Path, frames: int = 0, size=(480, 360)) -> None:
        if len(self.h_t) < 2:
            raise UserError("nothing to animate yet: run the integration first")
        frames = frames or int(min(150, max(2, len(self.h_t) // 2)))
        ts = np.linspace(self.h_t[0], self.h_t[-1], frames)
        idx = np.searchsorted(self.h_t, ts, side="right") - 1
        write_video(path, self._render_frames(size, idx), fps=30)

    def _write_npz(self, path: Path) -> None:
        if not len(self.h_t):
            raise UserError("nothing to save yet")
        save_npz(
            path,
            t=self.h_t,
            pos=self.h_pos,
            vel=self.h_vel,
            mass=self.mass,
            energy=self.h_e,
            steps=np.int64(self.steps),
            force_evals=np.int64(self.force_evals),
            dt=self.h_dt,
        )

    def _ensure_ensemble(self) -> None:
        if self.ensemble is None:
            self._compute_ensemble_sync()

    def _write_ens_png(self, path: Path) -> None:
        self._ensure_ensemble()
        rgb = self._ens_rgb(self.ensemble)[::-1]  # y up
        scale = max(1, 512 // max(rgb.shape[:2]))
        save_png(path, np.kron(rgb, np.ones((scale, scale, 1))))

    def _write_ens_npz(self, path: Path) -> None:
        self._ensure_ensemble()
        r = self.ensemble
        save_npz(
            path,
            x=r.x,
            y=r.y,
            escape_time=r.escape_time,
            escaper=r.escaper,
            status=r.status,
            energy_error=r.energy_error,
            steps=r.steps,
            t_end=r.t_end,
        )

    # -- sessions --------------------------------------------------------------------------------------------
    def state(self) -> dict:
        st = super().state()
        cam = self.view.camera
        st["camera"] = {
            "azimuth": float(cam.azimuth),
            "elevation": float(cam.elevation),
            "scale_factor": float(cam.scale_factor),
            "center": [float(c) for c in cam.center],
        }
        st["time"] = float(self.display_t)
        return st

    def restore(self, state: dict) -> None:
        super().restore(state)
        cam = state.get("camera")
        if cam:
            self.view.camera.azimuth = cam["azimuth"]
            self.view.camera.elevation = cam["elevation"]
            if cam.get("scale_factor"):
                self.view.camera.scale_factor = cam["scale_factor"]
            self.view.camera.center = tuple(cam["center"])
        if "time" in state and len(self.h_t):
            self.display_t = float(state["time"])
            self.frame = int(np.searchsorted(self.h_t, self.display_t, side="right") - 1)
            self._update_view()

    def shutdown(self) -> None:
        self.stop()
        for name in ("_ens_task", "_train_task"):
            task = getattr(self, name, None)
            if task is not None:
                task.cancel()
                task.wait(10000)
            setattr(self, name, None)
        self._gen = None


def _plane_grid(extent: float) -> np.ndarray:
    """The orbital-plane grid (z = 0) covering about twice ``extent`` in x and y."""
    half = 2.0 * max(float(extent), 1e-6)
    xy = grid_segments((-half, -half), (half, half), lines=10)
    return np.column_stack([xy, np.zeros(len(xy), np.float32)])
