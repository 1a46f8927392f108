from __future__ import annotations

import pytest

from app import registry


@pytest.fixture
def demo_registry(monkeypatch):
    """Register only the test panel, so shell tests do not depend on domain panels."""
    spec = registry.PanelSpec("demo", "Demo", "tests.app.demo_panel:DemoPanel")
    monkeypatch.setattr(registry, "panels", lambda: {"demo": spec})
    return spec


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv("VISUAL_LAB_CONFIG_DIR", str(d))
    return d
