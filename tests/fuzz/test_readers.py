"""Mutated real files through every reader: each ends in sane data or one UserError line within 10 s.

Sources: the real splat files of ../shared/data/splat (standard PLY, PlayCanvas compressed PLY, .splat,
gzip .spz v3) and the repo's assets; .spz v1, v2, zstd and v4 are re-packed from the real v3 file; the
cameras come from the real Mip-NeRF 360 garden cameras; tracks from the real ETH file.
"""

from __future__ import annotations

import gzip
import json
import re

import numpy as np
import pytest

from backends.splat import io as splat_io

from .helpers import ROOT, byte_mutations, outcome, shared, write

# -- splat files -----------------------------------------------------------------------------------------


def _sane_scene(g) -> None:
    """What a reader may return: validated Gaussians with finite, bounded values and unit quaternions."""
    g.validate("fuzzed")
    assert np.all(np.abs(g.means) <= 1e15) and np.all(g.scales > 0) and np.all(np.isfinite(g.sh))
    assert np.all((g.opacities >= 0) & (g.opacities <= 1))
    np.testing.assert_allclose(np.linalg.norm(g.quats, axis=1), 1, atol=1e-3)


def _ply_header_len(data: bytes) -> int:
    return data.index(b"end_header\n") + len(b"end_header\n")


def _ply_mutations(data: bytes) -> dict[str, bytes]:
    h = _ply_header_len(data)
    head, body = data[:h].decode("ascii"), data[h:]
    out = byte_mutations(data, h)
    count = int(re.search(r"element vertex (\d+)", head).group(1))
    for label, new in {
        "huge": "element vertex 99999999999999",
        "2^31": "element vertex 2147483648",
        "negative": "element vertex -1",
        "zero": "element vertex 0",
        "plus1": f"element vertex {count + 1}",
        "text": "element vertex many",
    }.items():
        out[f"count_{label}"] = re.sub(r"element vertex \d+", new, head).encode() + body
    out["format_ascii"] = head.replace("binary_little_endian", "ascii").encode() + body
    out["format_bogus"] = head.replace("binary_little_endian", "binary_middle_endian").encode() + body
    out["big_endian"] = head.replace("binary_little_endian", "binary_big_endian").encode() + body
    out["no_end_header"] = head.replace("end_header", "end_hedaer").encode() + body
    out["type_bogus"] = head.replace("property float x", "property float128 x", 1).encode() + body
    out["list_property"] = head.replace("property float x", "property list uchar int x", 1).encode() + body
    out["no_x"] = head.replace("property float x\n", "property float q\n", 1).encode() + body
    out["long_line"] = (head[:-11] + "comment " + "x" * 5000 + "\nend_header\n").encode() + body
    out["nonascii_header"] = head.replace("comment", "comment \u00e9", 1).encode("utf-8") + body
    return out


def _std_ply_values(data: bytes) -> dict[str, bytes]:
    """Values the format can hold but a scene cannot: non-finite and absurd positions, bad rotations."""
    import io
    from pathlib import Path

    _, elements, h, _ = splat_io.read_ply_header(io.BytesIO(data), Path("x.ply"))
    vertex = next(el for el in elements if el.name == "vertex")
    rec = np.frombuffer(data[h:], vertex.dtype, vertex.count).copy()
    out = {}
    has = set(rec.dtype.names)
    for label, field, value in [
        ("t_nan", "t", np.nan),
        ("x_nan", "x", np.nan),
        ("x_inf", "x", np.inf),
        ("x_3e38", "x", 3e38),
        ("z_-3e38", "z", -3e38),
        ("scale_inf", "scale_0", 1e30),
        ("opacity_nan", "opacity", np.nan),
        ("f_dc_inf", "f_dc_1", -np.inf),
        ("rot_nan", "rot_2", np.nan),
    ]:
        if field not in has:
            continue
        r = rec.copy()
        r[field][0] = value
        out[label] = data[:h] + r.tobytes()
    r = rec.copy()
    for k in ("rot_0", "rot_1", "rot_2", "rot_3"):
        r[k][-1] = 0.0
    out["rot_zero"] = data[:h] + r.tobytes()
    return out


def _cases(kind: str) -> list[tuple[str, str]]:
    return [(kind, m) for m in _MUTATIONS[kind]]


_MUTATIONS: dict[str, list[str]] = {}


