"""Compute > Cluster…: start a local Dask cluster (N worker processes) or connect to a scheduler's address.

The app holds at most one cluster connection; :func:`current_client` gives it to whoever runs a batch study
(``Study(...).follow(current_client())`` in a worker thread; None means run in-process). The dialog shows the
workers (address, cores, memory), the totals and the dashboard link (local clusters have one only when bokeh is
installed). Starting or connecting takes seconds, so it runs off the GUI thread through :mod:`app.worker`.
"""

from __future__ import annotations

import atexit
import os
import threading

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from app.worker import submit
from backends.common import Progress, UserError

_lock = threading.Lock()
_state: dict = {"client": None, "cluster": None}
MAX_LOCAL_WORKERS = 512


def current_client():
    """The app's Dask client, or None when no cluster is set up (studies then run in-process)."""
    return _state["client"]


def _connect(local_workers: int | None, address: str):
    """Generator for app.worker: start a LocalCluster or connect to ``address``; returns the client."""
    from backends.batch.schedulers import local_cluster, parse_scheduler

    yield Progress(None, "starting a local cluster…" if local_workers else f"connecting to {address}…")
    shutdown()
    from distributed import Client

    if local_workers:
        cluster = local_cluster(local_workers)
        client = Client(cluster)
    else:
        spec = parse_scheduler(address)
        if spec.kind != "tcp":
            raise UserError(f"address {address!r}: expected tcp://HOST:PORT")
        cluster = None
        try:
            client = Client(spec.address, timeout="10s")
        except OSError as exc:
            raise UserError(f"cannot connect to {address}: {exc}") from None
    with _lock:
        _state.update(client=client, cluster=cluster)
    return client


def shutdown() -> None:
    """Close the client and the local cluster started here (a remote scheduler keeps running)."""
    with _lock:
        client, cluster = _state["client"], _state["cluster"]
        _state.update(client=None, cluster=None)
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


atexit.register(shutdown)


def describe(client) -> dict:
    """Workers (address, cores, memory in bytes), totals and the dashboard link of ``client``'s cluster."""
    info = client.scheduler_info()
    workers = [
        (addr, int(w.get("nthreads", 0)), int(w.get("memory_limit", 0) or 0))
        for addr, w in sorted(info.get("workers", {}).items())
    ]
    link = client.dashboard_link if info.get("services", {}).get("dashboard") else ""
    return {
        "scheduler": info.get("address", ""),
        "workers": workers,
        "cores": sum(w[1] for w in workers),
        "memory": sum(w[2] for w in workers),
        "dashboard": link,
    }


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n else "no limit"


class ClusterDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Cluster")
        self.setMinimumWidth(620)
        self._task = None

        self.local_radio = QRadioButton("Local cluster (127.0.0.1), worker processes:")
        self.workers_spin = QSpinBox()
        self.workers_spin.setRange(1, MAX_LOCAL_WORKERS)
        self.workers_spin.setValue(os.cpu_count() or 1)
        self.workers_spin.setToolTip("one thread each; 1..512")
        self.remote_radio = QRadioButton("Connect to a scheduler:")
        self.address_edit = QLineEdit()
        self.address_edit.setPlaceholderText("tcp://HOST:8786")
        self.local_radio.setChecked(True)

        self.start_button = QPushButton("Start")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Disconnect")
        self.stop_button.clicked.connect(self.disconnect)

        self.summary = QLabel()
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setOpenExternalLinks(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["worker", "cores", "memory"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)

        form = QGridLayout()
        form.addWidget(self.local_radio, 0, 0)
        form.addWidget(self.workers_spin, 0, 1)
        form.addWidget(self.remote_radio, 1, 0)
        form.addWidget(self.address_edit, 1, 1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.summary)
        layout.addWidget(self.table)

        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    def start(self) -> None:
        local = self.local_radio.isChecked()
        address = self.address_edit.text().strip()
        if not local and not address:
            self._show_message("enter a scheduler address, e.g. tcp://127.0.0.1:8786")
            return
        self.start_button.setEnabled(False)
        self._task = submit(
            _connect,
            self.workers_spin.value() if local else None,
            address,
            label="cluster",
            group="cluster",
            on_progress=lambda f, m: self._show_message(m),
            on_done=lambda client: self.refresh(),
            on_error=self._on_error,
        )
        self._task.done.connect(lambda: self.start_button.setEnabled(True))

    def _on_error(self, message: str) -> None:
        self._show_message(f"<span style='color:#c33'>{message}</span>")

    def _show_message(self, text: str) -> None:
        self.summary.setText(text)

    def disconnect(self) -> None:
        shutdown()
        self.refresh()

    def refresh(self) -> None:
        client = current_client()
        if client is None:
            if self._task is None or not self._task.is_running():
                self._show_message("No cluster: batch studies run in this process. Start one or connect.")
            self.table.setRowCount(0)
            self.stop_button.setEnabled(False)
            return
        self.stop_button.setEnabled(True)
        try:
            d = describe(client)
        except Exception as exc:  # a cluster that went away is shown, never raised
            self._on_error(f"cluster unreachable: {exc}")
            return
        dash = (
            f"dashboard: <a href='{d['dashboard']}'>{d['dashboard']}</a>"
            if d["dashboard"]
            else "no dashboard"
        )
        if d["dashboard"] and not _has_bokeh():
            dash += " (its plots need bokeh: pip install visual-lab[dashboard])"
        self._show_message(
            f"scheduler {d['scheduler']}: <b>{len(d['workers'])} workers</b>, {d['cores']} cores, "
            f"{_gib(d['memory'])}<br>{dash}"
        )
        self.table.setRowCount(len(d["workers"]))
        for row, (addr, cores, mem) in enumerate(d["workers"]):
            for col, text in enumerate((addr, str(cores), _gib(mem))):
                self.table.setItem(row, col, QTableWidgetItem(text))
