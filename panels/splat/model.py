"""The splat viewer's Qt-free source of truth: parameters, the scene and its source, the edited scene's rows,
the orbit camera, time, and the camera-path keyframes.

Everything that determines the figure is here and in :meth:`SplatModel.state`, so an export's sidecar reproduces
its image: the scene source (validated and loaded before anything changes), the camera (target, azimuth,
elevation, distance), the field of view, time, renderer and level of detail. Events: ``params(changed)``,
``scene()`` (a new scene), ``rows()`` (new instance rows: edits, colouring or time), ``camera(moving)``,
``keyframes()``, ``stale(why)``, ``restored()`` and ``stream()`` (a streamed scene's selection or loads changed).

A streamed SOG scene (``lod-meta.json``) holds its :class:`~panels.splat.stream.Stream`: the camera and the
``stream_budget`` choose one level per leaf, and ``scene`` is what the loaded chunks assemble for them. The
same camera and budget choose the same levels, so a session reproduces its figure once the chunks are in.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.common import Progress, UserError, drain, parse_size
from backends.splat import camera as cm
from backends.splat import edits, gauss4d
from backends.splat.gaussians import Gaussians
from backends.splat.live import SCENES, LoadedScene, SceneRows, check_scene_files, scene_rows
from backends.splat.pointcloud import frustum_segments
from panels.model import PanelModel, param
from panels.splat.stream import (
    Stream,
    StreamedScene,
    StreamRequest,
    StreamResult,
    load_source_gen,
    stream_job,
)

BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0), "grey": (0.5, 0.5, 0.5)}
#: parameters whose change rebuilds the edited scene (the rest only redraw)
EDIT_FIELDS = {"min_opacity", "max_scale", "sh_degree", "subsample", "crop", "seed", "color_by"}
MAX_KEYFRAMES = 100
VIDEOS = ("turntable", "camera path", "4D playback")
#: the elevation stays off the poles, where azimuth is undefined
MAX_ELEVATION = 89.0
#: scenes up to this many Gaussians build their rows on the model's thread (the bundled samples, 8k and 15k:
#: ~30 ms, so 4D playback shows every frame); bigger ones in a worker (300k: 1.4-2.3 s on the loaded 2 cores)
INLINE_BUILD = 20_000
#: the stale marker while a worker builds the rows
UPDATING = "updating the splats ..."


@dataclass(frozen=True)
class SplatParams:
    scene: str = param(
        "sample 3D",
        "Scene",
        choices=SCENES,
        tooltip="file: choose .ply/.splat/.spz/.sog files, a SOG meta.json or a streamed SOG lod-meta.json",
    )
    path: str = param(
        "", "Scene file(s)", form=False, tooltip="several files separated by ';' load as blocks"
    )
    camera_mode: str = param(
        "orbit",
        "Camera",
        choices=("orbit", "fly"),
        tooltip="orbit: drag turns around the target; fly: drag looks around, WASD/QE move",
    )
    up_axis: str = param("-y", "Up axis", choices=tuple(sorted(cm.UP_AXES)))
    fov: float = param(50.0, "Field of view (deg)", minimum=5, maximum=120, decimals=1, step=5)
    background: str = param("black", "Background", choices=tuple(BACKGROUNDS))
    # the choices depend on the scene's attributes: checked by the model, shown in a combo box by the panel
    color_by: str = param("colour", "Colour by", form=False)
    min_opacity: float = param(0.0, "Min opacity", minimum=0, maximum=1, decimals=3, step=0.01)
    max_scale: float = param(0.0, "Max scale (0 = off)", minimum=0, maximum=1e6, decimals=4, step=0.01)
    sh_degree: int = param(3, "SH degree limit", minimum=0, maximum=3)
    subsample: float = param(1.0, "Subsample fraction", minimum=0.001, maximum=1, decimals=3, step=0.05)
    crop: str = param("", "Crop box", tooltip="XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX in scene units; empty = off")
    seed: int = param(0, "Subsample seed", minimum=0, maximum=2**31 - 1, form=False)
    time: float = param(0.0, "Time", minimum=-1e6, maximum=1e6, form=False)
    play_speed: float = param(0.25, "Play speed (time units/s)", minimum=1e-3, maximum=100, form=False)
    lod_count: int = param(
        300_000,
        "Max splats while moving",
        minimum=1000,
        maximum=5_000_000,
        step=50_000,
        tooltip="while the view moves the most opaque and largest splats are drawn, as many as the target "
        "frame rate allows, up to this count",
    )
    moving_fps: float = param(
        15.0, "Target frames/s while moving", minimum=1, maximum=120, decimals=1, step=5
    )
    moving_scale: float = param(
        0.5, "Resolution while moving", minimum=0.25, maximum=1, decimals=2, step=0.25
    )
    stream_budget: int = param(
        2_000_000,
        "Streamed budget (Gaussians)",
        minimum=1000,
        maximum=20_000_000,
        step=250_000,
        tooltip="streamed SOG (lod-meta.json): the most Gaussians shown; leaves near the camera get finer "
        "levels first, within this count",
    )
    viewer: str = param(
        "auto",
        "Viewer renderer",
        choices=("auto", "gl", "cpu"),
        tooltip="gl: one instanced quad per splat; cpu: exact tile rasterizer on the CPU (numba) shown as one "
        "texture; auto: cpu on a software OpenGL (llvmpipe), gl on a GPU",
    )
    export_renderer: str = param(
        "gl",
        "Export renderer",
        choices=("gl", "reference"),
        tooltip="gl: the viewer's renderer (GL quads or CPU tiles, see Viewer renderer); reference: the torch "
        "reference rasterizer",
    )
    export_size: str = param("1280x960", "Export size", tooltip="WIDTHxHEIGHT of Render PNG")
    video: str = param(
        "turntable",
        "Video",
        choices=VIDEOS,
        tooltip="what Export > Video shows: a turn around the target, the camera path through the keyframes "
        "(a default sweep with fewer than two), or 4D playback over the scene's time range",
    )

    def __post_init__(self) -> None:
        if self.scene == "file" and not self.path.strip():
            raise UserError(
                "scene 'file' needs a .ply/.splat/.spz/.sog file or a SOG meta.json/lod-meta.json: choose one "
                "(File > Open)"
            )
        try:
            parse_size(self.export_size)
        except UserError as exc:
            raise UserError(f"export_size {self.export_size!r}: {exc}") from None
        self.edit_config()  # validates the crop box with the edit fields

    def crop_box(self):
        if not self.crop.strip():
            return None, None
        try:
            v = [float(x) for x in self.crop.split(",")]
        except ValueError:
            v = []
        if len(v) != 6 or not all(math.isfinite(x) for x in v):
            raise UserError(f"crop box {self.crop!r}: expected XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX")
        return tuple(v[:3]), tuple(v[3:])

    def edit_config(self) -> edits.EditConfig:
        lo, hi = self.crop_box()
        return edits.EditConfig(
            crop_min=lo,
            crop_max=hi,
            min_opacity=self.min_opacity,
            max_scale=self.max_scale,
            sh_degree=self.sh_degree,
            subsample=self.subsample,
            seed=self.seed,
        )


def build_rows(g: Gaussians, p: SplatParams, campos: np.ndarray):
    """(edited scene, legend, rows) of ``g`` for the parameters' edits, colouring and time, seen from
    ``campos``; a pure function, so a worker can build the rows (see :func:`build_rows_gen`)."""
    return drain(build_rows_gen(g, p, campos))


def build_rows_gen(g: Gaussians, p: SplatParams, campos: np.ndarray) -> Iterator:
    """:func:`build_rows` as a worker generator: progress between the stages, where a cancel stops it. The rows
    come in importance order (see :func:`importance_first`)."""
    yield Progress(0.0, f"edits: {g.count:,} Gaussians")
    e = edits.apply_edits(g, p.edit_config())
    yield Progress(0.1, f"colour by {p.color_by}")
    edited, legend = edits.color_by(e, p.color_by, campos)
    yield Progress(0.2, f"instance rows: {edited.count:,} splats")
    rows = scene_rows(edited, p.time, campos)
    yield Progress(0.8, "importance order")
    return edited, legend, importance_first(rows)


def importance_first(rows: SceneRows) -> SceneRows:
    """The rows reordered by decreasing importance, so the level of detail's moving set (the ``k`` most
    important rows) is the prefix ``rows.rows[:k]``: a view, where :meth:`SceneRows.subset` copies (~0.2 s for
    300k rows, too long for the GUI thread while the view moves)."""
    o = rows.order
    return SceneRows(rows.rows[o], rows.sh[o] if rows.sh is not None else None, np.arange(len(o)))


def most_important(rows: SceneRows, k: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``k`` most important rows (and their SH) of rows built by :func:`build_rows`: views, no copy."""
    return rows.rows[:k], (rows.sh[:k] if rows.sh is not None else None)


