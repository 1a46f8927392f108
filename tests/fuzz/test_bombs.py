"""Decompression bombs and huge header counts: refused quickly, with memory bounded by what the header
announces (here a 3-Gaussian scene), never by what the stream would inflate to."""

from __future__ import annotations

import json
import subprocess
import sys

from .helpers import ROOT

SCRIPT = r"""
import gzip, io, json, resource, sys, time, zlib
from pathlib import Path
import numpy as np
import zstandard
from backends.common import UserError
from backends.splat import io as splat_io

d = Path(sys.argv[1])
legacy = gzip.decompress(Path(sys.argv[2]).read_bytes())  # the real 3-Gaussian v3 payload
ZEROS = bytes(64 * 2**20)
BOMB = 8  # x 64 MiB = 512 MiB of zeros behind the header

def gz(head):
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [c.compress(head)] + [c.compress(ZEROS) for _ in range(BOMB)] + [c.flush()]
    return b"".join(parts)

def zs(head):
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=1).stream_writer(out, closefd=False) as w:
        w.write(head)
        for _ in range(BOMB):
            w.write(ZEROS)
    return out.getvalue()

def huge_count(payload):
    b = bytearray(payload); b[8:12] = b"\xff\xff\xff\x7f"; return bytes(b)

cases = {
    "gzip_bomb.spz": gz(legacy),
    "zstd_bomb.spz": zs(legacy),
    "gzip_count.spz": gzip.compress(huge_count(legacy)),
    "zstd_count.spz": zstandard.ZstdCompressor().compress(huge_count(legacy)),
    "count.ply": b"ply\nformat binary_little_endian 1.0\nelement vertex 4000000000\n"
    + b"property float x\nend_header\n" + bytes(100),
}
sizes = {k: len(v) for k, v in cases.items()}
for name, data in cases.items():
    (d / name).write_bytes(data)
del cases
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
report = {"base": base, "files": sizes, "results": {}}
for name in sizes:
    t = time.perf_counter()
    try:
        splat_io.load(d / name)
        msg = "LOADED"
    except UserError as exc:
        msg = str(exc)
    report["results"][name] = {"seconds": time.perf_counter() - t, "message": msg,
                               "maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
print(json.dumps(report))
"""


def test_bombs_are_refused_with_bounded_memory(tmp_path):
    from .helpers import shared

    src = shared("splat", "metalsplatter_train3.spz")
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    for name, res in rep["results"].items():
        assert res["message"] != "LOADED" and "\n" not in res["message"], (name, res)
        assert name in res["message"], res["message"]
        assert res["seconds"] < 10, (name, res["seconds"])
        # the bombs inflate to 512 MiB; the reader may hold the compressed file and the announced scene only
        grew = res["maxrss"] - rep["base"]
        assert grew < 150 * 2**20, f"{name}: peak memory grew by {grew / 2**20:.0f} MiB"
    assert (
        rep["files"]["gzip_bomb.spz"] < 4 * 2**20 and rep["files"]["zstd_bomb.spz"] < 4 * 2**20
    )  # small files
    assert "more than" in rep["results"]["gzip_bomb.spz"]["message"]
    assert "more than" in rep["results"]["zstd_bomb.spz"]["message"]