def _register(kind: str, names: list[str]) -> None:
    _MUTATIONS[kind] = names


def _ply_std_bytes() -> bytes:
    return shared("splat", "metalsplatter_train3.ply").read_bytes()


def _ply_compressed_bytes() -> bytes:
    return shared("splat", "guitar.compressed.ply").read_bytes()


def _compressed_mutations(data: bytes) -> dict[str, bytes]:
    out = _ply_mutations(data)
    h = _ply_header_len(data)
    head, body = data[:h].decode("ascii"), data[h:]
    out["packed_position_float"] = (
        head.replace("uint packed_position", "float packed_position").encode() + body
    )
    out["packed_color_uchar"] = head.replace("uint packed_color", "uchar packed_color").encode() + body
    out["min_x_int"] = head.replace("float min_x", "int min_x").encode() + body
    out["no_packed_rotation"] = head.replace("uint packed_rotation", "uint packed_rotatio").encode() + body
    out["chunks_short"] = re.sub(r"element chunk \d+", "element chunk 1", head).encode() + body
    # non-finite chunk bounds: the first float of the chunk element is min_x
    b = bytearray(data)
    b[h : h + 4] = np.float32(np.inf).tobytes()
    out["min_x_inf"] = bytes(b)
    b[h : h + 4] = np.float32(np.nan).tobytes()
    out["min_x_nan"] = bytes(b)
    return out


def _splat_mutations(data: bytes) -> dict[str, bytes]:
    out = byte_mutations(data, 32)
    rec = np.frombuffer(data, splat_io.SPLAT_DTYPE).copy()
    for label, fn in {
        "pos_nan": lambda r: r["pos"].__setitem__((0, 0), np.nan),
        "pos_inf": lambda r: r["pos"].__setitem__((1, 2), -np.inf),
        "pos_3e38": lambda r: r["pos"].__setitem__((0, 1), 3e38),
        "scale_zero": lambda r: r["scale"].__setitem__((0, 0), 0.0),
        "scale_negative": lambda r: r["scale"].__setitem__((2, 1), -1.0),
        "scale_nan": lambda r: r["scale"].__setitem__((1, 1), np.nan),
        "rot_zero": lambda r: r["rot"].__setitem__(0, 128),
    }.items():
        r = rec.copy()
        fn(r)
        out[label] = r.tobytes()
    out["one_byte_extra"] = data + b"\x00"
    out["31_bytes"] = data[:31]
    return out


def _spz_legacy() -> bytes:
    return gzip.decompress(shared("splat", "metalsplatter_train3.spz").read_bytes())


def _spz_other_versions(legacy: bytes) -> dict[str, bytes]:
    """Valid v1 (float16 positions, 3-byte rotations) and v2 (3-byte rotations) payloads re-packed from the
    real v3 one, plus the zstd legacy stream and the v4 container."""
    from tests.backends.splat.test_io import _spz_v4

    n, deg = int(np.frombuffer(legacy[8:12], "<u4")[0]), legacy[12]
    per = (deg + 1) ** 2 - 1
    o = 16
    pos = legacy[o : o + 9 * n]
    o += 9 * n
    mid = legacy[o : o + 7 * n]  # alphas, colours, scales
    o += 7 * n + 4 * n
    sh = legacy[o : o + 3 * per * n]
    rot3 = bytes([128, 128, 128]) * n
    p = np.frombuffer(pos, np.uint8).reshape(n, 3, 3).astype(np.int32)
    v = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
    v = np.where(v & 0x800000, v - (1 << 24), v)
    f16 = (v / (1 << legacy[13])).astype("<f2").tobytes()

    def head(version: int) -> bytes:
        return np.array([0x5053474E, version, n], "<u4").tobytes() + legacy[12:16]

    import zstandard

    return {
        "v1": gzip.compress(head(1) + f16 + mid + rot3 + sh),
        "v2": gzip.compress(head(2) + pos + mid + rot3 + sh),
        "v3": gzip.compress(legacy),
        "v3zstd": zstandard.ZstdCompressor().compress(legacy),
        "v4": _spz_v4(legacy),
    }


