"""Property: for every reader, ANY byte string gives valid data or the project's UserError (one line).

Two strategies per format: arbitrary bytes, and a valid header or prefix followed by arbitrary bytes (to
reach the code behind the magic numbers)."""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import outcome

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)
_DIR = Path(tempfile.mkdtemp(prefix="visual-lab-fuzz-"))


def _file(name: str, data: bytes) -> Path:
    p = _DIR / name
    p.write_bytes(data)
    return p


def _splat_ok(g) -> None:
    g.validate("x")
    assert np.all(np.isfinite(g.means)) and np.all(g.scales > 0)


PLY_HEAD = (
    b"ply\nformat binary_little_endian 1.0\nelement vertex 2\n"
    + b"".join(b"property float %s\n" % k for k in (b"x", b"y", b"z", b"f_dc_0", b"f_dc_1", b"f_dc_2"))
    + b"".join(b"property float %s\n" % k for k in (b"opacity", b"scale_0", b"scale_1", b"scale_2"))
    + b"".join(b"property float rot_%d\n" % i for i in range(4))
    + b"end_header\n"
)
SPZ_HEAD = np.array([0x5053474E, 2, 2], "<u4").tobytes() + bytes([0, 12, 0, 0])


@SETTINGS
@given(st.binary(max_size=2048))
def test_ply_any_bytes(data):
    from backends.splat import io

    for body in (data, PLY_HEAD + data):
        status, value = outcome(io.load, _file("p.ply", body))
        if status == "ok":
            _splat_ok(value)


@SETTINGS
@given(st.binary(max_size=512))
def test_splat_any_bytes(data):
    from backends.splat import io

    status, value = outcome(io.load, _file("s.splat", data))
    if status == "ok":
        _splat_ok(value)


@SETTINGS
@given(st.binary(max_size=512))
def test_spz_any_bytes(data):
    from backends.splat import io

    for body in (data, gzip.compress(data), gzip.compress(SPZ_HEAD + data), SPZ_HEAD + data):
        status, value = outcome(io.load, _file("s.spz", body))
        if status == "ok":
            _splat_ok(value)


@SETTINGS
@given(st.binary(max_size=1024))
def test_cameras_any_bytes(data):
    from backends.splat.camera import load_cameras_json

    status, value = outcome(load_cameras_json, _file("cameras.json", data))
    if status == "ok":
        assert all(c.fx > 0 and 1 <= c.width <= 16384 for c in value)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=8)
    ),
    max_leaves=40,
)


@settings(SETTINGS, max_examples=30)
@given(JSONISH)
def test_cameras_any_json(value):
    from backends.splat.camera import load_cameras_json

    outcome(load_cameras_json, _file("cameras.json", json.dumps(value).encode()))


@SETTINGS
@given(st.binary(max_size=1024))
def test_ethucy_any_bytes(data):
    from backends.trajectory.data import read_ethucy

    status, value = outcome(read_ethucy, _file("t.txt", data))
    if status == "ok":
        assert np.all(np.isfinite(value.rows)) and value.rows.shape[1] == 4


@SETTINGS
@given(st.text(alphabet="0123456789.,-e \t\nabnif#", max_size=400))
def test_tracks_csv_any_text(text):
    from backends.trajectory.data import read_csv_tracks

    status, value = outcome(read_csv_tracks, _file("t.csv", ("frame,ped,x,y\n" + text).encode()))
    if status == "ok":
        assert np.all(np.isfinite(value.rows)) and value.rows.shape[1] == 4


@settings(SETTINGS, max_examples=30)
@given(st.text(alphabet="0123456789.,-e \n#nai", max_size=400))
def test_points_csv_any_text(text):
    from backends.diffusion.data import load_csv_points

    status, value = outcome(load_csv_points, _file("p.csv", text.encode()))
    if status == "ok":
        assert value.shape[1] >= 2 and np.all(np.isfinite(value))


@SETTINGS
@given(st.binary(max_size=1024))
def test_weights_any_bytes(data):
    from backends.nbody.learned import load_policy
    from backends.safeio import load_npz

    status, _ = outcome(load_policy, _file("w.pt", data))
    assert status == "error"
    outcome(load_npz, _file("w.npz", data))
