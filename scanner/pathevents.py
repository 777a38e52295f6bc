"""A layer's path events: what each tar entry puts at its path, as the overlay sees it.

Part of the result model (`scanner.models`): a `LayerScan` holds its layer's events packed in
one `PathEvents`, which the overlay reads in every layer of an image.
"""
from __future__ import annotations

import enum
from array import array
from dataclasses import dataclass
from typing import Iterable, Iterator


class EntryKind(str, enum.Enum):
    """What a tar entry puts at its path, as the overlay sees it."""

    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    OTHER = "other"  # devices, FIFOs
    WHITEOUT = "whiteout"  # removes `path` from lower layers
    OPAQUE = "opaque"  # hides everything below directory `path` from lower layers


@dataclass(frozen=True, slots=True)  # made by the thousand when a layer's events are read: slots, small and quick
class PathEvent:
    path: str  # absolute POSIX path, normalised ("/app/.env")
    kind: EntryKind
    ordinal: int  # position of the entry in the layer tar


class PathEvents:
    """A layer's path events, packed: every path in one NUL-separated UTF-8 blob, a byte per kind,
    the ordinals in an array. An image of a million entries holds them in tens of MB, not in a
    million objects; iterating gives `PathEvent`s. Paths hold no NUL (`norm_path` escapes it)."""

    __slots__ = ("_paths", "_kinds", "_ordinals")
    _KINDS = tuple(EntryKind)
    _CODE = {kind: i for i, kind in enumerate(_KINDS)}

    def __init__(self, events: Iterable[PathEvent] = ()) -> None:
        self._paths, self._kinds, self._ordinals = bytearray(), bytearray(), array("q")
        for e in events:
            self.add(e.path, e.kind, e.ordinal)

    def add(self, path: str, kind: EntryKind, ordinal: int) -> None:
        data = path.encode("utf-8", "surrogatepass")
        if b"\0" in data:
            raise ValueError(f"a path event's path holds a NUL: {path!r}")
        if self._kinds:
            self._paths.append(0)
        self._paths += data
        self._kinds.append(self._CODE[kind])
        self._ordinals.append(ordinal)

    def __len__(self) -> int:
        return len(self._kinds)

    def __iter__(self) -> Iterator[PathEvent]:
        if not self._kinds:
            return iter(())
        paths = self._paths.decode("utf-8", "surrogatepass").split("\0")
        kinds = self._KINDS
        return (PathEvent(p, kinds[k], o) for p, k, o in zip(paths, self._kinds, self._ordinals))

    def at(self, wanted: set[str]) -> Iterator[PathEvent]:
        """The events at the `wanted` paths, in order: what iterating gives, less the others,
        which are never built (an image's overlay wants the paths of its findings only)."""
        if not self._kinds:
            return iter(())
        paths = self._paths.decode("utf-8", "surrogatepass").split("\0")
        kinds, codes, ordinals = self._KINDS, self._kinds, self._ordinals
        return (PathEvent(paths[i], kinds[codes[i]], ordinals[i])
                for i in [i for i, p in enumerate(paths) if p in wanted])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (PathEvents, tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"PathEvents({list(self)!r})"

    def parts(self) -> tuple[bytes, bytes, array]:
        """The packed form: paths (NUL-separated UTF-8), kinds (an index into EntryKind each), ordinals."""
        return bytes(self._paths), bytes(self._kinds), self._ordinals

    @classmethod
    def from_parts(cls, paths: bytes, kinds: bytes, ordinals: array) -> "PathEvents":
        """`parts` back; ValueError if they do not fit together (a damaged cache entry)."""
        count = len(kinds)
        if len(ordinals) != count or (paths.count(0) + 1 if count else len(paths)) != count or \
                any(k >= len(cls._KINDS) for k in set(kinds)):
            raise ValueError("packed path events that do not fit together")
        out = cls()
        out._paths, out._kinds, out._ordinals = bytearray(paths), bytearray(kinds), ordinals
        return out

    def __reduce__(self):  # pickled as its packed parts (worker processes send it whole)
        return (PathEvents.from_parts, self.parts())
