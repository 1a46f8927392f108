"""Memory soak: the whole app used for a long time, memory sampled as it goes.

Every cycle visits each panel the way a user does through the Panel contract only: start its live work,
let it run a few seconds, stop it, render an export-size image, save and reload its session. The process's
resident memory is sampled every few seconds into a CSV. The figure of merit is the growth over the second
half of the run (issue: <= 10 %): a budget-bounded app settles after its first cycles and stays flat.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/soak.py --minutes 60 --csv soak.csv
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the soak, 1..600 minutes")
    ap.add_argument("--run-seconds", type=float, default=4.0, help="live run per panel visit")
    ap.add_argument("--csv", default="soak.csv", help="samples: seconds, MiB, cycle, panel")
    args = ap.parse_args(argv)
    if not 0.5 <= args.minutes <= 600:
        ap.error("--minutes must be in 0.5..600")

    from app.__main__ import _qapp

    app = _qapp()
    from app import session
    from app.window import MainWindow, process_memory

    win = MainWindow(restore_layout=False)
    win.show()
    win.load_all_now()
    app.processEvents()
    samples: list[tuple[float, float, int, str]] = []
    t0 = time.monotonic()
    end = t0 + 60 * args.minutes
    cycle = 0

    def pump(seconds: float, key: str) -> None:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            app.processEvents()
            time.sleep(0.01)
            if not samples or time.monotonic() - t0 - samples[-1][0] >= 5.0:
                samples.append((time.monotonic() - t0, process_memory() / 2**20, cycle, key))

    with tempfile.TemporaryDirectory() as tmp:
        while time.monotonic() < end:
            for key, panel in win.panels.items():
                win.activate(key)
                panel.start()
                pump(args.run_seconds, key)
                panel.stop()
                pump(0.5, key)
                panel.render((1280, 720))
                path = Path(tmp) / f"{key}.json"
                session.save(path, win.session_data(only=[key]))
                win.load_session(path)
                pump(0.5, key)
                if time.monotonic() >= end:
                    break
            cycle += 1
            print(f"cycle {cycle}: {samples[-1][1]:.0f} MiB after {samples[-1][0] / 60:.1f} min", flush=True)
    win.close()
    app.processEvents()

    with open(args.csv, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["seconds", "rss_mib", "cycle", "panel"])
        w.writerows(samples)
    half = [s[1] for s in samples if s[0] >= samples[-1][0] / 2]
    first, last = (
        statistics.median(half[: max(1, len(half) // 10)]),
        statistics.median(half[-max(1, len(half) // 10) :]),
    )
    growth = 100 * (last - first) / first
    peak = max(s[1] for s in samples)
    print(
        f"soak {args.minutes:g} min, {cycle} cycles over {len(win.panels)} panels: second half "
        f"{first:.0f} -> {last:.0f} MiB ({growth:+.1f} %), peak {peak:.0f} MiB; samples in {args.csv}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