def _spz_mutations(version: str, data: bytes, legacy: bytes) -> dict[str, bytes]:
    import zstandard

    out = byte_mutations(data, 32 if version == "v4" else 10)
    if version == "v4":
        for label, (pos, value) in {
            "count_huge": (8, b"\xff\xff\xff\xff"),
            "count_zero": (8, b"\x00\x00\x00\x00"),
            "sh_255": (12, b"\xff"),
            "frac_bits_255": (13, b"\xff"),
            "flags_ext": (14, b"\x02"),
            "streams_9": (15, b"\x09"),
            "toc_far": (16, b"\xff\xff\xff\x00"),
        }.items():
            b = bytearray(data)
            b[pos : pos + len(value)] = value
            out[label] = bytes(b)
        return out
    body = legacy
    if version in ("v1", "v2"):
        body = gzip.decompress(data)
    pack = (lambda x: zstandard.ZstdCompressor().compress(x)) if version == "v3zstd" else gzip.compress
    for label, (pos, value) in {
        "count_huge": (8, b"\xff\xff\xff\xff"),
        "count_1e6": (8, np.uint32(1_000_000).tobytes()),
        "count_zero": (8, b"\x00\x00\x00\x00"),
        "version_9": (4, b"\x09\x00\x00\x00"),
        "magic_bad": (0, b"XXXX"),
        "sh_4": (12, b"\x04"),
        "frac_bits_255": (13, b"\xff"),
        "frac_bits_25": (13, b"\x19"),
        "flags_ext": (14, b"\x02"),
    }.items():
        b = bytearray(body)
        b[pos : pos + len(value)] = value
        out[label] = pack(bytes(b))
    out["inner_truncated"] = pack(body[:-5])
    out["inner_extra"] = pack(body + b"\x00" * 100)
    out["bomb"] = pack(body + bytes(50_000_000))  # 50 MB of zeros behind a 3-Gaussian header
    return out


def _all_splat_inputs() -> dict[str, dict[str, bytes]]:
    std, comp = _ply_std_bytes(), _ply_compressed_bytes()
    splat = shared("splat", "metalsplatter_train3.splat").read_bytes()
    legacy = _spz_legacy()
    spz = _spz_other_versions(legacy)
    out = {
        "ply": {**_ply_mutations(std), **_std_ply_values(std)},
        "ply4d": _std_ply_values((ROOT / "assets" / "splat" / "dynamic_4d.ply").read_bytes()),
        "plyc": _compressed_mutations(comp),
        "splat": _splat_mutations(splat),
    }
    for v, data in spz.items():
        out[f"spz{v}"] = _spz_mutations(v, data, legacy)
    return out


try:  # the parameter list needs the real files; without them every case is skipped cleanly
    _SPLAT = _all_splat_inputs()
except pytest.skip.Exception:
    _SPLAT = {}
SUFFIX = {"ply": ".ply", "ply4d": ".ply", "plyc": ".ply", "splat": ".splat"}


@pytest.mark.parametrize(
    "kind, mutation",
    [(k, m) for k, ms in _SPLAT.items() for m in ms] or [pytest.param("", "", marks=pytest.mark.skip)],
)
def test_splat_reader(tmp_path, kind, mutation):
    p = write(tmp_path, "scene" + SUFFIX.get(kind, ".spz"), _SPLAT[kind][mutation])
    status, value = outcome(splat_io.load, p)
    if status == "ok":
        _sane_scene(value)
    else:
        assert "scene" in value, value  # the message names the file


def test_splat_value_mutations_are_refused():
    """The values the issue found accepted (x = 3e38, NaN/zero quaternions, float packed_position,
    frac_bits 255) are now errors, not silently substituted."""
    if not _SPLAT:
        pytest.skip("shared data not available")
    import tempfile
    from pathlib import Path

    refused = {
        ("ply", "x_3e38"): "position",
        ("ply", "rot_nan"): "rotation",
        ("ply", "rot_zero"): "rotation",
        ("ply4d", "x_inf"): "position",
        ("plyc", "packed_position_float"): "packed_position",
        ("plyc", "min_x_inf"): "min_x",
        ("splat", "rot_zero"): "rotation",
        ("splat", "pos_3e38"): "position",
        ("spzv3", "frac_bits_255"): "frac_bits",
        ("spzv4", "frac_bits_255"): "frac_bits",
        ("spzv3", "bomb"): "more than",
        ("spzv3zstd", "bomb"): "more than",
    }
    with tempfile.TemporaryDirectory() as d:
        for (kind, mutation), word in refused.items():
            p = write(Path(d), "scene" + SUFFIX.get(kind, ".spz"), _SPLAT[kind][mutation])
            status, msg = outcome(splat_io.load, p)
            assert status == "error" and word in msg, (kind, mutation, msg)


