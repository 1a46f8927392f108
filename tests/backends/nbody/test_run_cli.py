"""Runner, diagnostics, bad input, blow-up detection and the headless CLI."""

from __future__ import annotations

import numpy as np
import pytest

from backends.common import Progress, UserError, drain
from backends.nbody.cli import main
from backends.nbody.core import System, preset, random_system, to_com_frame
from backends.nbody.run import RunConfig, run, simulate


def test_generator_yields_chunks_that_add_up_to_the_result():
    cfg = RunConfig(preset="figure8", integrator="hermite", eta=0.02, t_end=2.0)
    chunks = []
    res = drain(simulate(None, cfg, yield_every_steps=50), chunks.append)
    assert all(isinstance(p, Progress) and 0 <= p.fraction <= 1 for p in chunks)
    assert sum(len(p.data.t) for p in chunks) == len(
        res.t
    )  # every sample (the initial one included) arrives in exactly one chunk
    assert res.t[-1] == pytest.approx(2.0, abs=1e-14)
    assert np.all(np.diff(res.t) > 0)


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(dt=0.0), "dt"),
        (dict(dt=-1.0), "dt"),
        (dict(t_end=1e9), "absurd"),
        (dict(eta=float("nan")), "eta"),
        (dict(integrator="euler"), "unknown integrator"),
        (dict(tol=0.5), "tol"),
        (dict(t_end=1e5, dt=1e-6, integrator="rk4"), "too many"),
    ],
)
def test_bad_config_is_a_user_error(kw, msg):
    with pytest.raises(UserError, match=msg):
        RunConfig(**kw)


def test_bad_systems_are_user_errors():
    x = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    v = np.zeros((3, 3))
    with pytest.raises(UserError, match="mass"):
        System(np.array([1.0, 0.0, 1.0]), x, v)
    with pytest.raises(UserError, match="mass"):
        System(np.array([1.0, -1.0, 1.0]), x, v)
    with pytest.raises(UserError, match="same position"):
        System(np.ones(3), np.array([[0.0, 0, 0], [0, 0, 0], [1, 0, 0]]), v)
    with pytest.raises(UserError, match="NaN"):
        System(np.ones(3), np.array([[0.0, 0, 0], [np.nan, 0, 0], [1, 0, 0]]), v)
    with pytest.raises(UserError, match="shape"):
        System(np.ones(3), np.zeros((2, 3)), v)
    with pytest.raises(UserError, match="unknown preset"):
        preset("nope")


def test_blow_up_stops_with_message_and_keeps_history():
    # leapfrog with a huge fixed step through the Pythagorean close encounters
    res = run(None, RunConfig(preset="pythagorean", integrator="leapfrog", dt=0.05, t_end=30.0))
    assert res.status.startswith("blow-up")
    assert len(res.t) > 10 and res.t[-1] < 30.0
    assert np.all(np.isfinite(res.pos))


def test_com_frame_and_random_presets_are_seeded():
    a, b = random_system(5), random_system(5)
    assert np.array_equal(a.pos, b.pos) and not np.array_equal(a.pos, random_system(6).pos)
    p, v = to_com_frame(a.mass, a.pos, a.vel)
    assert np.abs(a.mass @ p).max() < 1e-15 and np.abs(a.mass @ v).max() < 1e-15


def test_cli_writes_npz_and_prints_summary(tmp_path, capsys):
    out = tmp_path / "run.npz"
    assert (
        main(
            [
                "--preset",
                "figure8",
                "--integrator",
                "hermite",
                "--eta",
                "0.02",
                "--t-end",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    line = capsys.readouterr().out.strip()
    assert line.count("\n") == 0 and "steps=" in line and "force_evals=" in line and "|dE/E|=" in line
    d = np.load(out)
    n = len(d["t"])
    assert d["pos"].shape == (n, 3, 3) and d["vel"].shape == (n, 3, 3) and d["mass"].shape == (3,)
    assert d["energy"].shape == (n,) and int(d["steps"]) == n - 1 and int(d["force_evals"]) == n
    assert d["t"][-1] == pytest.approx(1.0)


def test_cli_bad_input(tmp_path):
    with pytest.raises(UserError):
        main(["--dt", "-1", "--integrator", "rk4"])
    with pytest.raises(UserError):
        main(["--integrator", "magic"])
    with pytest.raises(UserError, match="does not exist"):
        main(["--t-end", "0.1", "--out", str(tmp_path / "no" / "x.npz")])
    with pytest.raises(UserError, match="blow-up"):
        main(
            [
                "--preset",
                "pythagorean",
                "--integrator",
                "leapfrog",
                "--dt",
                "0.05",
                "--t-end",
                "30",
                "--out",
                str(tmp_path / "b.npz"),
            ]
        )
    assert (tmp_path / "b.npz").exists()  # history kept


def test_cli_rebound_and_rk4(capsys):
    pytest.importorskip("rebound")
    assert main(["--integrator", "rebound", "--t-end", "1"]) == 0
    assert main(["--integrator", "rk4", "--dt", "0.01", "--t-end", "1"]) == 0
    out = capsys.readouterr().out
    assert "rebound:" in out and "rk4:" in out
