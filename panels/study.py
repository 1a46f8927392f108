"""Run a batch study (:mod:`backends.batch`) from a panel: on the app's cluster (Compute > Cluster…) when one
is set up, in this process otherwise; finished chunks stream to the view as they land in the store.

The store is the one ``visual-lab batch …`` writes for the same parameters, so a study started in the GUI can
be resumed from the CLI and the other way round; re-running into a store that holds the same study computes
only its missing chunks. Cancel (the panel's Stop, or closing it) cancels the pending Dask futures at once;
finished chunks stay stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from app.cluster import current_client
from app.worker import Task
from backends.batch.study import ChunkResult, Study, StudyReport


def where() -> str:
    """Where a study started now would run, for the panel's status line."""
    client = current_client()
    if client is None:
        return "in this process (Compute > Cluster… for more workers)"
    try:
        return f"on the cluster at {client.scheduler.address}"
    except AttributeError:
        return "on the cluster"


def run_study(
    panel,
    study: Study,
    on_chunks: Callable[[Sequence[ChunkResult]], None],
    on_done: Callable[[StudyReport], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    group: str = "study",
    label: str = "",
) -> Task:
    """Start ``study`` in ``panel.tasks`` (``group``: a new study of the group replaces the old one).

    ``on_chunks`` gets, on the GUI thread, the results finished since its last call (each already stored;
    ``result.error`` set for a chunk that raised, the others go on). Progress goes to ``panel.status``."""
    client = current_client()
    delivered = 0

    def deliver(results: tuple[ChunkResult, ...]) -> None:
        nonlocal delivered
        new = results[delivered:]
        delivered = len(results)
        if new:
            on_chunks(new)

    def progress(fraction, message: str) -> None:
        panel.status.emit(f"{label or study.workload.name}: {message}")

    task = panel.tasks.submit(
        study.follow,
        client,
        group=group,
        label=label or f"study {Path(study.store).name}",
        throttle_ms=100.0,
        on_yield=deliver,
        on_progress=progress,
        on_done=on_done,
        on_error=on_error,
    )
    task.also_cancel(study.cancel)
    return task


def report_line(what: str, report: StudyReport, unit: str = "chunks", again: str = "press it again") -> str:
    """One status line for a finished, failed or stopped study: counts, resumed chunks, failures by chunk."""
    text = f"{what}: {report.done}/{report.total} {unit}"
    if report.skipped:
        text += f" ({report.skipped} resumed)"
    if report.failed:
        text += ", failed: " + "; ".join(f"chunk {i}: {e}" for i, e in sorted(report.failed.items()))
    if report.cancelled:
        text += f" (stopped: {again} to resume)"
    return text


def refuse(panel, title: str, message: str):
    """A study that cannot start (a store holding another study, missing data): the one line in a non-modal
    dialog (the panel keeps working); returns the box so the caller can keep it alive."""
    from PySide6.QtWidgets import QMessageBox

    box = QMessageBox(QMessageBox.Icon.Warning, title, message, parent=panel)
    box.setModal(False)
    box.show()
    return box
