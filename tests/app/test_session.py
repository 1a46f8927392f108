"""Session files round-trip; corrupt, foreign or newer files give a clear message and change nothing."""

from __future__ import annotations

import json

import pytest

from app import session
from backends.common import UserError


class FakePanel:
    def __init__(self, value=1, fail=False):
        self.value, self.fail = value, fail

    def state(self):
        return {"value": self.value}

    def restore(self, state):
        if self.fail:
            raise ValueError("bad state")
        self.value = state["value"]


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
