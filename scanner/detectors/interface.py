"""The detector role: find secrets in a buffer of bytes."""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator, Optional, Protocol

from scanner.errors import LayerscanError
from scanner.models import DetectorKind, Severity

if TYPE_CHECKING:
    from scanner.detectors.prefilter import Prescan


class DetectorError(LayerscanError):
    """A rule file or detector configuration that cannot be used."""


@dataclass(frozen=True)
class Match:
    """A secret found in a buffer: offsets of the secret itself, not of the whole regex match."""

    rule_id: str
    detector: DetectorKind
    severity: Severity
    title: str
    start: int
    end: int
    secret: bytes


class Gate(Protocol):
    """A prefilter pass shared by several detectors (`SignatureDetector.prescan`)."""

    def prescan(self, buf: bytes) -> "Prescan":
        ...


class Detector(abc.ABC):
    """Finds secrets in a buffer. Pure: no state kept between calls."""

    @abc.abstractmethod
    def scan(self, buf: bytes, path: Optional[str] = None) -> Iterator[Match]:
        """Yield the secrets in `buf` (a chunk of a file, or a config value); `path` names the file."""

    def prepare(self) -> None:
        """Build what is costly to build (compiled pattern databases) now, before worker processes
        are forked, so that each does not build it again."""

    def gate(self) -> Optional["Gate"]:
        """The one pass whose hits this detector needs: in a buffer where that pass finds nothing,
        this detector finds nothing either, and `ContentScanner` does not ask it. None: it looks at
        every buffer on its own terms (a path, magic bytes, given values)."""
        return None

    def may_hold_framed(self, buf: bytes) -> bool:
        """Whether `buf` (a `.pyc`) may hold a string this detector reads differently once it stands
        alone, without the marshal framing around it (a provider token glued to a type byte)."""
        return False

    def may_hold_utf16(self, buf: bytes) -> bool:
        """Whether `buf` (raw bytes of a binary) may hold a UTF-16LE string this detector would
        report: when no detector says yes, the binary's UTF-16 strings are not extracted."""
        return True
