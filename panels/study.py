"""Run a batch study (:mod:`backends.batch`) from a panel: on the app's cluster (Compute > Cluster…) when one
is set up, in this process otherwise; finished chunks stream to the view as they land in the store.

The store is the one ``visual-lab batch …`` writes for the same parameters, so a study started in the GUI can
be resumed from the CLI and the other way round; re-running into a store that holds the same study computes
only its missing chunks. Cancel (the panel's Stop, or closing it) cancels the pending Dask futures at once;
finished chunks stay stored.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from app.cluster import current_client
from app.worker import Task
from backends.batch.study import ChunkResult, Study, StudyReport

STUDIES_ENV = "VISUAL_LAB_STUDIES_DIR"


def studies_dir() -> Path:
    """Where a panel's studies go unless the user picks a store: ``$VISUAL_LAB_STUDIES_DIR``, else
    ``$XDG_DATA_HOME/visual-lab/studies`` (``~/.local/share/visual-lab/studies``): data, not settings."""
    env = os.environ.get(STUDIES_ENV)
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "visual-lab" / "studies"


def default_store(workload, seed: int = 0, label: str = "") -> Path:
    """The store a study gets when the user picks none: one per study (workload, parameters, seed), so
    starting the same study again resumes it (or shows it at once when it is complete) and another one never
    meets a foreign store. ``label`` makes the name readable, e.g. "48x48-t10"."""
    key = json.dumps([workload.name, workload.params(), int(seed)], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    stem = "-".join(x for x in (workload.name, label, digest) if x)
    return studies_dir() / f"{stem}.zarr"


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
