import pytest


@pytest.fixture
def bare_panel(qtbot, tmp_path):
    """An operator panel on screen whose Generate writes its study stores under tmp_path, not the user's cache."""
    from panels.operator.panel import OperatorPanel

    p = OperatorPanel()
    qtbot.addWidget(p)
    p.resize(1200, 700)
    p.show()
    qtbot.waitExposed(p)
    p.study_dir = tmp_path / "studies"
    yield p
    p.shutdown()
