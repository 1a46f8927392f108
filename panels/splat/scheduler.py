"""Level of detail, resolution and sort scheduling of the splat viewer, without Qt (tested headless).

While the view moves the viewer draws the most important splats (a prefix of the importance order), as many as
keep the measured frame time within the frame-rate target, at a reduced resolution; still frames draw every
splat at full resolution. A depth sort is skipped while the view barely changed, runs inline for small scenes
and in a worker for large ones. The CPU renderer sorts by depth itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: the fewest splats a moving frame draws
MIN_MOVING = 1000
#: share of the frame budget the draw itself may take (the rest: Qt composition, sorting, uploads)
DRAW_SHARE = 0.7
#: rows up to this count sort on the GUI thread (faster than a worker round trip)
INLINE_SORT_ROWS = 50_000
#: the view direction (matrix entries) and position (fraction of the scene radius) a sort still serves
SORT_TOLERANCE = 0.01


@dataclass
class DetailScheduler:
    """What the next frame draws; :meth:`frame_drawn` feeds back the measured draw time."""

    lod_max: int = 300_000  # at most this many splats while moving (the user's limit)
    moving_fps: float = 15.0
    moving_scale: float = 0.5
    budget: int = 300_000  # the moving count that meets the frame-rate target, adapted per frame
    full_frame_s: float = 0.0  # the last full-scene, full-resolution CPU frame (s); 0 = not measured

    def configure(self, lod_max: int, moving_fps: float, moving_scale: float) -> None:
        if lod_max != self.lod_max:
            self.budget = lod_max
        self.lod_max, self.moving_fps, self.moving_scale = lod_max, moving_fps, moving_scale

    def moving_count(self, n: int) -> int:
        """Splats drawn while moving out of ``n``."""
        return int(min(max(self.budget, MIN_MOVING), self.lod_max, n))

    def full_detail_affordable(self, renderer: str) -> bool:
        """The CPU renderer drew the whole scene at full resolution within the moving frame budget last time:
        then moving frames are full-quality frames too (a GL frame is only timed while moving)."""
        return renderer == "cpu" and 0 < self.full_frame_s <= DRAW_SHARE / self.moving_fps

    def resolution(self, moving: bool, renderer: str) -> float:
        return self.moving_scale if moving and not self.full_detail_affordable(renderer) else 1.0

    def frame_drawn(
        self, count: int, seconds: float, *, timed: bool, renderer: str, scale: float, full: bool
    ):
        """After a frame of ``count`` splats that took ``seconds``: remember a full CPU frame's time; after a
        timed (moving) frame, resize the moving set so the draw takes DRAW_SHARE of the frame budget (it
        shrinks to a quarter and grows to twice at most per frame)."""
        if renderer == "cpu" and scale == 1.0 and full:
            self.full_frame_s = seconds
        if not timed or count == 0 or seconds <= 0:
            return
        want = count * min(max(DRAW_SHARE / self.moving_fps / seconds, 0.25), 2.0)
        if abs(want - self.budget) > 0.15 * self.budget:
            self.budget = int(min(max(round(want, -3), MIN_MOVING), self.lod_max))

    @staticmethod
    def sort_still_valid(sorted_view: np.ndarray | None, view: np.ndarray, radius: float) -> bool:
        """Rows sorted for ``sorted_view`` still serve ``view`` (direction and position barely changed)."""
        if sorted_view is None:
            return False
        d_rot = np.abs(view[:3, :3] - sorted_view[:3, :3]).max()
        pos = [-m[:3, :3].T @ m[:3, 3] for m in (view, sorted_view)]
        return bool(d_rot < SORT_TOLERANCE and np.linalg.norm(pos[0] - pos[1]) < SORT_TOLERANCE * radius)

    @staticmethod
    def sort_inline(n: int) -> bool:
        return n <= INLINE_SORT_ROWS

    @staticmethod
    def renderer_sorts(renderer: str, view_dependent: bool) -> bool:
        """The CPU renderer sorts by view depth itself, faster than a sort job; rows whose colours depend on the
        view (SH degree > 0) still go through the job, which recolours them."""
        return renderer == "cpu" and not view_dependent


#: a streamed scene chooses its levels again once the camera has rested this long (s) ...
STREAM_REST_S = 0.15
#: ... or at most this often while it keeps moving (s)
STREAM_EVERY_S = 0.4


@dataclass
class StreamClock:
    """When a streamed scene chooses its levels again: after the camera rests :data:`STREAM_REST_S`, or every
    :data:`STREAM_EVERY_S` while it keeps moving (choosing is cheap; loading is latest-wins, so planning on
    every mouse event would only cancel loads)."""

    rest_s: float = STREAM_REST_S
    every_s: float = STREAM_EVERY_S
    changed_at: float | None = None  # the first camera change not yet planned for
    last_change: float = 0.0
    last_plan: float = -1e9

    def camera_changed(self, now: float) -> None:
        if self.changed_at is None:
            self.changed_at = now
        self.last_change = now

    def wait_s(self, now: float) -> float | None:
        """Seconds until the next plan is due (0 = now), or None when the camera has not changed."""
        if self.changed_at is None:
            return None
        rested = self.last_change + self.rest_s
        periodic = max(self.changed_at, self.last_plan) + self.every_s
        return max(0.0, min(rested, periodic) - now)

    def planned(self, now: float) -> None:
        self.changed_at, self.last_plan = None, now
