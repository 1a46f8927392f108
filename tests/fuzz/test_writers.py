"""Output paths are validated before the work, and writers keep the requested name and format or refuse."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from app import export
from backends import safeio
from backends.common import UserError


def test_check_writable_refusals(tmp_path):
    src = tmp_path / "in.ply"
    src.write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    cases = {
        str(tmp_path / "sub"): "it is a folder",
        str(tmp_path / "sub") + os.sep: "it is a folder",
        str(tmp_path / "missing" / "x.npz"): "does not exist",
        str(tmp_path / "x.dat"): "must end in .npz",
        str(tmp_path / "x"): "got no suffix",
        "": "empty",
    }
    for path, words in cases.items():
        with pytest.raises(UserError, match=words):
            safeio.check_writable(path, suffixes=(".npz",))
    with pytest.raises(UserError, match="also an input"):
        safeio.check_writable(src, suffixes=(".ply",), inputs=[str(src)])
    with pytest.raises(UserError, match="also an input"):  # the same file through another spelling
        safeio.check_writable(tmp_path / "sub" / ".." / "in.ply", inputs=[src])
    assert safeio.check_writable(tmp_path / "X.NPZ", suffixes=(".npz",)) == tmp_path / "X.NPZ"


def test_export_writers_refuse_other_suffixes(tmp_path):
    img = np.zeros((4, 4, 3), np.uint8)
    for fn, name in [
        (lambda p: export.save_png(p, img), "x.jpg"),
        (lambda p: export.save_npz(p, a=np.zeros(2)), "x.dat"),
        (lambda p: export.save_csv(p, ["a"], [np.zeros(2)]), "x.txt"),
        (lambda p: export.write_video(p, [img]), "x.avi"),
    ]:
        with pytest.raises(UserError, match="must end in"):
            fn(tmp_path / name)
        assert not (tmp_path / name).exists()
    with pytest.raises(UserError, match="fps"):
        export.write_video(tmp_path / "v.gif", [img], fps=float("nan"))
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    p = tmp_path / "a.npz"
    export.save_npz(p, a=np.arange(3))
    old = p.read_bytes()
    with pytest.raises(RuntimeError):
        with safeio.atomic_write(p) as fh:
            fh.write(b"partial")
            raise RuntimeError("disk full")
    assert p.read_bytes() == old and os.listdir(tmp_path) == ["a.npz"]  # temp file removed
    with np.load(p, allow_pickle=False) as z:
        assert z["a"].tolist() == [0, 1, 2]


def test_atomic_write_file_mode_follows_umask(tmp_path):
    p = safeio.write_text(tmp_path / "t.txt", "hi")
    mask = os.umask(0)
    os.umask(mask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_strict_json(tmp_path):
    with pytest.raises(UserError, match="t.json"):
        safeio.write_json(tmp_path / "t.json", {"x": float("nan")})
    assert not (tmp_path / "t.json").exists()
    p = safeio.write_json(tmp_path / "t.json", safeio.json_safe({"x": np.float32(np.nan), "y": np.arange(2)}))
    assert json.loads(p.read_text()) == {"x": None, "y": [0, 1]}
    with pytest.raises(UserError, match="session"):
        export.write_sidecar(tmp_path / "f.png", {"zoom": float("inf")})
    assert not export.sidecar_path(tmp_path / "f.png").exists()


def test_pde_out_is_checked_before_the_run(tmp_path, capsys):
    from app.__main__ import main

    (tmp_path / "folder").mkdir()
    for out, words in [("folder", "folder"), ("run.dat", ".npz"), ("missing/run.npz", "does not exist")]:
        assert main(["run", "pde", "--model", "heat", "--out", str(tmp_path / out)]) == 2
        assert words in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["folder"] and os.listdir(tmp_path / "folder") == []
