"""Persistent settings (layout, recent files, compute device) in an INI file.

The folder is ``$VISUAL_LAB_CONFIG_DIR`` or ``~/.config/visual-lab``; tests point it at a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QSettings

MAX_RECENT = 10


def config_dir() -> Path:
    d = Path(os.environ.get("VISUAL_LAB_CONFIG_DIR") or Path.home() / ".config" / "visual-lab")
    d.mkdir(parents=True, exist_ok=True)
    return d


def settings() -> QSettings:
    return QSettings(str(config_dir() / "settings.ini"), QSettings.Format.IniFormat)


def recent_files() -> list[str]:
    value = settings().value("recent", [])
    if isinstance(value, str):
        value = [value]
    return [v for v in (value or []) if v]


def add_recent(path: str | Path) -> list[str]:
    p = str(Path(path).resolve())
    items = [p] + [r for r in recent_files() if r != p]
    s = settings()
    s.setValue("recent", items[:MAX_RECENT])
    s.sync()
    return items[:MAX_RECENT]
