"""The main window: one dock per registered panel, menus built from the Panel contract, status and log.

The window knows panels only through :mod:`app.registry` and :class:`panels.base.Panel`; it never names a
domain. Panels are imported and built after the window is visible (their modules import torch), one per
event-loop turn, so the window appears fast and stays responsive while they load.
"""

from __future__ import annotations

import os
import platform
import traceback
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
)

from app import __version__, device, export, registry, session, settings, video
from app.gl import use_vispy
from app.worker import collect_garbage_on_gui_thread, manager
from backends.common import UserError, set_memory_budget

LAYOUT_VERSION = 1


class MainWindow(QMainWindow):
    """Docks built from the registry; File / Export / View / Compute / Help menus; status bar; log dock."""

    panels_loaded = Signal()

    def __init__(self, panel_keys: list[str] | None = None, *, restore_layout: bool = True):
        super().__init__()
        collect_garbage_on_gui_thread()
        self.setWindowTitle(f"Visual Lab {__version__}")
        self.resize(1500, 950)
        self.setDockNestingEnabled(True)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)
        self.specs = registry.panels()
        keys = list(self.specs) if panel_keys is None else panel_keys
        for k in keys:
            registry.spec(k)  # unknown keys fail here, with the list of known ones
        self.panels: dict = {}
        self.docks: dict[str, QDockWidget] = {}
        self._pending = list(keys)
        self._active: str | None = keys[0] if keys else None
        self._dialogs: list[QMessageBox] = []
        self.last_error: str | None = None  # for tests and the CLI
        self.video_job = None  # the running video export, if any (one at a time)
        self.panel_messages: dict[str, str] = {}  # the last message of each panel; the active one is shown
        self.cluster_dialog = None  # Compute > Cluster…, built on first use (imports Dask)

        self._build_log_dock()
        self._build_status_bar()
        first = None
        for key in keys:
            dock = QDockWidget(self.specs[key].title, self)
            dock.setObjectName(f"dock_{key}")
            # GL canvases stop drawing in floating docks on some drivers: docks move and close, never float
            dock.setFeatures(
                QDockWidget.DockWidgetFeature.DockWidgetMovable
                | QDockWidget.DockWidgetFeature.DockWidgetClosable
            )
            loading = QLabel(f"Loading {self.specs[key].title}…")
            loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
            dock.setWidget(loading)
            self.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, dock)
            if first is None:
                first = dock
            else:
                self.tabifyDockWidget(first, dock)
            dock.visibilityChanged.connect(lambda vis, k=key: self._on_visible(k, vis))
            self.docks[key] = dock
        if first is not None:
            first.raise_()
        self._build_menus()
        self._restore_layout_if_saved(restore_layout)
        QTimer.singleShot(0, self._load_next_panel)

    # -- building -----------------------------------------------------------------------------------------
    def _build_log_dock(self) -> None:
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("dock_log")
        self.log_dock.setWidget(self.log_view)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.log_dock.hide()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setRange(0, 100)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the running computations")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_tasks)
        self.memory_label = QLabel()
        self.memory_label.setToolTip(
            "Memory of this process / the budget for recordings (Compute > Memory budget)"
        )
        bar.addPermanentWidget(self.memory_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self._apply_memory_budget(self.memory_budget_mib())
        self._memory_timer = QTimer(self)
        self._memory_timer.setInterval(2000)
        self._memory_timer.timeout.connect(self._update_memory_label)
        self._memory_timer.start()
        self._update_memory_label()
        m = manager()
        self._connections = [
            (m.started, self._update_task_widgets),
            (m.ended, self._update_task_widgets),
            (m.progressed, self._on_progress),
            (m.failed, self._on_task_failed),
        ]
        for signal, slot in self._connections:
            signal.connect(slot)

    def _build_menus(self) -> None:
        mb = self.menuBar()
        file_menu = mb.addMenu("&File")
        self._add(file_menu, "&Open…", self.open_file_dialog, QKeySequence.StandardKey.Open)
        self._add(file_menu, "Open s&tudy…", self.open_study_dialog)
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.addSeparator()
        self._add(file_menu, "&Save session…", self.save_session_dialog, QKeySequence.StandardKey.Save)
        self._add(file_menu, "&Load session…", self.load_session_dialog)
        file_menu.addSeparator()
        self._add(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        self.export_menu = mb.addMenu("&Export")
        self.export_menu.aboutToShow.connect(self._fill_export_menu)

        view = mb.addMenu("&View")
        for dock in self.docks.values():
            view.addAction(dock.toggleViewAction())
        view.addAction(self.log_dock.toggleViewAction())
        view.addSeparator()
        self._add(view, "&Reset layout", self.reset_layout)

        compute = mb.addMenu("&Compute")
        dev_menu = compute.addMenu("&Device")
        group = QActionGroup(self)
        saved = str(settings.settings().value("device", "auto"))
        for name in ("auto", "cpu", "cuda"):
            act = QAction(name, self, checkable=True)
            act.setChecked(name == saved)
            act.triggered.connect(lambda _=False, n=name: self.set_device(n))
            group.addAction(act)
            dev_menu.addAction(act)
        device.set_choice(saved if saved in ("auto", "cpu", "cuda") else "auto")
        thr_menu = compute.addMenu("&Threads")
        tgroup = QActionGroup(self)
        for n in (0, 1, 2, 4, 8):
            act = QAction("auto (1 on <= 4 cores)" if n == 0 else str(n), self, checkable=True)
            act.setChecked(n == 0)
            act.triggered.connect(lambda _=False, n=n: self.set_threads(n))
            tgroup.addAction(act)
            thr_menu.addAction(act)
        compute.addSeparator()
        self._add(compute, "&Cluster…", self.show_cluster_dialog)

        compute.addSeparator()
        self._add(compute, "&Memory budget…", self.memory_budget_dialog)

        help_menu = mb.addMenu("&Help")
        self._add(
            help_menu,
            "&Quick start (this panel)",
            self.show_quick_start,
            QKeySequence.StandardKey.HelpContents,
        )
        self._add(help_menu, "&Keyboard and mouse", self.show_controls)
        self._add(help_menu, "&User guide", self.open_guide)
        help_menu.addSeparator()
        self._add(help_menu, "&About Visual Lab", self.show_about)

    def show_cluster_dialog(self) -> None:
        from app.cluster import ClusterDialog

        if self.cluster_dialog is None:
            self.cluster_dialog = ClusterDialog(self)
        self.cluster_dialog.show()
        self.cluster_dialog.raise_()

    def _add(self, menu, text, slot, shortcut=None) -> QAction:
        act = menu.addAction(text)
        act.triggered.connect(lambda _=False: slot())
        if shortcut is not None:
            act.setShortcut(shortcut)
        return act

    def _load_next_panel(self) -> None:
        """Build one pending panel per event-loop turn; emit ``panels_loaded`` after the last one."""
        if not self._pending:
            self.panels_loaded.emit()
            return
        handle = self.windowHandle()
        if not self.panels and self.isVisible() and handle is not None and not handle.isExposed():
            # the window first: panel modules import torch (seconds), so wait until it is on screen
            QTimer.singleShot(20, self._load_next_panel)
            return
        self._load_one(self._pending.pop(0))
        QTimer.singleShot(0, self._load_next_panel)

    def _load_one(self, key: str) -> None:
        try:
            use_vispy()
            if not self.panels:
                device.apply_thread_policy()
            panel = registry.panel_class(key)()
            panel.status.connect(lambda msg, k=key: self.panel_message(k, msg))
            self.panels[key] = panel
            self.docks[key].setWidget(panel)
        except Exception as exc:  # one broken panel must not take the app down
            self.docks[key].setWidget(QLabel(f"This panel failed to load:\n{type(exc).__name__}: {exc}"))
            self.show_error(f"panel {key!r} failed to load: {exc}", traceback.format_exc())

    def load_all_now(self) -> None:
        """Build every pending panel immediately (CLI snapshot and tests)."""
        while self._pending:
            self._load_one(self._pending.pop(0))

    # -- active panel ---------------------------------------------------------------------------------------
    def _on_visible(self, key: str, visible: bool) -> None:
        if visible:
            self._active = key
            self.statusBar().showMessage(self.panel_messages.get(key, ""))

    def active_key(self) -> str | None:
        return self._active

    def active_panel(self):
        return self.panels.get(self._active) if self._active else None

    def activate(self, key: str) -> None:
        self.docks[key].show()
        self.docks[key].raise_()
        self._active = key
        self.statusBar().showMessage(self.panel_messages.get(key, ""))

    # -- status, log, errors ----------------------------------------------------------------------------
    def panel_message(self, key: str, message: str) -> None:
        """A panel's status line: logged always, shown in the status bar only while that panel is active."""
        self.panel_messages[key] = message
        self.log_view.appendPlainText(f"[{key}] {message}")
        if key == self._active:
            self.statusBar().showMessage(message)

    def log(self, message: str, status: bool = False) -> None:
        self.log_view.appendPlainText(message)
        if status:
            self.statusBar().showMessage(message, 8000)

    def show_error(self, message: str, trace: str = "") -> None:
        """Log the error (with its trace) and show a non-blocking dialog; never raises."""
        self.last_error = message
        self.log(f"ERROR: {message}" + (f"\n{trace}" if trace else ""))
        self.statusBar().showMessage(f"Error: {message}", 15000)
        box = QMessageBox(
            QMessageBox.Icon.Warning, "Visual Lab", message, QMessageBox.StandardButton.Ok, self
        )
        if trace:
            box.setDetailedText(trace)
        box.finished.connect(lambda _=0, b=box: self._dialogs.remove(b) if b in self._dialogs else None)
        self._dialogs.append(box)
        box.open()

    def _on_progress(self, task, fraction, message: str) -> None:
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(round(100 * max(0.0, min(1.0, fraction)))))
        if message:
            self.statusBar().showMessage(f"{task.label}: {message}", 5000)

    def _on_task_failed(self, task, message: str, trace: str) -> None:
        if not task.stale:
            self.show_error(f"{task.label}: {message}", trace)

    def _update_task_widgets(self, *_args) -> None:
        busy = bool(manager().running()) or (self.video_job is not None and self.video_job.running)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)

    def cancel_tasks(self) -> None:
        if self.video_job is not None:
            self.video_job.cancel()
        manager().cancel_all()
        for panel in self.panels.values():
            panel.stop()
        self.log("cancelled running computations", status=True)

    # -- files and sessions -------------------------------------------------------------------------------
    def open_filters(self) -> list[str]:
        """File > Open's filters: the active panel's first (the dialog starts with it), then the others."""
        active = self.active_panel()
        filters = [p.open_filter for p in self.panels.values() if p.open_filter]
        if active is not None and active.open_filter:
            filters = [active.open_filter] + [f for f in filters if f != active.open_filter]
        return filters

    def open_file_dialog(self) -> None:
        filters = self.open_filters()
        if not filters:
            self.show_error("no open panel reads files")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open", "", ";;".join(filters + ["All files (*)"]))
        if path:
            self.open_path(Path(path))

    def open_study_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open study (a Zarr store: a .zarr folder)", "")
        if path:
            self.open_study(Path(path))

    def open_study(self, path: Path) -> bool:
        """Show a batch study's store in the panel that lists its workload in ``study_workloads``."""
        from backends.batch.store import read_meta

        path = Path(path)
        try:
            meta = read_meta(path)  # its errors name the path
            name = meta.get("workload")
            key = next((k for k, p in self.panels.items() if name in p.study_workloads), None)
            if key is None:
                raise UserError(f"{path}: no open panel shows {name!r} studies")
            try:
                self.panels[key].open_study(path, meta)
            except UserError as exc:
                raise UserError(f"{path}: {exc}") from None
        except UserError as exc:
            self.show_error(f"cannot open study: {exc}")
            return False
        except Exception as exc:  # a store we cannot make sense of: one line, the trace in the details
            self.show_error(f"cannot open study {path}: {type(exc).__name__}: {exc}", traceback.format_exc())
            return False
        self.activate(key)
        settings.add_recent(path)
        self.log(f"opened study {path}", status=True)
        return True

    def open_path(self, path: Path) -> bool:
        """Session files load as sessions; a Zarr store (a folder) opens as a study; other files go to the
        first panel whose filter accepts them."""
        path = Path(path)
        if path.is_dir() and (path.suffix == ".zarr" or (path / "zarr.json").is_file()):
            return self.open_study(path)
        if path.name.endswith(".json") and self._looks_like_session(path):
            return self.load_session(path)
        for key, panel in self.panels.items():
            if panel.open_filter and _filter_accepts(panel.open_filter, path):
                try:
                    panel.open_path(path)
                except Exception as exc:
                    self.show_error(f"cannot open {path}: {exc}", _trace_unless_user(exc))
                    return False
                self.activate(key)
                settings.add_recent(path)
                self.log(f"opened {path}", status=True)
                return True
        self.show_error(f"no panel can open {path.name}")
        return False

    @staticmethod
    def _looks_like_session(path: Path) -> bool:
        try:
            head = path.read_text(errors="replace")[:4096]
        except OSError:
            return False
        return session.KIND in head

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = settings.recent_files()
        if not items:
            self.recent_menu.addAction("(none)").setEnabled(False)
        for item in items:
            act = self.recent_menu.addAction(item)
            act.triggered.connect(lambda _=False, p=item: self.open_path(Path(p)))

    def session_data(self, only: list[str] | None = None) -> dict:
        """The session of the open panels (or of ``only``), arrays included until it is saved."""
        states, arrays = {}, {}
        for key, panel in self.panels.items():
            if only is not None and key not in only:
                continue
            try:
                states[key] = panel.state()
                arrays[key] = panel.arrays()
            except Exception as exc:
                self.log(f"[{key}] state not saved: {exc}")
        return session.build(states, self._active, arrays)

    def save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save session", "session.json", "Session (*.json)")
        if path:
            self.save_session(Path(path))

    def save_session(self, path: Path) -> bool:
        try:
            session.save(path, self.session_data())
        except Exception as exc:
            self.show_error(f"cannot save session: {exc}", _trace_unless_user(exc))
            return False
        settings.add_recent(path)
        self.log(f"session saved to {path}", status=True)
        return True

    def load_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load session", "", "Session (*.json);;All files (*)")
        if path:
            self.load_session(Path(path))

    def load_session(self, path: Path) -> bool:
        try:
            data = session.load(path)
            restored = session.apply(data, self.panels)
            if not restored and data["panels"]:
                raise UserError(f"{path} holds no open panel ({', '.join(data['panels'])})")
        except Exception as exc:
            self.show_error(str(exc), _trace_unless_user(exc))
            return False
        if data.get("active") in self.docks:
            self.activate(data["active"])
        settings.add_recent(path)
        self.log(f"session {path} restored ({', '.join(restored) or 'no open panel'})", status=True)
        return True

    # -- export -------------------------------------------------------------------------------------------
    def _fill_export_menu(self) -> None:
        self.export_menu.clear()
        panel = self.active_panel()
        if panel is None:
            self.export_menu.addAction("(no active panel)").setEnabled(False)
            return
        self._add(self.export_menu, "Render view as PNG…", self.render_png_dialog)
        spec = panel.video()
        if spec is not None:
            self._add(self.export_menu, f"Video: {spec.label} (MP4/GIF)…", self.video_dialog)
        self.export_menu.addSeparator()
        for action in panel.exports():
            self._add(self.export_menu, f"{action.label}…", lambda a=action: self.export_dialog(a))

    def ask_save_path(self, title: str, default: str, suffixes: tuple[str, ...]) -> Path | None:
        """A save dialog whose overwrite prompt sees the final name: the suffix of the chosen filter is added
        by the dialog itself (before it asks), never afterwards."""
        dlg = QFileDialog(self, title, default, ";;".join(f"{s.upper()} (*.{s})" for s in suffixes))
        dlg.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dlg.setDefaultSuffix(suffixes[0])
        dlg.filterSelected.connect(lambda f: dlg.setDefaultSuffix(f.split("*.")[-1].rstrip(")")))
        if dlg.exec() != QFileDialog.DialogCode.Accepted or not dlg.selectedFiles():
            return None
        return Path(dlg.selectedFiles()[0])

    def export_dialog(self, action) -> None:
        default = f"{self._active}_{action.label.split()[0].lower()}.{action.suffixes[0]}"
        path = self.ask_save_path(action.label, default, action.suffixes)
        if path is not None:
            self.run_export(action, path)

    def export_size(self) -> tuple[int, int]:
        """The size of the last render/video export (1280x720 at first): the default of the next one."""
        try:
            return export.parse_size(str(settings.settings().value("export_size", "1280x720")))
        except UserError:
            return 1280, 720

    def video_dialog(self) -> None:
        panel = self.active_panel()
        spec = panel.video() if panel is not None else None
        if spec is None:
            return
        try:
            options = video.ask_options(self, spec, self.export_size())
        except UserError as exc:
            self.show_error(str(exc))
            return
        if options is None:
            return
        path = self.ask_save_path(f"Video: {spec.label}", f"{self._active}_video.mp4", ("mp4", "gif"))
        if path is not None:
            self.export_video(spec, path, options)

    def export_video(self, spec, path: Path, options) -> bool:
        """Start a video export (frames on the GUI thread between events, encoding in a thread); progress and
        Cancel in the status bar; the sidecar is written when the file is complete."""
        if self.video_job is not None and self.video_job.running:
            self.show_error("a video export is already running: cancel it or wait")
            return False
        key = self._active
        try:
            job = video.VideoJob(spec, path, options, self)
        except Exception as exc:
            self.show_error(f"export failed: {exc}", _trace_unless_user(exc))
            return False
        settings.settings().setValue("export_size", f"{options.size[0]}x{options.size[1]}")

        def done(p: Path) -> None:
            try:
                export.write_sidecar(p, self.session_data(only=[key] if key else None))
            except Exception as exc:
                self.show_error(f"sidecar not written: {exc}", _trace_unless_user(exc))
            self.log(
                f"exported {p} ({options.size[0]}x{options.size[1]}, {options.frames} frames)", status=True
            )

        job.progressed.connect(lambda f, m: self._on_progress(job, f, m))
        job.finished.connect(done)
        job.failed.connect(lambda m: self.show_error(m))
        job.cancelled.connect(lambda: self.log(f"video export to {path} cancelled", status=True))
        for sig in (job.finished, job.failed, job.cancelled):
            sig.connect(self._update_task_widgets)
        job.label = f"Video {path.name}"
        self.video_job = job
        job.start()
        self._update_task_widgets()
        return True

    def run_export(self, action, path: Path) -> bool:
        """Write one export and its sidecar session file; errors become a dialog."""
        self.setCursor(Qt.CursorShape.WaitCursor)
        try:
            export.check_writable(path, suffixes=tuple("." + s for s in action.suffixes))
            action.write(Path(path))
            export.write_sidecar(path, self.session_data(only=[self._active] if self._active else None))
        except Exception as exc:
            self.show_error(f"export failed: {exc}", _trace_unless_user(exc))
            return False
        finally:
            self.unsetCursor()
        self.log(f"exported {path}", status=True)
        return True

    def render_png_dialog(self) -> None:
        panel = self.active_panel()
        if panel is None:
            return
        default = "{}x{}".format(*self.export_size())
        text, ok = QInputDialog.getText(self, "Render view as PNG", "Size (WIDTHxHEIGHT):", text=default)
        if not ok:
            return
        try:
            size = export.parse_size(text)
        except UserError as exc:
            self.show_error(str(exc))
            return
        settings.settings().setValue("export_size", f"{size[0]}x{size[1]}")
        path = self.ask_save_path("Render view as PNG", f"{self._active}.png", ("png",))
        if path is not None:
            self.render_png(path, size)

    def render_png(self, path: Path, size: tuple[int, int]) -> bool:
        panel = self.active_panel()
        action = export.ExportAction("Render", ("png",), lambda p: export.save_png(p, panel.render(size)))
        return self.run_export(action, path)

    # -- compute ------------------------------------------------------------------------------------------
    def set_device(self, name: str) -> None:
        device.set_choice(name)
        settings.settings().setValue("device", name)
        self.log(device.describe(), status=True)

    def memory_budget_mib(self) -> int:
        try:
            value = int(settings.settings().value("memory_budget_mib", DEFAULT_BUDGET_MIB))
        except (TypeError, ValueError):
            value = DEFAULT_BUDGET_MIB
        return min(max(value, BUDGET_RANGE_MIB[0]), BUDGET_RANGE_MIB[1])

    def _apply_memory_budget(self, mib: int) -> None:
        set_memory_budget(mib * 2**20)

    def set_memory_budget(self, mib: int) -> None:
        if not BUDGET_RANGE_MIB[0] <= mib <= BUDGET_RANGE_MIB[1]:
            self.show_error(
                f"memory budget {mib} MiB out of range {BUDGET_RANGE_MIB[0]}..{BUDGET_RANGE_MIB[1]}"
            )
            return
        settings.settings().setValue("memory_budget_mib", mib)
        self._apply_memory_budget(mib)
        self._update_memory_label()
        self.log(f"memory budget for recordings and histories: {mib} MiB", status=True)

    def memory_budget_dialog(self) -> None:
        mib, ok = QInputDialog.getInt(
            self,
            "Memory budget",
            "Recordings and histories of all panels together (MiB):",
            self.memory_budget_mib(),
            *BUDGET_RANGE_MIB,
        )
        if ok:
            self.set_memory_budget(mib)

    def _update_memory_label(self) -> None:
        rss = process_memory()
        used = f"{rss / 2**20:,.0f} MiB" if rss is not None else "?"
        self.memory_label.setText(f"Memory {used} · budget {self.memory_budget_mib():,} MiB")

    def set_threads(self, n: int) -> None:
        device.set_threads(n or None)
        self.log(f"torch threads: {n or 'default'}", status=True)

    # -- help ---------------------------------------------------------------------------------------------
    def show_quick_start(self) -> None:
        panel = self.active_panel()
        if panel is None:
            return
        text = panel.quick_start or f"<p>{panel.title}: no quick start written yet.</p>"
        self._info(f"Quick start: {panel.title}", text)

    def controls_text(self) -> str:
        """Every menu shortcut, then the active panel's mouse and keyboard controls, as an HTML table."""
        rows = []
        for menu_action in self.menuBar().actions():
            for act in menu_action.menu().actions() if menu_action.menu() else []:
                if not act.shortcut().isEmpty():
                    rows.append((act.shortcut().toString(), act.text().replace("&", "")))
        panel = self.active_panel()
        if panel is not None:
            rows += [(keys, f"{panel.title}: {what}") for keys, what in panel.controls]
        cells = "".join(f"<tr><td><b>{k}</b></td><td>{w}</td></tr>" for k, w in rows)
        return f"<table cellspacing='6'>{cells}</table>"

    def show_controls(self) -> None:
        self._info("Keyboard and mouse", self.controls_text())

    def open_guide(self) -> None:
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        guide = Path(__file__).resolve().parents[1] / "docs" / "guide" / f"{self._active or 'index'}.md"
        if not guide.is_file():
            guide = guide.with_name("index.md")
        if guide.is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(guide)))
            self.log(f"user guide: {guide}", status=True)
        else:
            self.show_error("the user guide (docs/guide/) is not installed with this copy of Visual Lab")

    def _info(self, title: str, html: str) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, title, html, QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.finished.connect(lambda _=0, b=box: self._dialogs.remove(b) if b in self._dialogs else None)
        self._dialogs.append(box)
        box.open()

    def about_text(self) -> str:
        import numpy
        import PySide6
        import vispy

        from app.gl import gl_info

        lines = [
            f"Visual Lab {__version__}",
            f"Python {platform.python_version()}",
            f"PySide6 {PySide6.__version__}, vispy {vispy.__version__}, numpy {numpy.__version__}",
        ]
        try:
            import torch

            dev, why = device.resolve()
            lines.append(f"torch {torch.__version__}, device {dev}" + (f" ({why})" if why else ""))
        except ImportError:
            lines.append("torch not installed")
        info = gl_info()
        lines.append(f"OpenGL: {info.get('renderer', info.get('error'))} {info.get('version', '')}".strip())
        return "\n".join(lines)

    def show_about(self) -> None:
        QMessageBox.about(self, "About Visual Lab", self.about_text())

    # -- layout -------------------------------------------------------------------------------------------
    def _restore_layout_if_saved(self, enabled: bool) -> None:
        self._default_state = self.saveState(LAYOUT_VERSION)
        if not enabled:
            return
        s = settings.settings()
        geom, state = s.value("window/geometry"), s.value("window/state")
        if isinstance(geom, QByteArray):
            self.restoreGeometry(geom)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()
        self.log("layout reset", status=True)

    def closeEvent(self, event) -> None:  # Qt override
        s = settings.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(LAYOUT_VERSION))
        s.sync()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop every panel and every worker thread."""
        self._pending.clear()
        for signal, slot in self._connections:
            try:
                signal.disconnect(slot)
            except (RuntimeError, TypeError):
                pass
        self._connections = []
        for panel in self.panels.values():
            try:
                panel.shutdown()
            except Exception:
                self.log(traceback.format_exc())
        manager().stop_all()


DEFAULT_BUDGET_MIB = 2048
BUDGET_RANGE_MIB = (128, 262_144)


def process_memory() -> int | None:
    """Resident memory of this process in bytes (Linux /proc; elsewhere the peak from resource)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        try:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        except (ImportError, OSError):
            return None


def _filter_accepts(filt: str, path: Path) -> bool:
    """Does a Qt file filter like "Splats (*.ply *.splat)" accept this path?"""
    import fnmatch

    inside = filt[filt.find("(") + 1 : filt.rfind(")")] if "(" in filt else filt
    return any(fnmatch.fnmatch(path.name.lower(), pat.lower()) for pat in inside.split())


def _trace_unless_user(exc: BaseException) -> str:
    return "" if isinstance(exc, UserError) else traceback.format_exc()
