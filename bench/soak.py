"""Memory soak: the whole app used for a long time, memory sampled as it goes.

Every cycle visits each panel the way a user does through the Panel contract only: start its live work,
let it run a few seconds, stop it, render an export-size image, save and reload its session. The process's
resident memory is sampled every few seconds into a CSV. The figure of merit is the growth over the second
half of the run (issue: <= 10 %): a budget-bounded app settles after its first cycles and stays flat.

The report also gives each panel's share: the resident-memory change summed over its visits in the second
half (a visit runs from its ``start()`` to the end of its session reload), and the longest single pass of the
event loop while it was shown (what a user feels as a freeze: the GUI thread is busy). ``--census`` adds, per panel, the
Python objects by type that its visits left behind (``gc`` counts after a full collection, second half),
which names what a leaking panel keeps.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python bench/soak.py --minutes 60 --csv soak.csv
    ... bench/soak.py --minutes 5 --panels operator --census     # one panel, what its visits keep
"""

from __future__ import annotations

import argparse
import collections
import csv
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_SECONDS = 5.0


def type_census() -> collections.Counter:
    """Live objects tracked by the garbage collector, by type name, after a full collection."""
    gc.collect()
    return collections.Counter(type(o).__name__ for o in gc.get_objects())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the soak, 0.5..600 minutes")
    ap.add_argument("--run-seconds", type=float, default=4.0, help="live run per panel visit, 0.5..600 s")
    ap.add_argument("--csv", default="soak.csv", help="samples: seconds, MiB, cycle, panel")
    ap.add_argument("--panels", default="", help="comma-separated panel keys to visit (default: all)")
    ap.add_argument("--census", action="store_true", help="count Python objects by type around each visit")
    args = ap.parse_args(argv)
    if not 0.5 <= args.minutes <= 600:
        ap.error("--minutes must be in 0.5..600")
    if not 0.5 <= args.run_seconds <= 600:
        ap.error("--run-seconds must be in 0.5..600")

    from app.__main__ import _qapp

    app = _qapp()
    from app import session
    from app.window import MainWindow, process_memory

    win = MainWindow(restore_layout=False)
    win.show()
    win.load_all_now()
    app.processEvents()
    keys = [k for k in args.panels.split(",") if k] or list(win.panels)
    unknown = sorted(set(keys) - set(win.panels))
    if unknown:
        ap.error(f"--panels: no panel {', '.join(unknown)} (open: {', '.join(win.panels)})")
    samples: list[tuple[float, float, int, str]] = []
    visits: list[tuple[float, int, str, float]] = []  # (start seconds, cycle, panel, MiB change)
    census: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    blocked: dict[str, float] = collections.defaultdict(float)  # longest single event-loop pass, seconds
    t0 = time.monotonic()
    end = t0 + 60 * args.minutes
    cycle = 0

    def mib() -> float:
        return process_memory() / 2**20

    def pump(seconds: float, key: str) -> None:
        stop_at = time.monotonic() + seconds
        while time.monotonic() < stop_at:
            t = time.monotonic()
            app.processEvents()
            blocked[key] = max(blocked[key], time.monotonic() - t)
            time.sleep(0.01)
            if not samples or time.monotonic() - t0 - samples[-1][0] >= SAMPLE_SECONDS:
                samples.append((time.monotonic() - t0, mib(), cycle, key))

    with tempfile.TemporaryDirectory() as tmp:
        while time.monotonic() < end:
            for key in keys:
                panel = win.panels[key]
                before = type_census() if args.census else None
                start, rss0 = time.monotonic() - t0, mib()
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
                visits.append((start, cycle, key, mib() - rss0))
                if before is not None and start >= 60 * args.minutes / 2:
                    after = type_census()
                    after.subtract(before)
                    census[key].update(after)
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
    half_t = samples[-1][0] / 2
    half = [s[1] for s in samples if s[0] >= half_t]
    first, last = (
        statistics.median(half[: max(1, len(half) // 10)]),
        statistics.median(half[-max(1, len(half) // 10) :]),
    )
    growth = 100 * (last - first) / first
    peak = max(s[1] for s in samples)
    print(
        f"soak {args.minutes:g} min, {cycle} cycles over {len(keys)} panels: second half "
        f"{first:.0f} -> {last:.0f} MiB ({growth:+.1f} %), peak {peak:.0f} MiB; samples in {args.csv}"
    )
    print("second half, resident-memory change summed over each panel's visits:")
    for key in keys:
        mine = [d for s, _c, k, d in visits if k == key and s >= half_t]
        print(f"  {key:<12} {sum(mine):+8.1f} MiB over {len(mine)} visits")
    print("longest single event-loop pass while a panel was shown (GUI-thread work between two events):")
    for key in keys:
        print(f"  {key:<12} {1000 * blocked[key]:8.0f} ms")
    if args.census:
        print("second half, objects left behind per panel (net count by type, top 8):")
        for key in keys:
            top = [(t, n) for t, n in census[key].most_common() if n > 0][:8]
            print(f"  {key:<12} " + (", ".join(f"{t} {n:+d}" for t, n in top) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