def test_unmutated_sources_load():
    """The mutation sources themselves are valid (so the errors above come from the damage)."""
    if not _SPLAT:
        pytest.skip("shared data not available")
    import tempfile
    from pathlib import Path

    legacy = _spz_legacy()
    with tempfile.TemporaryDirectory() as d:
        ref = splat_io.load(shared("splat", "metalsplatter_train3.spz"))
        for v, data in _spz_other_versions(legacy).items():
            g = splat_io.load(write(Path(d), f"{v}.spz", data))
            assert g.count == 3
            tol = 1e-2 if v == "v1" else 1e-6  # float16 positions
            np.testing.assert_allclose(g.means, ref.means, atol=tol)


# -- cameras.json ----------------------------------------------------------------------------------------


def _garden_cameras() -> list[dict]:
    d = np.load(shared("splat", "gsplat_test_garden.npz"))
    out = []
    for i, (vm, K) in enumerate(zip(d["viewmats"], d["Ks"])):
        rot = vm[:3, :3].T  # camera-to-world
        out.append(
            {
                "id": i,
                "img_name": f"{i:05d}",
                "width": int(d["width"]),
                "height": int(d["height"]),
                "position": (-rot @ vm[:3, 3]).tolist(),
                "rotation": rot.tolist(),
                "fx": float(K[0, 0]),
                "fy": float(K[1, 1]),
            }
        )
    return out


def _camera_mutations() -> dict[str, str]:
    cams = _garden_cameras()
    text = json.dumps(cams)
    out = {k: v.decode("latin-1") for k, v in byte_mutations(text.encode(), 64).items() if k != "nonutf8"}

    def edit(field, value, i=0):
        c = json.loads(text)
        c[i][field] = value
        return json.dumps(c)

    for label, (field, value) in {
        "fx_inf": ("fx", 1e999),
        "fx_huge": ("fx", 1e300),
        "fx_zero": ("fx", 0),
        "fx_negative": ("fx", -500.0),
        "fx_string": ("fx", "abc"),
        "fx_null": ("fx", None),
        "fx_bool": ("fx", True),
        "width_huge": ("width", 10**9),
        "width_zero": ("width", 0),
        "width_fraction": ("width", 12.5),
        "height_negative": ("height", -420),
        "rotation_zero": ("rotation", [[0, 0, 0]] * 3),
        "rotation_scaled": ("rotation", (2 * np.eye(3)).tolist()),
        "rotation_reflect": ("rotation", np.diag([1.0, 1.0, -1.0]).tolist()),
        "rotation_2x2": ("rotation", [[1, 0], [0, 1]]),
        "rotation_strings": ("rotation", [["a"] * 3] * 3),
        "position_short": ("position", [1, 2]),
        "position_huge": ("position", [1e300, 0, 0]),
    }.items():
        out[label] = edit(field, value, i=1)
    out["fx_inf_token"] = edit("fx", 1.0).replace('"fx": 1.0', '"fx": Infinity', 1)
    out["nan_token"] = text.replace(str(cams[0]["fy"]), "NaN", 1)
    out["missing_fy"] = json.dumps([{k: v for k, v in cams[0].items() if k != "fy"}])
    out["deep"] = "[" * 100_000 + "]" * 100_000
    out["deep_object"] = '{"a":' * 50_000 + "1" + "}" * 50_000
    out["object"] = json.dumps({"cameras": cams})
    out["empty_list"] = "[]"
    out["list_of_numbers"] = "[1, 2, 3]"
    out["whitespace"] = "   \n"
    return out


try:
    _CAMS = _camera_mutations()
except pytest.skip.Exception:
    _CAMS = {}


@pytest.mark.parametrize("mutation", list(_CAMS) or [pytest.param("", marks=pytest.mark.skip)])
def test_cameras_json(tmp_path, mutation):
    from backends.splat.camera import load_cameras_json

    p = write(tmp_path, "cameras.json", _CAMS[mutation].encode("latin-1"))
    status, value = outcome(load_cameras_json, p)
    if status == "ok":
        for c in value:
            assert 1 <= c.width <= 16384 and 1 <= c.height <= 16384
            assert np.isfinite(c.fx) and c.fx > 0 and np.isfinite(c.fy) and c.fy > 0
            np.testing.assert_allclose(c.R @ c.R.T, np.eye(3), atol=1e-2)
    else:
        assert "cameras.json" in value, value


