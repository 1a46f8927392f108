"""PDE fields panel: live Navier-Stokes / Gray-Scott / heat / wave / Burgers fields and Darcy recycling.

The field is a vispy float-texture Image (``texture_format="auto"``: colormap and limits change on the GPU)
with a labelled ColorBar and an optional velocity quiver; side plots (pyqtgraph) show E(k) with k^-3 and
k^-5/3 guides, energy/enstrophy vs time, a point probe's time series, a line probe's profile and space-time
image, and for Darcy the residual history of plain vs recycled CG. The simulation runs in :mod:`app.worker`
as a generator yielding one frame per chunk of steps; mouse painting is queued and applied by the generator
between steps (the backend is never touched from two threads). Left-drag paints; right-click (or
Ctrl+click) places the probe; Shift+drag draws the line probe.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app import worker
from app.export import export_plot, save_csv, save_npz, save_png, write_video
from backends.common import UserError
from backends.pde.probes import line_points, line_profile
from panels.base import ExportAction, Panel
from panels.widgets import (
    ColorBar,
    Field,
    ParamForm,
    PlayBar,
    fill_with_splitter,
    finite_or_nan,
    make_canvas,
    make_plot,
    nice_limits,
)

MODELS = ("navier-stokes", "gray-scott", "heat", "wave", "burgers", "darcy")
COLORMAPS = ("auto", "RdBu_r", "coolwarm", "viridis", "magma", "inferno", "cubehelix", "grays")
#: ColorBrewer RdBu reversed (blue negative, red positive), the usual diverging map for vorticity
_RDBU_R = [
    "#053061",
    "#2166ac",
    "#4393c3",
    "#92c5de",
    "#d1e5f0",
    "#f7f7f7",
    "#fddbc7",
    "#f4a582",
    "#d6604d",
    "#b2182b",
    "#67001f",
]


def get_cmap(name: str):
    """A vispy Colormap by name (RdBu_r and magma/inferno built here; the rest from vispy)."""
    from vispy.color import Colormap, get_colormap

    if name == "RdBu_r":
        return Colormap(_RDBU_R)
    if name in ("magma", "inferno"):
        # 9 samples of matplotlib's perceptually uniform maps (CC0), linearly interpolated
        pts = {
            "magma": [
                "#000004",
                "#180f3d",
                "#440f76",
                "#721f81",
                "#9e2f7f",
                "#cd4071",
                "#f1605d",
                "#fd9668",
                "#fcfdbf",
            ],
            "inferno": [
                "#000004",
                "#1b0c41",
                "#4a0c6b",
                "#781c6d",
                "#a52c60",
                "#cf4446",
                "#ed6925",
                "#fb9b06",
                "#fcffa4",
            ],
        }[name]
        return Colormap(pts)
    return get_colormap(name)


DEFAULT_DT = {
    "navier-stokes": 2e-3,
    "gray-scott": 1.0,
    "heat": 1e-2,
    "wave": 5e-3,
    "burgers": 1e-3,
    "darcy": 1.0,
}
INIT_CHOICES = (
    "default",
    "grf",
    "taylor-green",
    "turbulence",
    "zero",
    "random",
    "mode",
    "gaussian",
    "sine",
    "cole-hopf",
)
DEFAULT_INIT = {"navier-stokes": "grf", "heat": "random", "wave": "gaussian", "burgers": "random"}
FIELD_LABEL = {
    "vorticity": "vorticity omega",
    "dye": "dye concentration",
    "speed": "speed |u|",
    "streamfunction": "streamfunction psi",
    "v": "chemical v",
    "u": "u",
    "temperature": "temperature",
    "displacement": "displacement u",
    "velocity": "velocity u_t",
    "darcy-u": "pressure u (Darcy)",
    "darcy-a": "permeability a(x)",
}
HISTORY_KEYS = {
    "navier-stokes": ("energy", "enstrophy"),
    "gray-scott": ("mean_v", "var_v"),
    "heat": ("variance",),
    "wave": ("energy",),
    "burgers": ("energy",),
}
HISTORY_LABEL = {
    "energy": "energy ½⟨|u|²⟩",
    "enstrophy": "enstrophy ½⟨ω²⟩",
    "mean_v": "mean v",
    "var_v": "variance of v",
    "variance": "variance of T",
}
MAX_RECORD = 600  # frames kept for scrub/replay/video
LINE_SAMPLES = 200  # samples along a line probe


@dataclass(frozen=True)
class PDEParams:
    model: str = "navier-stokes"
    n: int = 256
    dt: float = 2e-3
    nu: float = 1e-3
    kappa: float = 1e-3
    c: float = 0.2
    scheme: str = "cn-heun"
    adaptive: bool = True
    forcing: str = "fno"
    init: str = "default"
    preset: str = "coral"
    steps_per_frame: int = 1
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"
    view: str = "vorticity"
    colormap: str = "auto"
    limits: str = "auto"  # auto | symmetric | fixed
    vmin: float = -1.0
    vmax: float = 1.0
    quiver: bool = False
    paint_target: str = "field"  # field | dye
    paint_amount: float = 5.0
    paint_radius: float = 0.03
    record: bool = True
    darcy_count: int = 20
    darcy_recycle_k: int = 16


FIELDS = [
    Field("model", "Model", "choice", choices=MODELS),
    Field(
        "n", "Grid n", "int", 16, 1024, step=16, tooltip="grid points per side (FFT-friendly: 2^a 3^b 5^c)"
    ),
    Field("dt", "dt", "float", 1e-6, 10.0, log=True, tooltip="time step (the maximum when adaptive)"),
    Field("nu", "Viscosity nu", "float", 1e-7, 10.0, log=True),
    Field("kappa", "Diffusivity kappa", "float", 1e-7, 10.0, log=True, tooltip="heat equation"),
    Field("c", "Wave speed c", "float", 1e-4, 10.0, log=True),
    Field(
        "scheme",
        "Scheme",
        "choice",
        choices=("cn-heun", "if-rk4", "cn-euler", "rk4", "verlet", "exact"),
        tooltip="NS/Burgers/heat: cn-euler, cn-heun, if-rk4; wave: verlet, rk4, exact",
    ),
    Field("adaptive", "CFL-adaptive dt", "bool"),
    Field("forcing", "Forcing", "choice", choices=("fno", "kolmogorov", "none")),
    Field("init", "Initial field", "choice", choices=INIT_CHOICES),
    Field(
        "preset",
        "Gray-Scott preset",
        "choice",
        choices=(
            "spots",
            "stripes",
            "mitosis",
            "coral",
            "worms",
            "maze",
            "holes",
            "solitons",
            "u-skate",
            "bubbles",
        ),
    ),
    Field("steps_per_frame", "Steps / frame", "int", 1, 1000),
    Field("seed", "Seed", "int", 0, 2**31 - 1),
    Field("dtype", "dtype", "choice", choices=("float32", "float64")),
    Field("device", "Device", "choice", choices=("cpu", "cuda", "auto")),
    Field(
        "colormap",
        "Colormap",
        "choice",
        choices=COLORMAPS,
        tooltip="auto: diverging RdBu for signed fields, viridis otherwise",
    ),
    Field("limits", "Colour limits", "choice", choices=("auto", "symmetric", "fixed")),
    Field("vmin", "Fixed min", "float", -1e6, 1e6, decimals=4),
    Field("vmax", "Fixed max", "float", -1e6, 1e6, decimals=4),
    Field("quiver", "Velocity arrows", "bool"),
    Field(
        "paint_target",
        "Paint",
        "choice",
        choices=("field", "dye"),
        tooltip="field: vorticity / chemical v / temperature / displacement / u; dye: passive dye (NS)",
    ),
    Field("paint_amount", "Paint amount", "float", -1e4, 1e4, decimals=3),
    Field("paint_radius", "Paint radius", "float", 0.002, 0.5, decimals=3),
    Field("record", "Record frames", "bool"),
    Field("darcy_count", "Darcy systems", "int", 2, 1000),
    Field("darcy_recycle_k", "Recycle space k", "int", 0, 200),
]

SIM_KEYS = (
    "model",
    "n",
    "dt",
    "nu",
    "kappa",
    "c",
    "scheme",
    "adaptive",
    "forcing",
    "init",
    "preset",
    "seed",
    "dtype",
    "device",
    "darcy_count",
    "darcy_recycle_k",
)


def build_simulation(p: PDEParams):
    """The backend simulation for the panel parameters (raises UserError on bad input)."""
    from backends.pde.models import make_simulation

    init = DEFAULT_INIT.get(p.model) if p.init == "default" else p.init
    common = {"n": p.n, "seed": p.seed, "dtype": p.dtype, "device": p.device}
    if p.model == "navier-stokes":
        kw = dict(
            common,
            nu=p.nu,
            dt=p.dt,
            scheme=_scheme(p, ("cn-euler", "cn-heun", "if-rk4")),
            adaptive=p.adaptive,
            forcing=p.forcing,
            init=init,
        )
    elif p.model == "gray-scott":
        kw = dict(common, preset=p.preset, dt=p.dt)
    elif p.model == "heat":
        kw = dict(
            common, kappa=p.kappa, dt=p.dt, scheme=_scheme(p, ("cn-euler", "cn-heun", "if-rk4")), init=init
        )
    elif p.model == "wave":
        kw = dict(common, c=p.c, dt=p.dt, scheme=_scheme(p, ("verlet", "rk4", "exact"), "rk4"), init=init)
    elif p.model == "burgers":
        kw = dict(
            common, dim=2, nu=p.nu, dt=p.dt, scheme=_scheme(p, ("cn-euler", "cn-heun", "if-rk4")), init=init
        )
    else:
        raise UserError(f"unknown model {p.model!r}")
    return make_simulation(p.model, **kw)


def _scheme(p: PDEParams, allowed: tuple[str, ...], default: str = "cn-heun") -> str:
    return p.scheme if p.scheme in allowed else default


def live_frames(sim, steps_per_frame: int, paints: list, lock: threading.Lock, options: dict):
    """Worker generator: step the simulation forever, yield a light frame dict after every chunk.

    ``paints`` (guarded by ``lock``) holds (x, y, amount, radius, target) requests from the GUI thread; they
    are applied here, between steps, so the simulation is only ever touched by this thread. ``options``
    (read each frame) says whether velocity arrows are wanted. Diagnostics and the spectrum cost as much as
    a step, so they are computed at 10 Hz and 4 Hz; frames in between carry ``None`` (the panel keeps the
    last values). A blow-up raises after the last good frame was yielded.
    """
    last_diag = last_spec = -math.inf
    while True:
        with lock:
            todo, paints[:] = list(paints), []
        for args in todo:
            sim.paint(*args)
        sim.step(steps_per_frame)
        now = time.perf_counter()
        diag, spec = now - last_diag >= 0.1, now - last_spec >= 0.25
        last_diag = now if diag else last_diag
        last_spec = now if spec else last_spec
        yield snapshot(sim, velocity=bool(options.get("quiver")), diagnostics=diag, spectrum=spec)


def snapshot(
    sim, quiver: int = 24, *, velocity: bool = True, diagnostics: bool = True, spectrum: bool = True
) -> dict:
    """A frame: every field of the model (float32), and optionally subsampled velocity, diagnostics, spectrum."""
    fields = {name: sim.field(name).astype(np.float32) for name in sim.field_names}
    vel = sim.velocity() if velocity else None
    if vel is not None:
        s = max(1, vel[0].shape[0] // quiver)
        vel = (vel[0][::s, ::s].astype(np.float32), vel[1][::s, ::s].astype(np.float32))
    return {
        "t": float(sim.t),
        "step": int(sim.steps),
        "fields": fields,
        "velocity": vel,
        "diagnostics": sim.diagnostics() if diagnostics else None,
        "spectrum": sim.spectrum() if spectrum else None,
    }


def darcy_job(count: int, n: int, k: int, seed: int):
    """Worker generator: a Darcy sequence solved with plain PCG and with recycling; yields per-system frames."""
    from backends.common import Progress
    from backends.pde.darcy import RecyclingCG, assemble, darcy_coefficients, embed, pcg, similarity_order

    a = darcy_coefficients(n, count, seed=seed)
    order = similarity_order(a)
    solver = RecyclingCG(k, 2 * k, 1e-10)
    tot_p = tot_r = 0
    t_p = t_r = 0.0
    for j, i in enumerate(order):
        A, b = assemble(a[i])
        x, ip, _, _ = pcg(A, b, tol=1e-10)
        xr, ir = solver.solve(A, b)
        tot_p += ip.iterations
        tot_r += ir.iterations
        t_p += ip.seconds
        t_r += ir.seconds
        yield Progress(
            (j + 1) / count,
            f"Darcy {j + 1}/{count}: PCG {ip.iterations} it, recycled {ir.iterations} it",
            {
                "a": a[i].astype(np.float32),
                "u": embed(xr, n).astype(np.float32),
                "index": int(i),
                "j": j,
                "res_plain": ip.residuals,
                "res_rec": ir.residuals,
                "it_plain": ip.iterations,
                "it_rec": ir.iterations,
                "tot_plain": tot_p,
                "tot_rec": tot_r,
                "sec_plain": t_p,
                "sec_rec": t_r,
            },
        )
    return {"tot_plain": tot_p, "tot_rec": tot_r}


def colormap_rgba(field: np.ndarray, cmap: str, clim: tuple[float, float]) -> np.ndarray:
    """Numpy colour mapping with the vispy colormap (for videos and colourbar-free PNGs)."""
    lo, hi = clim
    x = np.clip((np.nan_to_num(field.astype(np.float64)) - lo) / ((hi - lo) or 1.0), 0, 1)
    rgba = get_cmap(cmap).map(x.ravel()).reshape(*x.shape, 4)
    return (rgba * 255 + 0.5).astype(np.uint8)


class PDEPanel(Panel):
    key = "pde"
    title = "PDE fields"

    def __init__(self, parent=None):
        super().__init__(parent)
        self._p = PDEParams()
        self._sim = None
        self._task = None
        self._paints: list = []
        self._lock = threading.Lock()
        self._live_options: dict = {"quiver": False}  # read by the live worker every frame
        self._frames: list[dict] = []  # recorded frames (scrub / replay / video)
        self._hist: dict[str, list] = {"t": []}
        self._probe = (0.5, 0.5)
        self._probe_hist: list[tuple[float, float]] = []
        self._line: tuple[tuple[float, float], tuple[float, float]] | None = None  # line probe end points
        self._line_hist: list[tuple[float, np.ndarray]] = []  # (t, profile) per recorded frame
        self._line_drag: tuple[float, float] | None = None  # start of a Shift+drag
        self._current: dict | None = None
        self._darcy: dict | None = None
        self._darcy_totals: list[tuple[int, int, int]] = []
        self._shown = 0
        self._draws = 0
        self._plot_clock = 0.0
        self._text_clock = 0.0
        self._clim = None
        self._marker_at = None
        self._painting = False
        self._build_ui()

    # -- UI ----------------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        from vispy import scene

        self._canvas = make_canvas(bgcolor="#ffffff", size=(720, 600))
        # The canvas holds only the field and its overlays; title and colour bar are Qt widgets around it
        # (text inside a vispy scene is re-laid out every frame, which costs more than the field itself).
        self._view = self._canvas.central_widget.add_view(border_color=None)
        self._title = QLabel("")
        self._title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._title.setObjectName("pde_title")
        self._view.camera = scene.PanZoomCamera(rect=(0, 0, 1, 1), aspect=1.0, interactive=False)
        self._image = scene.visuals.Image(
            np.zeros((8, 8), np.float32),
            texture_format="auto",
            cmap="viridis",
            clim=(-1, 1),
            parent=self._view.scene,
            interpolation="nearest",
        )
        self._quiver = scene.visuals.Arrow(
            pos=np.zeros((2, 2), np.float32),
            connect="segments",
            color="black",
            width=1.2,
            arrow_size=5.0,
            arrow_type="triangle_30",
            arrow_color="black",
            parent=self._view.scene,
        )
        self._quiver.visible = False
        self._quiver.order = 5
        self._probe_marker = scene.visuals.Markers(parent=self._view.scene)
        self._probe_marker.order = 10
        self._probe_marker.set_gl_state("translucent", depth_test=False)
        self._probe_marker.set_data(
            np.array([[0.5, 0.5]], np.float32), face_color="yellow", edge_color="black", size=10, symbol="x"
        )
        self._line_vis = scene.visuals.Line(
            pos=np.zeros((2, 2), np.float32), color="black", width=2, parent=self._view.scene
        )
        self._line_vis.order = 9
        self._line_vis.set_gl_state("translucent", depth_test=False)
        self._line_vis.visible = False
        self._colorbar = ColorBar()
        self._canvas.events.mouse_press.connect(self._on_mouse)
        self._canvas.events.mouse_move.connect(self._on_mouse_move)
        self._canvas.events.mouse_release.connect(self._on_mouse_release)
        self._canvas.events.draw.connect(self._count_draw)

        self.form = ParamForm(FIELDS, values=self._p.__dict__)
        self.form.changed.connect(self._on_param)
        self.view_box = QComboBox()
        self.view_box.setObjectName("view_field")
        self.view_box.currentTextChanged.connect(self._on_view)
        self.playbar = PlayBar()
        self.playbar.run_toggled.connect(self._on_play)
        self.playbar.step_clicked.connect(lambda: self.advance(max(1, self._p.steps_per_frame)))
        self.playbar.scrubbed.connect(self._on_scrub)
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(self.reset)
        self.replay_button = QPushButton("Replay")
        self.replay_button.setCheckable(True)
        self.replay_button.setToolTip("play the recorded frames back (25 frames/s); the simulation pauses")
        self.replay_button.toggled.connect(self.replay)
        self._replay_timer = QTimer(self)
        self._replay_timer.setInterval(40)
        self._replay_timer.timeout.connect(self._replay_tick)
        self.info = QLabel("")
        self.info.setWordWrap(True)

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
        cv.addWidget(self._title)
        cv.addWidget(self._canvas.native, 1)
        cv.addWidget(self._colorbar)
        cv.addWidget(self.playbar)
        cv.addWidget(self.info)

        self.spectrum_plot = make_plot(
            "Energy spectrum E(k)", "wavenumber k (cycles per unit length)", "E(k)", logx=True, logy=True
        )
        self.energy_plot = make_plot(
            "energy and enstrophy vs time", "time t", "energy ½⟨|u|²⟩, enstrophy ½⟨ω²⟩", logy=True
        )
        self.probe_plot = make_plot("Probe at (0.50, 0.50)", "time t", "field value")
        self.line_plot = make_plot(
            "Line probe: draw a line with Shift+drag", "distance along line", "field value"
        )
        self.kymo_plot = make_plot("Line probe over time", "distance along line", "time t", legend=False)
        self._line_curve = self.line_plot.plot([], [], pen={"color": "#8c564b", "width": 2}, name="now")
        self._kymo = pg.ImageItem()
        self.kymo_plot.addItem(self._kymo)
        self.darcy_plot = make_plot(
            "Darcy: residual vs iteration", "CG iteration", "relative residual ||r||/||b||", logy=True
        )
        self._spec_curve = self.spectrum_plot.plot([], [], pen={"color": "#1f77b4", "width": 2}, name="E(k)")
        self._k3 = self.spectrum_plot.plot(
            [], [], pen={"color": "#d62728", "style": Qt.PenStyle.DashLine}, name="k^-3"
        )
        self._k53 = self.spectrum_plot.plot(
            [], [], pen={"color": "#2ca02c", "style": Qt.PenStyle.DashLine}, name="k^-5/3"
        )
        self._e_curve = self.energy_plot.plot([], [], pen={"color": "#1f77b4", "width": 2}, name="energy")
        self._z_curve = self.energy_plot.plot([], [], pen={"color": "#ff7f0e", "width": 2}, name="enstrophy")
        self._probe_curve = self.probe_plot.plot([], [], pen={"color": "#9467bd", "width": 2}, name="probe")
        self._res_plain = self.darcy_plot.plot([], [], pen={"color": "#7f7f7f", "width": 2}, name="plain PCG")
        self._res_rec = self.darcy_plot.plot([], [], pen={"color": "#d62728", "width": 2}, name="recycled CG")
        tabs = QTabWidget()
        tabs.addTab(self.energy_plot, "Energy")
        tabs.addTab(self.probe_plot, "Probe")
        line_tab = QSplitter(Qt.Orientation.Vertical)
        line_tab.addWidget(self.line_plot)
        line_tab.addWidget(self.kymo_plot)
        tabs.addTab(line_tab, "Line")
        tabs.addTab(self.darcy_plot, "Darcy")
        self._tabs = tabs
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.spectrum_plot)
        side.addWidget(tabs)
        side.setMinimumWidth(320)

        fill_with_splitter(self, [scroll, centre, side], [0, 3, 2])
        self._sync_view_choices()
        self._update_form_enabled()

    def _sync_view_choices(self) -> None:
        names = self._field_names()
        self.view_box.blockSignals(True)
        self.view_box.clear()
        self.view_box.addItems(list(names))
        view = self._p.view if self._p.view in names else names[0]
        self.view_box.setCurrentText(view)
        self.view_box.blockSignals(False)
        if view != self._p.view:
            self._p = replace(self._p, view=view)

    def _field_names(self) -> tuple[str, ...]:
        return {
            "navier-stokes": ("vorticity", "dye", "speed", "streamfunction"),
            "gray-scott": ("v", "u"),
            "heat": ("temperature",),
            "wave": ("displacement", "velocity"),
            "burgers": ("u", "v", "speed"),
            "darcy": ("darcy-u", "darcy-a"),
        }[self._p.model]

    def _update_form_enabled(self) -> None:
        m = self._p.model
        use = {
            "nu": m in ("navier-stokes", "burgers"),
            "kappa": m == "heat",
            "c": m == "wave",
            "scheme": m not in ("gray-scott", "darcy"),
            "adaptive": m == "navier-stokes",
            "forcing": m == "navier-stokes",
            "init": m not in ("gray-scott", "darcy"),
            "preset": m == "gray-scott",
            "darcy_count": m == "darcy",
            "darcy_recycle_k": m == "darcy",
            "dt": m != "darcy",
            "steps_per_frame": m != "darcy",
            "paint_target": m != "darcy",
            "vmin": self._p.limits == "fixed",
            "vmax": self._p.limits == "fixed",
        }
        for name, on in use.items():
            self.form.widget(name).setEnabled(on)

    # -- parameters --------------------------------------------------------------------------------------
    def params(self) -> PDEParams:
        return self._p

    def set_params(self, cfg: PDEParams) -> None:
        old = self._p
        self._p = cfg
        self._live_options["quiver"] = cfg.quiver
        self.form.set_values(cfg.__dict__)
        self._sync_view_choices()
        self._update_form_enabled()
        if any(getattr(old, k) != getattr(cfg, k) for k in SIM_KEYS):
            self.reset()
        else:
            self._redraw()

    def _on_param(self, name: str, value) -> None:
        changes = {name: value}
        if name == "model":
            changes["dt"] = DEFAULT_DT[value]
            changes["init"] = "default"
            if value == "wave":
                changes["scheme"] = "rk4"
            elif self._p.scheme not in ("cn-euler", "cn-heun", "if-rk4"):
                changes["scheme"] = "cn-heun"
            changes["n"] = 64 if value == "darcy" else max(self._p.n, 64)
        new = replace(self._p, **changes)
        if name == "model":
            self.set_params(new)
            return
        self.set_params(new)

    def _on_view(self, name: str) -> None:
        if name:
            self._p = replace(self._p, view=name)
            self._probe_hist.clear()
            if self._line is not None:
                self.set_line(*self._line)
            self._redraw()

    # -- simulation --------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Rebuild the simulation from the parameters (keeps nothing of the previous run)."""
        was_running = self._task is not None
        self.stop()
        self._sim = None
        self._frames.clear()
        self._hist = {"t": []}
        self._probe_hist.clear()
        self._current = None
        self._darcy = None
        self.playbar.set_frames(0)
        if self._p.model == "darcy":
            self.info.setText("Darcy: press Run to solve a sequence of systems with plain and recycled CG")
            self._clear_plots()
            self._redraw()
            return
        try:
            self._sim = build_simulation(self._p)
        except UserError as exc:
            self.info.setText(str(exc))
            self.status.emit(str(exc))
            return
        self._record(snapshot(self._sim))
        if was_running:
            self.start()

    def _ensure_sim(self) -> bool:
        if self._p.model == "darcy":
            return False
        if self._sim is None:
            self.reset()
        return self._sim is not None

    def start(self) -> None:
        if self._task is not None:
            return
        self.replay(False)
        if self._p.model == "darcy":
            self._start_darcy()
            return
        if not self._ensure_sim():
            self.playbar.set_running(False)
            return
        self.playbar.set_running(True)
        self._fps_clock = (time.perf_counter(), self._draws, self._shown)
        self._task = worker.submit(
            live_frames,
            self._sim,
            self._p.steps_per_frame,
            self._paints,
            self._lock,
            self._live_options,
            group=f"pde-live-{id(self)}",
            label=f"PDE {self._p.model}",
            throttle_ms=15.0,
            on_yield=self._on_frame,
            on_error=self._on_error,
            on_done=lambda _r: self._task_ended(),
        )
        self._task.done.connect(self._task_ended)

    def _start_darcy(self) -> None:
        self._clear_plots()
        self._darcy_totals.clear()
        self.playbar.set_running(True)
        self._task = worker.submit(
            darcy_job,
            self._p.darcy_count,
            self._p.n,
            self._p.darcy_recycle_k,
            self._p.seed,
            group=f"pde-darcy-{id(self)}",
            label="Darcy recycling",
            on_yield=self._on_darcy,
            on_error=self._on_error,
            on_done=lambda _r: self._task_ended(),
        )
        self._task.done.connect(self._task_ended)

    def stop(self) -> None:
        task = self._task
        if task is None:
            return
        task.cancel()
        task.wait(30_000)
        self._task = None
        self.playbar.set_running(False)

    def _task_ended(self) -> None:
        if self._task is not None and not self._task.is_running():
            self._task = None
        self.playbar.set_running(self._task is not None)

    def _on_error(self, msg: str) -> None:
        self.info.setText(f"stopped: {msg}")
        self.status.emit(msg)
        self.playbar.set_running(False)

    def advance(self, steps: int) -> None:
        """Synchronous: step the field model (or solve ``steps`` Darcy systems) and draw."""
        if self._p.model == "darcy":
            self.stop()
            gen = darcy_job(max(2, int(steps)), self._p.n, self._p.darcy_recycle_k, self._p.seed)
            try:
                while True:
                    self._on_darcy(next(gen).data)
            except StopIteration:
                pass
            return
        self.stop()
        if not self._ensure_sim():
            return
        with self._lock:
            todo, self._paints[:] = list(self._paints), []
        try:
            for args in todo:
                self._sim.paint(*args)
            self._sim.step(int(steps))
        except UserError as exc:
            self._on_error(str(exc))
        self._on_frame(snapshot(self._sim))
        self._redraw()  # a synchronous step is final: refresh the throttled texts and plots too

    def _on_frame(self, frame: dict) -> None:
        self._record(frame)

    def _record(self, frame: dict) -> None:
        prev = self._current
        self._current = frame
        d = frame["diagnostics"]
        if d is None or frame["spectrum"] is None:  # throttled live frame: carry the last values forward
            if d is None:
                frame["diagnostics"] = dict(prev["diagnostics"]) if prev else {}
            if frame["spectrum"] is None and prev is not None:
                frame["spectrum"] = prev["spectrum"]
        if d is not None:
            self._hist["t"].append(frame["t"])
            for k, v in d.items():
                self._hist.setdefault(k, []).append(v)
            for k in self._hist:
                if k != "t" and len(self._hist[k]) < len(self._hist["t"]):
                    self._hist[k].insert(0, np.nan)
        self._probe_value(frame)
        self._line_value(frame)
        if self._p.record or not self._frames:
            self._frames.append(frame)
            if len(self._frames) > MAX_RECORD:
                del self._frames[0]
        else:
            self._frames[-1] = frame
        self.playbar.set_frames(len(self._frames))
        self._shown += 1
        self._redraw(frame)

    def _probe_value(self, frame: dict) -> None:
        f = frame["fields"].get(self._p.view)
        if f is None:
            return
        n = f.shape[0]
        i, j = int(self._probe[1] * n) % n, int(self._probe[0] * n) % n
        self._probe_hist.append((frame["t"], float(f[i, j])))

    def _line_value(self, frame: dict) -> None:
        f = frame["fields"].get(self._p.view)
        if self._line is None or f is None:
            return
        self._line_hist.append((frame["t"], line_profile(f, *self._line, num=LINE_SAMPLES)[1]))
        if len(self._line_hist) > MAX_RECORD:
            del self._line_hist[0]

    def _on_darcy(self, data: dict) -> None:
        self._darcy = data
        self._darcy_totals.append((data["j"] + 1, data["tot_plain"], data["tot_rec"]))
        self._res_plain.setData(np.arange(len(data["res_plain"])), finite_or_nan(data["res_plain"]))
        self._res_rec.setData(np.arange(len(data["res_rec"])), finite_or_nan(data["res_rec"]))
        self._tabs.setCurrentWidget(self.darcy_plot)
        self.darcy_plot.getPlotItem().setTitle(
            f"system {data['j'] + 1}: PCG {data['it_plain']} vs recycled {data['it_rec']} iterations",
            color="k",
        )
        ratio = data["tot_plain"] / max(data["tot_rec"], 1)
        self.info.setText(
            f"Darcy {data['j'] + 1} systems at n = {self._p.n}: total CG iterations plain "
            f"{data['tot_plain']}, recycled {data['tot_rec']} (x{ratio:.2f}); solve time plain "
            f"{data['sec_plain']:.2f} s, recycled {data['sec_rec']:.2f} s"
        )
        self._redraw()

    # -- drawing -----------------------------------------------------------------------------------------
    def _display(self) -> tuple[np.ndarray | None, str]:
        if self._p.model == "darcy":
            if self._darcy is None:
                return None, ""
            key = "a" if self._p.view == "darcy-a" else "u"
            return self._darcy[key], FIELD_LABEL[self._p.view]
        frame = self._current
        if frame is None:
            return None, ""
        f = frame["fields"].get(self._p.view)
        if f is None:
            f = next(iter(frame["fields"].values()))
        return f, FIELD_LABEL.get(self._p.view, self._p.view)

    def _cmap_and_clim(self, f: np.ndarray) -> tuple[str, tuple[float, float]]:
        p = self._p
        signed = p.view in (
            "vorticity",
            "streamfunction",
            "displacement",
            "velocity",
            "u",
            "v",
        ) and p.model not in ("gray-scott", "darcy")
        cmap = p.colormap if p.colormap != "auto" else ("RdBu_r" if signed else "viridis")
        if p.limits == "fixed":
            clim = (p.vmin, p.vmax) if p.vmax > p.vmin else (p.vmin, p.vmin + 1.0)
        else:
            clim = nice_limits(f, symmetric=(p.limits == "symmetric" or (signed and p.limits == "auto")))
            if p.model == "darcy":
                clim = (float(np.nanmin(f)), float(np.nanmax(f)) or 1.0)
        if clim[1] <= clim[0]:
            clim = (clim[0] - 0.5, clim[0] + 0.5)
        span = clim[1] - clim[0]
        clim = tuple(0.0 if abs(c) < 1e-6 * span else float(c) for c in clim)  # no "6.7e-20" labels
        return cmap, clim

    def _title_text(self, label: str) -> str:
        if self._p.model == "darcy":
            d = self._darcy
            return f"Darcy -div(a grad u) = 1, system {d['j'] + 1}: {label}" if d else "Darcy: no solve yet"
        fr = self._current
        if fr is None:
            return f"{self._p.model}: no data yet"
        dd = fr["diagnostics"]
        extra = "  ".join(f"{k} {dd[k]:.3g}" for k in ("energy", "enstrophy", "cfl") if k in dd)
        return f"{self._p.model}  t = {fr['t']:.4g}  step {fr['step']}   {extra}"

    def _redraw(self, frame: dict | None = None) -> None:
        """Draw the current field. ``frame`` set = a live update: texts, colour limits and plots are then
        refreshed at a few Hz only (text layout and pyqtgraph repaints cost more than the field itself)."""
        f, label = self._display()
        if f is None:
            self._title.setText(self._title_text(""))
            return
        now = time.perf_counter()
        slow = frame is None or now - self._text_clock > 0.3
        if slow or self._clim is None:
            self._cmap_and_clim_cache = self._cmap_and_clim(f)
        cmap, clim = self._cmap_and_clim_cache
        n = f.shape[0]
        self._image.set_data(np.ascontiguousarray(f, dtype=np.float32))
        if cmap != getattr(self, "_cmap_name", None):
            self._cmap_name = cmap
            self._cmap_obj = get_cmap(cmap)
            self._image.cmap = self._cmap_obj
            self._colorbar.set_colormap(self._cmap_obj.map(np.linspace(0.0, 1.0, 256)))
        if clim != self._clim:
            self._clim = clim
            self._image.clim = clim
            self._colorbar.set_limits(*clim)
        if n != getattr(self, "_img_n", None):
            self._img_n = n
            self._image.transform = _scale_transform(1.0 / n)
        if slow:
            self._text_clock = now
            self._colorbar.set_label(label)
            self._title.setText(self._title_text(label))
        fr = self._current
        vel = fr.get("velocity") if (fr is not None and self._p.model != "darcy") else None
        if self._p.quiver and vel is not None:
            self._quiver.set_data(pos=_quiver_segments(*vel), arrows=_quiver_arrows(*vel))
            self._quiver.visible = True
        else:
            self._quiver.visible = False
        if self._probe != self._marker_at:
            self._marker_at = self._probe
            self._probe_marker.set_data(
                np.array([self._probe], np.float32),
                face_color="yellow",
                edge_color="black",
                size=10,
                symbol="x",
            )
        self._canvas.update()
        if frame is None or now - self._plot_clock > 0.5:  # plots are the costly part: 2 Hz while running
            self._plot_clock = now
            self._update_plots()

    def _update_plots(self) -> None:
        fr = self._current
        if fr is not None and fr.get("spectrum") is not None:
            k, E = fr["spectrum"]
            m = (k > 0) & (E > 1e-14 * max(float(E.max()), 1e-300))
            if m.any():
                k, E = k[m], E[m]
                self._spec_curve.setData(k, E)
                k0 = k[min(3, len(k) - 1)]
                e0 = E[min(3, len(E) - 1)]
                kk = k[k >= k0]
                self._k3.setData(kk, e0 * (kk / k0) ** -3.0)
                self._k53.setData(kk, e0 * (kk / k0) ** (-5.0 / 3.0))
        else:
            self._spec_curve.setData([], [])
            self._k3.setData([], [])
            self._k53.setData([], [])
        spec_title = (
            "Energy spectrum E(k)"
            if self._p.model in ("navier-stokes", "burgers", "heat", "wave")
            else f"Energy spectrum: not defined for {self._p.model}"
        )
        self.spectrum_plot.getPlotItem().setTitle(spec_title, color="k")
        h = self._hist
        t = np.asarray(h["t"])
        keys = HISTORY_KEYS.get(self._p.model, ("energy", "enstrophy"))
        for curve, key in zip((self._e_curve, self._z_curve), keys + (None,) * 2):
            v = h.get(key) if key else None
            if v is not None and len(v) == len(t):
                curve.setData(t, finite_or_nan(v))
            else:
                curve.setData([], [])
        if keys != getattr(self, "_hist_keys", None):
            self._hist_keys = keys
            item = self.energy_plot.getPlotItem()
            item.setTitle(" and ".join(keys) + " vs time", color="k")
            item.setLabel("left", ", ".join(HISTORY_LABEL.get(k, k) for k in keys))
            legend = item.legend
            if legend is not None:
                legend.clear()
                for curve, key in zip((self._e_curve, self._z_curve), keys):
                    legend.addItem(curve, key)
        if self._probe_hist:
            pt = np.asarray(self._probe_hist)
            self._probe_curve.setData(pt[:, 0], finite_or_nan(pt[:, 1]))
        self.probe_plot.getPlotItem().setTitle(
            f"Probe {self._p.view} at ({self._probe[0]:.2f}, {self._probe[1]:.2f})", color="k"
        )
        self._update_line_plots()

    def _update_line_plots(self) -> None:
        """Profile along the line now, and the space-time image of the recorded profiles (same colours as
        the field view)."""
        f, _ = self._display()
        if self._line is None or f is None or self._p.model == "darcy":
            self._line_curve.setData([], [])
            self._kymo.clear()
            return
        (x0, y0), (x1, y1) = self._line
        dist, v = line_profile(f, *self._line, num=LINE_SAMPLES)
        self._line_curve.setData(dist, finite_or_nan(v))
        self.line_plot.getPlotItem().setTitle(
            f"{self._p.view} from ({x0:.2f}, {y0:.2f}) to ({x1:.2f}, {y1:.2f})", color="k"
        )
        if len(self._line_hist) >= 2:
            t = np.array([h[0] for h in self._line_hist])
            vals = np.stack([h[1] for h in self._line_hist])  # (T, samples)
            cmap, clim = self._cmap_and_clim_cache if self._clim is not None else self._cmap_and_clim(f)
            rgba = colormap_rgba(vals.T, cmap, clim)  # (samples, T, 4): x = distance, y = time
            self._kymo.setImage(rgba, autoLevels=False)
            span = max(float(t[-1] - t[0]), 1e-12)
            self._kymo.setRect(QRectF(0.0, float(t[0]), float(dist[-1]) or 1.0, span))
        else:
            self._kymo.clear()

    def _clear_plots(self) -> None:
        for c in (
            self._spec_curve,
            self._k3,
            self._k53,
            self._e_curve,
            self._z_curve,
            self._probe_curve,
            self._line_curve,
            self._res_plain,
            self._res_rec,
        ):
            c.setData([], [])

    def _count_draw(self, _event) -> None:
        self._draws += 1

    def displayed_fps(self) -> float:
        """Canvas draws per second since the last start() (the live-panel benchmark reads this)."""
        t0, d0, _ = getattr(self, "_fps_clock", (time.perf_counter(), self._draws, 0))
        return (self._draws - d0) / max(time.perf_counter() - t0, 1e-9)

    # -- mouse: paint and probe --------------------------------------------------------------------------
    def _to_unit(self, pos) -> tuple[float, float] | None:
        tr = self._canvas.scene.node_transform(self._view.scene)
        x, y = tr.map(pos)[:2]
        if 0 <= x <= 1 and 0 <= y <= 1:
            return float(x), float(y)
        return None

    def _on_mouse(self, event) -> None:
        xy = self._to_unit(event.pos)
        if xy is None:
            return
        mods = [k.name for k in (event.modifiers or ())]
        if event.button == 1 and "Shift" in mods:
            self._line_drag = xy
            return
        if event.button == 2 or "Control" in mods:
            self.set_probe(*xy)
        elif event.button == 1:
            self._painting = True
            self.paint_at(*xy)

    def _on_mouse_move(self, event) -> None:
        if self._line_drag is not None and event.is_dragging:
            xy = self._to_unit(event.pos)
            if xy is not None:
                self._show_line((self._line_drag, xy))
            return
        if self._painting and event.is_dragging:
            xy = self._to_unit(event.pos)
            if xy is not None:
                self.paint_at(*xy)

    def _on_mouse_release(self, event) -> None:
        self._painting = False
        if self._line_drag is not None:
            end = self._to_unit(event.pos)
            start, self._line_drag = self._line_drag, None
            if end is not None and np.hypot(end[0] - start[0], end[1] - start[1]) > 1e-3:
                self.set_line(start, end)
            else:
                self._show_line(self._line)

    def paint_at(self, x: float, y: float) -> None:
        """Queue a Gaussian blob at (x, y) in [0, 1]^2 (applied by the running worker, or now when paused)."""
        if self._p.model == "darcy" or not self._ensure_sim():
            return
        p = self._p
        target = None
        if p.model == "navier-stokes":
            target = "dye" if p.paint_target == "dye" else "vorticity"
        elif p.model == "gray-scott":
            target = "v"
        args = (
            x,
            y,
            p.paint_amount if p.model != "gray-scott" else min(abs(p.paint_amount), 1.0),
            p.paint_radius,
            target,
        )
        if self._task is not None:
            with self._lock:
                self._paints.append(args)
            return
        try:
            self._sim.paint(*args)
        except UserError as exc:
            self.status.emit(str(exc))
            return
        self._record(snapshot(self._sim))

    def set_probe(self, x: float, y: float) -> None:
        self._probe = (float(x), float(y))
        self._probe_hist.clear()
        for fr in self._frames:
            self._probe_value(fr)
        self._redraw()

    def set_line(self, p0: tuple[float, float], p1: tuple[float, float]) -> None:
        """Probe the viewed field along the segment p0 -> p1 (unit coordinates) for every recorded frame."""
        self._line = ((float(p0[0]), float(p0[1])), (float(p1[0]), float(p1[1])))
        self._line_hist.clear()
        for fr in self._frames:
            self._line_value(fr)
        self._show_line(self._line)
        self._tabs.setCurrentIndex(self._tabs.indexOf(self.kymo_plot.parentWidget()))
        self._update_line_plots()

    def _show_line(self, line) -> None:
        self._line_vis.visible = line is not None
        if line is not None:
            self._line_vis.set_data(pos=np.asarray(line, np.float32))
        self._canvas.update()

    # -- scrub / replay ----------------------------------------------------------------------------------
    def _on_play(self, on: bool) -> None:
        self.start() if on else self.stop()

    def _on_scrub(self, i: int) -> None:
        if 0 <= i < len(self._frames) and self._p.model != "darcy":
            self._current = self._frames[i]
            self._redraw()

    def replay(self, on: bool = True) -> None:
        """Play the recorded frames from the first (pauses the simulation); off stops on the shown frame."""
        if on and len(self._frames) > 1 and self._p.model != "darcy":
            self.stop()
            self._replay_pos = 0
            self._replay_timer.start()
        else:
            self._replay_timer.stop()
        self.replay_button.blockSignals(True)
        self.replay_button.setChecked(self._replay_timer.isActive())
        self.replay_button.blockSignals(False)

    def _replay_tick(self) -> None:
        i = getattr(self, "_replay_pos", 0)
        if i >= len(self._frames):
            self.replay(False)
            return
        self.playbar.slider.setValue(i)  # -> _on_scrub
        self._replay_pos = i + 1

    # -- output ------------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        """The field view at any ``size``: title, colour-mapped field (+ arrows, probe) and a labelled
        colourbar, composed at that resolution (the GL canvas only lays its grid out at its own size)."""
        from PIL import Image, ImageDraw, ImageFont

        w, h = int(size[0]), int(size[1])
        out = Image.new("RGBA", (w, h), (255, 255, 255, 255))
        f, label = self._display()
        draw = ImageDraw.Draw(out)
        fs = max(8, min(w, h) // 40)
        font = ImageFont.load_default(size=fs)
        if f is None:
            draw.text((fs, fs), "no data yet", fill="black", font=font)
            return np.asarray(out)
        cmap, clim = self._cmap_and_clim(f)
        title_h, bar_h = int(2.2 * fs), int(4.5 * fs)
        side = max(1, min(w - 2 * fs, h - title_h - bar_h))
        x0, y0 = (w - side) // 2, title_h
        img = Image.fromarray(colormap_rgba(f[::-1], cmap, clim))
        resample = Image.Resampling.NEAREST if side >= 2 * f.shape[0] else Image.Resampling.BILINEAR
        out.paste(img.resize((side, side), resample), (x0, y0))
        draw.text((w // 2, fs // 2), self._title_text(label), fill="black", font=font, anchor="ma")
        fr = self._current
        vel = fr.get("velocity") if (fr is not None and self._p.model != "darcy") else None
        if self._p.quiver and vel is not None:
            seg = _quiver_segments(*vel)
            pts = np.column_stack([x0 + seg[:, 0] * side, y0 + (1 - seg[:, 1]) * side])
            for a, b in zip(pts[0::2], pts[1::2]):
                draw.line([tuple(a), tuple(b)], fill="black", width=max(1, side // 500))
                draw.ellipse([b[0] - 1, b[1] - 1, b[0] + 1, b[1] + 1], fill="black")
        if self._line is not None:
            ends = [(x0 + lx * side, y0 + (1 - ly) * side) for lx, ly in self._line]
            draw.line(ends, fill="black", width=max(1, side // 300))
        px, py = x0 + self._probe[0] * side, y0 + (1 - self._probe[1]) * side
        r = max(3, side // 80)
        draw.line([(px - r, py - r), (px + r, py + r)], fill="yellow", width=3)
        draw.line([(px - r, py + r), (px + r, py - r)], fill="yellow", width=3)
        # colourbar
        bx0, bx1 = x0, x0 + side
        by0 = y0 + side + fs // 2
        by1 = by0 + int(1.2 * fs)
        ramp = colormap_rgba(np.linspace(clim[0], clim[1], max(bx1 - bx0, 2))[None, :], cmap, clim)
        out.paste(Image.fromarray(np.repeat(ramp, by1 - by0, 0)), (bx0, by0))
        draw.rectangle([bx0, by0, bx1 - 1, by1], outline="black")
        for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
            xx = bx0 + frac * (bx1 - bx0 - 1)
            draw.line([(xx, by1), (xx, by1 + fs // 3)], fill="black")
            draw.text(
                (xx, by1 + fs // 3),
                f"{clim[0] + frac * (clim[1] - clim[0]):.3g}",
                fill="black",
                font=font,
                anchor="ma",
            )
        draw.text(((bx0 + bx1) // 2, by1 + int(1.6 * fs)), label, fill="black", font=font, anchor="ma")
        return np.asarray(out)

    def render_field(self, size: tuple[int, int]) -> np.ndarray:
        """The bare colour-mapped field (no colourbar, no title), resampled to ``size``, RGBA uint8."""
        f, _ = self._display()
        if f is None:
            raise UserError("nothing to export yet: run or step the simulation first")
        cmap, clim = self._cmap_and_clim(f)
        img = colormap_rgba(f[::-1], cmap, clim)  # row 0 is y = 0: flip so y points up in the PNG
        w, h = int(size[0]), int(size[1])
        ys = (np.arange(h) * img.shape[0] / h).astype(int)
        xs = (np.arange(w) * img.shape[1] / w).astype(int)
        return img[ys][:, xs]

    def canvas(self):
        return self._canvas

    def exports(self) -> list[ExportAction]:
        return [
            ExportAction(
                "Field PNG with colorbar", ("png",), lambda p: save_png(p, self.render((1200, 1000)))
            ),
            ExportAction(
                "Field PNG without colorbar", ("png",), lambda p: save_png(p, self.render_field((1024, 1024)))
            ),
            ExportAction("Recording MP4/GIF", ("mp4", "gif"), self._write_video),
            ExportAction("Spectrum SVG/CSV/PNG", ("svg", "csv", "png"), self._write_spectrum),
            ExportAction(
                "Energy plot SVG/CSV/PNG", ("svg", "csv", "png"), lambda p: export_plot(self.energy_plot, p)
            ),
            ExportAction(
                "Darcy residuals SVG/CSV/PNG",
                ("svg", "csv", "png"),
                lambda p: export_plot(self.darcy_plot, p),
            ),
            ExportAction("Fields NPZ", ("npz",), self._write_npz),
            ExportAction("Line probe CSV", ("csv",), self._write_line_csv),
        ]

    def _write_line_csv(self, path: Path) -> None:
        f, _ = self._display()
        if f is None or self._p.model == "darcy":
            raise UserError("no field to probe yet: press Run or Step")
        line = self._line or ((0.0, 0.5), (1.0, 0.5))  # no line drawn: the horizontal midline
        xy = line_points(*line, LINE_SAMPLES)
        dist, v = line_profile(f, *line, num=LINE_SAMPLES)
        save_csv(path, ["distance", "x", "y", self._p.view], [dist, xy[:, 0], xy[:, 1], v])

    def _write_spectrum(self, path: Path) -> None:
        fr = self._current
        if Path(path).suffix.lower() == ".csv" and fr is not None and fr.get("spectrum") is not None:
            k, E = fr["spectrum"]
            save_csv(path, ["k", "E"], [k, E])
            return
        export_plot(self.spectrum_plot, path)

    def _write_video(self, path: Path) -> None:
        frames = [f for f in self._frames if self._p.view in f["fields"]]
        if not frames:
            raise UserError("no frames recorded: run the simulation with 'Record frames' on")
        view = self._p.view
        lims = nice_limits(
            np.stack([f["fields"][view] for f in frames[-50:]]),
            symmetric=self._cmap_and_clim(frames[-1]["fields"][view])[1][0] < 0,
        )
        cmap = self._cmap_and_clim(frames[-1]["fields"][view])[0]
        if self._p.limits == "fixed":
            lims = (self._p.vmin, self._p.vmax)
        n = frames[0]["fields"][view].shape[0]
        scale = max(1, 512 // n)

        def gen():
            for fr in frames:
                img = colormap_rgba(fr["fields"][view][::-1], cmap, lims)
                yield np.repeat(np.repeat(img, scale, 0), scale, 1)

        write_video(path, gen(), fps=25)

    def _write_npz(self, path: Path) -> None:
        if self._p.model == "darcy":
            if self._darcy is None:
                raise UserError("no Darcy solve yet: press Run")
            d = self._darcy
            save_npz(
                path,
                a=d["a"],
                u=d["u"],
                res_plain=d["res_plain"],
                res_rec=d["res_rec"],
                totals=np.asarray(self._darcy_totals),
            )
            return
        if not self._frames:
            raise UserError("nothing recorded yet")
        arrays = {"t": np.array([f["t"] for f in self._frames])}
        for name in self._frames[-1]["fields"]:
            arrays[name] = np.stack([f["fields"][name] for f in self._frames])
        for k, v in self._hist.items():
            arrays[f"hist_{k}"] = np.asarray(v, dtype=float)
        if self._line is not None and self._line_hist:
            arrays["line_points"] = np.asarray(self._line, dtype=float)
            arrays["line_t"] = np.array([h[0] for h in self._line_hist])
            arrays["line_values"] = np.stack([h[1] for h in self._line_hist])
        if self._current and self._current.get("spectrum") is not None:
            arrays["spectrum_k"], arrays["spectrum_E"] = self._current["spectrum"]
        save_npz(path, **arrays)

    def state(self) -> dict:
        s = super().state()
        s.update(t=self._current["t"] if self._current else 0.0, probe=list(self._probe))
        if self._line is not None:
            s["line"] = [list(self._line[0]), list(self._line[1])]
        return s

    def restore(self, state: dict) -> None:
        super().restore(state)
        if "probe" in state:
            self.set_probe(*state["probe"])
        if state.get("line"):
            self.set_line(*state["line"])

    def shutdown(self) -> None:
        self._replay_timer.stop()
        self.stop()
        super().shutdown()


def _scale_transform(s: float):
    from vispy.visuals.transforms import STTransform

    return STTransform(scale=(s, s))


def _quiver_segments(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    m = u.shape[0]
    c = (np.arange(m) + 0.5) / m
    Y, X = np.meshgrid(c, c, indexing="ij")
    speed = np.sqrt(u**2 + v**2)
    scale = 0.8 / m / (float(speed.max()) or 1.0)
    p0 = np.stack([X.ravel(), Y.ravel()], 1)
    p1 = p0 + scale * np.stack([u.ravel(), v.ravel()], 1)
    seg = np.empty((2 * p0.shape[0], 2), np.float32)
    seg[0::2], seg[1::2] = p0, p1
    return seg


def _quiver_arrows(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    seg = _quiver_segments(u, v)
    return np.hstack([seg[0::2], seg[1::2]]).astype(np.float32)
