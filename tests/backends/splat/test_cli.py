"""The headless CLI: convert with edits, info, render from an orbit or a cameras.json camera, bad input."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from backends.common import UserError
from backends.splat import camera as cm
from backends.splat import cli, io, samples
from tests.conftest import shared_data


def test_convert_spz_to_ply_and_splat(tmp_path, capsys):
    src = shared_data("splat", "metalsplatter_train3.spz")
    assert cli.main(["convert", str(src), str(tmp_path / "a.ply"), "--quiet"]) == 0
    assert cli.main(["convert", str(tmp_path / "a.ply"), str(tmp_path / "a.splat"), "--quiet"]) == 0
    a, b = io.load(tmp_path / "a.ply"), io.load(src)
    np.testing.assert_allclose(a.means, b.means, atol=1e-6)
    assert io.load(tmp_path / "a.splat").count == 3
    assert "wrote" in capsys.readouterr().out


def test_convert_with_edits_and_blocks(tmp_path):
    out = tmp_path / "e.ply"
    cli.main(
        [
            "convert",
            str(samples.SAMPLE_3D),
            str(samples.SAMPLE_3D),
            str(out),
            "--subsample",
            "0.5",
            "--sh-degree",
            "0",
            "--quiet",
        ]
    )
    g = io.load(out)
    n = 2 * io.load(samples.SAMPLE_3D).count
    assert 0.4 * n < g.count < 0.6 * n and set(np.unique(g.extras["block"])) == {0, 1}
    with pytest.raises(UserError, match="crop"):
        cli.main(["convert", str(samples.SAMPLE_3D), str(out), "--crop", "1,2,3"])
    with pytest.raises(UserError, match="removed every Gaussian"):
        cli.main(["convert", str(samples.SAMPLE_3D), str(out), "--min-opacity", "1.0", "--quiet"])


def test_render_orbit_and_camera(tmp_path, capsys):
    png = tmp_path / "r.png"
    assert (
        cli.render_main(
            [
                str(samples.SAMPLE_4D),
                "--orbit",
                "30,20,2.5",
                "--size",
                "64x48",
                "--time",
                "0.5",
                "--background",
                "1,1,1",
                "--out",
                str(png),
                "--quiet",
            ]
        )
        == 0
    )
    img = iio.imread(png)
    assert img.shape == (48, 64, 4) and (img[..., :3] < 200).any() and (img[..., :3] == 255).any()
    cams = [cm.orbit_camera((0, 0.3, 0), 10, 20, 5, 40, 30)]
    cm.save_cameras_json(tmp_path / "cameras.json", cams)
    assert (
        cli.render_main(
            [str(samples.SAMPLE_3D), "--camera", f"{tmp_path}/cameras.json#0", "--out", str(png), "--quiet"]
        )
        == 0
    )
    assert iio.imread(png).shape == (30, 40, 4)
    with pytest.raises(UserError, match="unknown camera index 3"):
        cli.render_main([str(samples.SAMPLE_3D), "--camera", f"{tmp_path}/cameras.json#3", "--out", str(png)])
    with pytest.raises(UserError, match="malformed --orbit"):
        cli.render_main([str(samples.SAMPLE_3D), "--orbit", "1,2", "--out", str(png)])
    with pytest.raises(UserError, match="malformed size"):
        cli.render_main([str(samples.SAMPLE_3D), "--orbit", "1,2,3", "--size", "big", "--out", str(png)])
    with pytest.raises(UserError):
        cli.render_main([str(samples.SAMPLE_3D), "--out", str(png)])  # no camera at all


def test_info(capsys):
    assert cli.main(["info", str(samples.SAMPLE_4D)]) == 0
    out = capsys.readouterr().out
    assert "4D" in out and f"{io.load(samples.SAMPLE_4D).count:,} Gaussians" in out


def test_gl_renderer_without_gui_layer_is_a_clear_error(tmp_path):
    """The backend CLI alone has no GL renderer (it lives in panels.splat): a clear message, no crash."""
    with pytest.raises(UserError, match="GL renderer is not available"):
        cli.render_main(
            [
                str(samples.SAMPLE_3D),
                "--orbit",
                "0,0,3",
                "--renderer",
                "gl",
                "--out",
                str(tmp_path / "x.png"),
                "--quiet",
            ]
        )


def test_cpu_renderer_matches_the_reference_renderer(tmp_path):
    """--renderer cpu (numba tile rasterizer, no Qt) writes the reference renderer's picture."""
    outs = {}
    for r in ("reference", "cpu"):
        png = tmp_path / f"{r}.png"
        args = [str(samples.SAMPLE_4D), "--orbit", "20,25,3", "--size", "96x72", "--time", "0.4"]
        assert (
            cli.render_main([*args, "--renderer", r, "--background", "1,1,1", "--out", str(png), "--quiet"])
            == 0
        )
        outs[r] = iio.imread(png).astype(float) / 255.0
    assert outs["cpu"].shape == (72, 96, 4) and (outs["cpu"][..., :3] < 0.8).mean() > 0.01
    mse = np.mean((outs["cpu"][..., :3] - outs["reference"][..., :3]) ** 2)
    assert 10 * np.log10(1.0 / max(mse, 1e-12)) >= 45
