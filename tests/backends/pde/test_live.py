"""Live generators and solver-state save/load: a run continued from a saved state matches the uninterrupted
run bit for bit; open-ended runs report no fraction."""

from __future__ import annotations

import queue

import numpy as np
import pytest

from backends.common import Progress, UserError
from backends.pde.live import (
    DEFAULT_DT,
    LiveConfig,
    build_simulation,
    check_config,
    darcy_job,
    live_frames,
    snapshot,
    state_shapes,
)

SMALL = {
    m: LiveConfig(model=m, n=32, dt=DEFAULT_DT[m], scheme="rk4" if m == "wave" else "cn-heun")
    for m in DEFAULT_DT
}


@pytest.mark.parametrize("model", ["navier-stokes", "gray-scott", "heat", "wave", "burgers"])
def test_continuing_from_a_saved_state_equals_the_uninterrupted_run(model):
    cfg = SMALL[model]
    a = build_simulation(cfg)
    a.step(3)
    saved = a.save_state()
    assert {k: v.shape for k, v in saved.items() if k in state_shapes(cfg)} == {
        k: tuple(s if s is not None else saved[k].shape[1] for s in shape)
        for k, shape in state_shapes(cfg).items()
    }
    a.step(4)
    b = build_simulation(cfg)  # fresh initial state, then the saved one
    b.load_state(saved)
    b.step(4)
    assert b.t == a.t and b.steps == a.steps == 7
    for name in a.field_names:
        np.testing.assert_array_equal(b.field(name), a.field(name))


def test_navier_stokes_dye_channel_survives_save_and_load():
    a = build_simulation(SMALL["navier-stokes"])
    a.paint(0.5, 0.5, 1.0, 0.1, "dye")
    saved = a.save_state()
    assert saved["s"].shape[1] == 2
    b = build_simulation(SMALL["navier-stokes"])
    b.load_state(saved)
    a.step(2)
    b.step(2)
    np.testing.assert_array_equal(b.field("dye"), a.field("dye"))


def test_load_state_rejects_a_wrong_grid():
    small = build_simulation(SMALL["heat"]).save_state()
    big = build_simulation(LiveConfig(model="heat", n=64, dt=1e-2))
    with pytest.raises(UserError, match="shape"):
        big.load_state(small)


def test_live_frames_are_open_ended_copies_with_paints_applied_between_steps():
    sim = build_simulation(SMALL["navier-stokes"])
    paints: queue.SimpleQueue = queue.SimpleQueue()
    gen = live_frames(sim, 2, paints)
    first = next(gen)
    assert isinstance(first, Progress) and first.fraction is None  # indeterminate, never "100%"
    assert first.data["step"] == 2 and first.data["velocity"] is not None
    before = first.data["fields"]["vorticity"].copy()
    paints.put((0.25, 0.75, 50.0, 0.05, "vorticity"))
    second = next(gen).data
    np.testing.assert_array_equal(first.data["fields"]["vorticity"], before)  # frames are copies
    assert second["step"] == 4 and paints.empty()
    row, col = int(0.75 * 32), int(0.25 * 32)
    assert second["fields"]["vorticity"][row, col] > before[row, col] + 10.0
    gen.close()


def test_snapshot_state_continues_the_simulation():
    sim = build_simulation(SMALL["wave"])
    sim.step(2)
    frame = snapshot(sim)
    assert frame["spectrum"] is not None and set(frame["state"]) >= {"s", "t", "steps"}
    other = build_simulation(SMALL["wave"])
    other.load_state(frame["state"])
    np.testing.assert_array_equal(other.field("displacement"), frame["fields"]["displacement"])


def test_check_config_reports_the_backends_reason():
    with pytest.raises(UserError, match="FFT"):
        check_config(LiveConfig(n=97))
    with pytest.raises(UserError, match="stability"):
        check_config(LiveConfig(model="wave", dt=1.0, scheme="rk4"))
    check_config(LiveConfig(model="darcy", n=50))


def test_darcy_job_recycling_saves_iterations_and_solves():
    items = list(darcy_job(4, 24, 8, 0))
    assert [it.fraction for it in items] == [0.25, 0.5, 0.75, 1.0]
    last = items[-1].data
    assert last["res_rec"][-1] < 1e-10 and last["res_plain"][-1] < 1e-10
    assert last["tot_rec"] < last["tot_plain"]  # recycled Krylov space: fewer CG iterations overall


def test_load_state_copies_so_painting_leaves_the_saved_state_alone():
    sim = build_simulation(SMALL["navier-stokes"])
    saved = sim.save_state()
    kept = saved["s"].copy()
    other = build_simulation(SMALL["navier-stokes"])
    other.load_state(saved)
    other.paint(0.5, 0.5, 10.0, 0.1, "vorticity")
    np.testing.assert_array_equal(saved["s"], kept)
