"""Session files: every open panel's parameters, camera, seed and time, with the app version.

A versioned JSON file. Loading validates everything first and applies nothing unless it all fits; when a
panel refuses its state the panels already changed are put back, so a bad file changes nothing.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from app import __version__
from backends.common import UserError

SCHEMA = 1
KIND = "visual-lab-session"


def build(panel_states: dict[str, dict], active: str | None = None) -> dict[str, Any]:
    return {
        "kind": KIND,
        "schema": SCHEMA,
        "app_version": __version__,
        "python": platform.python_version(),
        "active": active,
        "panels": panel_states,
    }


def save(path: str | Path, data: dict[str, Any]) -> Path:
    from app.export import check_writable

    p = check_writable(path)
    p.write_text(json.dumps(data, indent=2, default=str))
    return p


def load(path: str | Path) -> dict[str, Any]:
    """Read and validate a session file; raises UserError with a message naming the problem."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"session file not found: {p}")
    try:
        data = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{p} is not a valid session file (corrupt JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise UserError(f"{p} is not a Visual Lab session file")
    schema = data.get("schema")
    if not isinstance(schema, int):
        raise UserError(f"{p}: session schema is missing")
    if schema > SCHEMA:
        raise UserError(
            f"{p} was written by a newer Visual Lab (session schema {schema}, this version reads "
            f"up to {SCHEMA}); please update Visual Lab"
        )
    panels = data.get("panels")
    if not isinstance(panels, dict) or not all(isinstance(v, dict) for v in panels.values()):
        raise UserError(f"{p}: the 'panels' section is malformed")
    return data


def apply(data: dict[str, Any], panels: dict[str, Any]) -> list[str]:
    """Restore each open panel from ``data``; all or nothing. Returns the keys restored."""
    before = {key: panel.state() for key, panel in panels.items()}
    done: list[str] = []
    current = ""
    try:
        for current, state in data["panels"].items():
            if current in panels:
                panels[current].restore(state)
                done.append(current)
    except Exception as exc:
        for key in done:
            try:
                panels[key].restore(before[key])
            except Exception:  # noqa: BLE001 - best effort roll-back
                pass
        raise UserError(f"session could not be applied to panel {current!r}: {exc}") from exc
    return done
