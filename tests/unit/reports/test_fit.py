"""Widths in cells, cuts with an ellipsis, columns shared out, and where the table goes."""
from __future__ import annotations

import pytest

from scanner.reports.fit import Terminal, cells, end, middle, share


def test_cells_count_wide_characters_twice():
    assert (cells("abc"), cells("中文"), cells("é"), cells("e\u0301")) == (3, 4, 1, 1)


@pytest.mark.parametrize("text,width,cut", [
    ("/usr/lib/python3/site-packages/x.py", 20, "/usr/lib/p…ages/x.py"),
    ("short", 10, "short"),
    ("abcdef", 1, "…"),
    ("中文中文中文", 7, "中…中文"),
])
def test_middle(text, width, cut):
    assert middle(text, width) == cut and cells(middle(text, width)) <= width


def test_middle_of_wide_characters_fits():
    for width in range(1, 13):
        assert cells(middle("中文中文中文", width)) <= width


def test_end():
    assert end("github-oauth-token", 10) == "github-oa…"
    assert cells(end("中文中文", 5)) <= 5


def test_share_takes_from_the_lowest_rank_widest_first():
    assert share([10, 50, 30], [5, 10, 10], 60, [1, 0, 0]) == [10, 25, 25]
    assert share([10, 20], [5, 5], 100, [0, 0]) == [10, 20]  # all fit: natural widths
    assert share([40, 40], [30, 30], 20, [0, 0]) == [30, 30]  # never below the minimum


def test_terminal_detect(monkeypatch):
    monkeypatch.setattr("scanner.reports.fit._isatty", lambda stream: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("COLUMNS", "90")
    assert Terminal.detect(to_file=False) == Terminal(90, True)
    assert Terminal.detect(to_file=False, wide=True) == Terminal(None, True)
    assert Terminal.detect(to_file=True) == Terminal(None, False)  # a file: no colour, every column
    monkeypatch.setenv("NO_COLOR", "1")
    assert Terminal.detect(to_file=False) == Terminal(90, False)
    monkeypatch.setattr("scanner.reports.fit._isatty", lambda stream: False)
    monkeypatch.delenv("COLUMNS")
    assert Terminal.detect(to_file=False) == Terminal(None, False)  # a pipe without COLUMNS
