"""Data layer: readers, Social-GAN windowing, splits, homography, synthetic crowd."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from backends.common import UserError
from backends.trajectory.data import (
    SCENES,
    Tracks,
    load_homography,
    load_split,
    make_windows,
    read_csv_tracks,
    read_ethucy,
    scene_files,
    world_to_image,
)
from backends.trajectory.synthetic import CrowdConfig, simulate_crowd
from tests.conftest import shared_data

# Window counts of the standard test splits as documented in ../shared/data/ethucy/README.md
# ("With that windowing the test splits hold: eth 181 trajectories / 70 windows, ...").
README_COUNTS = {
    "eth": (181, 70),
    "hotel": (1053, 301),
    "univ": (24334, 947),
    "zara1": (2253, 602),
    "zara2": (5833, 921),
}


def reference_sgan_windows(path, obs_len=8, pred_len=12, skip=1, min_ped=1):
    """Literal re-statement of Social-GAN's ``TrajectoryDataset`` loop (sgan/data/trajectories.py), used as
    an independent reference for our vectorised windowing."""
    data = np.loadtxt(path, delimiter="\t")
    seq_len = obs_len + pred_len
    frames = np.unique(data[:, 0]).tolist()
    frame_data = [data[f == data[:, 0], :] for f in frames]
    num_sequences = int(math.ceil((len(frames) - seq_len + 1) / skip))
    seqs = []
    for idx in range(0, num_sequences * skip + 1, skip):
        if idx >= len(frame_data):
            break
        curr = np.concatenate(frame_data[idx : idx + seq_len], axis=0)
        peds = np.unique(curr[:, 1])
        kept = []
        for ped in peds:
            ps = np.around(curr[curr[:, 1] == ped, :], decimals=4)
            front = frames.index(ps[0, 0]) - idx
            end = frames.index(ps[-1, 0]) - idx + 1
            if end - front != seq_len or len(ps) != seq_len:
                continue
            kept.append(ps[:, 2:])
        if len(kept) > min_ped:
            seqs.append(np.stack(kept))
    return seqs


@pytest.mark.parametrize("scene", SCENES)
def test_window_counts_match_dataset_readme(scene):
    root = shared_data("ethucy")
    w = load_split(root, scene, "test")
    assert (w.num_agents, w.num_windows) == README_COUNTS[scene]
    assert w.obs.shape == (w.num_agents, 8, 2) and w.pred.shape == (w.num_agents, 12, 2)
    assert np.all(np.diff(w.starts) >= 2)


def test_windowing_equals_reference_loop():
    path = shared_data("ethucy", "hotel", "test", "biwi_hotel.txt")
    ref = reference_sgan_windows(path)
    w = make_windows(read_ethucy(path))
    assert w.num_windows == len(ref)
    for i, seq in enumerate(ref):
        sl = w.window(i)
        full = np.concatenate([w.obs[sl], w.pred[sl]], axis=1)
        np.testing.assert_allclose(full, seq, atol=1e-5)


def test_frame_step_is_ten_and_window_spans_eight_seconds():
    w = load_split(shared_data("ethucy"), "zara1", "test")
    d = np.diff(w.frames, axis=1)
    assert np.all(d == 10)  # 20 consecutive annotations, 0.4 s each


def _write(tmp_path, text, name="a.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reader_errors_name_file_and_line(tmp_path):
    p = _write(tmp_path, "0\t1\t1.0\t2.0\n10\t1\t1.5\n")
    with pytest.raises(UserError, match=r"a\.txt: line 2: expected 4"):
        read_ethucy(p)
    p = _write(tmp_path, "0\t1\t1.0\t2.0\n10\t1\tabc\t2.0\n")
    with pytest.raises(UserError, match=r"line 2: non-numeric"):
        read_ethucy(p)
    p = _write(tmp_path, "0\t1\t1.0\t2.0\n10\t1\t1.0\t2.0\n0\t1\t3.0\t2.0\n")
    with pytest.raises(
        UserError, match=r"line 3: duplicated frame 0 for pedestrian 1 \(first seen on line 1\)"
    ):
        read_ethucy(p)
    p = _write(tmp_path, "0\t1\tnan\t2.0\n")
    with pytest.raises(UserError, match="line 1: NaN"):
        read_ethucy(p)
    with pytest.raises(UserError, match="no such file"):
        read_ethucy(tmp_path / "missing.txt")
    p = _write(tmp_path, "\n\n")
    with pytest.raises(UserError, match="no trajectory rows"):
        read_ethucy(p)


def _straight(frames, ped, x0, vx):
    return "".join(f"{10 * f}\t{ped}\t{x0 + vx * f:.3f}\t0.0\n" for f in frames)


def test_split_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_split(tmp_path / "nope", "eth", "test")
    (tmp_path / "eth" / "test").mkdir(parents=True)
    with pytest.raises(UserError, match="lacks the expected splits train, val"):
        scene_files(tmp_path, "eth", "test")
    with pytest.raises(UserError, match="no scene 'hotel'"):
        scene_files(tmp_path, "hotel", "test")
    for ph in ("train", "val"):
        (tmp_path / "eth" / ph).mkdir()
    with pytest.raises(UserError, match="holds no .txt"):
        load_split(tmp_path, "eth", "test")
    # one agent only: no window can hold >= 2 pedestrians
    _write(tmp_path / "eth" / "test", _straight(range(30), 1, 0.0, 0.5), "one.txt")
    with pytest.raises(UserError, match="no 20-step windows"):
        load_split(tmp_path, "eth", "test")
    # two agents but tracks shorter than 20 steps
    _write(
        tmp_path / "eth" / "test",
        _straight(range(15), 1, 0, 0.5) + _straight(range(15), 2, 5, 0.5),
        "one.txt",
    )
    with pytest.raises(UserError, match="shorter than 20"):
        load_split(tmp_path, "eth", "test")


def test_windowing_rules_on_a_toy_file(tmp_path):
    # ped 1: frames 0..24, ped 2: frames 3..22 (exactly 20), ped 3: frames 0..24 with a gap at 10
    text = _straight(range(25), 1, 0, 0.5) + _straight(range(3, 23), 2, 5, 0.4)
    text += _straight([f for f in range(25) if f != 10], 3, 9, 0.3)
    w = make_windows(read_ethucy(_write(tmp_path, text)))
    # window starts with >= 2 full peds: only t0 = 3 (peds 1 and 2); ped 3 is never complete
    assert w.num_windows == 1
    assert list(w.ped_ids) == [1.0, 2.0]
    assert w.frames[0, 0] == 30


def test_csv_reader_columns_and_frame_rate(tmp_path):
    # 10 fps source: keep every 4th frame (0.4 s); named columns in another order
    lines = ["id;t;px;py"]
    for f in range(0, 81):
        lines.append(f"7;{f};{0.1 * f:.2f};1.0")
    p = _write(tmp_path, "\n".join(lines) + "\n", "u.csv")
    tr = read_csv_tracks(p, frame_col="t", ped_col="id", x_col="px", y_col="py", fps=10.0, delimiter=";")
    assert len(tr.rows) == 21
    np.testing.assert_allclose(np.diff(tr.rows[:, 0]), 10.0)
    np.testing.assert_allclose(np.diff(tr.rows[:, 2]), 0.4, atol=1e-9)  # 1 m/s * 0.4 s
    with pytest.raises(UserError, match="column 'frame' not in header"):
        read_csv_tracks(p, delimiter=";")
    bad = _write(tmp_path, "frame,ped,x,y\n0,1,1,2\n1,1,x,2\n", "b.csv")
    with pytest.raises(UserError, match=r"b\.csv: line 3: non-numeric"):
        read_csv_tracks(bad)


def test_homography_roundtrip():
    H = load_homography(shared_data("ethucy_homography"), "eth")
    pix = np.array([[100.0, 200.0], [320.0, 240.0]])
    hom = np.c_[pix, np.ones(2)] @ H.T
    world = hom[:, :2] / hom[:, 2:]
    np.testing.assert_allclose(world_to_image(H, world), pix, atol=1e-6)


def test_synthetic_crowd_is_seeded_and_walks_at_desired_speed():
    a = simulate_crowd(CrowdConfig(seed=3, steps=120, spawn_rate=0.3, standing_groups=0))
    b = simulate_crowd(CrowdConfig(seed=3, steps=120, spawn_rate=0.3, standing_groups=0))
    np.testing.assert_array_equal(a.rows, b.rows)
    w = make_windows(a)
    assert w.num_windows > 5
    # free-flow walkers keep their desired speed v0 ~ N(1.3, 0.2) m/s (social force relaxation)
    speed = np.linalg.norm(np.diff(w.obs, axis=1), axis=-1).mean(axis=1) / 0.4
    assert abs(np.median(speed) - 1.3) < 0.15
    # and nobody overlaps: centre distance stays above the body diameter minus a small tolerance
    for i in range(w.num_windows):
        p = w.obs[w.window(i), -1]
        d = np.linalg.norm(p[:, None] - p[None], axis=-1) + np.eye(len(p)) * 9
        assert d.min() > 0.35


def test_tracks_at_frame():
    tr = Tracks("x", np.array([[0, 1, 0.0, 0.0], [0, 2, 1.0, 1.0], [10, 1, 0.5, 0.0]]))
    assert tr.at_frame(0).shape == (2, 3)
    assert os.fspath("x") == tr.name
