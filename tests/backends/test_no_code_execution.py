"""A pickle payload given to every loader of weights, policies and arrays runs nothing and ends in one line."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from backends.common import UserError


class Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears if any loader unpickles it."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload_files(tmp_path: Path) -> list[Path]:
    marker = tmp_path / "marker"
    files = []
    p = tmp_path / "torch_zip.pt"  # the torch zip format, payload inside the state dict
    torch.save({"state_dict": {"w": Payload(marker)}, "obs_dim": 6, "format": "x"}, p)
    files.append(p)
    p = tmp_path / "top_level.pt"  # the whole blob is the payload
    torch.save(Payload(marker), p)
    files.append(p)
    p = tmp_path / "raw_pickle.pt"  # a bare pickle (legacy torch format)
    p.write_bytes(pickle.dumps({"state_dict": Payload(marker)}))
    files.append(p)
    p = tmp_path / "object.npz"
    np.savez(p, a=np.array([Payload(marker)], dtype=object))
    files.append(p)
    return files


def _loaders():
    from backends.diffusion.models import load_trained
    from backends.nbody.learned import load_policy
    from backends.safeio import load_npz, load_weights
    from backends.trajectory.eigentrajectory import ETModel

    return {
        "diffusion weights": load_trained,
        "nbody policy": load_policy,
        "eigentrajectory model": ETModel.load,
        "safeio.load_weights": load_weights,
        "safeio.load_npz": load_npz,
    }


@pytest.mark.parametrize("loader", list(_loaders()))
def test_pickle_payload_runs_nothing(tmp_path, loader):
    fn = _loaders()[loader]
    for f in _payload_files(tmp_path):
        with pytest.raises(UserError) as info:
            fn(f)
        msg = str(info.value)
        assert "\n" not in msg and f.name in msg, msg
        assert not (tmp_path / "marker").exists(), f"{loader} executed the payload in {f.name}"


def test_cli_weights_in_payload_exit_2_one_line(tmp_path, capsys):
    from app.__main__ import main

    p = tmp_path / "evil.pt"
    torch.save({"format": "visual-lab-diffusion-2", "state_dict": Payload(tmp_path / "marker")}, p)
    rc = main(["run", "diffusion", "--dataset", "gmm", "--weights-in", str(p), "--train-steps", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "evil.pt" in err, err
    assert not (tmp_path / "marker").exists()
    p.write_bytes(pickle.dumps(Payload(tmp_path / "marker")))
    rc = main(["run", "threebody", "--integrator", "learned", "--policy", str(p), "--t-end", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "evil.pt" in err, err
    assert not (tmp_path / "marker").exists()


def test_bundled_weights_load_safely():
    """Every bundled .pt opens with weights_only=True (the GUI and tests load them that way)."""
    root = Path(__file__).resolve().parents[2] / "assets"
    files = sorted(root.rglob("*.pt"))
    assert len(files) >= 3
    for f in files:
        blob = torch.load(f, map_location="cpu", weights_only=True)
        assert isinstance(blob, dict) and any(isinstance(v, dict) for v in blob.values()), f
