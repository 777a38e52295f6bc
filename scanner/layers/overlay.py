"""Replay the layers' path events bottom-up and label each hit: present, deleted or overwritten.

The overlay only labels. A whiteout never drops a finding: the bytes are still in the image.
"""
from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Optional, Sequence

from scanner.models import Hit, LayerScan, Status
from scanner.pathevents import EntryKind


@dataclass
class _LayerPaths:
    adds: dict[str, tuple[EntryKind, int]] = field(default_factory=dict)  # path -> (kind, last ordinal)
    whiteouts: set[str] = field(default_factory=set)
    opaques: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, scan: LayerScan, wanted: set[str]) -> "_LayerPaths":
        """The layer's entries at the `wanted` paths (the others can change no label)."""
        lp = cls()
        whiteout, opaque, adds = EntryKind.WHITEOUT, EntryKind.OPAQUE, lp.adds
        for ev in scan.events.at(wanted):
            if ev.kind is whiteout:
                lp.whiteouts.add(ev.path)
            elif ev.kind is opaque:
                lp.opaques.add(ev.path)
            else:
                adds[ev.path] = (ev.kind, ev.ordinal)
        return lp


def ancestors(path: str) -> list[str]:
    out = []
    while path not in ("/", ""):
        path = posixpath.dirname(path)
        out.append(path)
    return out


@dataclass(frozen=True)
class Label:
    status: Status
    removed_in: Optional[int] = None  # index of the layer that deleted or overwrote it


class Overlay:
    """Labels the hits of `scans`: only the entries at their paths and at their parent directories
    are kept, so memory goes with the findings, not with the image's files."""

    def __init__(self, scans: Sequence[LayerScan]) -> None:
        wanted: set[str] = set()
        for path in (h.path for s in scans for h in s.hits):
            if path not in wanted:
                wanted.add(path)
                wanted.update(ancestors(path))
        self._layers = [_LayerPaths.of(s, wanted) for s in scans]

    def label(self, layer_index: int, hit: Hit) -> Label:
        path = hit.path
        same = self._layers[layer_index].adds.get(path)
        if same is not None and same[1] > hit.ordinal:  # written again later in the same tar
            return Label(Status.OVERWRITTEN, layer_index)
        parents = ancestors(path)
        for j in range(layer_index + 1, len(self._layers)):
            status = _effect(self._layers[j], path, parents)
            if status is not None:
                return Label(status, j)
        return Label(Status.PRESENT)


def _effect(lp: _LayerPaths, path: str, parents: list[str]) -> Optional[Status]:
    """What layer `lp` does to a file at `path` from a lower layer, if anything."""
    if path in lp.adds:
        return Status.OVERWRITTEN  # a file, link or directory now stands at the same path
    if path in lp.whiteouts:
        return Status.DELETED
    for parent in parents:
        if parent in lp.whiteouts or parent in lp.opaques:
            return Status.DELETED
        added = lp.adds.get(parent)
        if added is not None and added[0] is not EntryKind.DIR:
            return Status.DELETED  # a parent directory was replaced by a file or a link
    return None
