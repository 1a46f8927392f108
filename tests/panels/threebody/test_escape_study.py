"""The escape map as a batch study from the panel, on a real 2-worker Dask cluster (127.0.0.1) started through
the app's cluster path: the map fills in tile by tile, the store is the one the CLI writes (byte for byte),
Stop keeps the finished tiles and pressing Compute again computes only the rest, and a store opened with
File > Open study in a fresh window shows the same map."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from backends.batch import EscapeMap, Study
from backends.batch.store import done_mask
from backends.common import drain
from panels.threebody.escape_study import NOT_COMPUTED
from panels.threebody.panel import ThreeBodyPanel
from panels.threebody.plots import NOT_COMPUTED_RGBA
from tests.reproduce import open_window

GRID, T_END = 24, 4.0


@pytest.fixture(scope="module")
def cluster():
    """Two one-thread worker processes on 127.0.0.1 through Compute > Cluster…'s start path."""
    from app import cluster as app_cluster

    client = drain(app_cluster._connect(2, ""))
    assert app_cluster.current_client() is client
    assert all(a.startswith("tcp://127.0.0.1:") for a in client.scheduler_info()["workers"])
    yield client
    app_cluster.shutdown()


@pytest.fixture
def panel(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("VISUAL_LAB_STUDIES_DIR", str(tmp_path / "studies"))
    p = ThreeBodyPanel()
    qtbot.addWidget(p)
    p.resize(1300, 760)
    p.show()
    qtbot.waitExposed(p)
    p.tabs.setCurrentWidget(p.ensemble_map)
    yield p
    p.shutdown()


def pale_cells(p) -> int:
    """Cells the user sees as not computed yet (the overlay's pale colour)."""
    over = p.ensemble_map.overlay.image
    return int(np.all(over == NOT_COMPUTED_RGBA, axis=-1).sum()) if over is not None else -1


def store_files(path: Path) -> dict[str, bytes]:
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}


def wait_for(p, qtbot, condition, timeout=50_000) -> None:
    """Until ``condition()`` holds and no escape-map task runs (opening the store, then the study)."""
    qtbot.waitUntil(lambda: condition() and not p.tasks.busy("ensemble"), timeout=timeout)


def test_map_fills_tile_by_tile_on_the_cluster_and_writes_the_cli_store(cluster, panel, qtbot, tmp_path):
    m = panel.model
    m.set_params(ens_n=GRID, ens_t_end=T_END, ens_tile=8)  # 9 tiles
    seen: list[int] = []
    m.events.connect("ensemble", lambda **_: m.ensemble is not None and seen.append(pale_cells(panel)))
    messages: list[str] = []
    panel.status.connect(messages.append)
    panel.ens_button.click()
    wait_for(panel, qtbot, lambda: m.ens_tiles == (9, 9))
    # the user saw a partly filled map: some tiles done and some still pale, then none pale
    assert any(0 < n < GRID * GRID for n in seen), seen
    assert seen[-1] == 0 and (m.ensemble.status != NOT_COMPUTED).all()
    assert any("on the cluster at tcp://127.0.0.1:" in s and "/9 chunks" in s for s in messages), messages
    store = Path(m.ens_store)
    assert store.parent == tmp_path / "studies" and store.suffix == ".zarr"

    # the CLI's store for the same parameters (visual-lab batch escape-map --grid 24 --t-end 4 --tile 8),
    # computed in this process: byte for byte the same files
    ref = tmp_path / "ref.zarr"
    Study(EscapeMap(grid=GRID, t_end=T_END, tile=8), ref).run("none")
    assert store_files(store) == store_files(ref)
    # and the panel shows what the store holds
    ds = xr.open_zarr(ref)
    np.testing.assert_array_equal(m.ensemble.status, ds["status"].values)
    np.testing.assert_array_equal(m.ensemble.escape_time, ds["escape_time"].values)

    # pressing again on the same store computes nothing and shows it at once
    messages.clear()
    panel.ens_button.click()
    wait_for(panel, qtbot, lambda: any("all 9 tiles already in" in s for s in messages), timeout=20_000)


