"""Splat file formats: real files from three tools decode to the same Gaussians; bad files fail clearly."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from backends.common import UserError, drain
from backends.splat import io
from backends.splat.gaussians import SH_C0, Gaussians
from tests.conftest import shared_data


def _same_rotation(q1, q2):
    return np.abs(np.sum(q1 * q2, axis=1))  # |<q1, q2>| = 1 for the same rotation


def test_metalsplatter_three_formats_agree():
    ply = io.load(shared_data("splat", "metalsplatter_train3.ply"))
    spl = io.load(shared_data("splat", "metalsplatter_train3.splat"))
    spz = io.load(shared_data("splat", "metalsplatter_train3.spz"))
    assert ply.count == spl.count == spz.count == 3
    assert ply.sh_degree == 3 and spz.sh_degree == 3 and spl.sh_degree == 0
    # positions: .splat stores float32 exactly; .spz 24-bit fixed point with 12 fractional bits
    np.testing.assert_allclose(spl.means, ply.means, atol=1e-6)
    np.testing.assert_allclose(spz.means, ply.means, atol=0.5 / 4096 + 1e-6)
    # scales: .splat float32 linear; .spz log scale in steps of 1/16
    np.testing.assert_allclose(spl.scales, ply.scales, rtol=1e-5)
    np.testing.assert_allclose(np.log(spz.scales), np.log(ply.scales), atol=0.5 / 16 + 1e-5)
    # opacity: 8-bit in both (MetalSplatter's .splat writer truncates instead of rounding: one step)
    np.testing.assert_allclose(spl.opacities, ply.opacities, atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(spz.opacities, ply.opacities, atol=0.5 / 255 + 1e-6)
    # colour: .splat 8-bit of 0.5 + C0 f_dc; .spz 8-bit of 0.5 + 0.15 f_dc
    np.testing.assert_allclose(spl.base_colors(), ply.base_colors(), atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(spz.sh[:, 0], ply.sh[:, 0], atol=0.5 / 255 / 0.15 + 1e-5)
    # rotation: .splat 8 bits per component; .spz smallest-three with 9-bit magnitudes
    assert np.all(_same_rotation(spl.quats, ply.quats) > 0.999)
    assert np.all(_same_rotation(spz.quats, ply.quats) > 0.99999)
    # higher SH: .spz rounds to buckets of 8/128 (degree 1) and 16/128 (degrees 2, 3), clamped to [-1, 1)
    ref = np.clip(ply.sh[:, 1:], -1, 127 / 128)
    np.testing.assert_array_less(np.abs(spz.sh[:, 1:4] - ref[:, 0:3]), 4.5 / 128 + 1e-6)  # round, then bucket
    np.testing.assert_array_less(np.abs(spz.sh[:, 4:] - ref[:, 3:]), 8.5 / 128 + 1e-6)
    # the largest SH coefficient survives quantisation with the right sign (checks layout and axis flips)
    i, k, c = np.unravel_index(np.argmax(np.abs(ply.sh[:, 1:])), ply.sh[:, 1:].shape)
    assert abs(ply.sh[i, 1 + k, c]) > 0.09
    assert np.sign(spz.sh[i, 1 + k, c]) == np.sign(ply.sh[i, 1 + k, c])


def test_ply_f_rest_is_channel_major():
    """3DGS writes f_rest as features_rest.transpose(1, 2).flatten: all R coefficients first."""
    path = shared_data("splat", "metalsplatter_train3.ply")
    raw = path.read_bytes()
    body = np.frombuffer(raw[raw.index(b"end_header\n") + 11 :], "<f4").reshape(3, 62)
    g = io.load(path)
    np.testing.assert_array_equal(g.sh[:, 1:, 0], body[:, 9:24])  # R
    np.testing.assert_array_equal(g.sh[:, 1:, 2], body[:, 39:54])  # B


def test_guitar_compressed_ply():
    g = io.load(shared_data("splat", "guitar.compressed.ply"))
    assert g.count == 90_854
    assert g.sh_degree == 0
    lo, hi = g.bounds()
    assert np.all(hi - lo > 0.5) and np.all(hi - lo < 20)  # a table-top object, metres
    assert 0 < g.opacities.min() and g.opacities.max() <= 1
    np.testing.assert_allclose(np.linalg.norm(g.quats, axis=1), 1, atol=1e-5)
    # the chunk min/max ranges bound every decoded position
    assert np.all(np.isfinite(g.means))


def _random_scene(n=50, degree=3, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    return Gaussians(
        means=rng.normal(size=(n, 3)),
        scales=np.exp(rng.normal(-2, 0.5, (n, 3))),
        quats=q / np.linalg.norm(q, axis=1, keepdims=True),
        opacities=rng.uniform(0.05, 0.95, n),
        sh=rng.normal(0, 0.3, (n, (degree + 1) ** 2, 3)),
        extras={"material": rng.integers(0, 4, n)},
    )


def test_ply_roundtrip_exact(tmp_path):
    g = _random_scene()
    io.write_ply(tmp_path / "a.ply", g)
    h = io.load(tmp_path / "a.ply")
    np.testing.assert_allclose(h.means, g.means, atol=1e-7)
    np.testing.assert_allclose(h.scales, g.scales, rtol=1e-5)
    np.testing.assert_allclose(h.sh, g.sh, atol=1e-7)
    np.testing.assert_allclose(h.opacities, g.opacities, atol=1e-6)
    np.testing.assert_allclose(h.quats, g.quats, atol=1e-6)
    np.testing.assert_array_equal(h.extras["material"], g.extras["material"])


def test_splat_roundtrip_within_quantisation(tmp_path):
    g = _random_scene(degree=0)
    g.sh[:, 0] = np.clip(g.sh[:, 0], -0.5 / SH_C0 + 0.01, 0.5 / SH_C0 - 0.01)
    io.write_splat(tmp_path / "a.splat", g)
    h = io.load(tmp_path / "a.splat")
    order = np.argsort(-(g.scales.astype(np.float64).prod(1) * g.opacities))
    np.testing.assert_allclose(h.means, g.means[order], atol=1e-7)
    np.testing.assert_allclose(h.base_colors(), g.base_colors()[order], atol=0.5 / 255 + 1e-6)
    assert np.all(_same_rotation(h.quats, g.quats[order]) > 0.999)


def test_truncated_files_fail_clearly(tmp_path):
    g = _random_scene()
    io.write_ply(tmp_path / "a.ply", g)
    raw = (tmp_path / "a.ply").read_bytes()
    (tmp_path / "t.ply").write_bytes(raw[:-100])
    with pytest.raises(UserError, match="truncated"):
        io.load(tmp_path / "t.ply")
    io.write_splat(tmp_path / "a.splat", g.with_sh_degree(0))
    (tmp_path / "t.splat").write_bytes((tmp_path / "a.splat").read_bytes()[:-5])
    with pytest.raises(UserError, match="multiple of 32"):
        io.load(tmp_path / "t.splat")
    spz = shared_data("splat", "metalsplatter_train3.spz").read_bytes()
    (tmp_path / "t.spz").write_bytes(spz[: len(spz) // 2])
    with pytest.raises(UserError, match="corrupt or truncated"):
        io.load(tmp_path / "t.spz")
    inner = gzip.decompress(spz)
    (tmp_path / "t2.spz").write_bytes(gzip.compress(inner[:-40]))
    with pytest.raises(UserError, match="truncated"):
        io.load(tmp_path / "t2.spz")


def test_spz_zstd_container(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    inner = gzip.decompress(shared_data("splat", "metalsplatter_train3.spz").read_bytes())
    (tmp_path / "z.spz").write_bytes(zstandard.ZstdCompressor().compress(inner))
    a = io.load(tmp_path / "z.spz")
    b = io.load(shared_data("splat", "metalsplatter_train3.spz"))
    np.testing.assert_array_equal(a.means, b.means)


def _spz_v4(legacy: bytes, sh_degree: int | None = None, flags: int | None = None) -> bytes:
    """Re-pack a decompressed legacy (v3) SPZ payload as SPZ v4, written from the format description of
    nianticlabs/spz (``saveSpz``): 32-byte header, TOC of (compressed, uncompressed) u64 pairs, one zstd
    frame per non-empty attribute stream in the order positions, alphas, colours, scales, rotations, SH."""
    import zstandard

    n = int(np.frombuffer(legacy[8:12], "<u4")[0])
    deg = legacy[12] if sh_degree is None else sh_degree
    sizes = [9 * n, n, 3 * n, 3 * n, 4 * n, ((deg + 1) ** 2 - 1) * 3 * n]
    blobs, o = [], 16
    for size in sizes:
        blobs.append(legacy[o : o + size])
        o += size
    frames = [zstandard.ZstdCompressor(level=12).compress(b) for b in blobs if len(b)]
    header = np.array([0x5053474E, 4, n], "<u4").tobytes()
    header += bytes([deg, legacy[13], legacy[14] if flags is None else flags, len(frames)])
    header += np.array([32], "<u4").tobytes() + bytes(12)
    toc = np.array([[len(f), len(b)] for f, b in zip(frames, [b for b in blobs if len(b)])], "<u8")
    return header + toc.tobytes() + b"".join(frames)


def test_spz_v4_container(tmp_path):
    """SPZ v4 (plain header + per-attribute zstd streams) decodes to exactly the Gaussians of the same
    quantised payload in the legacy gzip container."""
    pytest.importorskip("zstandard")
    src = shared_data("splat", "metalsplatter_train3.spz")
    legacy = gzip.decompress(src.read_bytes())
    (tmp_path / "v4.spz").write_bytes(_spz_v4(legacy))
    a, b = io.load(tmp_path / "v4.spz"), io.load(src)
    assert a.count == b.count == 3 and a.sh_degree == b.sh_degree == 3
    for name in ("means", "scales", "quats", "opacities", "sh"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    # SH degree 0: five streams (the empty SH stream is left out)
    (tmp_path / "d0.spz").write_bytes(_spz_v4(legacy, sh_degree=0))
    c = io.load(tmp_path / "d0.spz")
    assert c.sh_degree == 0
    np.testing.assert_array_equal(c.sh[:, 0], b.sh[:, 0])
    np.testing.assert_array_equal(c.quats, b.quats)
    # bad input: truncated, corrupt stream, extensions, unsupported SH degree
    raw = (tmp_path / "v4.spz").read_bytes()
    (tmp_path / "t.spz").write_bytes(raw[:-7])
    with pytest.raises(UserError, match="truncated"):
        io.load(tmp_path / "t.spz")
    (tmp_path / "t2.spz").write_bytes(raw[:40])
    with pytest.raises(UserError, match="table of contents"):
        io.load(tmp_path / "t2.spz")
    bad = bytearray(raw)
    bad[32 + 6 * 16 + 4 : 32 + 6 * 16 + 12] = b"\xff" * 8  # inside the first zstd frame
    (tmp_path / "c.spz").write_bytes(bytes(bad))
    with pytest.raises(UserError, match="corrupt"):
        io.load(tmp_path / "c.spz")
    (tmp_path / "e.spz").write_bytes(_spz_v4(legacy, flags=0x2))
    with pytest.raises(UserError, match="extensions"):
        io.load(tmp_path / "e.spz")
    four = bytearray(raw)
    four[12] = 4
    (tmp_path / "s4.spz").write_bytes(bytes(four))
    with pytest.raises(UserError, match="SH degree 4"):
        io.load(tmp_path / "s4.spz")


def test_bad_content_messages(tmp_path):
    g = _random_scene(5)
    g.means[2, 1] = np.nan
    io.write_ply(tmp_path / "nan.ply", g)
    with pytest.raises(UserError, match="NaN"):
        io.load(tmp_path / "nan.ply")
    g = _random_scene(5, degree=0)
    io.write_splat(tmp_path / "s.splat", g)
    rec = np.frombuffer((tmp_path / "s.splat").read_bytes(), io.SPLAT_DTYPE).copy()
    rec["scale"][3, 0] = -0.1  # .splat stores linear scales: negative is invalid
    (tmp_path / "neg.splat").write_bytes(rec.tobytes())
    with pytest.raises(UserError, match="zero, negative"):
        io.load(tmp_path / "neg.splat")
    hdr = b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n"
    (tmp_path / "missing.ply").write_bytes(hdr + struct.pack("<2f", 1, 2))
    with pytest.raises(UserError, match="missing property 'z'"):
        io.load(tmp_path / "missing.ply")
    (tmp_path / "junk.ply").write_bytes(b"not a ply at all")
    with pytest.raises(UserError, match="not a PLY"):
        io.load(tmp_path / "junk.ply")
    (tmp_path / "x.obj").write_bytes(b"v 1 2 3")
    with pytest.raises(UserError, match="unknown splat format"):
        io.load(tmp_path / "x.obj")
    with pytest.raises(UserError, match="no such file"):
        io.load(tmp_path / "absent.ply")


def test_progress_and_memory_estimate(tmp_path):
    g = _random_scene(300)
    io.write_ply(tmp_path / "a.ply", g)
    fractions = []
    h = drain(io.load_gen(tmp_path / "a.ply"), lambda p: fractions.append(p.fraction))
    assert h.count == 300 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert io.memory_estimate(1_000_000, 3) == 2 * 1_000_000 * 4 * (11 + 48)