def test_bad_cameras_name_the_camera_and_field(tmp_path):
    from backends.splat.camera import load_cameras_json

    if not _CAMS:
        pytest.skip("shared data not available")
    for mutation, words in {
        "fx_inf": ("Infinity",),
        "fx_huge": ("camera 1", "'fx'"),
        "fx_inf_token": ("Infinity",),
        "rotation_zero": ("camera 1", "'rotation'"),
        "width_huge": ("camera 1", "'width'", "16384"),
        "deep": ("nested",),
    }.items():
        _, msg = outcome(load_cameras_json, write(tmp_path, "cameras.json", _CAMS[mutation]))
        assert all(w in msg for w in words), (mutation, msg)


def test_non_utf8_cameras_name_the_file(tmp_path):
    from backends.splat.camera import load_cameras_json

    status, msg = outcome(load_cameras_json, write(tmp_path, "cameras.json", b'[{"fx": "\xff\xfe"}]'))
    assert status == "error" and "cameras.json" in msg and "UTF-8" in msg


# -- trajectories ------------------------------------------------------------------------------------------


def _eth_text() -> str:
    lines = shared("ethucy", "eth", "test", "biwi_eth.txt").read_text().splitlines()
    return "\n".join(lines[:600]) + "\n"


def _track_mutations(text: str, sep: str) -> dict[str, bytes]:
    data = text.encode()
    out = byte_mutations(data, 40)
    first = text.splitlines()[0]
    cells = first.split(sep) if sep != "\t" else first.split()
    for label, line in {
        "three_columns": sep.join(cells[:3]),
        "five_columns": sep.join(cells + ["1"]),
        "word": sep.join(cells[:2] + ["abc", cells[3]]),
        "nan": sep.join(cells[:2] + ["nan", cells[3]]),
        "inf": sep.join(cells[:2] + [cells[2], "-inf"]),
        "overflow": sep.join(cells[:2] + ["1e400", cells[3]]),
        "empty_cell": sep.join(cells[:2] + ["", cells[3]]),
    }.items():
        out[label] = (text + line + "\n").encode()
    out["duplicate_row"] = (text + first + "\n").encode()
    out["only_comments"] = b"# nothing here\n# at all\n"
    out["binary"] = bytes(range(256)) * 4
    out["huge_line"] = (text + "1" * 2_000_000 + "\n").encode()
    return out


try:
    _ETH = _eth_text()
    _TXT = _track_mutations(_ETH, "\t")
    _CSVT = "frame,ped,x,y\n" + "".join(
        ",".join(line.split()) + "\n" for line in _ETH.splitlines() if line.strip()
    )
    _CSV = _track_mutations(_CSVT, ",")
    _CSV["missing_column"] = _CSVT.replace("frame,ped,x,y", "frame,ped,x,z", 1).encode()
    _CSV["quote_open"] = (_CSVT + '"1,2,3,4\n').encode()
    _CSV["header_only"] = b"frame,ped,x,y\n"
except pytest.skip.Exception:
    _TXT, _CSV = {}, {}


def _sane_tracks(tr) -> None:
    assert tr.rows.ndim == 2 and tr.rows.shape[1] == 4 and len(tr.rows) > 0
    assert np.all(np.isfinite(tr.rows))
    key = tr.rows[:, :2]
    assert len(np.unique(key, axis=0)) == len(key)  # no pedestrian twice in a frame


@pytest.mark.parametrize("mutation", list(_TXT) or [pytest.param("", marks=pytest.mark.skip)])
def test_ethucy_reader(tmp_path, mutation):
    from backends.trajectory.data import make_windows, read_ethucy

    status, value = outcome(read_ethucy, write(tmp_path, "crowd.txt", _TXT[mutation]))
    if status == "ok":
        _sane_tracks(value)
        make_windows(value)
    else:
        assert "crowd.txt" in value, value


