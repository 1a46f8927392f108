"""Many pedestrians per frame: the reader and the windowing are linear (a million rows in seconds)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from backends.trajectory.data import make_windows, read_csv_tracks, read_ethucy

PEDS, FRAMES = 50_000, 20  # 1,000,000 rows, every pedestrian in every frame: exactly one 20-step window


@pytest.fixture(scope="module")
def rows() -> list[tuple]:
    f = np.repeat(np.arange(FRAMES), PEDS)
    p = np.tile(np.arange(PEDS), FRAMES)
    xy = (f[:, None] * 0.1 + p[:, None] * np.array([0.001, -0.002])).round(4)  # positions known exactly
    return list(zip(f.tolist(), p.tolist(), xy[:, 0].tolist(), xy[:, 1].tolist()))


def test_million_row_ethucy_file_loads_in_seconds(tmp_path, rows):
    path = tmp_path / "crowd.txt"
    path.write_text("".join(map("%d0.0\t%d.0\t%.4f\t%.4f\n".__mod__, rows)))
    t = time.perf_counter()
    w = make_windows(read_ethucy(path))
    seconds = time.perf_counter() - t
    assert w.num_windows == 1 and w.num_agents == PEDS
    # pedestrian 123 at step 19 of its window: x = 0.1 * 19 + 0.123, y = 0.1 * 19 - 0.246
    np.testing.assert_allclose(w.pred[123, -1], [1.9 + 0.123, 1.9 - 0.246], atol=1e-5)
    assert seconds < 20, f"1,000,000 rows took {seconds:.1f} s"  # about 3 s on a loaded 2-core machine


def test_million_row_csv_loads_in_seconds(tmp_path, rows):
    path = tmp_path / "crowd.csv"
    path.write_text("frame,ped,x,y\n" + "".join(map("%d,%d,%.4f,%.4f\n".__mod__, rows)))
    t = time.perf_counter()
    tracks = read_csv_tracks(path, fps=2.5)
    seconds = time.perf_counter() - t
    assert tracks.rows.shape == (1_000_000, 4) and tracks.rows[-1, 0] == 10.0 * (FRAMES - 1)
    assert seconds < 20, f"1,000,000 CSV rows took {seconds:.1f} s"