@dataclass(frozen=True)
class OpenedScene:
    """A loaded scene source with its framing (robust centre and radius: ~0.1 s for 300k Gaussians) and time
    range (4D: percentiles of the time means), computed where the scene is loaded, off the GUI thread."""

    loaded: LoadedScene
    center: np.ndarray
    radius: float
    time_range: tuple[float, float]


def open_source_gen(scene: str, path: str = "") -> Iterator:
    """Worker: :func:`~panels.splat.stream.load_source_gen`, then the scene's framing."""
    loaded = yield from load_source_gen(scene, path)
    yield Progress(None, "framing the scene")
    center, radius = loaded.gaussians.robust_center_radius()
    return OpenedScene(loaded, center, radius, gauss4d.time_range(loaded.gaussians))


@dataclass(frozen=True)
class Orbit:
    """The viewer's camera: a point on a sphere around ``target`` (fly mode moves the target)."""

    target: tuple[float, float, float] = (0.0, 0.0, 0.0)
    azimuth: float = 30.0
    elevation: float = 20.0
    distance: float = 5.0

    def camera(self, size: tuple[int, int], fov: float, up_axis: str) -> cm.Camera:
        w, h = int(size[0]), int(size[1])
        return cm.orbit_camera(
            np.asarray(self.target),
            self.azimuth,
            self.elevation,
            self.distance,
            w,
            h,
            fov,
            cm.UP_AXES[up_axis],
        )

    def to_dict(self) -> dict:
        return {
            "target": list(self.target),
            **{k: getattr(self, k) for k in ("azimuth", "elevation", "distance")},
        }

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Orbit:
        """Checked: a target of three finite numbers, finite angles, elevation within the poles, distance > 0."""
        if not isinstance(d, dict):
            raise UserError(f"{where} must be an object, got {d!r:.60}")
        unknown = sorted(set(d) - {"target", "azimuth", "elevation", "distance"})
        if unknown:
            raise UserError(f"{where}: unknown key {unknown[0]!r}")

        def number(key: str, lo: float, hi: float) -> float:
            v = d.get(key, getattr(cls, key))
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise UserError(f"{where}.{key} must be a finite number, got {v!r:.60}")
            if not lo <= v <= hi:
                raise UserError(f"{where}.{key} = {v:g} is out of range [{lo:g}, {hi:g}]")
            return float(v)

        t = d.get("target", [0.0, 0.0, 0.0])
        ok = isinstance(t, list | tuple) and len(t) == 3
        if not ok or not all(
            not isinstance(x, bool) and isinstance(x, int | float) and math.isfinite(x) for x in t
        ):
            raise UserError(f"{where}.target must be three finite numbers, got {t!r:.60}")
        return cls(
            tuple(float(x) for x in t),
            number("azimuth", -1e9, 1e9),
            number("elevation", -MAX_ELEVATION, MAX_ELEVATION),
            number("distance", 1e-3, 1e6),
        )


