"""Batch escape map: local:2 against local:1 (speed-up), and the scheduling overhead against `none`.

Runs the same study (an escape map, tiles of TILE x TILE systems, each one compiled-IAS15 call on one thread)
three ways into fresh stores under a temporary folder, checks that the three stores are bit-identical, and
reports for each: study wall time (cluster start excluded, reported apart), the chunks' summed compute time
(wall and CPU on the workers), and

* speed-up = wall(local:1) / wall(local:2)
* overhead vs none = (wall(local:1) - wall(none)) / wall(local:1): what Dask (submit, pickling, transfer of the
  results, writes by the client) adds to one worker doing the same chunks in the client's process
* worker idle = 1 - summed chunk wall / (workers x study wall): the share of the workers' time not spent inside
  a chunk (scheduling, transfers, waiting for the client's writes, the last wave's imbalance); unlike the
  ratios above it does not depend on how much CPU other processes leave us
* CPU share = summed chunk CPU time / summed chunk wall time: below 1 when other processes compete for the cores

    python bench/batch_escape_map.py [--grid 200] [--tile 50] [--t-end 10] [--json out.json]

The machine's load average is printed at the start and the end: on a shared machine the speed-up is bounded by
the cores other processes leave free.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.batch import EscapeMap, Study
from backends.batch.schedulers import local_cluster


def _warm() -> None:
    """Load the compiled ensemble (numba cache) in this process, so no run is charged for it."""
    from backends.common import drain
    from backends.nbody.ensemble import EnsembleConfig, escape_map

    drain(escape_map(EnsembleConfig(nx=2, ny=2, t_end=0.1, threads=1)))


def _files(path: Path) -> dict[str, bytes]:
    """Every file of a store by relative path (zarr's interrupted temporary files excluded)."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in path.rglob("*")
        if p.is_file() and p.suffix != ".partial"
    }


def run(work: EscapeMap, store: Path, scheduler: str) -> dict:
    from distributed import Client

    t0 = time.perf_counter()
    if scheduler == "none":
        _warm()
        start_s = time.perf_counter() - t0
        report = Study(work, store).run("none")
    else:
        cluster = local_cluster(int(scheduler.split(":")[1]))
        client = Client(cluster)
        client.run(_warm)
        start_s = time.perf_counter() - t0
        try:
            report = Study(work, store).run(client)
        finally:
            client.close()
            cluster.close()
    assert report.done == report.total and not report.failed, report.failed
    return {
        "scheduler": scheduler,
        "start_s": round(start_s, 2),
        "wall_s": round(report.wall_s, 2),
        "chunk_wall_s": round(report.compute_s, 2),
        "chunk_cpu_s": round(report.compute_cpu_s, 2),
        "store_ms_per_chunk": round(1e3 * report.store_s / report.total, 2),
        "chunks": report.total,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=int, default=200)
    ap.add_argument("--tile", type=int, default=50)
    ap.add_argument("--t-end", type=float, default=10.0)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--schedulers", default="none,local:1,local:2",
                    help="comma list (the 10^6 map skips none: it would add local:1's hour again)")  # fmt: skip
    a = ap.parse_args()
    scheds = a.schedulers.split(",")
    work = EscapeMap(grid=a.grid, tile=a.tile, t_end=a.t_end)
    load0 = os.getloadavg()
    print(f"{a.grid}x{a.grid} systems to t={a.t_end:g}, tiles {a.tile}x{a.tile} ({len(work.regions())} chunks); "
          f"{os.cpu_count()} cores, load average {load0[0]:.1f}", flush=True)  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for sched in scheds:
            rows.append(run(work, Path(tmp) / f"{sched.replace(':', '')}.zarr", sched))
            print(json.dumps(rows[-1]), flush=True)
        stores = [_files(Path(tmp) / f"{s.replace(':', '')}.zarr") for s in scheds]
        identical = all(s == stores[0] for s in stores)
    by = {r["scheduler"]: r for r in rows}
    none, one, two = by.get("none"), by["local:1"], by["local:2"]
    load1 = os.getloadavg()
    summary = {
        "grid": a.grid,
        "tile": a.tile,
        "t_end": a.t_end,
        "runs": rows,
        "identical_stores": identical,
        "speedup_local2_vs_local1": round(one["wall_s"] / two["wall_s"], 3),
        "overhead_local1_vs_none": round((one["wall_s"] - none["wall_s"]) / one["wall_s"], 4)
        if none
        else None,
        "worker_idle_local1": round(1 - one["chunk_wall_s"] / one["wall_s"], 4),
        "worker_idle_local2": round(1 - two["chunk_wall_s"] / (2 * two["wall_s"]), 4),
        "cpu_share": {r["scheduler"]: round(r["chunk_cpu_s"] / r["chunk_wall_s"], 3) for r in rows},
        "end_to_end_local2_s": round(two["start_s"] + two["wall_s"], 1),
        "systems_per_s_local2": round(a.grid * a.grid / two["wall_s"], 1),
        "load_average_start_end": [round(load0[0], 2), round(load1[0], 2)],
        "cores": os.cpu_count(),
    }
    print(json.dumps(summary, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(summary, indent=1, allow_nan=False))


if __name__ == "__main__":
    main()
