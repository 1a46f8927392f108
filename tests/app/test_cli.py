"""The command line: fast info commands, one-line errors with exit code 2, headless runs without Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import registry
from app.__main__ import main

ROOT = Path(__file__).resolve().parents[2]

BLOCK = (
    "import sys, importlib.abc\n"
    "class B(importlib.abc.MetaPathFinder):\n"
    "    def find_spec(self, n, p=None, t=None):\n"
    "        if n.split('.')[0] in ('PySide6', 'shiboken6', 'vispy', 'pyqtgraph'):\n"
    "            raise ImportError('blocked ' + n)\n"
    "sys.meta_path.insert(0, B())\n"
    "from app.__main__ import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def run_cli(*args: str, block_gui: bool = False, env_extra: dict | None = None):
    env = dict(os.environ, **(env_extra or {}))
    cmd = [sys.executable, "-c", BLOCK, *args] if block_gui else [sys.executable, "-m", "app", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_version_and_panels(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("visual-lab ")
    assert main(["panels"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == list(registry.panels())


def test_panels_do_not_import_heavy_modules():
    r = run_cli("panels", block_gui=True)
    assert r.returncode == 0, r.stderr
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from app.__main__ import main; main(['panels']);"
            "print(sorted(m for m in ('torch', 'numpy', 'PySide6') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert probe.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    "args, message",
    [
        (["frobnicate"], "unknown command"),
        (["run", "nope"], "unknown panel 'nope'"),
        (["snapshot", "nope", "--out", "x.png"], "unknown panel"),
        (["snapshot", "PANEL", "--out", "x.png", "--size", "12by7"], "malformed size"),
        (["snapshot", "PANEL", "--out", "/nonexistent-dir/x.png"], "does not exist"),
        (["snapshot", "PANEL", "--out", "OUT", "--session", "missing.json"], "session file not found"),
        (["snapshot", "PANEL", "--out", "OUT", "--session", "CORRUPT"], "corrupt"),
        (["snapshot", "PANEL", "--out", "x.jpg"], "must end in .png"),
        (["snapshot", "PANEL", "--out", "EXISTING"], "exists: choose another --out or add --overwrite"),
        (["snapshot", "PANEL", "--out", "OUT", "--steps", "1000000000"], "--steps must be in 0..100000"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    key = next(iter(registry.panels()))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{oops")
    existing = tmp_path / "existing.png"
    existing.write_bytes(b"previous")
    subst = {
        "EXISTING": str(existing),
        "PANEL": key,
        "OUT": str(tmp_path / "o.png"),
        "CORRUPT": str(corrupt),
        "missing.json": str(tmp_path / "missing.json"),
    }
    r = run_cli(*[subst.get(a, a) for a in args])
    assert r.returncode == 2
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert existing.read_bytes() == b"previous"


def test_debug_shows_traceback():
    r = run_cli("--debug", "run", "nope")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_gui_without_display_says_so():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    r = subprocess.run(
        [sys.executable, "-m", "app"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=60
    )
    assert r.returncode == 2 and "no display" in r.stderr and "visual-lab run" in r.stderr


@pytest.mark.parametrize("key", [k for k, s in registry.panels().items() if s.cli])
def test_run_help_works_without_qt(key):
    r = run_cli("run", key, "--help", block_gui=True)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()


@pytest.mark.gl
@pytest.mark.parametrize("key", list(registry.panels()))
def test_snapshot(tmp_path, key):
    out = tmp_path / "snap.png"
    r = run_cli(
        "snapshot",
        key,
        "--out",
        str(out),
        "--size",
        "320x200",
        "--steps",
        "2",
        env_extra={"VISUAL_LAB_CONFIG_DIR": str(tmp_path / "cfg")},
    )
    assert r.returncode == 0, r.stderr
    import imageio.v3 as iio

    assert iio.imread(out).shape[:2] == (200, 320)
    assert iio.imread(tmp_path / "snap.window.png").shape[0] > 100
    assert json.loads((tmp_path / "snap.png.session.json").read_text())["panels"][key]
