import numpy as np
import pytest

from backends.common import UserError
from backends.pde.cli import main


def test_cli_navier_stokes_taylor_green(tmp_path, capsys):
    out = tmp_path / "ns.npz"
    rc = main(
        [
            "--model",
            "navier-stokes",
            "--init",
            "taylor-green",
            "--n",
            "32",
            "--nu",
            "1e-3",
            "--t-end",
            "1",
            "--dtype",
            "float64",
            "--forcing",
            "none",
            "--frames",
            "5",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert rc == 0 and "navier-stokes" in capsys.readouterr().out
    d = np.load(out)
    assert d["w"].shape == (6, 32, 32) and d["t"][-1] == pytest.approx(1.0)
    decay = np.exp(-1e-3 * 2 * (2 * np.pi) ** 2 * d["t"])
    assert np.allclose(d["diag_enstrophy"], d["diag_enstrophy"][0] * decay**2, rtol=1e-8)
    assert "spectrum_E" in d and "diag_cfl" in d and "diag_divergence" in d


@pytest.mark.parametrize("model", ["heat", "wave", "burgers", "gray-scott"])
def test_cli_other_models(tmp_path, model):
    out = tmp_path / f"{model}.npz"
    t_end = "200" if model == "gray-scott" else "0.1"
    assert (
        main(["--model", model, "--n", "32", "--t-end", t_end, "--frames", "3", "--quiet", "--out", str(out)])
        == 0
    )
    d = np.load(out)
    assert d["t"].shape == (4,)


def test_cli_darcy_and_ns_dataset(tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["--model", "darcy", "--count", "6", "--n", "16", "--quiet", "--out", str(out)]) == 0
    msg = capsys.readouterr().out
    assert "recycled CG" in msg and "plain PCG" in msg
    d = np.load(out)
    assert d["a"].shape == (6, 16, 16) and d["iterations"].shape == (6,) and "iterations_plain" in d
    out2 = tmp_path / "nsd.npz"
    assert (
        main(
            [
                "--model",
                "navier-stokes",
                "--count",
                "3",
                "--batch",
                "2",
                "--n",
                "32",
                "--t-end",
                "0.01",
                "--quiet",
                "--out",
                str(out2),
            ]
        )
        == 0
    )
    d2 = np.load(out2)
    assert d2["w0"].shape == (3, 32, 32) and d2["w1"].shape == (3, 32, 32)


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--n", "8"], ">= 16"),
        (["--n", "97"], "FFT"),
        (["--nu", "0"], "nu"),
        (["--dt", "0.5", "--init", "turbulence"], "stability"),
        (["--model", "heat", "--nu", "1"], "do not apply"),
        (["--model", "darcy", "--n", "8"], ">= 16"),
    ],
)
def test_cli_bad_input(tmp_path, argv, match):
    with pytest.raises(UserError, match=match):
        main([*argv, "--quiet", "--out", str(tmp_path / "x.npz")])


def test_cli_blow_up_keeps_history(tmp_path):
    out = tmp_path / "b.npz"
    with pytest.raises(UserError, match="snapshots before it were written"):
        main(
            [
                "--model",
                "burgers",
                "--n",
                "32",
                "--nu",
                "1e-6",
                "--dt",
                "4e-2",
                "--scheme",
                "cn-euler",
                "--t-end",
                "20",
                "--frames",
                "40",
                "--quiet",
                "--out",
                str(out),
            ]
        )
    d = np.load(out)
    assert d["u"].shape[0] >= 2 and str(d["blown_up"])
