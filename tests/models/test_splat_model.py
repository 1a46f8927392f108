"""The splat viewer's model and scheduler, without Qt: sessions restore the camera, time, renderer, level of
detail and scene exactly; every invalid value changes nothing and names key and value."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from backends.common import UserError
from backends.splat import camera as cm
from backends.splat import io, samples
from panels.model import param_specs
from panels.splat.model import Orbit, SplatModel, SplatParams
from panels.splat.scheduler import MIN_MOVING, DetailScheduler


@pytest.fixture(scope="module")
def sample_scene():
    return io.load(samples.SAMPLE_3D)


@pytest.fixture
def model(sample_scene):
    m = SplatModel()
    m.set_scene(sample_scene, reset=True, source=("sample 3D", ""))
    return m


def test_rows_and_importance_order(model, sample_scene):
    rows = model.rows
    assert rows.count == sample_scene.count and rows.rows.shape == (sample_scene.count, 13)
    # importance: opacity x geometric-mean standard deviation, from the covariance diagonal of the rows
    sd = np.sqrt(rows.rows[:, [3, 6, 8]].astype(float))
    imp = rows.rows[:, 12] * np.prod(sd, 1) ** (1 / 3)
    ordered = imp[rows.order]
    assert np.all(np.diff(ordered) <= 1e-6 * ordered.max())
    top, _ = rows.subset(1000)
    assert top[:, 12].min() >= 0 and len(top) == 1000


def test_session_restores_camera_time_renderer_and_keyframes(model, sample_scene):
    model.set_params(fov=35.0, viewer="gl", lod_count=20_000, background="white", color_by="opacity")
    model.rotate(47.0, 12.0)
    model.zoom(0.7)
    model.add_keyframe()
    model.rotate(30.0, 0.0)
    model.add_keyframe()
    st, cam = model.state(), model.camera((320, 240))
    fresh = SplatModel()
    fresh.set_scene(sample_scene, reset=True, source=("sample 3D", ""))
    assert not np.allclose(fresh.camera((320, 240)).viewmat, cam.viewmat)
    fresh.restore(st)
    assert fresh.state() == st
    np.testing.assert_allclose(fresh.camera((320, 240)).viewmat, cam.viewmat, atol=1e-12)
    assert fresh.orbit.azimuth == pytest.approx(30 + 47 + 30) and fresh.params.viewer == "gl"
    assert fresh.legend is not None and fresh.legend.title == "opacity"
    np.testing.assert_array_equal(fresh.rows.rows, model.rows.rows)


def test_4d_session_loads_its_scene_and_time():
    m = SplatModel()
    m.load_now()
    four = SplatModel()
    four.load_now()
    four.set_params(scene="dynamic 4D")  # the panel loads in a worker; here: the synchronous path
    four.load_now()
    four.set_time(0.7)
    st = four.state()
    m.restore(st)  # the session names another scene: loaded while validating, then applied
    assert m.scene.is_4d and m.params.time == pytest.approx(0.7) and m.source == ("dynamic 4D", "")
    np.testing.assert_array_equal(m.rows.rows, four.rows.rows)
    rows_07 = m.rows.rows.copy()
    m.set_time(0.1)
    assert np.abs(m.rows.rows[:, :3] - rows_07[:, :3]).max() > 1e-3  # the scene moves with time


def _invalid_values(name: str, spec) -> list:
    if spec.kind == "choice":
        return ["warp-drive", 3]
    if spec.kind == "text":
        return [5]
    if spec.kind == "int":
        return [1.5, spec.maximum + 1, "fast"]
    return [float("nan"), "fast", spec.minimum - 1.0]


def test_every_invalid_value_changes_nothing(model, tmp_path):
    st = model.state()
    cases = [
        (name, v) for name, spec in param_specs(SplatParams).items() for v in _invalid_values(name, spec)
    ]
    (tmp_path / "notes.txt").write_text("not a scene")
    (tmp_path / "garbage.ply").write_bytes(b"not a ply header at all\n")
    cases += [
        ("crop", "1,2"),
        ("export_size", "big"),
        ("color_by", "time"),  # the 3D sample has no time attribute
        ("scene", "file"),  # no path
        ("path", str(tmp_path / "missing.ply")),
        ("path", str(tmp_path / "notes.txt")),
        ("path", str(tmp_path / "garbage.ply")),
        ("nonsense", 1),
    ]
    for key, value in cases:
        params = dict(st["params"], **{key: value})
        if key == "path":
            params["scene"] = "file"
        bad = dict(st, params=params)
        with pytest.raises(UserError) as err:
            model.restore(bad)
        msg = str(err.value)
        assert key in msg, (key, value, msg)
        assert model.state() == st, (key, value)
    camera_cases = [
        ("azimuth", float("nan")),
        ("elevation", 95.0),
        ("distance", -1.0),
        ("target", [1.0, 2.0]),
        ("distance", "far"),
        ("zoom", 1.0),
    ]
    for key, value in camera_cases:
        bad = dict(st, camera=dict(st["camera"], **{key: value}))
        with pytest.raises(UserError, match=f"camera.*{key}|{key}.*camera"):
            model.restore(bad)
        assert model.state() == st
    for bad in ({"keyframes": "all"}, {"keyframes": [{"distance": 0.0}]}, {"extra": 1}):
        with pytest.raises(UserError):
            model.restore(dict(st, **bad))
        assert model.state() == st


def test_set_params_rejects_and_keeps(model):
    before = model.params
    with pytest.raises(UserError, match="fov"):
        model.set_params(fov=500.0)
    with pytest.raises(UserError, match="crop box"):
        model.set_params(crop="1,2")
    assert model.params == before
    model.set_params(crop="-5,-5,-5,0,5,5")
    assert model.edited.means[:, 0].max() <= 0 and 100 < model.edited.count < model.scene.count


def test_camera_path_and_turntable(model):
    size = (160, 120)
    k0 = model.orbit
    model.add_keyframe()
    model.rotate(90.0, 10.0)
    model.add_keyframe()
    model.rotate(45.0, 0.0)
    model.add_keyframe()
    np.testing.assert_allclose(
        model.path_camera(0.0, size).viewmat, model.camera(size, k0).viewmat, atol=1e-9
    )
    end = model.camera(size, model.keyframes[-1])
    np.testing.assert_allclose(model.path_camera(1.0, size).viewmat, end.viewmat, atol=1e-9)
    model.move_keyframe(2, 0)  # reorder: the last keyframe now starts the path
    np.testing.assert_allclose(model.path_camera(0.0, size).viewmat, end.viewmat, atol=1e-9)
    model.remove_keyframe(0)
    assert len(model.keyframes) == 2 and model.keyframes[0] == k0
    # turntable at a quarter turn: the eye has turned 90 degrees about the up axis at the same distance
    c0, c1 = model.turntable_camera(0.0, size), model.turntable_camera(0.25, size)
    t = np.asarray(model.orbit.target)
    v0, v1 = c0.position - t, c1.position - t
    up = np.asarray(cm.UP_AXES[model.params.up_axis])
    h0, h1 = v0 - (v0 @ up) * up, v1 - (v1 @ up) * up
    angle = math.degrees(math.acos(h0 @ h1 / np.linalg.norm(h0) / np.linalg.norm(h1)))
    assert angle == pytest.approx(90.0, abs=1e-6)
    assert np.linalg.norm(v1) == pytest.approx(model.orbit.distance)


def test_fly_mode_keeps_the_eye(model):
    model.set_params(camera_mode="fly")
    eye = model.camera((64, 48)).position
    model.rotate(30, 5)
    np.testing.assert_allclose(model.camera((64, 48)).position, eye, atol=1e-9)
    model.move(forward=0.5)
    assert np.linalg.norm(model.camera((64, 48)).position - eye) == pytest.approx(0.5, rel=1e-9)


def test_orbit_checks():
    assert Orbit.from_dict({"azimuth": 10}, "c") == dataclasses.replace(Orbit(), azimuth=10.0)
    with pytest.raises(UserError, match=r"c\.distance"):
        Orbit.from_dict({"distance": True}, "c")


def test_scheduler_level_of_detail():
    s = DetailScheduler(lod_max=20_000, moving_fps=10.0, moving_scale=0.5, budget=20_000)
    assert s.moving_count(5000) == 5000 and s.moving_count(10**6) == 20_000
    # a frame of 8000 splats that took 0.2 s: the draw may take 0.7/10 s -> 0.35 x 8000 = 2800, rounded
    s.frame_drawn(8000, 0.2, timed=True, renderer="gl", scale=0.5, full=False)
    assert s.budget == 3000
    s.frame_drawn(8000, 2.0, timed=True, renderer="gl", scale=0.5, full=False)  # 0.035x: at most /4 a frame
    assert s.budget == 2000
    s.frame_drawn(2000, 0.035, timed=True, renderer="gl", scale=0.5, full=False)  # exactly half: doubles
    assert s.budget == 4000
    s.frame_drawn(1000, 10.0, timed=True, renderer="gl", scale=0.5, full=False)
    assert s.budget == MIN_MOVING
    s.frame_drawn(1000, 10.0, timed=False, renderer="gl", scale=1.0, full=True)  # untimed: no change
    assert s.budget == MIN_MOVING
    s.configure(50_000, 10.0, 0.5)  # a new user limit starts the budget there
    assert s.budget == 50_000
    assert (
        s.resolution(moving=True, renderer="gl") == 0.5 and s.resolution(moving=False, renderer="gl") == 1.0
    )
    s.frame_drawn(100_000, 0.05, timed=False, renderer="cpu", scale=1.0, full=True)  # a fast full CPU frame
    assert s.full_detail_affordable("cpu") and s.resolution(moving=True, renderer="cpu") == 1.0
    assert not s.full_detail_affordable("gl")


def test_scheduler_sort_decisions():
    vm = cm.orbit_camera((0, 0, 0), 30, 20, 5.0).viewmat
    near = cm.orbit_camera((0, 0, 0), 30.2, 20, 5.0).viewmat
    far = cm.orbit_camera((0, 0, 0), 35, 20, 5.0).viewmat
    s = DetailScheduler
    assert s.sort_still_valid(vm, vm, 1.0) and not s.sort_still_valid(None, vm, 1.0)
    assert not s.sort_still_valid(vm, far, 1.0)
    # 0.2 degrees moves the eye by 5 * 0.0035 = 0.017: within 1% of a radius of 10, not of 1
    assert s.sort_still_valid(vm, near, 10.0) and not s.sort_still_valid(vm, near, 1.0)
    assert s.sort_inline(50_000) and not s.sort_inline(50_001)
    assert s.renderer_sorts("cpu", False) and not s.renderer_sorts("cpu", True)
    assert not s.renderer_sorts("gl", False)


@pytest.mark.data
def test_garden_cameras_look_through_and_session():
    from tests.conftest import shared_data

    path = str(shared_data("splat", "gsplat_test_garden.npz"))
    m = SplatModel()
    m.load_now()
    m.restore({"params": {"scene": "file", "path": path}})  # a session naming the file loads it
    assert m.scene.count == 138_766 and len(m.cameras) == 3 and m.params.up_axis == "+z"
    assert m.frusta().shape == (3 * 16, 3)
    for i, cam in enumerate(m.cameras):
        m.look_through(i)
        view = m.camera((648, 420))
        np.testing.assert_allclose(view.position, cam.position, atol=1e-6 * m.radius)
        assert view.R[2] @ cam.R[2] > 1 - 1e-6  # the same view direction (float32 rotations; no roll)
        assert m.params.fov == pytest.approx(cam.fov_y_deg)
    st = m.state()
    again = SplatModel()
    again.load_now()
    again.restore(st)
    assert len(again.cameras) == 3
    np.testing.assert_allclose(again.camera((64, 48)).viewmat, m.camera((64, 48)).viewmat, atol=1e-12)


# -- streamed SOG ----------------------------------------------------------------------------------------------
def _streamed_model(tmp_path, budget=2500):
    from tests.panels.splat.synthetic_sog import write_streamed

    path = write_streamed(tmp_path / "scene")
    m = SplatModel()
    m.set_params(scene="file", path=str(path), stream_budget=budget)
    m.load_now()
    return m


def _load_missing(m):
    from backends.common import drain
    from panels.splat.stream import stream_job

    request = m.stream_plan()
    if request is None:
        return []
    m.stream_apply(drain(stream_job(request)))  # what the panel's worker does, here on the test's thread
    return request.missing


def test_streamed_scene_refines_the_leaf_the_camera_approaches(tmp_path):
    from tests.panels.splat.synthetic_sog import chunk_index

    m = _streamed_model(tmp_path)
    assert m.stream.shown == {0: 1, 1: 1} and m.rows.count == 1000  # opened at the coarsest level
    m.set_orbit(Orbit((-10.0, 0.0, 0.0), 30.0, 20.0, 12.0))  # close to the left leaf
    request = m.stream_plan()
    assert request.missing == [chunk_index(0, 0)]  # exactly the left leaf's fine chunk
    assert m.rows.count == 1000 and "1,000 of 2,500 Gaussians" in m.stream.info()  # nothing waits for it
    assert _load_missing(m) == request.missing
    assert m.stream.shown == {0: 0, 1: 1} and m.rows.count == 2500
    assert (m.rows.rows[:, 0] < 0).sum() == 2000  # the 2,000 fine Gaussians are on the left
    assert "level per leaf L0 x 1, L1 x 1" in m.stream.info()
    # toward the right leaf: the left one goes back to its (loaded) coarse level, the right one refines
    m.set_orbit(Orbit((10.0, 0.0, 0.0), 30.0, 20.0, 12.0))
    assert m.stream_plan().missing == [chunk_index(0, 1)]
    assert m.stream.shown == {0: 0, 1: 1} and m.rows.count == 2500  # unchanged until the job's result
    _load_missing(m)
    assert m.stream.shown == {0: 1, 1: 0} and (m.rows.rows[:, 0] > 0).sum() == 2000
    # a budget for everything refines both; below the coarsest total the coarsest level stays
    m.set_params(stream_budget=10_000)
    _load_missing(m)
    assert m.stream.shown == {0: 0, 1: 0} and m.rows.count == 4000
    with pytest.raises(UserError, match="stream_budget"):
        m.set_params(stream_budget=10)


def test_streamed_session_reproduces_the_selection_and_rows(tmp_path):
    m = _streamed_model(tmp_path)
    m.set_orbit(Orbit((10.0, 0.0, 0.0), 20.0, 10.0, 8.0))
    _load_missing(m)
    st = m.state()
    assert st["params"]["path"].endswith("lod-meta.json") and st["params"]["stream_budget"] == 2500
    fresh = SplatModel()
    fresh.restore(st)
    assert fresh.stream is not None and fresh.stream.shown == {0: 1, 1: 1}  # coarsest until loaded
    fresh.stream_complete()  # what an export does
    assert fresh.stream.selection == m.stream.selection == {0: 1, 1: 0}
    np.testing.assert_array_equal(fresh.rows.rows, m.rows.rows)


def test_stream_clock_rests_or_paces():
    from panels.splat.scheduler import STREAM_EVERY_S, STREAM_REST_S, StreamClock

    c = StreamClock()
    assert c.wait_s(0.0) is None  # no camera change: nothing to plan
    c.camera_changed(1.0)
    assert c.wait_s(1.0) == pytest.approx(STREAM_REST_S)  # plans once the camera rests ...
    for t in np.arange(1.0, 1.0 + STREAM_EVERY_S, 0.02):  # ... but a camera that keeps moving
        c.camera_changed(t)
    assert c.wait_s(1.0 + STREAM_EVERY_S) == 0.0  # still gets a plan every STREAM_EVERY_S
    c.planned(1.0 + STREAM_EVERY_S)
    assert c.wait_s(2.0) is None


def test_sog_files_are_scenes_and_sessions_keep_their_path(tmp_path, sample_scene):
    from backends.splat import sog

    g = sample_scene.subset(np.arange(300))
    sog.write_sog(tmp_path / "scene.sog", g)
    (tmp_path / "folder").mkdir()
    sog.write_sog(tmp_path / "folder" / "meta.json", g)
    for path in (tmp_path / "scene.sog", tmp_path / "folder" / "meta.json"):
        m = SplatModel()
        m.restore({"params": {"scene": "file", "path": str(path)}})
        assert m.scene.count == 300 and m.stream is None and m.state()["params"]["path"] == str(path)
        # positions within one 16-bit log-domain step of the originals (|x| < 10 here: < 1e-3)
        assert np.abs(m.scene.means - g.means).max() < 1e-3
    with pytest.raises(UserError, match="not a scene file"):
        SplatModel().restore({"params": {"scene": "file", "path": str(tmp_path / "folder")}})


def test_streamed_chunk_cache_stays_bounded(tmp_path, monkeypatch):
    from panels.splat import stream
    from tests.panels.splat.synthetic_sog import chunk_index

    monkeypatch.setattr(stream, "CACHE_BUDGETS", 1)  # at most one budget (2,500 Gaussians) of chunks
    m = _streamed_model(tmp_path)
    s = m.stream.streamed
    for x in (-10.0, 10.0, -10.0):  # left, right, left again
        m.set_orbit(Orbit((x, 0.0, 0.0), 30.0, 20.0, 12.0))
        loaded = _load_missing(m)
        assert s.cached_count() <= 3000  # the coarse level (1,000) and one fine leaf (2,000)
    # the left fine chunk was dropped while the camera was right, and decoded again on return
    assert loaded == [chunk_index(0, 0)] and m.stream.shown == {0: 0, 1: 1}
    assert s.loaded(chunk_index(1, 0)) and s.loaded(chunk_index(1, 1))  # the coarsest level always stays
