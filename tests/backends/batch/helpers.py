"""Shared pieces of the batch tests: a small escape-map study, store comparison, a faulty workload."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from backends.batch.workloads import EscapeMap

# 16 chunks of 6 x 6 three-body systems to t = 10: about 0.1 s of compute per chunk, with escapes
SMALL_MAP = EscapeMap(grid=24, tile=6, t_end=10.0)
REPO = Path(__file__).resolve().parents[3]


def store_files(path: Path) -> dict[str, bytes]:
    """Every file of a store by relative path (zarr's interrupted temporary files excluded)."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            if not name.endswith(".partial"):
                p = Path(root) / name
                out[str(p.relative_to(path))] = p.read_bytes()
    return out


def assert_same_store(a: Path, b: Path) -> None:
    fa, fb = store_files(a), store_files(b)
    assert sorted(fa) == sorted(fb), f"files differ: {sorted(set(fa) ^ set(fb))[:5]}"
    different = [k for k in fa if fa[k] != fb[k]]
    assert not different, f"{len(different)} files differ, e.g. {different[:3]}"


def listening(pids) -> list[tuple[int, str, int]]:
    """(pid, ip, port) of every TCP socket listening in these processes."""
    import psutil

    return [
        (pid, c.laddr.ip, c.laddr.port)
        for pid in pids
        for c in psutil.Process(pid).net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    ]


def done_files(path: Path) -> list[str]:
    """Finished chunks (zarr writes no file for a chunk still equal to the fill value False)."""
    d = Path(path) / "done" / "c"
    return sorted(p.name for p in d.iterdir() if not p.name.endswith(".partial")) if d.is_dir() else []


@dataclass(frozen=True)
class FaultyMap(EscapeMap):
    """The small map, except that one chunk raises (a worker-side failure the study must report)."""

    fail_index: int = 5
    name = "faulty-escape-map"

    def run_chunk(self, index: int, seed: int):
        if index == self.fail_index:
            raise FloatingPointError(f"overflow in tile {index}")
        return super().run_chunk(index, seed)
