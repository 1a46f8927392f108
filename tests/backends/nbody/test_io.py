"""One trajectory writer for the CLI and the panel: the same keys, angular momentum from physics, atomic."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backends.common import UserError
from backends.nbody.cli import main
from backends.nbody.core import angular_momentum, preset
from backends.nbody.io import RUN_KEYS, load_run
from backends.nbody.live import Recording, SyncRun
from backends.nbody.run import RunConfig


def test_panel_recording_and_cli_write_the_same_keys(tmp_path, capsys):
    cfg = RunConfig(preset="pythagorean", t_end=0.5)
    s = preset("pythagorean")
    rec = Recording.initial(s)
    for c in SyncRun(s, cfg).chunks(50):
        rec.append(c)
    rec.save(tmp_path / "panel.npz")
    main(["--preset", "pythagorean", "--t-end", "0.5", "--out", str(tmp_path / "cli.npz")])
    a, b = load_run(tmp_path / "panel.npz"), load_run(tmp_path / "cli.npz")
    assert set(RUN_KEYS) <= set(a) and set(a) == set(b)
    # the same physics: final states agree, and L is the initial one (conserved by the integrator)
    np.testing.assert_allclose(a["pos"][-1], b["pos"][-1], atol=1e-9)
    l0 = angular_momentum(s.mass, s.pos, s.vel)
    assert np.abs(a["ang_mom"] - l0).max() < 1e-9
    assert a["status"] == "ok" and isinstance(a["events"], list)
    with np.load(tmp_path / "panel.npz", allow_pickle=False) as d:
        assert json.loads(str(d["events"])) == a["events"]
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_writer_refuses_a_missing_folder_and_an_empty_run(tmp_path):
    rec = Recording.initial(preset("figure8"))
    with pytest.raises(UserError, match="does not exist"):
        rec.save(tmp_path / "no" / "x.npz")
    (tmp_path / "bad.npz").write_bytes(b"")
    np.savez(tmp_path / "bad.npz", t=np.zeros(1))
    with pytest.raises(UserError, match="missing"):
        load_run(tmp_path / "bad.npz")
