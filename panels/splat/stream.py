"""Streamed SOG in the viewer, without Qt: open a ``lod-meta.json`` at its coarsest level, then keep the
level-per-leaf selection for the camera and the set of chunks being loaded.

The :class:`~backends.splat.sog.StreamedSog` cache belongs to the thread that owns the model (the GUI
thread): a worker (:func:`stream_job`) decodes the missing chunks, assembles the selection from a snapshot
and builds the rows; the owner inserts the chunks and swaps the rows in, so no heavy work stays on its thread.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backends.common import Progress, UserError
from backends.splat import sog
from backends.splat.gaussians import Gaussians
from backends.splat.live import LoadedScene, check_scene_files, load_scene_gen, scene_paths

#: decoded chunks are kept up to this many times the Gaussian budget (revisits are then free)
CACHE_BUDGETS = 2


@dataclass(frozen=True)
class StreamedScene(LoadedScene):
    """A loaded streamed scene: ``gaussians`` is its coarsest level; ``streamed`` loads the rest."""

    streamed: sog.StreamedSog | None = None


def streamed_path(scene: str, path: str) -> Path | None:
    """The ``lod-meta.json`` a scene source names (one file, or a folder holding one), else None."""
    paths = scene_paths(path) if scene == "file" else []
    if len(paths) != 1:
        return None
    p = paths[0]
    if p.is_dir() and (p / "lod-meta.json").is_file():
        return p / "lod-meta.json"
    return p if p.name == "lod-meta.json" else None


def resolve_folder(path: Path) -> Path:
    """A SOG folder opens through its ``lod-meta.json`` (streamed) or ``meta.json``; anything else as is."""
    if path.is_dir():
        for name in ("lod-meta.json", "meta.json"):
            if (path / name).is_file():
                return path / name
    return path


def coarsest(streamed: sog.StreamedSog) -> dict[int, int]:
    """Leaf -> its coarsest level (the first thing shown)."""
    return {i: max(leaf.lods) for i, leaf in enumerate(streamed.leaves) if leaf.lods}


def load_source_gen(scene: str, path: str = "") -> Iterator:
    """Like :func:`backends.splat.live.load_scene_gen`; a streamed SOG returns a :class:`StreamedScene`
    holding the coarsest level of every leaf (the camera then refines it)."""
    lod = streamed_path(scene, path)
    if lod is None:
        return (yield from load_scene_gen(scene, path))
    check_scene_files(str(lod))
    streamed = sog.read_lod_meta(lod)
    levels = coarsest(streamed)
    need = sorted(streamed.chunks_needed(levels))
    for k, f in enumerate(need):  # the scene is not shared yet: this thread may fill its cache
        yield Progress((k + 0.5) / (len(need) + 1), f"{lod.name}: coarsest level, chunk {k + 1}/{len(need)}")
        streamed.load_chunk(f)
    return StreamedScene(streamed.assemble(levels), (), streamed)


@dataclass(frozen=True)
class StreamRequest:
    """What a worker needs to refine a streamed scene: the selection, the chunks to decode, a snapshot of the
    decoded ones, and how to turn Gaussians into the viewer's rows (``build(scene) -> (edited, legend,
    rows)`` for the parameters and camera of the moment)."""

    streamed: sog.StreamedSog
    selection: dict[int, int]
    missing: list[int]
    chunks: dict[int, Gaussians]
    build: Callable[[Gaussians], tuple]
    key: Any  # what ``build`` depends on (parameters, camera position): stale results are rebuilt


@dataclass(frozen=True)
class StreamResult:
    request: StreamRequest
    chunks: dict[int, Gaussians]  # newly decoded
    failed: dict[int, str]  # chunk -> one-line reason
    shown: dict[int, int]  # leaf -> level of ``scene``
    scene: Gaussians
    built: tuple  # (edited, legend, rows) of ``scene``


def stream_job(request: StreamRequest) -> Iterator:
    """Worker: decode the missing chunks (never touching the scene's cache), assemble the selection from the
    snapshot plus them, and build the rows, so the GUI thread only swaps them in. A chunk that cannot be
    read is reported and its leaf stays at a coarser level."""
    s, chunks, failed = request.streamed, dict(request.chunks), {}
    new: dict[int, Gaussians] = {}
    for k, i in enumerate(request.missing):
        yield Progress(k / (len(request.missing) + 1), f"{s.path.name}: chunk {k + 1}/{len(request.missing)}")
        try:
            new[i] = s.read_chunk(i)
        except UserError as exc:
            failed[i] = str(exc)
    chunks.update(new)
    yield Progress(len(request.missing) / (len(request.missing) + 1), f"{s.path.name}: assembling")
    scene = s.assemble(request.selection, chunks)
    return StreamResult(
        request, new, failed, s.shown_levels(request.selection, chunks), scene, request.build(scene)
    )


@dataclass
class Stream:
    """The viewer's side of a streamed scene: the selection for the camera, and the chunks in flight."""

    streamed: sog.StreamedSog
    selection: dict[int, int] = field(default_factory=dict)
    shown: dict[int, int] = field(default_factory=dict)  # leaf -> level the rows hold
    loading: set[int] = field(default_factory=set)  # chunk indices a worker is decoding
    failed: set[int] = field(default_factory=set)  # chunks that could not be read: not asked for again
    base: set[int] = field(default_factory=set)  # the coarsest level's chunks: always kept, the fallback

    def __post_init__(self) -> None:
        if not self.selection:  # opened at the coarsest level (what load_source_gen decoded)
            self.selection = coarsest(self.streamed)
            self.shown = self.streamed.shown_levels(self.selection)
        self.base = self.streamed.chunks_needed(coarsest(self.streamed))

    def select(self, eye: np.ndarray, budget: int) -> None:
        """Choose the levels for a camera at ``eye``."""
        self.selection = self.streamed.select(eye, budget)

    def missing(self) -> list[int]:
        """Chunks the selection needs that are not decoded yet (and did not fail)."""
        need = self.streamed.chunks_needed(self.selection) - self.failed
        return sorted(f for f in need if not self.streamed.loaded(f))

    def up_to_date(self) -> bool:
        """The rows show the selection as well as the readable chunks allow."""
        return not self.missing() and self.streamed.shown_levels(self.selection) == self.shown

    def insert(self, result: StreamResult, budget: int) -> None:
        """A worker's chunks (on the thread that owns the cache). The cache stays bounded: past
        :data:`CACHE_BUDGETS` times ``budget`` Gaussians, chunks neither shown, selected, loading nor
        coarsest are dropped (decoded again if the camera comes back)."""
        for i, g in result.chunks.items():
            if not self.streamed.loaded(i):
                self.streamed.insert_chunk(i, g)
        self.failed |= set(result.failed)
        self.loading -= set(result.request.missing)
        self.shown = result.shown
        if self.streamed.cached_count() > CACHE_BUDGETS * budget:
            s = self.streamed
            keep = self.base | self.loading | s.chunks_needed(self.selection)
            keep |= {s.leaves[i].lods[lv][0] for i, lv in self.shown.items()}
            for i in set(s.chunks()) - keep:
                s.evict(i)

    def info(self) -> str:
        """'streamed: N of M Gaussians, level per leaf L0 x a, L1 x b (...), K chunks loading': N shown now,
        M selected for the camera."""
        s = self.streamed
        shown = sum(s.leaves[i].lods[lv][2] for i, lv in self.shown.items())
        want = s.count_at(self.selection)
        per = Counter(self.shown.values())
        levels = ", ".join(f"L{lv} x {per[lv]}" for lv in sorted(per))
        k = len(self.loading)
        return (
            f"streamed: {shown:,} of {want:,} Gaussians, level per leaf {levels} "
            f"(of {len(s.leaves)} leaves, L0 finest), {k} chunk{'' if k == 1 else 's'} loading"
            + (f", {len(self.failed)} unreadable (kept coarser)" if self.failed else "")
        )
