"""Where a config finding came from: the history entry that holds it, or the last step that set the
config value it sits in (`ENV NAME=`, `LABEL KEY=`, `CMD ...`).

The history is indexed once per image (`Setters`), so an image of 12,000 Env entries and as many
history lines costs their total size, not their product.
"""
from __future__ import annotations

import re
from typing import Optional

from scanner.detectors.config import PAIR
from scanner.models import HistoryEntry, LocationKind

INSTRUCTION = re.compile(r"^(?:/bin/sh -c\s+)?(?:#\(nop\)\s+)?([A-Z]+)\b\s*(.*)$", re.S)
SETS = {LocationKind.ENV: "ENV", LocationKind.LABEL: "LABEL", LocationKind.CMD: "CMD",
        LocationKind.ENTRYPOINT: "ENTRYPOINT", LocationKind.HEALTHCHECK: "HEALTHCHECK", LocationKind.USER: "USER",
        LocationKind.ONBUILD: "ONBUILD", LocationKind.WORKDIR: "WORKDIR", LocationKind.SHELL: "SHELL",
        LocationKind.VOLUME: "VOLUME", LocationKind.EXPOSE: "EXPOSE", LocationKind.STOPSIGNAL: "STOPSIGNAL"}
_INSTRUCTIONS = frozenset(SETS.values())
_BY_NAME = {"ENV", "LABEL", "VOLUME", "EXPOSE"}  # their values have names: NAME=, KEY=, a path, a port
_OLD = "container_config."  # an old config's container_config: the same fields under this prefix
_LIST_CHARS = "[]\",'"


def history_index(path: str) -> int:
    """N of a history location (`history[N]`, `history[N].comment`)."""
    return int(path[len("history["):path.index("]")])


class Setters:
    """The last history entry that set each config value, by instruction and value name."""

    def __init__(self, history: tuple[HistoryEntry, ...]) -> None:
        self.last: dict[tuple[str, str], HistoryEntry] = {}
        for entry in history:
            m = INSTRUCTION.match(entry.created_by or "")
            if m is None or m.group(1) not in _INSTRUCTIONS:
                continue
            op, rest = m.group(1), m.group(2)
            self.last[(op, "")] = entry
            for name in _names(op, rest):
                self.last[(op, name)] = entry

    def of(self, kind: LocationKind, path: str) -> Optional[HistoryEntry]:
        """The step behind the config value at `path` (`Env.NAME`, `container_config.Labels.KEY`, `Cmd`)."""
        op = SETS.get(kind)
        if op is None:
            return None
        name = path.removeprefix(_OLD).partition(".")[2] if op in _BY_NAME else ""
        return self.last.get((op, name))


def _names(op: str, rest: str) -> set[str]:
    """The value names an instruction's arguments set: NAME= pairs, its first word (`ENV NAME value`),
    and for VOLUME and EXPOSE every path or port (a bare port is also `PORT/tcp`, as the config keys it)."""
    first = rest.split(None, 1)[:1]
    names = {n for n, _ in PAIR.findall(rest)} | set(first)
    if op in ("VOLUME", "EXPOSE"):
        words = {w.strip(_LIST_CHARS) for w in rest.split()} - {""}
        names |= words | ({f"{w}/tcp" for w in words if "/" not in w} if op == "EXPOSE" else set())
    return names
