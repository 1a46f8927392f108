"""SOG (Spatially Ordered Gaussians, PlayCanvas): unbundled folders, bundled ``.sog`` zips and streamed SOG.

A SOG scene is a ``meta.json`` plus lossless 8-bit images, one pixel per Gaussian in row-major order
(PlayCanvas developer manual, "The SOG Format", "The SOG Format (Version 2)", "The Streamed SOG Format"):

* positions: 16 bits per axis split over ``means_l`` (low byte) and ``means_u`` (high byte), a lerp between
  ``means.mins``/``maxs`` in the *log domain*, undone by ``sign(n) (exp|n| - 1)``;
* rotations: smallest-three, R,G,B = the three kept components quantised to [-1/sqrt2, 1/sqrt2], A - 252 =
  which of (w, x, y, z) was omitted (the largest, reconstructed non-negative);
* version 1 (no ``version`` key): scales and colours are 8-bit lerps between per-channel ``mins``/``maxs``
  (log scales; DC coefficients; opacity as a logit); SH palette bands inferred from the centroid width;
* version 2: scales, DC colours and SH coefficients index 256-entry codebooks; opacity = A / 255; the SH
  palette (``shN``) maps a 16-bit label per Gaussian to ``bands`` worth of coefficients, 64 entries a row.
* version 3 is read when its ``meta.json`` carries the version-2 fields (the manual's version-3 page was not
  available to us; a file that lacks them is refused with a clear message, never guessed at).

Streamed SOG (``lod-meta.json`` v1): a binary tree of bounding boxes whose leaves reference runs
``[offset, offset + count)`` of chunk SOGs at each level of detail (0 = finest). :class:`StreamedSog`
chooses one level per leaf by distance within a Gaussian budget and loads chunks lazily (the panel does
that off the GUI thread); every chunk decode is bounded by the sizes its ``meta.json`` declares.

Decoding never trusts sizes: image dimensions are read from the header before any pixel is decoded, zip
members are checked against their declared sizes, and counts are checked against free memory first.
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.common import Progress, UserError
from backends.safeio import write_bytes
from backends.splat.gaussians import Gaussians
from backends.splat.memory import _check_memory

MAX_META_BYTES = 16 * 2**20
MAX_COUNT = 200_000_000
_SHN_COEFFS = (0, 3, 8, 15)  # per band count
_V1_SHN_WIDTH_TO_BANDS = {192: 1, 512: 2, 960: 3}


# -- where the files are ------------------------------------------------------------------------------------
class _Files:
    """Read members of a SOG file set: a folder, or a ``.sog`` zip with the files at its root."""

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        if path.is_file() and path.suffix.lower() == ".sog":
            try:
                self._zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as exc:
                raise UserError(f"{path.name}: not a valid bundled SOG (zip): {exc}") from None
            self.base = path
        elif path.is_dir():
            self.base = path
        else:
            self.base = path.parent

    def label(self, name: str) -> str:
        return f"{self.path.name}/{name}" if self._zip is not None else str(self.base / name)

    def read(self, name: str, limit: int) -> bytes:
        """The bytes of ``name``, refusing members larger than ``limit`` before reading them."""
        if not isinstance(name, str) or not name:
            raise UserError(f"{self.path.name}: invalid file name {name!r} in meta.json")
        if self._zip is not None:
            try:
                info = self._zip.getinfo(name)
            except KeyError:
                raise UserError(f"{self.path.name}: the bundle has no member {name!r}") from None
            if info.file_size > limit:
                raise UserError(f"{self.label(name)}: {info.file_size:,} bytes, more than its scene can need")
            try:
                with self._zip.open(info) as fh:
                    data = fh.read(limit + 1)
            except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
                raise UserError(f"{self.label(name)}: corrupt zip member ({exc})") from None
        else:
            p = (self.base / name).resolve()
            if self.base.resolve() not in p.parents:
                raise UserError(f"{self.path.name}: meta.json names a file outside its folder: {name!r}")
            if not p.is_file():
                raise UserError(f"{self.label(name)}: missing (named in meta.json)")
            if p.stat().st_size > limit:
                raise UserError(
                    f"{self.label(name)}: {p.stat().st_size:,} bytes, more than its scene can need"
                )
            data = p.read_bytes()
        if len(data) > limit:
            raise UserError(f"{self.label(name)}: larger than its declared size")
        return data


def _load_json(data: bytes, label: str) -> dict:
    try:
        meta = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{label}: not UTF-8 text") from None
    except RecursionError:
        raise UserError(f"{label}: JSON nested too deeply") from None
    except ValueError as exc:
        raise UserError(f"{label}: corrupt JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{label}: expected a JSON object")
    return meta


def _image(files: _Files, name: str, count: int, *, exact_width: int | None = None) -> np.ndarray:
    """Decode one 8-bit image to (H*W, 4) uint8 RGBA, checking its size from the header first."""
    from PIL import Image

    data = files.read(name, limit=64 + 8 * max(count, 64 * 15 * 1024) + 2**20)
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if exact_width is not None:
                if w != exact_width or h > 1024:
                    raise UserError(f"{files.label(name)}: image {w}x{h}, expected width {exact_width}")
            elif w * h < count:
                raise UserError(
                    f"{files.label(name)}: image {w}x{h} holds fewer than the {count:,} Gaussians"
                )
            elif w * h > 2 * count + 65536:
                raise UserError(f"{files.label(name)}: image {w}x{h} is far larger than {count:,} Gaussians")
            rgba = np.asarray(im.convert("RGBA"), dtype=np.uint8)
    except UserError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt images
        raise UserError(f"{files.label(name)}: not a readable image ({type(exc).__name__}: {exc})") from None
    return rgba.reshape(-1, 4)


# -- decoding pieces (shared by all versions) ----------------------------------------------------------------
def _floats(meta: dict, key: str, n: int, label: str) -> np.ndarray:
    try:
        arr = np.asarray(meta[key], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{label}: {key!r} must be a list of {n} numbers") from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise UserError(f"{label}: {key!r} must be {n} finite numbers")
    return arr


def _files_of(meta: dict, key: str, n: int, label: str) -> list[str]:
    section = meta.get(key)
    if not isinstance(section, dict):
        raise UserError(f"{label}: missing section {key!r}")
    names = section.get("files")
    if not isinstance(names, list) or len(names) < n or not all(isinstance(s, str) for s in names[:n]):
        raise UserError(f"{label}: {key}.files must list {n} image file name(s)")
    return names[:n]


def decode_means(lo: np.ndarray, hi: np.ndarray, mins: np.ndarray, maxs: np.ndarray) -> np.ndarray:
    """16-bit quantised log-domain positions -> world positions (float32)."""
    q = lo[:, :3].astype(np.uint32) | (hi[:, :3].astype(np.uint32) << 8)
    span = np.where(maxs - mins == 0, 1.0, maxs - mins)
    n = mins + span * (q / 65535.0)
    return (np.sign(n) * np.expm1(np.abs(n))).astype(np.float32)


def decode_quats(px: np.ndarray, label: str) -> np.ndarray:
    """Smallest-three quaternions (R,G,B kept, A = 252 + index of the omitted one) -> (w, x, y, z)."""
    mode = px[:, 3].astype(np.int64) - 252
    bad = (mode < 0) | (mode > 3)
    if bad.any():
        raise UserError(
            f"{label}: {int(bad.sum())} rotations have an invalid mode byte (first at Gaussian "
            f"{int(np.argmax(bad))}: {int(px[int(np.argmax(bad)), 3])}, expected 252..255)"
        )
    kept = (px[:, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / math.sqrt(2.0)
    omitted = np.sqrt(np.maximum(0.0, 1.0 - np.sum(kept**2, axis=1)))
    q = np.empty((len(px), 4))
    for m in range(4):
        rows = mode == m
        others = [i for i in range(4) if i != m]
        q[np.ix_(rows, others)] = kept[rows]
        q[rows, m] = omitted[rows]
    return q.astype(np.float32)


def _codebook(meta: dict, key: str, label: str) -> np.ndarray:
    section = meta.get(key, {})
    book = section.get("codebook") if isinstance(section, dict) else None
    try:
        arr = np.asarray(book, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.shape != (256,) or not np.all(np.isfinite(arr)):
        raise UserError(f"{label}: {key}.codebook must be 256 finite numbers")
    return arr


def _lerp8(px: np.ndarray, mins: np.ndarray, maxs: np.ndarray) -> np.ndarray:
    return mins + (maxs - mins) * (px.astype(np.float64) / 255.0)


# -- one SOG file set ---------------------------------------------------------------------------------------
def _meta_location(path: Path) -> tuple[_Files, str]:
    if path.is_dir():
        if not (path / "meta.json").is_file():
            raise UserError(f"{path}: no meta.json in this folder (not a SOG scene)")
        return _Files(path), "meta.json"
    if path.suffix.lower() == ".sog":
        return _Files(path), "meta.json"
    return _Files(path), path.name


def read_sog_gen(path: str | os.PathLike) -> Iterator:
    """Read a SOG scene (folder, ``meta.json`` or bundled ``.sog``), yielding Progress; returns Gaussians."""
    p = Path(path).expanduser()
    files, meta_name = _meta_location(p)
    label = files.label(meta_name)
    meta = _load_json(files.read(meta_name, MAX_META_BYTES), label)
    version = meta.get("version")
    if version is None:
        count = _count_v1(meta, label)
    elif isinstance(version, int) and not isinstance(version, bool) and version in (2, 3):
        count = meta.get("count")
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_COUNT:
            raise UserError(f"{label}: 'count' must be a whole number in 1..{MAX_COUNT:,}, got {count!r}")
    else:
        raise UserError(f"{label}: unsupported SOG version {version!r} (this reader knows 1, 2 and 3)")
    _check_memory(count, 3, Path(label))
    yield Progress(0.05, f"{p.name}: {count:,} Gaussians")

    names = _files_of(meta, "means", 2, label)
    mins, maxs = _floats(meta["means"], "mins", 3, label + " means"), _floats(meta["means"], "maxs", 3, label)
    lo = _image(files, names[0], count)[:count]
    hi = _image(files, names[1], count)[:count]
    means = decode_means(lo, hi, mins, maxs)
    del lo, hi
    yield Progress(0.35, f"{p.name}: positions")
    quats = decode_quats(_image(files, _files_of(meta, "quats", 1, label)[0], count)[:count], label)
    yield Progress(0.5, f"{p.name}: rotations")
    scales_px = _image(files, _files_of(meta, "scales", 1, label)[0], count)[:count, :3]
    color_px = _image(files, _files_of(meta, "sh0", 1, label)[0], count)[:count]
    if version is None:
        s = meta["scales"]
        log_scales = _lerp8(scales_px, _floats(s, "mins", 3, label), _floats(s, "maxs", 3, label))
        c = meta["sh0"]
        cmin, cmax = _floats(c, "mins", 4, label + " sh0"), _floats(c, "maxs", 4, label + " sh0")
        dc = _lerp8(color_px[:, :3], cmin[:3], cmax[:3])
        logit = _lerp8(color_px[:, 3], cmin[3], cmax[3])
        opacities = 1.0 / (1.0 + np.exp(-np.clip(logit, -80, 80)))
    else:
        log_scales = _codebook(meta, "scales", label)[scales_px]
        dc = _codebook(meta, "sh0", label)[color_px[:, :3]]
        opacities = color_px[:, 3] / 255.0
    yield Progress(0.7, f"{p.name}: scales and colours")
    rest = _read_shn(files, meta, count, version is None, label)
    sh = np.empty((count, 1 + rest.shape[1], 3), np.float32)
    sh[:, 0] = dc
    sh[:, 1:] = rest
    g = Gaussians(
        means=means,
        scales=np.exp(log_scales),
        quats=quats,
        opacities=opacities,
        sh=sh,
        source=f"{p.parent.name}/{p.name}" if p.name == "meta.json" and p.parent.name else p.name,
    )
    yield Progress(0.95, f"{p.name}: decoded")
    return g


def _count_v1(meta: dict, label: str) -> int:
    shape = meta.get("means", {}).get("shape") if isinstance(meta.get("means"), dict) else None
    if (
        not isinstance(shape, list)
        or len(shape) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in shape)
        or shape[1] != 3
        or not 1 <= shape[0] <= MAX_COUNT
    ):
        raise UserError(
            f"{label}: version-1 SOG needs means.shape = [count, 3] with 1 <= count <= {MAX_COUNT:,}"
        )
    return shape[0]


def _read_shn(files: _Files, meta: dict, count: int, v1: bool, label: str) -> np.ndarray:
    """Higher-order SH coefficients (count, K-1, 3) through the palette; (count, 0, 3) when absent."""
    section = meta.get("shN")
    if not section:
        return np.zeros((count, 0, 3), np.float32)
    names = _files_of(meta, "shN", 2, label)
    if v1:
        from PIL import Image

        data = files.read(names[0], 64 * 960 * 1024 * 8 + 2**20)
        try:
            with Image.open(io.BytesIO(data)) as im:
                width = im.size[0]
        except Exception as exc:
            raise UserError(f"{files.label(names[0])}: not a readable image ({exc})") from None
        bands = _V1_SHN_WIDTH_TO_BANDS.get(width)
        if bands is None:
            raise UserError(
                f"{files.label(names[0])}: width {width} is not an SH palette width (192, 512, 960)"
            )
        lo, hi = _floats({"v": [section.get("mins"), section.get("maxs")]}, "v", 2, label + " shN mins/maxs")
        per = _SHN_COEFFS[bands]
        palette_count = 65536  # no count in version 1: the palette's rows bound the labels below
    else:
        bands, palette_count = section.get("bands"), section.get("count")
        if bands not in (1, 2, 3) or not isinstance(palette_count, int) or not 1 <= palette_count <= 65536:
            raise UserError(f"{label}: shN needs bands in 1..3 and count in 1..65536")
        book = _codebook(meta, "shN", label)
        per = _SHN_COEFFS[bands]
        width = 64 * per
    centroids = _image(files, names[0], 0, exact_width=width)
    labels_px = _image(files, names[1], count)[:count]
    index = labels_px[:, 0].astype(np.int64) | (labels_px[:, 1].astype(np.int64) << 8)
    rows = centroids.shape[0] // width
    bad = (index >= palette_count) | (index // 64 >= rows)
    if bad.any():
        raise UserError(
            f"{files.label(names[1])}: {int(bad.sum())} SH labels point past the palette "
            f"(first at Gaussian {int(np.argmax(bad))})"
        )
    grid = centroids.reshape(rows, width, 4)
    cols = (index % 64)[:, None] * per + np.arange(per)[None, :]
    px = grid[(index // 64)[:, None], cols, :3]  # (count, per, 3)
    if v1:
        return (lo + (hi - lo) * (px / 255.0)).astype(np.float32)
    return book[px].astype(np.float32)


# -- streamed SOG ------------------------------------------------------------------------------------------
@dataclass
class Leaf:
    """A leaf of the streamed tree: its bounds and, per level of detail, (file, offset, count)."""

    lo: np.ndarray
    hi: np.ndarray
    lods: dict[int, tuple[int, int, int]]

    @property
    def center(self) -> np.ndarray:
        return 0.5 * (self.lo + self.hi)

    @property
    def radius(self) -> float:
        return float(0.5 * np.linalg.norm(self.hi - self.lo))


@dataclass
class StreamedSog:
    """A ``lod-meta.json`` scene: leaves, chunk files, and a cache of decoded chunks."""

    path: Path
    levels: int
    filenames: list[str]
    leaves: list[Leaf]
    environment: str | None = None
    _chunks: dict[int, Gaussians] = field(default_factory=dict, repr=False)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.min([lf.lo for lf in self.leaves], 0), np.max([lf.hi for lf in self.leaves], 0)

    def count_at(self, selection: dict[int, int]) -> int:
        return sum(self.leaves[i].lods[lod][2] for i, lod in selection.items())

    def select(self, eye: np.ndarray, budget: int, detail: float = 1.0) -> dict[int, int]:
        """One level per leaf (leaf index -> level): start everywhere at the coarsest level each leaf has,
        then refine the leaf nearest the camera relative to its size, one level at a time, while the total
        stays within ``budget`` Gaussians. ``detail`` > 1 refines more eagerly at a distance."""
        eye = np.asarray(eye, dtype=np.float64)
        sel = {i: max(lf.lods) for i, lf in enumerate(self.leaves) if lf.lods}
        total = self.count_at(sel)
        import heapq

        def priority(i: int) -> float:
            lf = self.leaves[i]
            dist = max(float(np.linalg.norm(lf.center - eye)) - lf.radius, 1e-6)
            return dist / (detail * max(lf.radius, 1e-6))

        heap = [(priority(i), i) for i in sel]
        heapq.heapify(heap)
        while heap:
            _, i = heapq.heappop(heap)
            finer = [lod for lod in self.leaves[i].lods if lod < sel[i]]
            if not finer:
                continue
            nxt = max(finer)
            extra = self.leaves[i].lods[nxt][2] - self.leaves[i].lods[sel[i]][2]
            if total + extra > budget:
                continue
            sel[i] = nxt
            total += extra
            heapq.heappush(heap, (priority(i) * 2.0, i))  # each level halves the screen-space error
        return sel

    def chunks_needed(self, selection: dict[int, int]) -> set[int]:
        return {self.leaves[i].lods[lod][0] for i, lod in selection.items()}

    def loaded(self, file_index: int) -> bool:
        return file_index in self._chunks

    def read_chunk(self, file_index: int) -> Gaussians:
        """Decode chunk ``file_index`` without touching the cache: reads only the path and file names, so a
        worker thread may call it while the GUI thread uses the cache (and then :meth:`insert_chunk`)."""
        if not 0 <= file_index < len(self.filenames):
            raise UserError(f"{self.path.name}: no chunk {file_index} (the scene has {len(self.filenames)})")
        name = self.filenames[file_index]
        target = (self.path.parent / name).resolve()
        if self.path.parent.resolve() not in target.parents:
            raise UserError(f"{self.path.name}: chunk path {name!r} leaves the scene folder")
        from backends.common import drain

        return drain(read_sog_gen(target))

    def insert_chunk(self, file_index: int, g: Gaussians) -> None:
        """Add a decoded chunk to the cache (the thread that owns the cache calls this)."""
        self._chunks[file_index] = g

    def evict(self, file_index: int) -> None:
        """Drop a decoded chunk from the cache (it is decoded again when needed)."""
        self._chunks.pop(file_index, None)

    def cached_count(self) -> int:
        """Gaussians held by the decoded chunks."""
        return sum(g.count for g in self._chunks.values())

    def load_chunk(self, file_index: int) -> Gaussians:
        """Decode chunk ``file_index`` into the cache (once); on one thread: reading and inserting."""
        if file_index not in self._chunks:
            self.insert_chunk(file_index, self.read_chunk(file_index))
        return self._chunks[file_index]

    def chunks(self) -> dict[int, Gaussians]:
        """A snapshot of the decoded chunks (a shallow copy: a worker may assemble from it)."""
        return dict(self._chunks)

    def shown_levels(
        self, selection: dict[int, int], chunks: dict[int, Gaussians] | None = None
    ) -> dict[int, int]:
        """Leaf -> the level :meth:`assemble` shows for it: the selected level when its chunk is loaded, else
        the finest loaded coarser level; leaves with nothing loaded are absent. ``chunks`` (default: the
        cache) are the decoded chunks to use."""
        chunks = self._chunks if chunks is None else chunks
        shown = {}
        for i, lod in selection.items():
            leaf = self.leaves[i]
            usable = [lv for lv in sorted(leaf.lods) if lv >= lod and leaf.lods[lv][0] in chunks]
            if usable:
                shown[i] = usable[0]
        return shown

    def assemble(self, selection: dict[int, int], chunks: dict[int, Gaussians] | None = None) -> Gaussians:
        """The Gaussians of a selection from the chunks already loaded (missing chunks fall back to the
        finest loaded coarser level of that leaf, or are left out): never blocks on I/O. ``chunks`` (default:
        the cache) lets a worker assemble from a snapshot plus the chunks it decoded."""
        from backends.splat.gaussians import concat

        chunks = self._chunks if chunks is None else chunks
        parts = []
        for i, lv in sorted(self.shown_levels(selection, chunks).items()):
            f, off, n = self.leaves[i].lods[lv]
            chunk = chunks[f]
            if off + n > chunk.count:
                raise UserError(f"{self.path.name}: leaf {i} references Gaussians past the end of chunk {f}")
            parts.append(chunk.subset(np.arange(off, off + n)))
        if not parts:
            raise UserError(f"{self.path.name}: no chunk loaded yet")
        g = parts[0] if len(parts) == 1 else concat(parts)
        g.source = f"{self.path.parent.name}/{self.path.name}"
        return g


def read_lod_meta(path: str | os.PathLike) -> StreamedSog:
    """Parse and check a ``lod-meta.json`` (version 1 or the unversioned pre-release form)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"cannot open {p}: no such file")
    if p.stat().st_size > MAX_META_BYTES:
        raise UserError(f"{p.name}: larger than {MAX_META_BYTES // 2**20} MiB, not a lod-meta.json")
    meta = _load_json(p.read_bytes(), p.name)
    version = meta.get("version")
    if version not in (None, 1):
        raise UserError(f"{p.name}: unsupported streamed SOG version {version!r} (this reader knows 1)")
    levels = meta.get("lodLevels")
    if not isinstance(levels, int) or isinstance(levels, bool) or not 1 <= levels <= 64:
        raise UserError(f"{p.name}: 'lodLevels' must be a whole number in 1..64, got {levels!r}")
    names = meta.get("filenames")
    if not isinstance(names, list) or not names or not all(isinstance(s, str) for s in names):
        raise UserError(f"{p.name}: 'filenames' must be a non-empty list of paths")
    leaves: list[Leaf] = []

    def walk(node, depth: int) -> None:
        if depth > 64 or not isinstance(node, dict):
            raise UserError(f"{p.name}: malformed tree node at depth {depth}")
        bound = node.get("bound")
        children, lods = node.get("children"), node.get("lods")
        if children is not None:
            if not isinstance(children, list) or not children:
                raise UserError(f"{p.name}: 'children' must be a list of nodes (depth {depth})")
            for child in children:
                walk(child, depth + 1)
            return
        if not isinstance(lods, dict) or not isinstance(bound, dict):
            raise UserError(f"{p.name}: a leaf needs 'bound' and 'lods' (depth {depth})")
        lo = _floats(bound, "min", 3, f"{p.name} leaf bound")
        hi = _floats(bound, "max", 3, f"{p.name} leaf bound")
        refs = {}
        for key, ref in lods.items():
            ok = isinstance(ref, dict) and all(
                isinstance(ref.get(k), int) and not isinstance(ref.get(k), bool) and ref.get(k) >= 0
                for k in ("file", "offset", "count")
            )
            if not (key.isdigit() and int(key) < levels and ok and ref["file"] < len(names)):
                raise UserError(f"{p.name}: invalid level-of-detail reference {key!r}: {ref!r:.80}")
            refs[int(key)] = (ref["file"], ref["offset"], ref["count"])
        leaves.append(Leaf(lo, hi, refs))

    walk(meta.get("tree"), 0)
    if not leaves:
        raise UserError(f"{p.name}: the tree has no leaves")
    env = meta.get("environment")
    return StreamedSog(p, levels, names, leaves, env if isinstance(env, str) else None)


