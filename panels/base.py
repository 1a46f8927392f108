"""The Panel contract: what the shell needs from every domain panel.

The shell builds docks, the Export menu, session files, the CLI ``snapshot`` and the smoke tests from this
contract alone, identically for every panel. A panel's Qt-free model (:mod:`panels.model`) is the source of
truth; the panel wires widgets to it, runs its backend through its own task set (:class:`app.worker.TaskSet`),
draws with vispy/pyqtgraph and offers exports. Sessions are the model's state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from app.export import ExportAction, VideoSpec
from app.worker import TaskSet
from panels.model import PanelModel

__all__ = ["ExportAction", "VideoSpec", "Panel", "PanelModel"]


class Panel(QWidget):
    """Base class of every panel. Subclasses set ``key``/``title`` and override the methods below."""

    key: ClassVar[str] = ""
    title: ClassVar[str] = ""
    #: file dialog filter for File > Open, e.g. "Gaussian splats (*.ply *.splat *.spz)"; '' = opens nothing
    open_filter: ClassVar[str] = ""

    #: batch workloads (``backends.batch`` names, e.g. "escape-map") whose Zarr stores this panel opens
    #: (File > Open study…); run them with :func:`panels.study.run_study`
    study_workloads: ClassVar[tuple[str, ...]] = ()

    #: Help > Quick start: what to press first, in a few lines of HTML
    quick_start: ClassVar[str] = ""
    #: Help > Keyboard and mouse: (keys or gesture, what it does) for this panel's views
    controls: ClassVar[tuple[tuple[str, str], ...]] = ()

    status = Signal(str)  # a short message for the status bar and the log dock
    #: the Qt-free source of truth (set by subclasses in ``__init__`` before building widgets)
    model: PanelModel

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        #: this instance's background tasks (groups are private to it; see :class:`app.worker.TaskSet`)
        self.tasks = TaskSet(self.key)

    # -- parameters -------------------------------------------------------------------------------------
    def params(self) -> Any:
        """The current config dataclass (the model's)."""
        return self.model.params

    # -- computation ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start (or resume) the live computation in a worker."""

    def stop(self) -> None:
        """Cancel every task of this panel at once (never blocks); results computed so far stay."""
        self.tasks.cancel()

    def advance(self, steps: int) -> None:
        """Run the default computation for ``steps`` steps synchronously (CLI snapshot, smoke tests)."""
        raise NotImplementedError

    # -- output -----------------------------------------------------------------------------------------
    def render(self, size: tuple[int, int]) -> np.ndarray:
        """The main view as an RGBA uint8 image of ``size`` = (width, height)."""
        raise NotImplementedError

    def canvas(self):
        """The primary vispy canvas, or None (used for "Render view as PNG")."""
        return None

    def exports(self) -> list[ExportAction]:
        return []

    def video(self) -> VideoSpec | None:
        """The panel's animation for Export > Video (MP4/GIF at any size up to 4K), or None."""
        return None

    def open_path(self, path: Path) -> None:
        """Open a file chosen in File > Open (only called when ``open_filter`` is set)."""
        raise NotImplementedError

    def open_study(self, path: Path, meta: dict) -> None:
        """Show a batch study's store (``meta`` = ``backends.batch.store.read_meta(path)``; finished chunks
        only, a partial store shows what is done). Only called for workloads in ``study_workloads``."""
        raise NotImplementedError

    # -- sessions ---------------------------------------------------------------------------------------
    def state(self) -> dict:
        """JSON-able state (the model's): parameters, camera, time, selections."""
        return self.model.state()

    def arrays(self) -> dict[str, np.ndarray]:
        """Large session arrays (painted fields, trained weights, the state shown), saved beside the JSON."""
        return self.model.arrays()

    def validate_state(self, state: dict, arrays: dict[str, np.ndarray] | None = None) -> Any:
        """Check a whole session state; raises ``UserError`` naming key and value; changes nothing."""
        return self.model.validate_state(state, dict(arrays or {}))

    def restore(self, state: dict, arrays: dict[str, np.ndarray] | None = None) -> None:
        """Validate, then apply; the widgets follow the model's events. Running tasks are cancelled first,
        so nothing computed for the old state lands on the new one."""
        staged = self.validate_state(state, arrays)
        self.stop()
        self.apply_staged(staged)

    def apply_staged(self, staged: Any) -> None:
        """Apply a state that :meth:`validate_state` accepted (sessions validate every panel first)."""
        self.model.apply(staged)

    def shutdown(self) -> None:
        """Stop workers and timers; called when the window closes. Waits at most 2 s for the threads."""
        self.stop()
        self.tasks.join(2000)