def test_stop_keeps_finished_tiles_and_compute_again_does_only_the_rest(cluster, panel, qtbot, tmp_path):
    import zarr

    m = panel.model
    m.set_params(ens_n=16, ens_t_end=T_END, ens_tile=4)  # 16 tiles

    def stop_after_first_tiles(**_):
        if m.ens_tiles[0] >= 2 and panel.tasks.busy("ensemble"):
            panel.stop()

    m.events.connect("ensemble", stop_after_first_tiles)
    panel.ens_button.click()
    wait_for(panel, qtbot, lambda: m.ens_message.startswith("stopped:"))
    m.events.disconnect("ensemble", stop_after_first_tiles)
    assert panel.tasks.join(20_000)  # a chunk being stored when Stop came is stored before we count
    store = Path(m.ens_store)
    kept = int(done_mask(zarr.open_group(str(store), mode="r")).sum())
    assert 2 <= kept < 16, kept
    assert "press Compute escape map to resume" in m.ens_message

    messages: list[str] = []
    panel.status.connect(messages.append)
    panel.ens_button.click()
    wait_for(panel, qtbot, lambda: m.ens_tiles == (16, 16))
    final = [s for s in messages if s.startswith("escape map: 16/16 tiles")]
    assert final and f"({kept} resumed, {16 - kept} computed on the cluster" in final[-1], messages
    ref = tmp_path / "ref.zarr"
    Study(EscapeMap(grid=16, t_end=T_END, tile=4), ref).run("none")
    assert store_files(store) == store_files(ref)


def test_open_study_in_a_fresh_window_shows_the_same_map(qtbot, tmp_path):
    import zarr

    w = EscapeMap(grid=12, t_end=T_END, tile=4)  # 9 tiles
    full, part = tmp_path / "full.zarr", tmp_path / "part.zarr"
    Study(w, full).run("none")
    # a partial store: only the diagonal tiles marked done (the others' data written but never marked, as
    # when a client dies between a chunk's arrays and its done flag: those must not be shown)
    shutil.copytree(full, part)
    done = zarr.open_group(str(part), mode="r+")["done"]
    done[:] = np.isin(np.arange(9), [0, 4, 8])
    win = open_window(qtbot, "threebody")
    try:
        p = win.panels["threebody"]
        assert win.open_path(full), win.last_error  # a .zarr folder routes to File > Open study
        qtbot.waitUntil(lambda: p.model.ens_tiles == (9, 9), timeout=20_000)
        assert win.active_key() == "threebody" and p.tabs.currentWidget() is p.ensemble_map
        ds = xr.open_zarr(full)
        with np.errstate(divide="ignore", invalid="ignore"):
            want = np.log10(np.where(ds["escape_time"].values > 0, ds["escape_time"].values, np.nan))
        lo = np.nanmin(want)
        np.testing.assert_allclose(p.ensemble_map.image.image, np.nan_to_num(want, nan=lo).T)
        assert pale_cells(p) == 0
        # the form follows the store, so Compute escape map would resume it in place
        assert p.model.ens_workload_of_params() == w and p.ensemble_store(w) == full

        assert win.open_study(part), win.last_error
        qtbot.waitUntil(lambda: p.model.ens_tiles == (3, 9), timeout=20_000)
        pale = np.all(p.ensemble_map.overlay.image == NOT_COMPUTED_RGBA, axis=-1).T  # (y, x)
        expect = np.ones((12, 12), bool)
        for i in (0, 4, 8):  # the diagonal tiles are done
            expect[w.regions()[i]["status"]] = False
        np.testing.assert_array_equal(pale, expect)
        assert "press Compute escape map to finish it" in p.model.ens_message
        em = p.ensemble_map  # the colour bar stays in view beside a partial map (its title is no wider)
        assert "pale: not yet done" in em.plot.getPlotItem().titleLabel.text
        assert em.bar.isVisible() and em.bar.sceneBoundingRect().right() <= em.plot.width() + 1

        # a store whose parameters make no escape map: one line naming the store and the problem
        bad = tmp_path / "bad.zarr"
        shutil.copytree(full, bad)
        doc = json.loads((bad / "zarr.json").read_text())
        doc["attributes"]["visual_lab_batch"]["params"]["grid"] = "x"
        (bad / "zarr.json").write_text(json.dumps(doc))
        assert not win.open_path(bad)
        assert win.last_error == f"cannot open study: {bad}: --grid must be a whole number 1..20000, got 'x'"
    finally:
        win.close()