class SplatModel(PanelModel):
    key = "splat"
    Params = SplatParams

    def __init__(self) -> None:
        super().__init__()
        self.scene: Gaussians | None = None  # as loaded
        self.cameras: tuple[cm.Camera, ...] = ()  # the cameras that observed it (SfM scenes), drawn as frusta
        self.source: tuple[str, str] = ("", "")  # (scene, path) of ``scene``
        self.time_range = (0.0, 1.0)
        self.radius = 1.0  # the scene's robust radius: scales fly speed and the sort threshold
        self.edited: Gaussians | None = None  # after edits and colouring
        self.legend: edits.Legend | None = None
        self.rows: SceneRows | None = None
        self.orbit = Orbit()
        self.keyframes: list[Orbit] = []
        self.restoring = False  # True while a session is applied (a scene then keeps the session's camera)
        self.stream: Stream | None = None  # a streamed SOG scene's selection and loads
        self.center = np.zeros(3)  # the scene's robust centre: the default view looks at it
        #: runs a rows build off this thread: ``runner(make_generator, on_done)`` (None: build inline)
        self.runner: Callable[[Callable[[], Iterator], Callable[[tuple], None]], None] | None = None
        self._scene_gen = 0  # counts scenes shown: a build for an older scene is dropped
        self._rows_seq = 0  # counts rows requests
        self._rows_seq_shown = 0
        self._rows_key: tuple | None = None  # (scene, build key) of the rows shown
        self._rows_want: tuple | None = None  # (seq, key, make) the latest request not shown yet
        self._rows_busy = False  # the runner is building

    # -- scene ----------------------------------------------------------------------------------------
    def load_now(self) -> None:
        """Load the scene the parameters name, on the calling thread (the small bundled samples, the CLI)."""
        self.set_loaded(drain(open_source_gen(self.params.scene, self.params.path)), reset=True)

    def needs_load(self) -> bool:
        return (self.params.scene, self.params.path) != self.source

    def set_loaded(self, opened: OpenedScene, reset: bool, source: tuple[str, str] | None = None) -> None:
        """Show what :func:`open_source_gen` returned (a streamed scene keeps its stream)."""
        loaded = opened.loaded
        streamed = loaded.streamed if isinstance(loaded, StreamedScene) else None
        self.set_scene(
            loaded.gaussians,
            reset,
            source=source,
            cameras=loaded.cameras,
            streamed=streamed,
            framing=(opened.center, opened.radius, opened.time_range),
        )

    def set_scene(
        self,
        g: Gaussians,
        reset: bool,
        source: tuple[str, str] | None = None,
        cameras: tuple[cm.Camera, ...] = (),
        streamed=None,
        framing: tuple[np.ndarray, float, tuple[float, float]] | None = None,
    ) -> None:
        """Show a loaded scene (and the cameras that observed it); ``reset`` frames the camera on it, with the
        up axis of those cameras. Colouring by an attribute the scene lacks falls back to 'colour'; a time
        outside a 4D scene's range moves to its start. ``streamed`` (a StreamedSog whose coarsest level is
        ``g``) makes the camera choose its levels: see :meth:`stream_plan`. ``framing`` is the scene's robust
        (centre, radius, time range) when already known (computed here otherwise). The rows follow as
        :meth:`_rebuild` says (a big scene's in a worker)."""
        self.scene, self.cameras = g, tuple(cameras)
        self._scene_gen += 1
        self.stream = Stream(streamed) if streamed is not None else None
        self.source = source or (self.params.scene, self.params.path)
        if framing is None:
            framing = (*g.robust_center_radius(), gauss4d.time_range(g))
        center, self.radius, self.time_range = framing
        self.center = np.asarray(center, np.float64)
        p = self.params
        fix = {}
        if p.color_by not in edits.attribute_names(g):
            fix["color_by"] = "colour"
        if g.is_4d and not self.time_range[0] <= p.time <= self.time_range[1]:
            fix["time"] = self.time_range[0]
        if reset and cameras:
            up = -np.mean([c.R[1] for c in cameras], 0)  # camera rows: right, down, forward
            best = max(cm.UP_AXES, key=lambda k: float(np.dot(cm.UP_AXES[k], up)))
            if best != p.up_axis:
                fix["up_axis"] = best
        if fix:
            self.params = dataclasses.replace(p, **fix)
        if reset:
            self.orbit = self.framing()
        self.mark_stale("")
        self._rebuild()
        self.events.emit("scene")
        if fix:
            self.events.emit("params", changed=set(fix))

    def attribute_names(self) -> list[str]:
        return edits.attribute_names(self.scene) if self.scene is not None else ["colour"]

    # -- rows: built inline for small scenes, else by the owner's runner (a worker) ---------------------
    def _rebuild(self) -> None:
        """Edits + colour mode + time -> the edited scene and its rows. Small scenes (up to
        :data:`INLINE_BUILD` Gaussians) and a model without a runner build at once; bigger ones in a worker
        (``runner``): the rows shown stay until the new ones arrive, marked stale meanwhile. One build runs at a
        time and only the latest request waits behind it, so a time slider or an edit typed digit by digit shows
        every result it can afford, never a pile of cancelled builds."""
        if self.scene is None:
            return
        g, params, campos = self.scene, self.params, self._campos()
        key = (self._scene_gen, self._build_key())
        if key == self._rows_key and self._rows_want is None and not self._rows_busy:
            return  # the rows shown are these
        if self._rows_want is not None and self._rows_want[1] == key:
            return  # already asked for
        self._rows_seq += 1
        job = (self._rows_seq, key, lambda: build_rows_gen(g, params, campos))
        if self.runner is None or g.count <= INLINE_BUILD:
            self._rows_want = None
            self._show_rows(job[0], key, drain(job[2]()))
            return
        self._rows_want = job
        self.mark_stale(UPDATING)
        self._pump()

    def _pump(self) -> None:
        if self._rows_busy or self._rows_want is None or self.runner is None:
            return
        seq, key, make = self._rows_want
        self._rows_busy = True
        self.runner(make, lambda built: self.rows_built(seq, key, built))

    def rows_built(self, seq: int, key: tuple, built: tuple) -> None:
        """A worker's (edited, legend, rows) for request ``seq``: shown when it is newer than the rows shown and of
        this scene (an intermediate result of a slider drag is worth showing); then the latest request runs."""
        self._rows_busy = False
        if key[0] == self._scene_gen and seq > self._rows_seq_shown:
            self._show_rows(seq, key, built)
        if self._rows_want is not None and self._rows_want[0] <= self._rows_seq_shown:
            self._rows_want = None
        self._pump()

    def rows_cancelled(self) -> None:
        """The runner's job was cancelled (the panel's Stop): the rows still owe the parameters, so the latest
        request runs again."""
        self._rows_busy = False
        self._pump()

    def rows_failed(self, message: str) -> None:
        self._rows_busy, self._rows_want = False, None
        self.mark_stale(f"could not build the splats: {message}")

    def rows_pending(self) -> bool:
        """A build was asked for and its rows are not shown yet."""
        return self._rows_want is not None

    def rows_complete(self) -> None:
        """Build the pending rows on this thread now (exports and the CLI: the figure must show the parameters)."""
        if self._rows_want is not None:
            seq, key, make = self._rows_want
            self._rows_want = None
            self._show_rows(seq, key, drain(make()))

    def _show_rows(self, seq: int, key: tuple, built: tuple) -> None:
        self.edited, self.legend, self.rows = built
        self._rows_key, self._rows_seq_shown = key, seq
        if self._rows_want is not None and self._rows_want[0] <= seq:
            self._rows_want = None
        if self._rows_want is None and self.stale == UPDATING:
            self.mark_stale("")
        self.events.emit("rows")

    def _campos(self) -> np.ndarray:
        return self.camera((64, 48)).position

    # -- parameters -----------------------------------------------------------------------------------
    def set_params(self, **changes: Any) -> set[str]:
        if "color_by" in changes:
            self._check_color(changes["color_by"], self.scene, "color_by")
        return super().set_params(**changes)

    @staticmethod
    def _check_color(value: Any, scene: Gaussians | None, where: str) -> None:
        names = edits.attribute_names(scene) if scene is not None else ["colour"]
        if value not in names:
            raise UserError(f"{where} must be one of {', '.join(names)} for this scene; got {value!r:.60}")

    def params_changed(self, changed: set[str]) -> None:
        if self.scene is None or self.restoring:
            return
        if self.needs_load():
            self.mark_stale("loading the scene ...")
            return
        if "up_axis" in changed:
            self.orbit = self.framing()
            self.events.emit("camera", moving=False)
        if changed & EDIT_FIELDS or "up_axis" in changed:
            self._rebuild()
        elif "time" in changed and self.scene.is_4d:
            self._rebuild()  # the same build: the edits are cheap next to slicing a big 4D scene

    def set_time(self, t: float) -> None:
        lo, hi = self.time_range
        self.set_params(time=float(min(max(t, lo), hi)))

    def step_time(self, dt: float) -> None:
        """Advance 4D playback by ``dt`` seconds of wall time, wrapping at the end of the range."""
        lo, hi = self.time_range
        self.set_params(time=lo + (self.params.time + self.params.play_speed * dt - lo) % max(hi - lo, 1e-12))

    # -- streamed scenes -------------------------------------------------------------------------------
    def stream_plan(self) -> StreamRequest | None:
        """Choose the levels for the current camera and budget; None when the rows already show them, else
        the work for :func:`~panels.splat.stream.stream_job` (off this thread), whose result goes to
        :meth:`stream_apply`."""
        s = self.stream
        if s is None:
            return None
        s.select(self._campos(), self.params.stream_budget)
        if s.up_to_date():
            return None
        params, campos = self.params, self._campos()
        return StreamRequest(
            s.streamed,
            dict(s.selection),
            s.missing(),
            s.streamed.chunks(),
            lambda g: build_rows(g, params, campos),
            self._build_key(),
        )

    def stream_apply(self, result: StreamResult) -> None:
        """A stream job's result (on the model's thread): insert its chunks, show its rows (rebuilt here only
        when the parameters or camera changed meanwhile in a way the rows depend on)."""
        if self.stream is None or result.request.streamed is not self.stream.streamed:
            return  # a scene opened since
        self.stream.insert(result, self.params.stream_budget)
        self.scene = result.scene
        self._scene_gen += 1
        if result.request.key == self._build_key():
            self._rows_seq += 1
            self._show_rows(self._rows_seq, (self._scene_gen, result.request.key), result.built)
        else:
            self._rebuild()
        self.events.emit("stream")

    def stream_complete(self) -> None:
        """Load every chunk the current selection needs, on this thread (exports and the CLI: the figure is
        then a function of the camera and budget alone)."""
        request = self.stream_plan()
        if request is not None:
            self.stream_apply(drain(stream_job(request)))

    def _build_key(self) -> tuple:
        """What the rows depend on besides the scene: edits, colouring, time, and the camera for depth colours."""
        p = self.params
        where = tuple(np.round(self._campos(), 9)) if p.color_by == "depth" else None
        return (p.edit_config(), p.color_by, p.time, where)

    # -- camera ---------------------------------------------------------------------------------------
    def camera(self, size: tuple[int, int], orbit: Orbit | None = None) -> cm.Camera:
        return (orbit or self.orbit).camera(size, self.params.fov, self.params.up_axis)

    def framing(self) -> Orbit:
        """The default view of the scene: its robust centre from 3 radii, azimuth 30, elevation 20 degrees."""
        if self.scene is None:
            return Orbit()
        return Orbit(tuple(float(x) for x in self.center), 30.0, 20.0, 3.0 * self.radius)

    def set_orbit(self, orbit: Orbit, moving: bool = False) -> None:
        self.orbit = orbit
        if not moving and self.params.color_by == "depth":
            self._rebuild()  # depth colours are distances from the camera
        self.events.emit("camera", moving=moving)

    def reset_view(self) -> None:
        self.set_orbit(self.framing())

    def rotate(self, d_az: float, d_el: float) -> None:
        o = self.orbit
        up = cm.UP_AXES[self.params.up_axis]
        if self.params.camera_mode == "fly":  # look around: the eye stays, the target moves
            eye = cm.orbit_eye(np.asarray(o.target), o.azimuth, o.elevation, o.distance, up)
            az, el = o.azimuth + d_az, float(np.clip(o.elevation - d_el, -MAX_ELEVATION, MAX_ELEVATION))
            target = eye - cm.orbit_eye(np.zeros(3), az, el, o.distance, up)
            new = Orbit(tuple(float(x) for x in target), az, el, o.distance)
        else:
            el = float(np.clip(o.elevation + d_el, -MAX_ELEVATION, MAX_ELEVATION))
            new = dataclasses.replace(o, azimuth=o.azimuth + d_az, elevation=el)
        self.set_orbit(new, moving=True)

    def zoom(self, factor: float) -> None:
        if self.params.camera_mode == "fly":
            self.move(forward=(1 - factor) * self.orbit.distance)
        else:
            d = float(np.clip(self.orbit.distance * factor, 1e-3, 1e6))
            self.set_orbit(dataclasses.replace(self.orbit, distance=d), moving=True)

    def move(self, forward: float = 0.0, right: float = 0.0, up: float = 0.0) -> None:
        r = self.camera((64, 48)).R  # rows: right, down, forward
        t = np.asarray(self.orbit.target) + forward * r[2] + right * r[0] - up * r[1]
        self.set_orbit(dataclasses.replace(self.orbit, target=tuple(float(x) for x in t)), moving=True)

    def look_through(self, i: int) -> None:
        """Look through scene camera ``i``: its eye, view direction and field of view (the orbit camera has no
        roll: the image is levelled to the up axis). The target is on the view axis, a scene radius ahead."""
        cam = self.cameras[i]
        fwd, eye = cam.R[2], cam.position
        e1, e2, u = cm.orbit_basis(cm.UP_AXES[self.params.up_axis])
        back = -fwd
        el = math.degrees(math.asin(float(np.clip(back @ u, -1, 1))))
        if abs(el) > MAX_ELEVATION:
            raise UserError(f"camera {i + 1} looks straight along the up axis: choose another up axis")
        az = math.degrees(math.atan2(float(back @ e2), float(back @ e1)))
        d = self.radius
        self.set_params(fov=float(np.clip(cam.fov_y_deg, 5, 120)))
        self.set_orbit(Orbit(tuple(float(x) for x in eye + d * fwd), az, el, d))

    def frusta(self) -> np.ndarray:
        """Segment ends (M, 3) of the scene cameras' frusta, a tenth of the scene radius deep."""
        if not self.cameras:
            return np.zeros((0, 3))
        return np.concatenate([frustum_segments(c, 0.1 * self.radius) for c in self.cameras])

    # -- camera path ----------------------------------------------------------------------------------
    def add_keyframe(self) -> None:
        if len(self.keyframes) >= MAX_KEYFRAMES:
            raise UserError(f"a camera path holds at most {MAX_KEYFRAMES} keyframes")
        self.keyframes.append(self.orbit)
        self.events.emit("keyframes")

    def remove_keyframe(self, i: int) -> None:
        del self.keyframes[i]
        self.events.emit("keyframes")

    def move_keyframe(self, i: int, j: int) -> None:
        """Move keyframe ``i`` to position ``j`` (both clamped to the list)."""
        j = min(max(j, 0), len(self.keyframes) - 1)
        self.keyframes.insert(j, self.keyframes.pop(i))
        self.events.emit("keyframes")

    def clear_keyframes(self) -> None:
        self.keyframes.clear()
        self.events.emit("keyframes")

    def path_orbits(self) -> list[Orbit]:
        """The keyframes, or (fewer than two) a default sweep from the current view."""
        if len(self.keyframes) >= 2:
            return list(self.keyframes)
        o = self.orbit
        return [
            dataclasses.replace(o, azimuth=o.azimuth + a, elevation=o.elevation + e, distance=o.distance * d)
            for a, e, d in ((0, 0, 1.0), (40, 15, 0.8), (90, -5, 1.1))
        ]

    def path_camera(self, u: float, size: tuple[int, int]) -> cm.Camera:
        """The camera-path camera at fraction ``u`` in [0, 1] (positions Catmull-Rom, rotations slerp)."""
        return cm.CameraPath(tuple(self.camera(size, o) for o in self.path_orbits())).at(u)

    def turntable_camera(self, u: float, size: tuple[int, int]) -> cm.Camera:
        return self.camera(size, dataclasses.replace(self.orbit, azimuth=self.orbit.azimuth + 360.0 * u))

    # -- sessions -------------------------------------------------------------------------------------
    def state(self) -> dict:
        st = super().state()
        st["camera"] = self.orbit.to_dict()
        st["keyframes"] = [k.to_dict() for k in self.keyframes]
        return st

    def state_keys(self) -> set[str]:
        return {"params", "camera", "keyframes"}

    def validate_state(self, state: Any, arrays: dict[str, np.ndarray]) -> Any:
        staged = super().validate_state(state, arrays)
        p = staged["params"]
        scene, source = self.scene, (p.scene, p.path)
        if (
            source != self.source
        ):  # the session names another scene: load it now, so a bad file changes nothing
            try:
                if p.scene == "file":
                    check_scene_files(p.path)
                opened = drain(open_source_gen(p.scene, p.path))
            except UserError as exc:
                raise UserError(f"splat.params.path: {exc}") from None
            except (OSError, ValueError, KeyError) as exc:
                raise UserError(f"splat.params.path: cannot read {p.path!r}: {exc}") from None
            scene = opened.loaded.gaussians
            staged["scene"] = (opened, source)
        self._check_color(p.color_by, scene, "splat.params.color_by")
        if "camera" in state:
            staged["camera"] = Orbit.from_dict(state["camera"], "splat.camera")
        frames = state.get("keyframes", [])
        if not isinstance(frames, list) or len(frames) > MAX_KEYFRAMES:
            raise UserError(f"splat.keyframes must be a list of at most {MAX_KEYFRAMES} cameras")
        staged["keyframes"] = [Orbit.from_dict(k, f"splat.keyframes[{i}]") for i, k in enumerate(frames)]
        return staged

    def apply(self, staged: Any) -> None:
        self.restoring = True
        try:
            super().apply(staged)
        finally:
            self.restoring = False

    def apply_state(self, staged: Any) -> None:
        self.params = staged["params"]
        if "scene" in staged:
            opened, source = staged["scene"]
            self.set_loaded(opened, reset="camera" not in staged, source=source)
        if "camera" in staged:
            self.orbit = staged["camera"]
        self.keyframes = list(staged["keyframes"])
        self.mark_stale("")
        self._rebuild()
        self.events.emit("keyframes")
        self.events.emit("camera", moving=False)