# -- writing (version 2; SH degree 0) ----------------------------------------------------------------------
def _codebook_for(values: np.ndarray, iters: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """A 256-entry 1D codebook (quantile start + Lloyd steps) and each value's index."""
    v = np.asarray(values, np.float64).ravel()
    book = np.quantile(v, np.linspace(0, 1, 256))
    for _ in range(iters):
        book = np.unique(book)
        edges = 0.5 * (book[1:] + book[:-1])
        idx = np.searchsorted(edges, v)
        sums = np.bincount(idx, v, len(book))
        counts = np.bincount(idx, minlength=len(book))
        book = np.where(counts > 0, sums / np.maximum(counts, 1), book)
    book = np.sort(np.pad(book, (0, 256 - len(book)), mode="edge"))
    idx = np.searchsorted(0.5 * (book[1:] + book[:-1]), v)
    return book, idx.reshape(np.shape(values)).astype(np.uint8)


def encode(g: Gaussians) -> tuple[dict, dict[str, np.ndarray]]:
    """A version-2 SOG of ``g`` (SH degree 0): meta dict and name -> (H, W, 4) uint8 images."""
    n = g.count
    w = int(math.ceil(math.sqrt(n)))
    h = int(math.ceil(n / w))

    def img(rows: np.ndarray) -> np.ndarray:
        out = np.zeros((w * h, 4), np.uint8)
        out[:, 3] = 255
        out[:n, : rows.shape[1]] = rows
        return out.reshape(h, w, 4)

    m = g.means.astype(np.float64)
    logm = np.sign(m) * np.log1p(np.abs(m))
    mins, maxs = logm.min(0), logm.max(0)
    span = np.where(maxs - mins == 0, 1.0, maxs - mins)
    q16 = np.round((logm - mins) / span * 65535).astype(np.uint32)
    q = g.quats.astype(np.float64)
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    big = np.argmax(np.abs(q), axis=1)
    q = q * np.where(q[np.arange(n), big] < 0, -1.0, 1.0)[:, None]
    kept = np.stack([np.delete(row, b) for row, b in zip(q, big)])
    qpx = np.clip(np.round((kept * math.sqrt(2) * 0.5 + 0.5) * 255), 0, 255).astype(np.uint8)
    sbook, sidx = _codebook_for(np.log(g.scales))
    cbook, cidx = _codebook_for(g.sh[:, 0])
    alpha = np.clip(np.round(g.opacities * 255), 0, 255).astype(np.uint8)
    images = {
        "means_l.webp": img((q16 & 0xFF).astype(np.uint8)),
        "means_u.webp": img((q16 >> 8).astype(np.uint8)),
        "quats.webp": img(np.c_[qpx, (252 + big).astype(np.uint8)]),
        "scales.webp": img(sidx),
        "sh0.webp": img(np.c_[cidx, alpha]),
    }
    meta = {
        "version": 2,
        "count": n,
        "antialias": False,
        "means": {"mins": mins.tolist(), "maxs": maxs.tolist(), "files": ["means_l.webp", "means_u.webp"]},
        "scales": {"codebook": sbook.tolist(), "files": ["scales.webp"]},
        "quats": {"files": ["quats.webp"]},
        "sh0": {"codebook": cbook.tolist(), "files": ["sh0.webp"]},
    }
    return meta, images


def _webp(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buf, format="WEBP", lossless=True, quality=100, exact=True)
    return buf.getvalue()


def write_sog(path: str | os.PathLike, g: Gaussians) -> Path:
    """Write ``g`` (its base colours: SH degree 0) as SOG version 2: a bundled ``.sog`` zip, or an
    unbundled folder when ``path`` is a ``meta.json`` (its folder must exist). Atomic: temporary names,
    fsync, ``os.replace``."""
    p = Path(path)
    meta, images = encode(g)
    blobs = {name: _webp(im) for name, im in images.items()}
    blobs["meta.json"] = json.dumps(meta, allow_nan=False).encode()
    if p.suffix.lower() == ".sog":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for name, data in blobs.items():
                zf.writestr(name, data)
        write_bytes(p, buf.getvalue())
    elif p.name == "meta.json":
        if not p.parent.is_dir():
            raise UserError(f"cannot write {p}: folder {p.parent} does not exist")
        for name, data in blobs.items():  # images first, meta.json last: a reader never sees a half scene
            if name != "meta.json":
                write_bytes(p.parent / name, data)
        write_bytes(p, blobs["meta.json"])
    else:
        raise UserError(f"cannot write {p.name}: SOG is written as NAME.sog or FOLDER/meta.json")
    return p


def is_sog(path: str | os.PathLike) -> bool:
    """True for what this module opens: a ``.sog``, a SOG ``meta.json``/folder, or a ``lod-meta.json``."""
    p = Path(path)
    if p.suffix.lower() == ".sog" or p.name == "lod-meta.json":
        return True
    if p.is_dir():
        return (p / "meta.json").is_file() or (p / "lod-meta.json").is_file()
    return p.name == "meta.json"


def load_streamed_gen(path: str | os.PathLike, budget: int = 2_000_000) -> Iterator:
    """A streamed scene as one static set of Gaussians (CLI, conversion, first view): every leaf at the
    finest level that fits ``budget`` seen from outside its bounds; yields Progress per chunk."""
    scene = read_lod_meta(path)
    lo, hi = scene.bounds
    eye = hi + (hi - lo)  # a corner view: refines evenly, by leaf size
    sel = scene.select(eye, budget)
    need = sorted(scene.chunks_needed(sel))
    for k, f in enumerate(need):
        yield Progress((k + 0.5) / (len(need) + 1), f"{scene.path.name}: chunk {k + 1}/{len(need)}")
        scene.load_chunk(f)
    return scene.assemble(sel)