def test_a_partial_study_map_survives_a_session_and_says_what_is_missing():
    from panels.threebody.escape_study import empty_map, put_tile
    from panels.threebody.model import ThreeBodyModel

    w = EscapeMap(grid=8, t_end=1.0, tile=4)  # 4 tiles, one computed
    res = empty_map(w)
    put_tile(res, w.regions()[3], w.run_chunk(3, 0))
    m = ThreeBodyModel()
    m.set_ensemble(res)
    assert m.ens_message.startswith("16/64 systems to t=1:")
    state = json.loads(json.dumps(m.state(), allow_nan=False))
    fresh = ThreeBodyModel()
    fresh.restore(state, m.arrays())
    done = np.zeros((8, 8), bool)
    done[4:, 4:] = True  # tile 3: rows 4..7, columns 4..7
    np.testing.assert_array_equal(fresh.ensemble.status != NOT_COMPUTED, done)
    np.testing.assert_allclose(fresh.ensemble.x, (np.arange(8) + 0.5) / 8, rtol=1e-12)
    assert fresh.ens_message == m.ens_message


def test_a_failed_tile_is_named_the_others_go_on_and_compute_again_retries_it(panel, qtbot, monkeypatch):
    """In this process (no cluster): a tile whose integration raises is named in the status line and the
    map; the other tiles are stored; pressing Compute again computes only that tile."""
    monkeypatch.setattr(
        "panels.study.current_client", lambda: None
    )  # no cluster set up (whatever ran before)
    m = panel.model
    m.set_params(ens_n=8, ens_t_end=1.0, ens_tile=4)  # 4 tiles
    real = EscapeMap.run_chunk

    def tile_2_overflows(self, index, seed):
        if index == 2:
            raise FloatingPointError("overflow in tile 2")
        return real(self, index, seed)

    monkeypatch.setattr(EscapeMap, "run_chunk", tile_2_overflows)
    messages: list[str] = []
    panel.status.connect(messages.append)
    panel.ens_button.click()
    wait_for(panel, qtbot, lambda: any(s.startswith("escape map: 3/4 tiles") for s in messages))
    assert "escape map: chunk 2 failed: FloatingPointError: overflow in tile 2" in messages
    final = next(s for s in messages if s.startswith("escape map: 3/4 tiles"))
    assert "in this process" in final and "1 tile(s) failed (chunk 2 failed: FloatingPointError" in final
    assert "press Compute escape map to retry" in final
    pale = np.all(panel.ensemble_map.overlay.image == NOT_COMPUTED_RGBA, axis=-1).T
    expect = np.zeros((8, 8), bool)
    expect[4:, :4] = True  # tile 2: rows 4..7, columns 0..3
    np.testing.assert_array_equal(pale, expect)

    monkeypatch.setattr(EscapeMap, "run_chunk", real)
    messages.clear()
    panel.ens_button.click()
    wait_for(panel, qtbot, lambda: m.ens_tiles == (4, 4))
    assert any(s.startswith("escape map: 4/4 tiles (3 resumed, 1 computed in this process") for s in messages)
    assert pale_cells(panel) == 0
