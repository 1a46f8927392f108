"""The export service writes what it says, at the size asked, and refuses bad destinations clearly."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest

from app import export
from backends.common import UserError


def test_png_roundtrip_exact(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 4), dtype=np.uint8)
    p = export.save_png(tmp_path / "a.png", img)
    assert np.array_equal(iio.imread(p), img)


def test_float_image_is_clipped_and_scaled(tmp_path):
    img = np.array([[[-1.0, 0.5, 2.0]]])
    out = iio.imread(export.save_png(tmp_path / "f.png", img))
    assert out.tolist() == [[[0, 128, 255]]]


@pytest.mark.parametrize("suffix", ["mp4", "gif"])
def test_video_frames_and_size(tmp_path, suffix):
    frames = [np.full((50, 70, 3), 20 * i, np.uint8) for i in range(6)]
    p = export.write_video(tmp_path / f"v.{suffix}", frames, fps=10)
    back = iio.imread(p, index=None)
    assert back.shape[0] == 6
    # mp4 pads to a multiple of 16 (codec blocks); gif keeps the size
    assert back.shape[1:3] == ((64, 80) if suffix == "mp4" else (50, 70))
    assert abs(float(back[3][..., :3].mean()) - 60) < 4


def test_video_without_frames_is_an_error(tmp_path):
    with pytest.raises(UserError, match="no frames"):
        export.write_video(tmp_path / "v.mp4", [])
    assert not (tmp_path / "v.mp4").exists()


def test_npz_and_csv(tmp_path):
    p = export.save_npz(tmp_path / "d.npz", t=np.arange(3.0), pos=np.ones((3, 2, 3)))
    with np.load(p) as d:
        assert d["pos"].shape == (3, 2, 3) and d["t"][2] == 2.0
    c = export.save_csv(tmp_path / "d.csv", ["t", "e"], [np.arange(3.0), np.array([0.1, 0.2, 1e-17])])
    rows = c.read_text().splitlines()
    assert rows[0] == "t,e" and float(rows[3].split(",")[1]) == 1e-17


def test_unwritable_destinations(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        export.save_png(tmp_path / "missing" / "a.png", np.zeros((2, 2, 3), np.uint8))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os

        if os.geteuid() != 0:  # root may write anywhere
            with pytest.raises(UserError, match="permission"):
                export.save_npz(ro / "a.npz", x=np.zeros(2))
    finally:
        ro.chmod(0o700)


@pytest.mark.parametrize("text, size", [("800x600", (800, 600)), ("12X7", (12, 7))])
def test_parse_size(text, size):
    assert export.parse_size(text) == size


@pytest.mark.parametrize("text", ["800", "axb", "0x10", "100000x10", "-5x5"])
def test_parse_size_rejects(text):
    with pytest.raises(UserError):
        export.parse_size(text)


def test_plot_exports(qtbot, tmp_path):
    from panels.widgets import make_plot

    w = make_plot("Energy", "t", "E")
    qtbot.addWidget(w)
    w.plot(np.arange(5.0), np.arange(5.0) ** 2, name="E")
    svg = export.export_plot(w, tmp_path / "p.svg")
    assert "<svg" in svg.read_text()
    png = export.export_plot(w, tmp_path / "p.png", width=640)
    assert iio.imread(png).shape[1] == 640
    csv = export.export_plot(w, tmp_path / "p.csv").read_text().splitlines()
    assert [float(v) for v in csv[3].split(",")[:2]] == [2.0, 4.0]
    with pytest.raises(UserError):
        export.export_plot(w, tmp_path / "p.bmp")


def test_sidecar(tmp_path):
    s = export.write_sidecar(tmp_path / "x.png", {"kind": "k", "panels": {}})
    assert s.name == "x.png.session.json" and json.loads(s.read_text())["kind"] == "k"
