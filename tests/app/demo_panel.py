"""A minimal panel used only by the shell's tests (so they do not depend on any domain panel)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtWidgets import QVBoxLayout

from app import export
from app.worker import submit
from backends.common import Progress, UserError
from panels.base import ExportAction, Panel
from panels.widgets import Field, ParamForm, make_canvas, make_plot, render_canvas


@dataclass(frozen=True)
class DemoConfig:
    n: int = 64
    rate: float = 0.2
    seed: int = 0


def diffuse(cfg: DemoConfig, steps: int):
    """Explicit 1D heat steps; yields the field every step (a stand-in backend generator)."""
    if cfg.rate <= 0 or cfg.rate > 0.5:
        raise UserError(f"rate must be in (0, 0.5], got {cfg.rate}")
    u = np.random.default_rng(cfg.seed).random(cfg.n)
    for i in range(steps):
        u = u + cfg.rate * (np.roll(u, 1) - 2 * u + np.roll(u, -1))
        yield Progress((i + 1) / steps, f"step {i + 1}", u.copy())
    return u


class DemoPanel(Panel):
    key = "demo"
    title = "Demo"
    open_filter = "Demo data (*.demo)"

    def __init__(self, parent=None):
        super().__init__(parent)
        from vispy import scene

        self._cfg = DemoConfig()
        self.form = ParamForm(
            [Field("n", "Points", "int", 4, 4096), Field("rate", "Rate", "float", 0.01, 0.5)],
            {"n": 64, "rate": 0.2},
        )
        self.form.changed.connect(lambda name, v: self.set_params(replace(self._cfg, **{name: v})))
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
        self.field = np.zeros(self._cfg.n)
        self.means: list[float] = []
        self.task = None
        self.opened = None

    def params(self):
        return self._cfg

    def set_params(self, cfg):
        self._cfg = cfg
        self.form.set_values({"n": cfg.n, "rate": cfg.rate})

    def _show(self, u):
        self.field = u
        self.means.append(float(u.mean()))
        self.line.set_data(np.c_[np.arange(len(u)), u].astype(np.float32))
        self.curve.setData(np.arange(len(self.means)), np.array(self.means))

    def start(self, steps: int = 200):
        self.task = submit(diffuse, self._cfg, steps, group="demo", label="demo", on_yield=self._show)

    def stop(self):
        if self.task is not None:
            self.task.cancel()

    def advance(self, steps):
        for item in diffuse(self._cfg, steps):
            self._show(item.data)

    def render(self, size):
        return render_canvas(self._canvas, size)

    def canvas(self):
        return self._canvas

    def exports(self):
        return [
            ExportAction("Field NPZ", ("npz",), lambda p: export.save_npz(p, u=self.field)),
            ExportAction("Mean plot", ("svg", "png", "csv"), lambda p: export.export_plot(self.plot, p)),
        ]

    def open_path(self, path):
        self.opened = path
