"""The panel-model base: parameters validated against their declared ranges, events, all-or-nothing restore."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest

from backends.common import UserError
from panels.model import PanelModel, param, require_array


@dataclass(frozen=True)
class P:
    n: int = param(8, "n", minimum=1, maximum=100)
    x: float = param(0.5, "x", minimum=0.0, maximum=1.0)
    mode: str = param("a", "mode", choices=("a", "b"))
    on: bool = param(False, "on")


class M(PanelModel):
    key = "m"
    Params = P


def test_set_params_validates_and_emits_only_changes():
    m = M()
    seen = []
    m.events.connect("params", lambda changed: seen.append(changed))
    assert m.set_params(n=9, x=0.5) == {"n"}
    assert seen == [{"n"}]
    for bad, words in [
        ({"n": 0}, "out of range [1, 100]"),
        ({"n": 2.5}, "whole number"),
        ({"x": float("nan")}, "finite"),
        ({"mode": "c"}, "one of a, b"),
        ({"on": 1}, "true or false"),
        ({"n": "3"}, "must be a number"),
        ({"zz": 1}, "unknown key 'zz'"),
    ]:
        with pytest.raises(UserError, match=re.escape(words)):
            m.set_params(**bad)
    assert m.params == P(n=9)


def test_restore_is_all_or_nothing():
    m = M()
    with pytest.raises(UserError, match=r"m.params.x = 3 is out of range"):
        m.restore({"params": {"n": 50, "x": 3.0}})
    assert m.params == P()
    with pytest.raises(UserError, match="unknown key 'camera'"):
        m.restore({"params": {}, "camera": {}})
    m.restore({"params": {"n": 50, "mode": "b"}})
    assert m.params == P(n=50, mode="b")
    assert M().state() != m.state() and M().state()["params"]["n"] == 8


def test_require_array_checks_shape_and_values():
    arrays = {"f": np.zeros((2, 3)), "g": np.array([np.nan])}
    assert require_array(arrays, "f", where="m", shape=(2, None)).shape == (2, 3)
    with pytest.raises(UserError, match="shape"):
        require_array(arrays, "f", where="m", shape=(3, 3))
    with pytest.raises(UserError, match="NaN"):
        require_array(arrays, "g", where="m")
    with pytest.raises(UserError, match="has no 'h'"):
        require_array(arrays, "h", where="m")


def test_recording_stays_within_its_budget_and_spans_the_whole_run():
    from backends.common import memory_budget, set_memory_budget
    from panels.model import Recording

    old = memory_budget()
    set_memory_budget(16 * 2**20)
    try:
        rec = Recording(share=0.5)  # 8 MiB: 128 frames of 64 KiB
        frame = np.zeros(8192)  # 64 KiB
        for i in range(10_000):
            rec.append(i * 0.1, frame)
        assert rec.nbytes <= 8 * 2**20
        assert len(rec) >= 64  # never below half the capacity
        assert rec.times[0] == 0.0 and rec.times[-1] > 0.9 * 999.9  # the start is kept, the end is recent
        assert np.all(np.diff(rec.times) > 0)
    finally:
        set_memory_budget(old)
