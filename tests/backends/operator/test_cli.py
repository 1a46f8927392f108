"""`visual-lab run operator ...` end to end on tiny sets; weights files that are corrupt, foreign or pickled."""

import json

import numpy as np
import pytest
import torch

from app.__main__ import main as app_main
from backends.common import UserError
from backends.operator import checkpoint
from backends.operator.cli import main

pytest.importorskip("neuralop")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("op")
    assert main(["generate", "--model", "darcy", "--count", "24", "--n", "17", "--seed", "2", "--out",
                 str(d / "d.npz"), "--quiet"]) == 0  # fmt: skip
    assert main(["train", "--data", str(d / "d.npz"), "--model", "fno", "--epochs", "3", "--modes", "4",
                 "--width", "8", "--n-test", "4", "--save-weights", str(d / "w"), "--out", str(d / "m.json"),
                 "--quiet"]) == 0  # fmt: skip
    return d


def test_train_then_eval_reports_the_mean_relative_l2_of_the_test_samples(trained):
    d = trained
    m = json.loads((d / "m.json").read_text())
    assert len(m["history"]) == 3 and m["resolution"] == 17
    assert main(["eval", "--weights", str(d / "w"), "--data", str(d / "d.npz"), "--predictions",
                 str(d / "p.npz"), "--out", str(d / "e.json"), "--quiet"]) == 0  # fmt: skip
    e = json.loads((d / "e.json").read_text())
    with np.load(d / "p.npz") as z:
        x, y, p = z["x"], z["y"], z["prediction"]
    assert len(y) == 4 == e["count"]  # the held-out samples of the training file
    with np.load(d / "d.npz") as z:
        assert np.array_equal(x, z["x"][-4:])
    expected = np.mean([np.linalg.norm(p[i] - y[i]) / np.linalg.norm(y[i]) for i in range(4)])
    assert abs(e["rel_l2"] - expected) < 1e-6 and abs(e["rel_l2"] - m["rel_l2"]) < 1e-6
    assert e["resolution"] == 17


def test_refine_writes_a_checkpoint_that_eval_rebuilds(trained):
    d = trained
    assert main(["refine", "--weights", str(d / "w"), "--data", str(d / "d.npz"), "--epochs", "2",
                 "--save-weights", str(d / "w2"), "--out", str(d / "r.json"), "--quiet"]) == 0  # fmt: skip
    r = json.loads((d / "r.json").read_text())
    assert r["model"]["last_modes"] == 17 and r["cost_ratio"] > 0
    assert main(["eval", "--weights", str(d / "w2"), "--data", str(d / "d.npz"), "--out", str(d / "e2.json"),
                 "--quiet"]) == 0  # fmt: skip
    assert abs(json.loads((d / "e2.json").read_text())["rel_l2"] - r["rel_l2"]) < 1e-6


@pytest.mark.parametrize(
    "argv, match",
    [
        (["generate", "--model", "darcy", "--count", "0", "--n", "17", "--out", "x.npz"], "--count"),
        (["generate", "--model", "darcy", "--count", "2", "--n", "8", "--out", "x.npz"], "--n"),
        (["generate", "--model", "ns", "--count", "2", "--n", "16", "--nu", "5", "--out", "x.npz"], "--nu"),
        (["generate", "--model", "ns", "--count", "2", "--n", "16", "--frame-dt", "0", "--out", "x.npz"],
         "--frame-dt"),
        (["generate", "--model", "ns", "--count", "2", "--n", "16", "--frame-dt", "nan", "--out", "x.zarr"],
         "--frame-dt"),
        (["generate", "--model", "darcy", "--count", "2", "--n", "17", "--out", "x.txt"], "must end in .npz"),
        (["train", "--data", "d.npz", "--model", "fno", "--epochs", "1", "--modes", "0", "--save-weights", "w",
          "--out", "m.json"], "--modes"),
        (["train", "--data", "d.npz", "--model", "fno", "--epochs", "1", "--lr", "-1", "--save-weights", "w",
          "--out", "m.json"], "--lr"),
        (["eval", "--weights", "w", "--data", "d.npz", "--out", "e.json", "--threads", "0"], "--threads"),
    ],
)  # fmt: skip
def test_numeric_options_are_checked_before_work(argv, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=match):
        main(argv)
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "w").exists()


def _eval_error(tmp_path, weights, data, capsys) -> str:
    rc = app_main(["run", "operator", "eval", "--weights", str(weights), "--data", str(data),
                   "--out", str(tmp_path / "e.json")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and not (tmp_path / "e.json").exists()
    return err


def test_corrupt_foreign_and_pickled_weights_give_one_clear_line(trained, tmp_path, capsys):
    data = trained / "d.npz"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((trained / "w" / "config.json").read_text())
    # corrupt: random bytes
    (bad / "weights.safetensors").write_bytes(np.random.default_rng(0).bytes(300))
    assert "not a readable safetensors file" in _eval_error(tmp_path, bad, data, capsys)
    # truncated real file
    real = (trained / "w" / "weights.safetensors").read_bytes()
    (bad / "weights.safetensors").write_bytes(real[: len(real) // 2])
    assert "not a readable safetensors file" in _eval_error(tmp_path, bad, data, capsys)
    # foreign: a valid safetensors file of another model
    from safetensors.torch import save_file

    save_file({"encoder.weight": torch.zeros(3, 3)}, str(bad / "weights.safetensors"))
    assert "do not match a fno model" in _eval_error(tmp_path, bad, data, capsys)
    # pickle: a torch.save file whose unpickling would run code
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"x": Evil()}, bad / "weights.safetensors")
    assert "not a readable safetensors file" in _eval_error(tmp_path, bad, data, capsys)
    assert not marker.exists()
    # a foreign config
    (bad / "config.json").write_text(json.dumps({"format": "other"}))
    assert "not a visual-lab-operator checkpoint" in _eval_error(tmp_path, bad, data, capsys)
    (bad / "config.json").write_text("{not json")
    assert "not valid JSON" in _eval_error(tmp_path, bad, data, capsys)


def test_checkpoint_with_nan_weights_is_refused(trained, tmp_path):
    model, _ = checkpoint.load(trained / "w")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    checkpoint.save(tmp_path / "nan", model)
    with pytest.raises(UserError, match="NaN"):
        checkpoint.load(tmp_path / "nan")
