"""The headless CLI: exact model end to end, trajectory shape, bad input as UserError."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import UserError
from backends.diffusion.cli import main


def test_cli_exact_heun_with_trajectory(tmp_path, capsys):
    out = tmp_path / "s.npz"
    rc = main(
        [
            "--dataset",
            "gmm",
            "--model",
            "exact",
            "--sampler",
            "heun",
            "--nfe",
            "35",
            "--count",
            "3000",
            "--seed",
            "0",
            "--out",
            str(out),
            "--trajectory",
        ]
    )
    assert rc == 0
    z = np.load(out)
    assert z["samples"].shape == (3000, 2) and z["traj"].shape == (36, 3000, 2)
    np.testing.assert_allclose(z["traj"][-1], z["samples"])
    line = capsys.readouterr().out
    assert "SW2" in line and "noise floor" in line
    ratio = float(line.split(", x")[1].split(")")[0])
    assert ratio < 2.0


def test_cli_trains_small_model_and_saves_weights(tmp_path, capsys):
    w = tmp_path / "w.pt"
    assert (
        main(
            [
                "--dataset",
                "moons",
                "--model",
                "edm",
                "--train-steps",
                "30",
                "--hidden",
                "32",
                "--sampler",
                "dpmpp2m",
                "--nfe",
                "8",
                "--count",
                "300",
                "--weights-out",
                str(w),
            ]
        )
        == 0
    )
    assert w.exists()
    assert (
        main(
            [
                "--dataset",
                "moons",
                "--model",
                "edm",
                "--weights-in",
                str(w),
                "--sampler",
                "euler",
                "--nfe",
                "4",
                "--count",
                "200",
                "--out",
                str(tmp_path / "a.npz"),
            ]
        )
        == 0
    )
    assert np.load(tmp_path / "a.npz")["samples"].shape == (200, 2)


def test_cli_bad_input(tmp_path):
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("1,2\n3,x\n")
    cases = [
        (["--dataset", "csv", "--csv", str(bad_csv), "--model", "edm", "--train-steps", "5"], "non-numeric"),
        (["--dataset", "swissroll", "--model", "exact"], "Gaussian-mixture"),
        (["--model", "pfgmpp", "--D", "-1"], r"--D -1 out of range \(0, 1000000\]"),
        (["--model", "lightsb", "--eps", "0"], r"--eps 0 out of range \(0, 100\]"),
        (["--dataset", "gmm", "--model", "exact", "--sampler", "bridge"], "does not apply"),
        (["--dataset", "gmm", "--model", "exact", "--nfe", "0"], r"--nfe 0 out of range \[1, 10000\]"),
        (
            ["--dataset", "gmm", "--model", "exact", "--out", str(tmp_path / "nope" / "x.npz")],
            "does not exist",
        ),
    ]
    for argv, msg in cases:
        with pytest.raises(UserError, match=msg):
            main(argv)


def test_cli_lightsb_and_interpolant(tmp_path, capsys):
    assert (
        main(
            [
                "--dataset",
                "8gaussians",
                "--model",
                "lightsb",
                "--train-steps",
                "200",
                "--eps",
                "0.1",
                "--sampler",
                "bridge",
                "--nfe",
                "10",
                "--count",
                "500",
            ]
        )
        == 0
    )
    assert (
        main(["--dataset", "gmm", "--model", "exact", "--sampler", "ode", "--nfe", "20", "--count", "500"])
        == 0
    )
    assert "Interpolant ODE" in capsys.readouterr().out
