"""A minimal panel used only by the shell's tests (so they do not depend on any domain panel)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtWidgets import QVBoxLayout

from app import export
from backends.common import Progress, UserError
from panels.base import ExportAction, Panel, VideoSpec
from panels.model import PanelModel, param, require_array
from panels.widgets import ParamForm, bind_form, make_canvas, make_plot, param_fields, render_canvas


@dataclass(frozen=True)
class DemoConfig:
    n: int = param(64, "Points", minimum=4, maximum=4096)
    rate: float = param(0.2, "Rate", minimum=0.01, maximum=0.9)
    seed: int = param(0, "Seed", minimum=0, maximum=10**6, form=False)


def diffuse(cfg: DemoConfig, steps: int):
    """Explicit 1D heat steps; yields the field every step (a stand-in backend generator)."""
    if cfg.rate <= 0 or cfg.rate > 0.5:
        raise UserError(f"rate must be in (0, 0.5], got {cfg.rate}")
    u = np.random.default_rng(cfg.seed).random(cfg.n)
    for i in range(steps):
        u = u + cfg.rate * (np.roll(u, 1) - 2 * u + np.roll(u, -1))
        yield Progress((i + 1) / steps, f"step {i + 1}", u.copy())
    return u


class DemoModel(PanelModel):
    """The demo's source of truth: parameters, the field shown and its history of means."""

    key = "demo"
    Params = DemoConfig

    def __init__(self) -> None:
        super().__init__()
        self.field = np.zeros(self.params.n)
        self.means: list[float] = []

    def show(self, u: np.ndarray) -> None:
        self.field = u
        self.means.append(float(u.mean()))
        self.events.emit("frame")

    def arrays(self) -> dict[str, np.ndarray]:
        return {"field": self.field, "means": np.asarray(self.means, float)}

    def validate_state(self, state, arrays):
        staged = super().validate_state(state, arrays)
        if arrays:
            staged["field"] = require_array(arrays, "field", where="demo", ndim=1)
            staged["means"] = require_array(arrays, "means", where="demo", ndim=1)
        return staged

    def apply_state(self, staged) -> None:
        super().apply_state(staged)
        if "field" in staged:
            self.field, self.means = staged["field"], list(staged["means"])
            self.events.emit("frame")


class DemoPanel(Panel):
    key = "demo"
    title = "Demo"
    open_filter = "Demo data (*.demo)"

    def __init__(self, parent=None):
        super().__init__(parent)
        from vispy import scene

        self.model = DemoModel()
        self.form = ParamForm(param_fields(DemoConfig))
        bind_form(self.form, self.model)
        self._canvas = make_canvas()
        self.view = self._canvas.central_widget.add_view()
        self.view.camera = scene.PanZoomCamera(rect=(0, 0, 64, 1))
        self.line = scene.visuals.Line(np.zeros((2, 2), np.float32), parent=self.view.scene, color="orange")
        self.plot = make_plot("Mean", "step", "value")
        self.curve = self.plot.plot([0.0], [0.0], name="mean")
        lay = QVBoxLayout(self)
        lay.addWidget(self.form)
        lay.addWidget(self._canvas.native, 1)
        lay.addWidget(self.plot)
        self.opened = None
        self.model.events.connect("frame", self._draw)

    def _draw(self, **_):
        u, means = self.model.field, self.model.means
        self.line.set_data(np.c_[np.arange(len(u)), u].astype(np.float32))
        self.curve.setData(np.arange(len(means)), np.array(means))

    def start(self, steps: int = 200):
        self.tasks.submit(
            diffuse, self.model.params, steps, group="run", label="demo", on_yield=self.model.show
        )

    def advance(self, steps):
        for item in diffuse(self.model.params, steps):
            self.model.show(item.data)

    def render(self, size):
        return render_canvas(self._canvas, size)

    def canvas(self):
        return self._canvas

    def exports(self):
        return [
            ExportAction("Field NPZ", ("npz",), lambda p: export.save_npz(p, u=self.model.field)),
            ExportAction("Mean plot", ("svg", "png", "csv"), lambda p: export.export_plot(self.plot, p)),
        ]

    def video(self):
        """The field fading out and back: a frame is the line drawn at amplitude cos(2 pi u)."""

        def frame(u, size):
            u_field = self.model.field * (0.5 + 0.5 * np.cos(2 * np.pi * u))
            self.line.set_data(np.c_[np.arange(len(u_field)), u_field].astype(np.float32))
            return render_canvas(self._canvas, size)

        return VideoSpec("Fade", 2.0, frame, end=self._draw)

    def open_path(self, path):
        self.opened = path
