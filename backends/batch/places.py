"""Where studies started from the app keep their stores when the user picks none.

One store per study (workload, parameters, seed), named from a digest of them: starting the same study again
finds its store and resumes it (or shows it at once when complete), and a different study never meets a
foreign store. ``$VISUAL_LAB_STUDIES_DIR`` overrides the folder (tests, shared disks on a cluster).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

STUDIES_ENV = "VISUAL_LAB_STUDIES_DIR"


def studies_dir() -> Path:
    """``$VISUAL_LAB_STUDIES_DIR``, else ``$XDG_DATA_HOME/visual-lab/studies`` (``~/.local/share/…``): data,
    not settings or cache (a study can take hours to recompute)."""
    env = os.environ.get(STUDIES_ENV)
    if env:
        return Path(env).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "visual-lab" / "studies"


def default_store(workload, seed: int = 0, label: str = "", root: Path | None = None) -> Path:
    """``root`` (default :func:`studies_dir`) / ``<workload>-<label>-<digest>.zarr``; ``label`` makes the name
    readable, e.g. "48x48-t10"."""
    key = json.dumps([workload.name, workload.params(), int(seed)], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    stem = "-".join(x for x in (workload.name, label, digest) if x)
    return (studies_dir() if root is None else Path(root)) / f"{stem}.zarr"
