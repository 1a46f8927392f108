"""Every numeric option of every backend CLI has a documented range, and docs/options.md lists them."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends import options, options_doc
from backends.common import UserError

DOC = Path(__file__).resolve().parents[2] / "docs" / "options.md"


@pytest.mark.parametrize("command, parser, bounds, memory", options_doc._clis(), ids=lambda v: str(v)[:40])
def test_every_numeric_option_is_bounded(command, parser, bounds, memory):
    missing = [d for d in options_doc.numeric_dests(parser) if d not in bounds]
    assert not missing, f"{command}: numeric options without a range: {missing}"
    extra = [d for d in bounds if d not in {a.dest for a in parser._actions}]
    assert not extra, f"{command}: ranges for unknown options {extra}"
    assert memory.strip()


def test_docs_options_md_is_current():
    assert DOC.read_text() == options_doc.markdown(), (
        "regenerate: python -m backends.options_doc > docs/options.md"
    )


def test_check_message_names_option_value_and_range():
    from backends.diffusion.cli import BOUNDS, _parser

    p = _parser()
    with pytest.raises(UserError) as info:
        options.check(p.parse_args(["--nfe", "1000000000"]), BOUNDS, p)
    assert str(info.value) == "--nfe 1000000000 out of range [1, 10000] (network evaluations per sample)"
    with pytest.raises(UserError, match=r"--lr nan out of range \(0, 1\]"):
        options.check(p.parse_args(["--lr", "nan"]), BOUNDS, p)
    assert options.check(p.parse_args(["--nfe", "10000"]), BOUNDS, p).nfe == 10000  # the ends are allowed
