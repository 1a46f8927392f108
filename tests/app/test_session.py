"""Session files round-trip; corrupt, foreign or newer files give a clear message and change nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app import session
from backends.common import UserError


class FakePanel:
    """The session contract of a panel: validate a whole state (raising UserError), then apply it."""

    def __init__(self, value=1, fail=False):
        self.value, self.fail = value, fail
        self.field = np.zeros(3)
        self.stopped = 0

    def state(self):
        return {"value": self.value}

    def validate_state(self, state, arrays):
        if self.fail or not isinstance(state.get("value"), int):
            raise UserError(f"value must be an integer, got {state.get('value')!r}")
        return state["value"], arrays.get("field")

    def stop(self):
        self.stopped += 1

    def apply_staged(self, staged):
        self.value, field = staged
        if field is not None:
            self.field = field


def test_roundtrip(tmp_path):
    panels = {"a": FakePanel(3)}
    p = session.save(tmp_path / "s.json", session.build({"a": panels["a"].state()}, "a"))
    data = session.load(p)
    assert data["schema"] == session.SCHEMA and data["app_version"]
    target = {"a": FakePanel(0)}
    assert session.apply(data, target) == ["a"]
    assert target["a"].value == 3


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "corrupt"),
        ("[1, 2]", "not a Visual Lab session"),
        (json.dumps({"kind": "visual-lab-session", "schema": 99, "panels": {}}), "newer Visual Lab"),
        (json.dumps({"kind": "visual-lab-session", "schema": 1, "panels": [1]}), "malformed"),
        (json.dumps({"kind": "visual-lab-session", "panels": {}}), "schema is missing"),
    ],
)
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(UserError, match=match):
        session.load(p)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        session.load(tmp_path / "nope.json")


def test_apply_is_all_or_nothing():
    panels = {"a": FakePanel(1), "b": FakePanel(2, fail=True)}
    data = session.build({"a": {"value": 10}, "b": {"value": 20}})
    with pytest.raises(UserError, match="'b'"):
        session.apply(data, panels)
    assert panels["a"].value == 1 and panels["b"].value == 2


def test_arrays_travel_beside_the_json_with_their_hash(tmp_path):
    field = np.linspace(0, 1, 12).reshape(3, 4)
    p = session.save(tmp_path / "s.json", session.build({"a": {"value": 5}}, "a", {"a": {"field": field}}))
    assert (tmp_path / "s.arrays.npz").is_file()
    assert "arrays" in json.loads(p.read_text())
    target = {"a": FakePanel(0)}
    session.apply(session.load(p), target)
    assert target["a"].value == 5 and np.array_equal(target["a"].field, field)
    # a replaced arrays file is refused, naming it
    np.savez(tmp_path / "s.arrays.npz", **{"a/field": field + 1})
    with pytest.raises(UserError, match="s.arrays.npz does not match"):
        session.load(p)


def test_arrays_file_never_unpickles(tmp_path):
    p = session.save(
        tmp_path / "s.json", session.build({"a": {"value": 1}}, "a", {"a": {"field": np.zeros(2)}})
    )
    obj = np.empty(1, dtype=object)
    obj[0] = {"x": 1}
    np.savez(tmp_path / "s.arrays.npz", **{"a/field": obj})
    data = json.loads(p.read_text())
    data["arrays"]["sha256"] = (
        __import__("hashlib").sha256((tmp_path / "s.arrays.npz").read_bytes()).hexdigest()
    )
    p.write_text(json.dumps(data))
    with pytest.raises(UserError, match="not a valid arrays file"):
        session.load(p)


@pytest.mark.parametrize(
    "content, match",
    [
        (
            '{"kind": "visual-lab-session", "schema": 2, "panels": {"a": {"value": NaN}}}',
            "NaN is not allowed",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply|not a Visual Lab"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_strict_json(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UserError, match=match):
        session.load(p)


def test_nan_is_not_written(tmp_path):
    with pytest.raises(UserError, match="NaN or infinite"):
        session.save(tmp_path / "s.json", session.build({"a": {"value": float("nan")}}))
    assert not (tmp_path / "s.json").exists()
