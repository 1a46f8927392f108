"""Streamed SOG in the viewer, without Qt: open a ``lod-meta.json`` at its coarsest level, then keep the
level-per-leaf selection for the camera and the set of chunks being loaded.

The :class:`~backends.splat.sog.StreamedSog` cache belongs to the thread that owns the model (the GUI
thread): workers only decode (:func:`backends.splat.sog.read_chunks_gen`) and hand the chunks back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backends.common import Progress
from backends.splat import sog
from backends.splat.gaussians import Gaussians
from backends.splat.live import LoadedScene, check_scene_files, load_scene_gen, scene_paths


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


@dataclass
class Stream:
    """The viewer's side of a streamed scene: the selection for the camera, and the chunks in flight."""

    streamed: sog.StreamedSog
    selection: dict[int, int] = field(default_factory=dict)
    shown: dict[int, int] = field(default_factory=dict)  # leaf -> level the rows hold
    loading: set[int] = field(default_factory=set)  # chunk indices a worker is decoding
    failed: set[int] = field(default_factory=set)  # chunks that could not be read: not asked for again

    def __post_init__(self) -> None:
        if not self.selection:  # opened at the coarsest level (what load_source_gen decoded)
            self.selection = coarsest(self.streamed)
            self.shown = self.streamed.shown_levels(self.selection)

    def select(self, eye: np.ndarray, budget: int) -> bool:
        """Choose the levels for a camera at ``eye``; True when the selection changed."""
        sel = self.streamed.select(eye, budget)
        changed, self.selection = sel != self.selection, sel
        return changed

    def missing(self) -> list[int]:
        """Chunks the selection needs that are not decoded yet (and did not fail)."""
        need = self.streamed.chunks_needed(self.selection) - self.failed
        return sorted(f for f in need if not self.streamed.loaded(f))

    def insert(self, chunks: dict[int, Gaussians]) -> None:
        for i, g in chunks.items():
            if not self.streamed.loaded(i):
                self.streamed.insert_chunk(i, g)
            self.loading.discard(i)

    def assemble(self) -> Gaussians | None:
        """The Gaussians to show when they differ from what is shown (else None)."""
        levels = self.streamed.shown_levels(self.selection)
        if levels == self.shown:
            return None
        self.shown = levels
        return self.streamed.assemble(self.selection)

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
