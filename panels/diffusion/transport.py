"""One transport bar for the panel: Train, Sample, Play/Pause, Step, Stop and a slider over the flow.

Playback is timed by the clock (:data:`PLAY_SECONDS` for the whole flow at any frame rate) and paced by the
draws: a tick moves the particles only once the previous frame is on screen. The slider follows the model's
frame (10 Hz while playing: repainting it costs ~5 ms a frame on a software rasterizer).
"""

from __future__ import annotations

import math
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSlider, QWidget

from .model import DiffusionModel

PLAY_SECONDS = 3.0  # Play shows the whole flow in this time, whatever the frame rate
SLIDER_STEPS = 10  # slider positions per recorded state (the flow is interpolated between states)
HIDDEN_WAIT_S = 0.25  # a hidden canvas never draws: do not hold playback up longer than this


class Transport(QWidget):
    """The panel's one set of transport controls; ``on_play`` tells the view when it is playing."""

    def __init__(self, model: DiffusionModel, canvas, parent=None) -> None:
        super().__init__(parent)
        self.model = model
        lay = QHBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 2)
        self.train_button = QPushButton("Train")
        self.train_button.setToolTip("train the chosen model on the dataset, then sample (exact: sample)")
        self.sample_button = QPushButton("Sample")
        self.sample_button.setToolTip("draw new particles from the model with the chosen sampler and NFE")
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip(f"replay the flow from noise to data ({PLAY_SECONDS:g} s)")
        self.step_button = QPushButton("Step")
        self.step_button.setToolTip("show the next model evaluation")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("stop training, sampling, the sweep and playback (what is done stays)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        for w in (
            self.train_button,
            self.sample_button,
            self.play_button,
            self.step_button,
            self.stop_button,
        ):
            lay.addWidget(w)
        lay.addWidget(self.slider, 1)
        self.on_play = lambda playing: None
        self._timer = QTimer(self)
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)
        self._from = (0.0, 0.0)  # (clock, frame) when Play was pressed
        self._shown = True
        self._last_tick = 0.0
        self._slider_clock = 0.0
        canvas.events.draw.connect(self._drawn)
        self.play_button.toggled.connect(self.play)
        self.step_button.clicked.connect(lambda: model.set_frame(math.floor(model.frame) + 1))
        self.slider.valueChanged.connect(lambda v: model.set_frame(v / SLIDER_STEPS))
        model.events.connect("result", lambda **_: self._range())
        model.events.connect("restored", lambda **_: self._range())
        model.events.connect("frame", lambda **_: self._follow())

    def playing(self) -> bool:
        return self._timer.isActive()

    def play(self, on: bool) -> None:
        m = self.model
        if on and m.result is None:
            on = False
        if on:
            if m.frame >= m.last_frame:
                m.set_frame(0.0)
            self._from = (time.perf_counter(), m.frame)
            self._shown = True
            self._timer.start()
        else:
            self._timer.stop()
        self.play_button.blockSignals(True)
        self.play_button.setChecked(on)
        self.play_button.setText("Pause" if on else "Play")
        self.play_button.blockSignals(False)
        self.on_play(on)

    def _drawn(self, _ev=None) -> None:
        self._shown = True

    def _tick(self) -> None:
        now = time.perf_counter()
        m = self.model
        if m.result is None or (not self._shown and now - self._last_tick < HIDDEN_WAIT_S):
            return  # the last frame is not on screen yet
        self._last_tick = now
        t0, f0 = self._from
        nxt = f0 + (now - t0) * max(m.last_frame, 1) / PLAY_SECONDS
        self._shown = False
        if nxt >= m.last_frame:
            nxt = m.last_frame
            self.play(False)
        m.set_frame(nxt)

    def _range(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, SLIDER_STEPS * self.model.last_frame)
        self.slider.blockSignals(False)
        self._follow(force=True)

    def _follow(self, force: bool = False) -> None:
        now = time.perf_counter()
        m = self.model
        if force or not self.playing() or m.frame >= m.last_frame or now - self._slider_clock > 0.1:
            self._slider_clock = now
            self.slider.blockSignals(True)
            self.slider.setValue(int(round(m.frame * SLIDER_STEPS)))
            self.slider.blockSignals(False)
