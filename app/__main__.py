"""`visual-lab` / `python -m app`: the GUI (default) and the command line.

    visual-lab [--debug] [gui [PATH]]        open the main window (and PATH: a file, session or .zarr study)
    visual-lab --version
    visual-lab panels                        one line per registered panel: key and title
    visual-lab run PANEL ...                 run a backend headless (no Qt, no vispy needed)
    visual-lab render PANEL ...              headless render of a panel's scene (where the panel offers one)
    visual-lab snapshot PANEL --out FILE.png [--size WxH] [--steps N] [--session FILE]
    visual-lab batch escape-map|pde-dataset|status ...   studies on Dask into Zarr stores (no Qt needed)

User errors print one line and exit with code 2; ``--debug`` shows the full traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

USAGE = __doc__.split("\n\n")[1]


def _fail(message: str) -> int:
    print(f"visual-lab: error: {message}", file=sys.stderr)
    return 2


def _has_display() -> bool:
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


NO_DISPLAY = (
    "no display available (DISPLAY is not set). The GUI needs a screen or Xvfb "
    "(e.g. `xvfb-run visual-lab`); headless work: `visual-lab run PANEL ...`, `visual-lab render ...`"
)


def _qapp():
    from app.device import limit_native_threads

    limit_native_threads()
    from app.gl import setup_qt_for_vispy

    setup_qt_for_vispy(import_vispy=False)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Visual Lab")
    return app


def cmd_gui(argv: list[str]) -> int:
    if len(argv) > 1:
        return _fail(f"unexpected arguments: {' '.join(argv[1:])}")
    path = Path(argv[0]) if argv else None
    if path is not None and not path.exists():
        return _fail(f"{path}: no such file or folder")
    if not _has_display():
        return _fail(NO_DISPLAY)
    app = _qapp()
    from app.window import MainWindow

    win = MainWindow()
    win.show()
    if path is not None:  # once every panel is built: a study or a file goes to the panel that shows it
        win.panels_loaded.connect(lambda: win.open_path(path))
    from app.gl import gl_info

    if "error" in gl_info():
        win.show_error(f"OpenGL is not available ({gl_info()['error']}); 3D views will not draw")
    return app.exec()


def cmd_panels(argv: list[str]) -> int:
    from app.registry import panels

    for spec in panels().values():
        print(f"{spec.key:<12} {spec.title}")
    return 0


def cmd_run(argv: list[str], render: bool = False) -> int:
    from app.registry import cli_main, panels

    if not argv or argv[0] in ("-h", "--help"):
        what = "render" if render else "run"
        print(
            f"usage: visual-lab {what} PANEL [options]   (PANEL: {', '.join(panels())}; "
            f"`visual-lab {what} PANEL --help` for options)"
        )
        return 0 if argv else 2
    return int(cli_main(argv[0], render=render)(argv[1:]) or 0)


def cmd_snapshot(argv: list[str]) -> int:
    import argparse

    from backends.common import UserError

    ap = argparse.ArgumentParser(
        prog="visual-lab snapshot",
        description="Open a panel, run its default, save its render and the window.",
    )
    ap.add_argument("panel")
    ap.add_argument("--out", required=True, help="FILE.png (the window goes to FILE.window.png)")
    ap.add_argument("--size", default="800x600", help="render size WIDTHxHEIGHT")
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="steps of the panel's default computation, 0..100000 (default 10; 0 with --session, which "
        "reproduces the figure that wrote the session)",
    )
    ap.add_argument("--session", help="session file (e.g. an export's FILE.session.json) to restore first")
    ap.add_argument(
        "--overwrite",
        action="store_true",
        help="replace FILE.png, FILE.window.png and the sidecar if they exist",
    )
    args = ap.parse_args(argv)

    from app import export, registry, session

    registry.spec(args.panel)
    size = export.parse_size(args.size)
    out = export.check_writable(args.out, suffixes=(".png",), inputs=[args.session] if args.session else ())
    derived = [out, out.with_name(out.stem + ".window.png"), export.sidecar_path(out)]
    existing = [p for p in derived if p.exists()]
    if existing and not args.overwrite:
        raise UserError(f"{existing[0]} exists: choose another --out or add --overwrite")
    steps = args.steps if args.steps is not None else (0 if args.session else 10)
    if not 0 <= steps <= 100_000:
        raise UserError(f"--steps must be in 0..100000, got {steps}")
    data = session.load(args.session) if args.session else None
    if not _has_display():
        raise UserError(NO_DISPLAY)
    app = _qapp()
    from app.gl import gl_info

    if "error" in gl_info():
        raise UserError(f"no OpenGL available: {gl_info()['error']}")
    from app.gl_window import grab_widget
    from app.window import MainWindow

    win = MainWindow([args.panel], restore_layout=False)
    win.show()
    win.load_all_now()
    app.processEvents()
    if args.panel not in win.panels:
        raise UserError(f"panel {args.panel!r} failed to load: {win.last_error}")
    panel = win.panels[args.panel]
    try:
        if data is not None:
            if args.panel not in data["panels"]:
                raise UserError(f"{args.session} holds no state of panel {args.panel!r}")
            session.apply(data, win.panels, only={args.panel})
        if steps:
            panel.advance(steps)
        app.processEvents()
        export.save_png(out, panel.render(size))
        win_path = out.with_name(out.stem + ".window.png")
        grab_widget(win).save(str(win_path))
        export.write_sidecar(out, win.session_data(only=[args.panel]))
    finally:
        win.close()
        app.processEvents()
    print(f"wrote {out} ({size[0]}x{size[1]}) and {win_path}")
    return 0


def cmd_batch(argv: list[str]) -> int:
    from backends.batch.cli import main as batch_main

    return batch_main(argv)


COMMANDS = {
    "gui": cmd_gui,
    "panels": cmd_panels,
    "run": cmd_run,
    "snapshot": cmd_snapshot,
    "render": lambda argv: cmd_run(argv, render=True),
    "batch": cmd_batch,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if argv[:1] in (["--version"], ["-V"]):
        from app import __version__

        print(f"visual-lab {__version__}")
        return 0
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    command = argv[0] if argv else "gui"
    if command not in COMMANDS:
        return _fail(f"unknown command {command!r}; commands: {', '.join(COMMANDS)} (see --help)")
    try:
        return COMMANDS[command](argv[1:])
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2 after one line
        return int(exc.code or 0) if isinstance(exc.code, int) else 2
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as exc:  # one line for users, the trace with --debug
        if debug:
            raise
        from backends.common import UserError

        if isinstance(exc, UserError | ValueError | OSError | MemoryError):
            return _fail(str(exc) or type(exc).__name__)
        return _fail(f"{type(exc).__name__}: {exc} (run with --debug for the full traceback)")


if __name__ == "__main__":
    sys.exit(main())
