"""Every registered panel: open, run 2 steps, render, run every export, close — and leak nothing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from app import registry
from app.worker import manager
from backends.common import UserError
from panels.base import Panel


@pytest.mark.gl
@pytest.mark.parametrize("key", list(registry.panels()))
def test_panel_smoke(qtbot, tmp_path, key):
    threads_before = {t.ident for t in threading.enumerate()}
    panel = registry.panel_class(key)()
    assert isinstance(panel, Panel) and panel.key == key and panel.title
    qtbot.addWidget(panel)
    panel.resize(900, 650)
    panel.show()
    qtbot.waitExposed(panel)

    panel.advance(2)
    img = panel.render((320, 240))
    assert img.shape == (240, 320, 4) and img.dtype == np.uint8
    assert img[..., :3].std() > 1.0, "the render is a blank image"

    actions = panel.exports()
    assert actions, "a panel must offer at least one export"
    for i, action in enumerate(actions):
        out = tmp_path / f"export{i}.{action.suffixes[0]}"
        try:
            action.write(out)
        except UserError as exc:  # something not computed by advance(): the message says what to press
            assert "press" in str(exc).lower(), (action.label, str(exc))
            continue
        assert out.exists() and out.stat().st_size > 0, action.label

    state = panel.state()
    panel.restore(state)

    panel.shutdown()
    panel.close()
    qtbot.waitUntil(lambda: not manager().running(), timeout=10_000)
    qtbot.wait(50)
    leaked = [
        t for t in threading.enumerate() if t.ident not in threads_before and t.is_alive() and not t.daemon
    ]
    assert not leaked, f"threads left running: {leaked}"
