"""Readers and writers of Gaussian-splat files.

Readers: standard 3DGS ``.ply`` (SH degree 0-3, plus the 4D extension of ``docs/splat_4d_ply.md`` and any
extra scalar property), PlayCanvas/SuperSplat *compressed* ``.ply``, antimatter15 ``.splat`` and Niantic
``.spz`` (gzip v1-v3, a zstd-compressed legacy stream, and the v4 container: a 32-byte plain header, a table
of contents and one zstd stream per attribute). Writers: ``.ply`` (3D or 4D) and ``.splat``.

Every reader is a generator (:func:`load_gen`) that yields :class:`backends.common.Progress` and returns
the :class:`Gaussians` only when the whole file was read and validated: a truncated or corrupt file raises
:class:`UserError` naming the problem; a partial result is never returned.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from backends.common import Progress, UserError, drain
from backends.safeio import atomic_write, check_writable
from backends.splat.gaussians import SH_C0, Gaussians, normalize_quats
from backends.splat.memory import _check_memory, memory_estimate  # noqa: F401 - memory_estimate: API
from backends.splat.sh import SH_FLIP_YZ

PLY_TYPES = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
SUFFIXES = (".ply", ".splat", ".spz", ".sog")
_CHUNKS = 16  # progress granularity for large reads


def _sigmoid(x):
    x = np.asarray(x, np.float32)
    return (1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))).astype(np.float32)


def _checked_quats(q: np.ndarray, path: Path, fields: str) -> np.ndarray:
    """Normalised quaternions; NaN, infinite or zero ones are an error naming the first Gaussian (a reader
    must not silently substitute the identity for what the file says)."""
    q = np.asarray(q, np.float32)
    norm2 = np.einsum("ij,ij->i", q.astype(np.float64), q.astype(np.float64))
    bad = ~(np.isfinite(norm2) & (norm2 > 1e-24))
    if bad.any():
        i = int(np.argmax(bad))
        what = "NaN or infinite" if not np.all(np.isfinite(q[i])) else "zero"
        raise UserError(
            f"{path.name}: Gaussian {i} has a {what} rotation ({fields} = {q[i].tolist()}); "
            f"{int(bad.sum()):,} such Gaussians in all"
        )
    return normalize_quats(q)


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


# -- PLY header ------------------------------------------------------------------------------------------
class PlyElement:
    def __init__(self, name: str, count: int):
        self.name, self.count = name, count
        self.props: list[tuple[str, str]] = []

    @property
    def dtype(self) -> np.dtype:
        return np.dtype([(n, t) for n, t in self.props])

    def names(self) -> list[str]:
        return [n for n, _ in self.props]


def read_ply_header(fh, path: Path) -> tuple[str, list[PlyElement], int, list[str]]:
    first = fh.readline()
    if first.strip() != b"ply":
        raise UserError(f"{path.name} is not a PLY file (first line {first[:20]!r})")
    fmt = None
    elements: list[PlyElement] = []
    comments: list[str] = []
    while True:
        line = fh.readline()
        if not line:
            raise UserError(f"{path.name}: PLY header has no end_header line (truncated or corrupt)")
        if len(line) > 4096:
            raise UserError(f"{path.name}: PLY header line too long: corrupt file")
        try:
            parts = line.decode("ascii").split()
        except UnicodeDecodeError:
            raise UserError(f"{path.name}: PLY header is not ASCII: corrupt file") from None
        if not parts:
            continue
        key = parts[0]
        if key == "end_header":
            break
        if key == "format":
            fmt = parts[1] if len(parts) > 1 else ""
        elif key == "comment" or key == "obj_info":
            comments.append(" ".join(parts[1:]))
        elif key == "element":
            if len(parts) != 3 or not parts[2].isdigit():
                raise UserError(f"{path.name}: malformed PLY element line {line.strip()!r}")
            elements.append(PlyElement(parts[1], int(parts[2])))
        elif key == "property":
            if not elements:
                raise UserError(f"{path.name}: PLY property before any element")
            if parts[1] == "list":
                if elements[-1].count:
                    raise UserError(
                        f"{path.name}: list property {parts[-1]!r} in element "
                        f"{elements[-1].name!r} is not supported for splats"
                    )
                continue
            if len(parts) != 3 or parts[1] not in PLY_TYPES:
                raise UserError(f"{path.name}: unsupported PLY property {line.strip()!r}")
            elements[-1].props.append((parts[2], "<" + PLY_TYPES[parts[1]]))
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise UserError(f"{path.name}: unsupported PLY format {fmt!r}")
    if fmt == "binary_big_endian":
        for el in elements:
            el.props = [(n, ">" + t[1:]) for n, t in el.props]
    return fmt, elements, fh.tell(), comments


def _read_elements(path: Path) -> Iterator:
    """Yield Progress while reading; return (elements, {name: structured array}, comments)."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fmt, elements, offset, comments = read_ply_header(fh, path)
        data: dict[str, np.ndarray] = {}
        if fmt == "ascii":
            if size - offset > 512 * 2**20:
                raise UserError(f"{path.name}: ASCII PLY larger than 512 MiB; convert it to binary first")
            text = fh.read().decode("ascii", errors="replace").split()
            pos = 0
            for el in elements:
                n = len(el.props) * el.count
                if pos + n > len(text):
                    raise UserError(
                        f"{path.name}: truncated ASCII PLY: element {el.name!r} needs {el.count} "
                        f"rows, file ends early"
                    )
                try:
                    arr = np.array(text[pos : pos + n], dtype=np.float64).reshape(el.count, len(el.props))
                except ValueError:
                    raise UserError(
                        f"{path.name}: ASCII PLY element {el.name!r} holds a value that is not a number"
                    ) from None
                rec = np.empty(el.count, el.dtype)
                for j, name in enumerate(el.names()):
                    rec[name] = arr[:, j]
                data[el.name] = rec
                pos += n
            return elements, data, comments
        total = sum(el.dtype.itemsize * el.count for el in elements)
        have = size - offset
        if have < total:
            stride = {el.name: el.dtype.itemsize for el in elements}
            raise UserError(
                f"{path.name} is truncated: the header promises {total:,} bytes of data "
                f"({', '.join(f'{el.count:,} {el.name}' for el in elements)}; {stride} bytes each) but only "
                f"{have:,} follow; nothing was loaded"
            )
        done = 0
        for el in elements:
            nbytes = el.dtype.itemsize * el.count
            buf = np.empty(el.count, el.dtype)
            raw = buf.view(np.uint8).reshape(-1) if el.count else np.empty(0, np.uint8)
            step = max(1 << 22, nbytes // _CHUNKS)
            got = 0
            while got < nbytes:
                k = fh.readinto(memoryview(raw)[got : got + step])
                if not k:
                    raise UserError(f"{path.name}: unexpected end of file in element {el.name!r}")
                got += k
                done += k
                yield Progress(
                    done / max(total, 1),
                    f"reading {path.name}: {done / 2**20:.0f} of {total / 2**20:.0f} MiB",
                )
            data[el.name] = buf
    return elements, data, comments


def _col(rec: np.ndarray, name: str, path: Path) -> np.ndarray:
    if name not in rec.dtype.names:
        raise UserError(f"{path.name}: missing property {name!r} in element 'vertex'")
    return rec[name].astype(np.float32)


_STD_PROPS = {
    "x",
    "y",
    "z",
    "nx",
    "ny",
    "nz",
    "opacity",
    "f_dc_0",
    "f_dc_1",
    "f_dc_2",
    "scale_0",
    "scale_1",
    "scale_2",
    "rot_0",
    "rot_1",
    "rot_2",
    "rot_3",
    "t",
    "scale_t",
    "rot_r_0",
    "rot_r_1",
    "rot_r_2",
    "rot_r_3",
    "red",
    "green",
    "blue",
}


def _gaussians_from_standard(rec: np.ndarray, path: Path) -> Gaussians:
    names = set(rec.dtype.names)
    n = len(rec)
    flat = None
    if all(rec.dtype[k] == np.dtype("<f4") for k in rec.dtype.names):  # the usual case: one float32 matrix
        flat = rec.view("<f4").reshape(n, len(rec.dtype.names))
        index = {k: i for i, k in enumerate(rec.dtype.names)}

    def cols(keys: list[str]) -> np.ndarray:
        for k in keys:
            if k not in names:
                raise UserError(f"{path.name}: missing property {k!r} in element 'vertex'")
        if flat is not None:
            idx = [index[k] for k in keys]
            if idx == list(range(idx[0], idx[0] + len(idx))):
                return flat[:, idx[0] : idx[0] + len(idx)]
            return flat[:, idx]
        return np.stack([rec[k].astype(np.float32) for k in keys], 1)

    means = cols(["x", "y", "z"])
    if "f_dc_0" in names:
        dc = cols(["f_dc_0", "f_dc_1", "f_dc_2"])
    elif {"red", "green", "blue"} <= names:  # plain coloured point cloud
        rgb = np.stack([rec[c].astype(np.float32) for c in ("red", "green", "blue")], 1)
        if rec.dtype["red"].kind == "u":
            rgb = rgb / 255.0
        dc = (rgb - 0.5) / SH_C0
    else:
        raise UserError(f"{path.name}: missing property 'f_dc_0' (no colour) in element 'vertex'")
    n_rest = sum(1 for k in names if k.startswith("f_rest_"))
    if n_rest not in (0, 9, 24, 45):
        raise UserError(f"{path.name}: {n_rest} f_rest_* properties; expected 0, 9, 24 or 45 (SH degree 0-3)")
    per = n_rest // 3
    sh = np.empty((n, 1 + per, 3), np.float32)
    sh[:, 0] = dc
    if per:
        # f_rest is channel-major: f_rest_0..per-1 are the R coefficients, then G, then B (3DGS save_ply).
        sh[:, 1:] = cols([f"f_rest_{i}" for i in range(n_rest)]).reshape(n, 3, per).transpose(0, 2, 1)
    scales = np.exp(cols(["scale_0", "scale_1", "scale_2"]))
    quats = _checked_quats(cols(["rot_0", "rot_1", "rot_2", "rot_3"]), path, "rot_0..3")
    opac = _sigmoid(cols(["opacity"])[:, 0])
    extras = {
        k: np.asarray(rec[k]) for k in rec.dtype.names if k not in _STD_PROPS and not k.startswith("f_rest_")
    }
    g = Gaussians(
        means=means, scales=scales, quats=quats, opacities=opac, sh=sh, extras=extras, source=path.name
    )
    if "t" in names:
        g.t = _col(rec, "t", path)
        g.scale_t = np.exp(_col(rec, "scale_t", path).astype(np.float64)).astype(np.float32)
        g.quats_r = _checked_quats(
            np.stack([_col(rec, f"rot_r_{i}", path) for i in range(4)], 1), path, "rot_r_0..3"
        )
    return g


MAX_ABS_VALUE = 1e15  # positions and log-scales beyond this are corrupt (float32 squares overflow past ~1e19)


def _ply_type_name(dt: np.dtype) -> str:
    names = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint"}
    return {**names, "f4": "float", "f8": "double"}.get(dt.str[1:], dt.str)


def _unorm(v: np.ndarray, bits: int) -> np.ndarray:
    return (v & ((1 << bits) - 1)).astype(np.float32) / float((1 << bits) - 1)


def _gaussians_from_compressed(
    chunk: np.ndarray, vert: np.ndarray, sh_el: np.ndarray | None, path: Path
) -> Gaussians:
    """PlayCanvas compressed PLY (engine ``gsplat-compressed-data.js``): 256 Gaussians per chunk."""
    n = len(vert)
    need_chunks = (n + 255) // 256
    if len(chunk) < need_chunks:
        raise UserError(f"{path.name}: {n} Gaussians need {need_chunks} chunks, file has {len(chunk)}")
    ci = np.arange(n) // 256
    c = chunk[ci]

    def lerp(lo, hi, t):
        return c[lo].astype(np.float32) * (1 - t) + c[hi].astype(np.float32) * t

    for name in ("packed_position", "packed_rotation", "packed_scale", "packed_color"):
        if name not in vert.dtype.names:
            raise UserError(f"{path.name}: compressed PLY is missing vertex property {name!r}")
        if vert.dtype[name].kind != "u" or vert.dtype[name].itemsize != 4:
            raise UserError(
                f"{path.name}: compressed PLY vertex property {name!r} is declared "
                f"{_ply_type_name(vert.dtype[name])}, expected uint (32-bit unsigned)"
            )
    bounds = [f"{m}_{a}" for m in ("min", "max") for a in ("x", "y", "z")]
    bounds += [f"{m}_scale_{a}" for m in ("min", "max") for a in ("x", "y", "z")]
    for name in bounds + [
        k for k in ("min_r", "min_g", "min_b", "max_r", "max_g", "max_b") if k in chunk.dtype.names
    ]:
        if name not in chunk.dtype.names:
            raise UserError(f"{path.name}: compressed PLY is missing chunk property {name!r}")
        if chunk.dtype[name].kind != "f":
            raise UserError(
                f"{path.name}: compressed PLY chunk property {name!r} is declared "
                f"{_ply_type_name(chunk.dtype[name])}, expected float"
            )
        col = chunk[name]
        bad = ~np.isfinite(col) | (np.abs(col) > MAX_ABS_VALUE)
        if bad.any():
            i = int(np.argmax(bad))
            raise UserError(
                f"{path.name}: chunk {i} property {name!r} = {float(col[i])} is not a finite value "
                f"within +-{MAX_ABS_VALUE:g}"
            )
    pp = vert["packed_position"].astype(np.uint32)
    px, py, pz = _unorm(pp >> 21, 11), _unorm(pp >> 11, 10), _unorm(pp, 11)
    means = np.stack([lerp("min_x", "max_x", px), lerp("min_y", "max_y", py), lerp("min_z", "max_z", pz)], 1)
    ps = vert["packed_scale"].astype(np.uint32)
    sx, sy, sz = _unorm(ps >> 21, 11), _unorm(ps >> 11, 10), _unorm(ps, 11)
    log_s = np.stack(
        [
            lerp("min_scale_x", "max_scale_x", sx),
            lerp("min_scale_y", "max_scale_y", sy),
            lerp("min_scale_z", "max_scale_z", sz),
        ],
        1,
    )
    pr = vert["packed_rotation"].astype(np.uint32)
    norm = 1.0 / (np.sqrt(2.0) * 0.5)
    a = (_unorm(pr >> 20, 10) - 0.5) * norm
    b = (_unorm(pr >> 10, 10) - 0.5) * norm
    cc = (_unorm(pr, 10) - 0.5) * norm
    m = np.sqrt(np.maximum(0.0, 1.0 - (a * a + b * b + cc * cc)))
    largest = (pr >> 30).astype(np.int64)
    # the three stored components are the (w, x, y, z) ones other than the largest, in order
    quats = np.empty((n, 4), np.float32)
    rows = np.arange(n)
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    quats[rows, largest] = m
    quats[rows, others[:, 0]] = a
    quats[rows, others[:, 1]] = b
    quats[rows, others[:, 2]] = cc
    pc = vert["packed_color"].astype(np.uint32)
    cr, cg, cb, ca = _unorm(pc >> 24, 8), _unorm(pc >> 16, 8), _unorm(pc >> 8, 8), _unorm(pc, 8)
    if "min_r" in chunk.dtype.names:
        cr, cg, cb = lerp("min_r", "max_r", cr), lerp("min_g", "max_g", cg), lerp("min_b", "max_b", cb)
    rgb = np.stack([cr, cg, cb], 1)
    sh0 = (rgb - 0.5) / SH_C0
    per = 0
    if sh_el is not None and len(sh_el):
        per = sum(1 for k in sh_el.dtype.names if k.startswith("f_rest_")) // 3
    sh = np.zeros((n, 1 + per, 3), np.float32)
    sh[:, 0] = sh0
    for ch in range(3):
        for k in range(per):
            sh[:, 1 + k, ch] = sh_el[f"f_rest_{ch * per + k}"].astype(np.float32) * (8 / 255) - 4
    return Gaussians(
        means=means,
        scales=np.exp(log_s.astype(np.float64)),
        quats=normalize_quats(quats),
        opacities=ca,
        sh=sh,
        source=path.name,
    )


def read_ply_gen(path: Path) -> Iterator:
    elements, data, _ = yield from _read_elements(path)
    names = {el.name for el in elements}
    if "vertex" not in names:
        raise UserError(f"{path.name}: PLY file has no 'vertex' element")
    vert = data["vertex"]
    if "chunk" in names and "packed_position" in (vert.dtype.names or ()):
        _check_memory(len(vert), 3, path)
        return _gaussians_from_compressed(data["chunk"], vert, data.get("sh"), path)
    _check_memory(len(vert), 3, path)
    return _gaussians_from_standard(vert, path)


# -- .splat (antimatter15) -------------------------------------------------------------------------------
SPLAT_DTYPE = np.dtype([("pos", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])


def read_splat_gen(path: Path) -> Iterator:
    size = path.stat().st_size
    if size % 32:
        raise UserError(
            f"{path.name}: size {size:,} bytes is not a multiple of 32: truncated or not a .splat "
            f"file ({size // 32:,} whole Gaussians, {size % 32} stray bytes); nothing was loaded"
        )
    n = size // 32
    _check_memory(n, 0, path)
    buf = np.empty(n, SPLAT_DTYPE)
    raw = buf.view(np.uint8).reshape(-1)
    step = max(1 << 22, size // _CHUNKS)
    with open(path, "rb") as fh:
        got = 0
        while got < size:
            k = fh.readinto(memoryview(raw)[got : got + step])
            if not k:
                raise UserError(f"{path.name}: unexpected end of file")
            got += k
            yield Progress(got / size, f"reading {path.name}")
    rgba = buf["rgba"].astype(np.float32) / 255.0
    quats = (buf["rot"].astype(np.float32) - 128.0) / 128.0
    return Gaussians(
        means=buf["pos"],
        scales=buf["scale"],
        quats=_checked_quats(quats, path, "rot bytes"),
        opacities=rgba[:, 3],
        sh=((rgba[:, :3] - 0.5) / SH_C0)[:, None, :],
        source=path.name,
    )


# -- .spz (Niantic) ---------------------------------------------------------------------------------------
SPZ_MAGIC = 0x5053474E  # "NGSP"
SPZ_COLOR_SCALE = 0.15


SPZ_V4_HEADER = 32


def _spz_v4_payload(raw: bytes, path: Path) -> bytes:
    """Niantic SPZ v4 (nianticlabs/spz ``load-spz.cc``, format version 4): little-endian header
    magic u32, version u32, count u32, SH degree u8, fractional bits u8, flags u8, stream count u8,
    TOC offset u32, 12 reserved bytes; extension records up to the TOC (flag 0x2); the TOC holds
    (compressed, uncompressed) u64 sizes per stream; the zstd streams follow back to back up to the end of
    the file, in the legacy attribute order (positions, alphas, colours, scales, rotations, SH) with empty
    ones left out. Returns the legacy layout (16-byte header + the attributes) that :func:`read_spz_gen`
    decodes."""
    if len(raw) < SPZ_V4_HEADER:
        raise UserError(f"{path.name}: SPZ v4 header truncated ({len(raw)} of 32 bytes); nothing was loaded")
    _, version, n = (int(v) for v in np.frombuffer(raw[:12], "<u4"))
    sh_degree, frac_bits, flags, n_streams = raw[12], raw[13], raw[14], raw[15]
    toc = int(np.frombuffer(raw[16:20], "<u4")[0])
    if version != 4:
        raise UserError(f"{path.name}: unsupported SPZ version {version} in a v4 (plain header) file")
    header = np.array([SPZ_MAGIC, 4, n], "<u4").tobytes() + bytes([sh_degree, frac_bits, flags & 0x1, 0])
    _spz_layout(header, path)  # the same checks as v1-v3: count, SH degree, frac_bits, memory
    if flags & 0x2:
        raise UserError(f"{path.name}: SPZ extensions (flag 0x2) are not supported")
    sizes = [s for s in (9 * n, n, 3 * n, 3 * n, 4 * n, ((sh_degree + 1) ** 2 - 1) * 3 * n) if s]
    if n_streams != len(sizes):
        raise UserError(
            f"{path.name}: corrupt SPZ v4 file: {n_streams} attribute streams, expected {len(sizes)} "
            f"for SH degree {sh_degree}; nothing was loaded"
        )
    end = toc + 16 * n_streams
    if toc < SPZ_V4_HEADER or end > len(raw):
        raise UserError(f"{path.name}: SPZ v4 table of contents truncated or corrupt; nothing was loaded")
    table = np.frombuffer(raw[toc:end], "<u8").reshape(n_streams, 2)
    if [int(u) for u in table[:, 1]] != sizes:
        raise UserError(
            f"{path.name}: corrupt SPZ v4 file: stream sizes {table[:, 1].tolist()} do not match "
            f"{n:,} Gaussians of SH degree {sh_degree}; nothing was loaded"
        )
    stop = end + int(table[:, 0].sum())
    if stop > len(raw):
        raise UserError(
            f"{path.name} is truncated: its streams need {stop:,} bytes, the file has {len(raw):,}; "
            "nothing was loaded"
        )
    if stop < len(raw):
        raise UserError(f"{path.name}: corrupt SPZ v4 file ({len(raw) - stop:,} bytes after the last stream)")
    import io as _io

    import zstandard

    out = bytearray(16 + sum(sizes))  # the legacy layout, filled in place: no second copy of the scene
    out[:16] = header
    view, at, o = memoryview(out), 16, end
    dec = zstandard.ZstdDecompressor()
    for (size_c, size_u), name in zip(
        table.tolist(), ("positions", "alphas", "colours", "scales", "rotations", "SH")
    ):
        got = 0
        try:  # streamed with a cap: a frame that claims or holds more than the TOC says is refused
            reader = dec.stream_reader(_io.BytesIO(raw[o : o + size_c]), read_across_frames=True)
            while got < size_u:
                k = reader.readinto(view[at + got : at + size_u])
                if not k:
                    break
                got += k
            extra = reader.read(1)
        except zstandard.ZstdError as exc:
            raise UserError(
                f"{path.name}: corrupt or truncated zstd stream of the {name} ({exc}); nothing was loaded"
            ) from None
        if extra:
            raise UserError(
                f"{path.name}: the {name} stream holds more than the {size_u:,} bytes of its table entry "
                "(corrupt file or decompression bomb); nothing was loaded"
            )
        if got != size_u:
            raise UserError(
                f"{path.name}: corrupt SPZ v4 file: the {name} stream holds {got:,} of {size_u:,} bytes"
            )
        at += size_u
        o += size_c
    return out


SPZ_MAX_FRAC_BITS = 24  # positions are 24-bit signed fixed point: more fractional bits leave |x| < 0.5


def _spz_layout(head: bytes, path: Path) -> tuple[int, int, int, int, int]:
    """(version, count, SH degree, fractional bits, decoded size) from the 16-byte legacy header, every field
    checked, so the decoded size is known before any inflating."""
    if len(head) < 16:
        raise UserError(f"{path.name}: SPZ header truncated ({len(head)} of 16 bytes); nothing was loaded")
    magic, version, n = (int(v) for v in np.frombuffer(head[:12], "<u4"))
    sh_degree, frac_bits, flags = head[12], head[13], head[14]
    if magic != SPZ_MAGIC:
        raise UserError(f"{path.name}: bad SPZ magic {magic:#x} (expected {SPZ_MAGIC:#x}, 'NGSP')")
    if version not in (1, 2, 3, 4):
        raise UserError(f"{path.name}: unsupported SPZ version {version} (1-4)")
    if sh_degree > 3:
        raise UserError(f"{path.name}: SPZ SH degree {sh_degree} not supported (0-3)")
    if version >= 2 and frac_bits > SPZ_MAX_FRAC_BITS:
        raise UserError(
            f"{path.name}: SPZ header field frac_bits = {frac_bits} out of range 0..{SPZ_MAX_FRAC_BITS}"
        )
    if flags & 0x2:
        raise UserError(f"{path.name}: SPZ extensions (flag 0x2) are not supported")
    if n == 0:
        raise UserError(f"{path.name}: the SPZ file holds no Gaussians")
    _check_memory(n, sh_degree, path)
    per = (sh_degree + 1) ** 2 - 1
    pos_b = 6 if version == 1 else 9
    rot_b = 4 if version >= 3 else 3
    return version, n, sh_degree, frac_bits, 16 + n * (pos_b + 1 + 3 + 3 + rot_b + per * 3)


def _inflate_capped(stream, path: Path, kind: str) -> bytes:
    """Read a decompressing stream: the 16-byte header first, then exactly the size the header's count
    implies into one preallocated buffer. A stream that ends early is truncated; one that holds more is
    refused (a decompression bomb cannot grow memory past the scene its header announces)."""
    import zstandard

    errors = (OSError, EOFError, zlib.error, zstandard.ZstdError)
    try:
        head = stream.read(16)
        need = _spz_layout(head, path)[4]
        buf = bytearray(need)
        buf[:16] = head
        view, got = memoryview(buf), 16
        while got < need:
            k = stream.readinto(view[got : got + (1 << 24)])
            if not k:
                raise UserError(
                    f"{path.name} is truncated: its header announces {need:,} bytes after decompression, "
                    f"the {kind} stream ends after {got:,}; nothing was loaded"
                )
            got += k
        if stream.read(1):
            raise UserError(
                f"{path.name}: the {kind} stream holds more than the {need:,} bytes its header announces "
                "(corrupt file or decompression bomb); nothing was loaded"
            )
    except errors as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"{path.name}: corrupt or truncated {kind} stream ({reason}); nothing was loaded"
        ) from None
    return buf  # a bytearray: np.frombuffer reads it without another copy


def _decompress_spz(raw: bytes, path: Path) -> bytes:
    import io as _io

    if raw[:4] == SPZ_MAGIC.to_bytes(4, "little") and raw[4:8] == (4).to_bytes(4, "little"):
        return _spz_v4_payload(raw, path)
    if raw[:2] == b"\x1f\x8b":
        return _inflate_capped(gzip.GzipFile(fileobj=_io.BytesIO(raw)), path, "gzip")
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(_io.BytesIO(raw), read_across_frames=True)
        return _inflate_capped(_io.BufferedReader(reader), path, "zstd")
    if raw[:4] == SPZ_MAGIC.to_bytes(4, "little"):
        need = _spz_layout(raw[:16], path)[4]
        if len(raw) > need:
            raise UserError(
                f"{path.name}: corrupt SPZ file ({len(raw) - need:,} bytes after the last attribute)"
            )
        return raw
    raise UserError(f"{path.name}: not a readable .spz file (no gzip, zstd or NGSP magic)")


def read_spz_gen(path: Path) -> Iterator:
    raw = path.read_bytes()
    yield Progress(0.3, f"decompressing {path.name}")
    d = _decompress_spz(raw, path)
    del raw
    version, n, sh_degree, frac_bits, need = _spz_layout(d[:16], path)
    per = (sh_degree + 1) ** 2 - 1
    pos_b = 6 if version == 1 else 9
    rot_b = 4 if version >= 3 else 3
    if len(d) < need:
        raise UserError(
            f"{path.name} is truncated: {n:,} Gaussians need {need:,} bytes after decompression, "
            f"found {len(d):,}; nothing was loaded"
        )
    o = 16
    if version == 1:
        means = np.frombuffer(d, "<f2", n * 3, o).astype(np.float32).reshape(n, 3)
    else:
        p = np.frombuffer(d, np.uint8, n * 9, o).reshape(n, 3, 3).astype(np.int32)
        v = p[..., 0] | (p[..., 1] << 8) | (p[..., 2] << 16)
        v = np.where(v & 0x800000, v - (1 << 24), v)
        means = (v.astype(np.float64) / (1 << frac_bits)).astype(np.float32)
    o += n * pos_b
    alpha = np.frombuffer(d, np.uint8, n, o).astype(np.float32) / 255.0
    o += n
    col = np.frombuffer(d, np.uint8, n * 3, o).reshape(n, 3).astype(np.float32)
    o += n * 3
    log_s = np.frombuffer(d, np.uint8, n * 3, o).reshape(n, 3).astype(np.float32) / 16.0 - 10.0
    o += n * 3
    if version >= 3:  # smallest three: 2-bit index of the largest, 3 x (sign bit + 9-bit magnitude)
        comp = np.frombuffer(d, "<u4", n, o).astype(np.uint64)
        largest = (comp >> 30).astype(np.int64)
        q = np.zeros((n, 4), np.float64)  # x, y, z, w
        rows = np.arange(n)
        rest = comp.copy()
        ssum = np.zeros(n)
        for i in range(3, -1, -1):
            mask = largest != i
            mag = (rest & 0x1FF).astype(np.float64)
            neg = ((rest >> 9) & 1).astype(bool)
            val = np.sqrt(0.5) * mag / 511.0
            val = np.where(neg, -val, val)
            q[mask, i] = val[mask]
            ssum += np.where(mask, val * val, 0.0)
            rest = np.where(mask, rest >> 10, rest)
        q[rows, largest] = np.sqrt(np.maximum(0.0, 1.0 - ssum))
    else:
        r = np.frombuffer(d, np.uint8, n * 3, o).reshape(n, 3).astype(np.float64) / 127.5 - 1.0
        q = np.concatenate([r, np.sqrt(np.maximum(0.0, 1.0 - (r * r).sum(1)))[:, None]], 1)
    o += n * rot_b
    shq = np.frombuffer(d, np.uint8, n * per * 3, o).reshape(n, per, 3)
    sh = np.empty((n, 1 + per, 3), np.float32)
    sh[:, 0] = (col / 255.0 - 0.5) / SPZ_COLOR_SCALE
    rest = sh[:, 1:]  # in place: no scene-sized temporaries (peak memory stays near the decoded scene)
    rest[...] = shq
    rest -= 128.0
    rest /= 128.0
    del d, shq
    # SPZ stores right-up-back (RUB) axes; PLY/3DGS use right-down-front (RDF): flip y and z.
    means = means * np.array([1, -1, -1], np.float32)
    quats = np.stack([q[:, 3], q[:, 0], -q[:, 1], -q[:, 2]], 1)  # xyzw -> wxyz, conjugated by the flip
    sh *= SH_FLIP_YZ[: 1 + per, None]
    yield Progress(1.0, f"decoded {path.name}")
    return Gaussians(
        means=means,
        scales=np.exp(log_s.astype(np.float64)),
        quats=normalize_quats(quats),
        opacities=alpha,
        sh=sh,
        source=path.name,
    )


# -- dispatch ---------------------------------------------------------------------------------------------
def load_gen(path: str | os.PathLike, validate: bool = True) -> Iterator:
    """Read any supported file, yielding Progress; returns validated :class:`Gaussians`."""
    p = Path(path).expanduser()
    from backends.splat import sog

    if p.is_dir() and sog.is_sog(p):  # a SOG folder (meta.json) or a streamed scene (lod-meta.json)
        p = p / ("lod-meta.json" if (p / "lod-meta.json").is_file() else "meta.json")
    if not p.is_file():
        raise UserError(f"cannot open {p}: no such file")
    suffix = p.suffix.lower()
    if p.name == "lod-meta.json":
        g = yield from sog.load_streamed_gen(p)
    elif suffix == ".sog" or p.name == "meta.json":
        g = yield from sog.read_sog_gen(p)
    elif suffix == ".ply":
        g = yield from read_ply_gen(p)
    elif suffix == ".splat":
        g = yield from read_splat_gen(p)
    elif suffix == ".spz":
        g = yield from read_spz_gen(p)
    else:
        raise UserError(
            f"cannot read {p.name}: unknown splat format {suffix!r} (use .ply, .splat, .spz, .sog, a SOG "
            "meta.json or lod-meta.json)"
        )
    if validate:
        g.validate(p.name)
    yield Progress(
        1.0,
        f"loaded {g.count:,} Gaussians from {p.name} (SH degree {g.sh_degree}"
        f"{', 4D' if g.is_4d else ''}, {g.nbytes() / 2**20:.1f} MiB)",
    )
    return g


def load(path: str | os.PathLike, validate: bool = True) -> Gaussians:
    return drain(load_gen(path, validate))


# -- writers ----------------------------------------------------------------------------------------------
WRITE_SUFFIXES = (".ply", ".splat")


def check_out(path: str | os.PathLike, inputs=()) -> Path:
    """An output path for :func:`save`, checked before any work (suffix, folder, not an input)."""
    return check_writable(path, suffixes=WRITE_SUFFIXES, inputs=inputs, what="splat")


def write_ply(path: str | os.PathLike, g: Gaussians) -> Path:
    """Standard 3DGS binary little-endian PLY (with the 4D properties when the scene is 4D)."""
    p = check_writable(path, suffixes=(".ply",), what="PLY")
    n, per = g.count, g.sh.shape[1] - 1
    cols: list[tuple[str, np.ndarray]] = [("x", g.means[:, 0]), ("y", g.means[:, 1]), ("z", g.means[:, 2])]
    zeros = np.zeros(n, np.float32)
    cols += [("nx", zeros), ("ny", zeros), ("nz", zeros)]
    cols += [(f"f_dc_{c}", g.sh[:, 0, c]) for c in range(3)]
    cols += [(f"f_rest_{c * per + k}", g.sh[:, 1 + k, c]) for c in range(3) for k in range(per)]
    cols += [("opacity", _logit(g.opacities))]
    cols += [(f"scale_{i}", np.log(np.maximum(g.scales[:, i], 1e-30))) for i in range(3)]
    cols += [(f"rot_{i}", g.quats[:, i]) for i in range(4)]
    if g.is_4d:
        cols += [("t", g.t), ("scale_t", np.log(np.maximum(g.scale_t, 1e-30)))]
        cols += [(f"rot_r_{i}", g.quats_r[:, i]) for i in range(4)]
    extra_cols = []
    for k, v in g.extras.items():
        v = np.asarray(v)
        t = "<i4" if v.dtype.kind in "iub" else "<f4"
        extra_cols.append((k, v.astype(t)))
    dt = np.dtype([(name, "<f4") for name, _ in cols] + [(k, v.dtype) for k, v in extra_cols])
    rec = np.empty(n, dt)
    for name, v in cols + extra_cols:
        rec[name] = v
    header = [
        "ply",
        "format binary_little_endian 1.0",
        "comment written by Visual Lab",
        f"element vertex {n}",
    ]
    for name in dt.names:
        header.append(f"property {'int' if dt[name].kind == 'i' else 'float'} {name}")
    header.append("end_header")
    with atomic_write(p, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        fh.write(memoryview(rec).cast("B"))
    return p


def write_splat(path: str | os.PathLike, g: Gaussians) -> Path:
    """antimatter15 .splat: 32 bytes per Gaussian, sorted by decreasing size x opacity as that viewer does."""
    p = check_writable(path, suffixes=(".splat",), what="splat")
    order = np.argsort(-(g.scales.astype(np.float64).prod(1) * g.opacities))
    h = g.subset(order)
    rec = np.empty(h.count, SPLAT_DTYPE)
    rec["pos"] = h.means
    rec["scale"] = h.scales
    rgba = np.concatenate([0.5 + SH_C0 * h.sh[:, 0], h.opacities[:, None]], 1)
    rec["rgba"] = np.clip(np.round(rgba * 255), 0, 255).astype(np.uint8)
    rec["rot"] = np.clip(np.round(h.quats * 128 + 128), 0, 255).astype(np.uint8)
    with atomic_write(p, "wb") as fh:
        fh.write(memoryview(rec).cast("B"))
    return p


def save(path: str | os.PathLike, g: Gaussians, inputs=()) -> Path:
    """Write ``g`` as .ply or .splat (by suffix), atomically; ``inputs`` are never overwritten."""
    check_out(path, inputs)
    suffix = Path(path).suffix.lower()
    if suffix == ".ply":
        return write_ply(path, g)
    if suffix == ".splat":
        if g.is_4d:
            raise UserError(".splat cannot store 4D Gaussians: save as .ply")
        return write_splat(path, g)
    raise UserError(f"cannot write {Path(path).name}: use .ply or .splat")
