"""Text that fits a terminal: widths in cells, cuts with an ellipsis, columns shared out.

Every string here has been through `redact.escape` first (no controls, no bidi overrides), so
its width is the sum of its characters' cells: East Asian wide and full-width ones take two,
combining marks none.
"""
from __future__ import annotations

import os
import shutil
import sys
import unicodedata
from dataclasses import dataclass
from typing import Optional, Sequence

ELLIPSIS = "…"


def cells(text: str) -> int:
    if text.isascii():
        return len(text)
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _take(text: str, width: int, from_end: bool = False) -> str:
    """The longest start (or end) of `text` that fits in `width` cells."""
    out, used = [], 0
    for c in reversed(text) if from_end else text:
        w = cells(c)
        if used + w > width:
            break
        out.append(c)
        used += w
    return "".join(reversed(out) if from_end else out)


def middle(text: str, width: int) -> str:
    """`text` cut to `width` cells in the middle (`/usr/lib/…/site-packages/x.py`): paths and
    instructions keep their start and their end, where the telling parts are."""
    if cells(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    start = _take(text, width // 2)
    return start + ELLIPSIS + _take(text, width - 1 - cells(start), from_end=True)


def end(text: str, width: int) -> str:
    """`text` cut to `width` cells at its end."""
    if cells(text) <= width:
        return text
    return _take(text, max(width - 1, 0)) + ELLIPSIS[: max(width, 0)]


def pad(text: str, width: int) -> str:
    return text + " " * max(width - cells(text), 0)


def share(natural: Sequence[int], minimum: Sequence[int], budget: int, rank: Sequence[int]) -> list[int]:
    """Column widths that add up to at most `budget` where they can: each column its natural
    width if all fit; else the columns of the lowest `rank` give up cells first (the widest
    first), never below their minimum, then those of the next rank."""
    widths = list(natural)
    floor = [min(n, m) for n, m in zip(natural, minimum)]
    for r in sorted(set(rank)):
        these = [i for i, k in enumerate(rank) if k == r]
        while sum(widths) > budget:
            i = max(these, key=lambda j: widths[j] - floor[j])
            spare = widths[i] - floor[i]
            if spare <= 0:
                break
            widths[i] -= min(spare, sum(widths) - budget, max(spare // 4, 1))
    return widths


@dataclass(frozen=True)
class Terminal:
    """Where the table goes: its width in cells (None: no limit) and whether it may use colour."""

    width: Optional[int] = None
    color: bool = False

    @classmethod
    def detect(cls, to_file: bool, wide: bool = False) -> "Terminal":
        """Colour only on a terminal, never into a file, never with NO_COLOR set. The width is
        COLUMNS when set, else the terminal's; a file (or a pipe without COLUMNS) gets every
        column in full, like `--wide`."""
        tty = not to_file and _isatty(sys.stdout)
        color = tty and not os.environ.get("NO_COLOR")
        if wide or to_file:
            return cls(None, color)
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return cls(max(int(columns), 40), color)
        return cls(max(shutil.get_terminal_size().columns, 40) if tty else None, color)


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False
