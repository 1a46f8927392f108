"""Reading crowded ETH/UCY files: the linear reader + windowing against the per-pedestrian scan it replaced.

    nice .venv/bin/python bench/trajectory_reader.py [--max-reference 50000]

Files with P pedestrians present in each of 20 frames (20 P rows, one 20-step window of P agents). The
reference is the former windowing (one scan of all rows per pedestrian, quadratic in P); it is timed only up
to ``--max-reference`` pedestrians (it took minutes beyond). The windows of both are compared for equality.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from backends.trajectory.data import Tracks, Windows, make_windows, read_ethucy


def reference_windows(tracks: Tracks, obs_len: int = 8, pred_len: int = 12) -> Windows:
    """The former algorithm: for each pedestrian, select its rows from the whole table (O(P x rows))."""
    seq_len = obs_len + pred_len
    rows = tracks.rows
    frames = np.unique(rows[:, 0])
    fidx = np.searchsorted(frames, rows[:, 0])
    by_start: dict[int, list] = {}
    for ped in np.unique(rows[:, 1]):
        sel = rows[:, 1] == ped
        fi, xy = fidx[sel], np.around(rows[sel, 2:4], decimals=4)
        order = np.argsort(fi)
        fi, xy = fi[order], xy[order]
        breaks = np.nonzero(np.diff(fi) != 1)[0] + 1
        for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(fi)]):
            for s in range(a, b - seq_len + 1):
                by_start.setdefault(int(fi[s]), []).append((float(ped), xy[s : s + seq_len]))
    seqs = [np.stack([m[1] for m in sorted(v, key=lambda m: m[0])]) for _, v in sorted(by_start.items())]
    obs = np.concatenate([q[:, :obs_len] for q in seqs]).astype(np.float32)
    pred = np.concatenate([q[:, obs_len:] for q in seqs]).astype(np.float32)
    starts = np.r_[0, np.cumsum([len(q) for q in seqs])]
    return Windows(obs, pred, starts, np.zeros(len(obs)), np.zeros((len(seqs), seq_len)), np.zeros(len(seqs)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,20000,50000,200000")
    ap.add_argument("--max-reference", type=int, default=20000)
    a = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}")
    print("| pedestrians per frame | rows | file MB | read s | windows s | former windowing s | ratio |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as d:
        for peds in (int(s) for s in a.sizes.split(",")):
            f = np.repeat(np.arange(20), peds)
            p = np.tile(np.arange(peds), 20)
            x, y = (f * 0.1 + p * 0.001).round(4), (p * -0.002).round(4)
            path = Path(d) / f"crowd_{peds}.txt"
            path.write_text(
                "".join(map("%d0.0\t%d.0\t%.4f\t%.4f\n".__mod__, zip(f.tolist(), p.tolist(), x, y)))
            )
            t = time.perf_counter()
            tr = read_ethucy(path)
            t_read = time.perf_counter() - t
            t = time.perf_counter()
            w = make_windows(tr)
            t_win = time.perf_counter() - t
            ref, ratio = "not run", ""
            if peds <= a.max_reference:
                t = time.perf_counter()
                r = reference_windows(tr)
                t_ref = time.perf_counter() - t
                assert np.array_equal(r.obs, w.obs) and np.array_equal(r.pred, w.pred)
                ref, ratio = f"{t_ref:.2f}", f"x{t_ref / max(t_win, 1e-9):.0f}"
            mb = path.stat().st_size / 1e6
            print(f"| {peds:,} | {20 * peds:,} | {mb:.1f} | {t_read:.2f} | {t_win:.2f} | {ref} | {ratio} |")


if __name__ == "__main__":
    main()
