"""The PDE panel model without Qt: parameters and their combinations, the bounded recording, probes, and
sessions that either restore everything exactly (fields, solver state, histories, probes) or change nothing."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from backends.common import UserError
from backends.pde.live import build_simulation, snapshot
from panels.model import param_specs
from panels.pde import model as pde_model
from panels.pde.model import PDEModel, PDEParams


def small_model(**params) -> tuple[PDEModel, object]:
    m = PDEModel()
    m.set_params(n=32, **params)
    sim = build_simulation(m.params.live_config())
    m.reset_run(snapshot(sim))
    return m, sim


def run(m: PDEModel, sim, frames: int, steps: int = 2) -> None:
    for _ in range(frames):
        sim.step(steps)
        m.record(snapshot(sim))


def test_switching_model_takes_that_models_defaults_and_checks_combinations():
    m = PDEModel()
    changed = m.set_params(model="wave")
    p = m.params
    assert {"model", "dt", "scheme", "view"} <= changed
    assert (p.dt, p.scheme, p.view) == (5e-3, "rk4", "displacement")
    with pytest.raises(UserError, match="FFT"):
        m.set_params(n=97)
    with pytest.raises(UserError, match="view = 'vorticity' is not a field of wave"):
        m.set_params(view="vorticity")
    with pytest.raises(UserError, match="stability"):
        m.set_params(dt=1.0)
    assert m.params == p  # every rejected change left the parameters as they were
    fine = PDEModel()
    fine.set_params(n=1024)
    fine.set_params(model="wave")  # 5e-3 is beyond the RK4 stability limit at n = 1024: halved until stable
    assert fine.params.dt == 2.5e-3 and fine.params.n == 1024


def test_recording_histories_and_probe_follow_the_frames():
    m, sim = small_model()
    m.set_probe(0.75, 0.25)
    run(m, sim, 4)
    assert len(m.frames) == 5 and m.current is m.frames[-1] and m.shown == 4
    assert all(len(v) == len(m.hist["t"]) for v in m.hist.values()) and len(m.hist["energy"]) == 5
    f = m.current["fields"]["vorticity"]
    assert m.probe_hist[-1] == (m.current["t"], pytest.approx(float(f[8, 24])))  # row = y, column = x
    m.show_frame(1)
    assert m.current["step"] == 2 and m.title().startswith("navier-stokes  t = ")
    m.set_line((0.1, 0.2), (0.9, 0.8))
    assert len(m.line_hist) == len(m.frames) and m.line_hist[1][0] == m.frames[1]["t"]


def test_recording_is_bounded(monkeypatch):
    monkeypatch.setattr(pde_model, "MAX_RECORD", 3)
    m, sim = small_model()
    run(m, sim, 6, steps=1)
    assert [f["step"] for f in m.frames] == [4, 5, 6]
    m.set_params(record=False)
    run(m, sim, 2, steps=1)
    assert [f["step"] for f in m.frames] == [4, 5, 8]  # only the newest frame is replaced


def test_session_round_trip_restores_the_figure_state_and_the_solver_exactly():
    m, sim = small_model(colormap="magma", quiver=True)
    m.set_probe(0.2, 0.6)
    m.set_line((0.0, 0.1), (1.0, 0.9))
    run(m, sim, 3)
    m.show_frame(2)
    state, arrays = m.state(), m.arrays()
    other = PDEModel()
    events = []
    other.events.connect("restored", lambda: events.append("restored"))
    other.restore(state, arrays)
    assert events == ["restored"] and other.params == m.params
    assert (other.probe, other.line) == (m.probe, m.line)
    assert other.current["t"] == m.current["t"] and other.title() == m.title()
    for name, f in m.current["fields"].items():
        np.testing.assert_array_equal(other.current["fields"][name], f)
    np.testing.assert_array_equal(other.current["velocity"][0], m.current["velocity"][0])
    assert other.hist == m.hist and other.probe_hist == m.probe_hist
    # the next run continues from the saved solver state exactly
    again = build_simulation(other.params.live_config())
    again.load_state(other.sim_state)
    sim.step(3)
    again.step(3)
    np.testing.assert_array_equal(again.field("vorticity"), sim.field("vorticity"))


def invalid_values():
    """(name, bad value) for every parameter: out of range, wrong type, NaN, unknown choice."""
    for f in dataclasses.fields(PDEParams):
        spec = param_specs(PDEParams)[f.name]
        if spec.kind == "bool":
            yield f.name, "yes"
        elif spec.kind == "choice":
            yield f.name, "warp-drive"
        elif spec.kind == "int":
            yield f.name, int(spec.maximum) + 1
            yield f.name, 1.5
        else:
            yield f.name, spec.maximum * 10
            yield f.name, math.nan
            yield f.name, "fast"


@pytest.mark.parametrize("name,value", list(invalid_values()), ids=lambda v: str(v))
def test_an_invalid_session_value_changes_nothing_and_names_key_and_value(name, value):
    m, sim = small_model()
    run(m, sim, 1)
    state, arrays = m.state(), m.arrays()
    bad = dict(state, params=dict(state["params"], **{name: value}))
    before = (m.params, m.probe, m.current, len(m.frames))
    with pytest.raises(UserError) as err:
        m.restore(bad, arrays)
    assert f"pde.params.{name}" in str(err.value)
    shown = repr(value) if not isinstance(value, float) else f"{value:g}"
    assert shown in str(err.value) or name == "view"
    assert (m.params, m.probe, m.current, len(m.frames)) == before


@pytest.mark.parametrize(
    "change,message",
    [
        ({"probe": [0.5, 2.0]}, "probe must be two numbers in [0, 1], got [0.5, 2.0]"),
        ({"line": [[0, 0]]}, "pde.line"),
        ({"t": math.inf}, "pde.t must be a finite number"),
        ({"warp": 1}, "unknown key 'warp'"),
        ({"stale": 3}, "pde.stale must be text"),
    ],
)
def test_invalid_session_state_changes_nothing(change, message):
    m, sim = small_model()
    state, arrays = m.state(), m.arrays()
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        m.restore(dict(state, **change), arrays)
    assert m.probe == (0.5, 0.5) and m.current["step"] == 0


def test_arrays_that_do_not_match_the_parameters_are_rejected():
    m, sim = small_model()
    state, arrays = m.state(), m.arrays()
    for bad in (
        {"field_vorticity": np.zeros((16, 16), np.float32)},
        {"field_vorticity": np.full((32, 32), np.nan, np.float32)},
        {"sim_s": np.zeros((1, 1, 16, 9, 2), np.float32)},
        {"field_temperature": np.zeros((32, 32), np.float32)},
    ):
        with pytest.raises(UserError, match="pde"):
            PDEModel().restore(state, arrays | bad)


def test_changes_that_invalidate_the_run_are_reported_and_view_changes_recompute_probes():
    m, sim = small_model()
    run(m, sim, 2)
    assert m.sim_changed({"nu"}) and not m.sim_changed({"colormap", "view", "quiver"})
    m.set_params(view="speed")
    speed = m.current["fields"]["speed"]
    assert m.probe_hist[-1][1] == pytest.approx(float(speed[16, 16]))
    m.reset_run(None, stale="Darcy: press Run")
    assert m.stale == "Darcy: press Run" and m.current is None and not m.frames


def test_colour_limits_and_labels_describe_the_field():
    m, _ = small_model()
    f = m.current["fields"]["vorticity"]
    cmap, (lo, hi) = m.cmap_and_clim(f)
    assert cmap == "RdBu_r" and lo == -hi and hi > 0  # signed field: diverging, symmetric
    assert np.mean(np.abs(f) <= hi) >= 0.98  # robust 99th percentile
    m.set_params(limits="fixed", vmin=-2.0, vmax=3.0, colormap="viridis")
    assert m.cmap_and_clim(f) == ("viridis", (-2.0, 3.0))
    m.set_params(model="gray-scott", n=32)
    assert m.display() == (None, "")  # the Navier-Stokes frame is never shown as Gray-Scott
    m.reset_run(snapshot(build_simulation(m.params.live_config())))
    assert m.history()[0] == "Mean & variance of v" and m.display()[1] == "chemical v (concentration)"


def test_darcy_results_round_trip_through_a_session():
    from backends.common import drain
    from backends.pde.live import darcy_job

    m = PDEModel()
    m.set_params(model="darcy", n=24)
    drain(darcy_job(3, 24, 4, 0), lambda item: m.record_darcy(item.data))
    other = PDEModel()
    other.restore(m.state(), m.arrays())
    assert other.title() == m.title() == "Darcy -div(a grad u) = 1, system 3: pressure u (Darcy)"
    np.testing.assert_array_equal(other.darcy["u"], m.darcy["u"])
    assert other.darcy_totals == m.darcy_totals and len(other.darcy_totals) == 3
    with pytest.raises(UserError, match="darcy_a"):
        PDEModel().restore(m.state(), {k: v for k, v in m.arrays().items() if k != "darcy_a"})


def test_recording_stays_within_its_memory_budget(monkeypatch):
    m, sim = small_model()
    one = pde_model.frame_bytes(m.current)
    monkeypatch.setattr(pde_model, "memory_budget", lambda: int(3.5 * one / pde_model.RECORD_SHARE))
    run(m, sim, 6, steps=1)
    assert len(m.frames) == 3 and sum(pde_model.frame_bytes(f) for f in m.frames) <= 3.5 * one