@pytest.mark.parametrize("mutation", list(_CSV) or [pytest.param("", marks=pytest.mark.skip)])
def test_csv_tracks_reader(tmp_path, mutation):
    from backends.trajectory.data import read_csv_tracks

    status, value = outcome(read_csv_tracks, write(tmp_path, "tracks.csv", _CSV[mutation]))
    if status == "ok":
        _sane_tracks(value)
    else:
        assert "tracks.csv" in value, value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"delimiter": "ab"},
        {"delimiter": ""},
        {"delimiter": "\n"},
        {"fps": 0.0},
        {"fps": float("nan")},
        {"fps": 1e300},
        {"frame_col": 10**9, "ped_col": 1, "x_col": 2, "y_col": 3},
        {"frame_col": "nope"},
    ],
)
def test_csv_tracks_options(tmp_path, kwargs):
    from backends.trajectory.data import read_csv_tracks

    if not _CSV:
        pytest.skip("shared data not available")
    status, _ = outcome(read_csv_tracks, write(tmp_path, "tracks.csv", _CSVT), **kwargs)
    assert status == "error"


# -- diffusion point sets ----------------------------------------------------------------------------------

_POINTS = "x,y\n" + "".join(f"{np.cos(t):.5f},{np.sin(t):.5f}\n" for t in np.linspace(0, 6, 50))
_POINT_CASES = {
    **{k: v for k, v in byte_mutations(_POINTS.encode(), 8).items()},
    "identical": b"x,y\n" + b"1.5,2.5\n" * 100,
    "cols_5000": (",".join(["1"] * 5000) + "\n" + ",".join(["2"] * 5000) + "\n").encode(),
    "one_column": b"1\n2\n3\n",
    "one_row": b"1,2\n",
    "nan": (_POINTS + "nan,1\n").encode(),
    "inf": (_POINTS + "1,inf\n").encode(),
    "huge": (_POINTS + "1e39,1\n").encode(),
    "ragged": (_POINTS + "1,2,3\n").encode(),
    "word": (_POINTS + "a,b\n").encode(),
    "header_only": b"x,y\n",
    "quote": (_POINTS + '"1,2\n').encode(),
}


@pytest.mark.parametrize("mutation", list(_POINT_CASES))
def test_diffusion_csv_points(tmp_path, mutation):
    from backends.diffusion.data import load_csv_points

    status, value = outcome(load_csv_points, write(tmp_path, "points.csv", _POINT_CASES[mutation]))
    if status == "ok":
        assert value.ndim == 2 and 2 <= value.shape[1] <= 256 and len(value) >= 2
        assert np.all(np.isfinite(value)) and np.ptp(value, axis=0).max() > 0
    else:
        assert "points.csv" in value, value


# -- weights and policies ----------------------------------------------------------------------------------


def _weight_sources() -> dict[str, tuple]:
    from backends.diffusion.models import load_trained
    from backends.nbody.learned import load_policy
    from backends.trajectory.eigentrajectory import ETModel

    a = ROOT / "assets"
    return {
        "diffusion": (load_trained, a / "diffusion" / "digits_edm.pt"),
        "policy": (load_policy, a / "nbody" / "dqn_policy.pt"),
        "eigentrajectory": (ETModel.load, a / "trajectory" / "eigentrajectory_synthetic.pt"),
    }


def _weight_mutations(data: bytes) -> dict[str, bytes]:
    import io

    import torch

    out = byte_mutations(data, 64)
    for label, obj in {
        "tensor": torch.zeros(3),
        "list": [1, 2, 3],
        "empty_dict": {},
        "wrong_format": {"format": "something-else", "state_dict": {}},
        "state_dict_wrong_shapes": {
            "format": "visual-lab-diffusion-2",
            "state_dict": {"w": torch.zeros(2)},
            "obs_dim": 10**9,
            "config": {"k": 10**6},
        },
    }.items():
        buf = io.BytesIO()
        torch.save(obj, buf)
        out[label] = buf.getvalue()
    return out


_WEIGHTS = {kind: _weight_mutations(src.read_bytes()) for kind, (_, src) in _weight_sources().items()}


@pytest.mark.parametrize("kind, mutation", [(k, m) for k, ms in _WEIGHTS.items() for m in ms])
def test_weights_loaders(tmp_path, kind, mutation):
    import torch

    loader, _ = _weight_sources()[kind]
    status, value = outcome(loader, write(tmp_path, "w.pt", _WEIGHTS[kind][mutation]))
    if status == "error":
        assert "w.pt" in value, value
    else:  # damage the zip format ignores (a local header byte): the same, finite model
        net = getattr(value, "net", None)
        assert isinstance(net, torch.nn.Module), (kind, mutation)
        assert all(torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point())
