"""Run the detectors over one file's bytes, streamed in chunks that overlap.

Memory is bounded by the chunk size whatever the file size. Each buffer reports the matches whose
secret starts before its overlap tail (and was not reported by the buffer before); the next buffer
starts OVERLAP bytes before that tail, so a secret on a chunk border is found whole, exactly once,
with the text its regex needs before it (whole matches up to OVERLAP bytes long).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Optional

from scanner.detectors.interface import Detector, Gate, Match
from scanner.models import Hit
from scanner.redact import make_secret

CHUNK = 1 << 20
OVERLAP = 16 << 10
BINARY_SNIFF = 8192


@dataclass(frozen=True)
class Located:
    match: Match
    line: Optional[int]  # 1-based; None in binary content


class ContentScanner:
    """The detectors a layer walk applies to every file, and whether raw values are kept."""

    def __init__(self, detectors: Iterable[Detector], keep_values: bool = False,
                 chunk: int = CHUNK, overlap: int = OVERLAP) -> None:
        self.detectors = tuple(detectors)
        self.keep_values = keep_values
        self.chunk, self.overlap = chunk, overlap
        self._gate: Optional[Gate] = None
        self._ungated: Optional[tuple[Detector, ...]] = None  # None: not worked out yet

    def _gated(self) -> None:
        """The detectors that one shared pass gates (`Detector.gate`): a buffer it finds nothing
        in goes only to the others."""
        gates = [d.gate() for d in self.detectors]
        shared = {id(g): g for g in gates if g is not None}
        self._gate = next(iter(shared.values())) if len(shared) == 1 else None
        self._ungated = tuple(d for d, g in zip(self.detectors, gates) if g is None or self._gate is None)

    def prepare(self) -> None:
        for d in self.detectors:
            d.prepare()
        self._gated()

    def may_hold_utf16(self, buf: bytes) -> bool:
        return any(d.may_hold_utf16(buf) for d in self.detectors)

    def may_hold_framed(self, buf: bytes) -> bool:
        return any(d.may_hold_framed(buf) for d in self.detectors)

    def scan_buffer(self, buf: bytes, path: Optional[str]) -> list[Match]:
        if self._ungated is None:
            self._gated()
        if self._gate is not None and self._gate.prescan(buf).empty:  # most buffers
            return [m for d in self._ungated for m in d.scan(buf, path)]
        return [m for d in self.detectors for m in d.scan(buf, path)]

    def scan_stream(self, read: Callable[[int], bytes], path: str, most: Optional[int] = None) -> list[Located]:
        """With `most`, reading stops after the chunk that takes the matches past `most` (a file
        made of secrets would otherwise hold memory in proportion to its size)."""
        found: list[Located] = []
        buf = read(self.chunk)
        binary = b"\0" in buf[:BINARY_SNIFF]
        base_offset, base_line = 0, 1
        reported = 0  # absolute offset: matches whose secret starts before it were reported already
        while buf:
            more = read(self.chunk)
            final = not more
            limit = len(buf) if final else len(buf) - self.overlap
            new = [m for m in self.scan_buffer(buf, path)
                   if base_offset + m.start >= reported and (m.start < limit or final)]
            lines = [None] * len(new) if binary else line_numbers(buf, new, base_line)
            found.extend(Located(_shift(m, base_offset), line) for m, line in zip(new, lines))
            if most is not None and len(found) > most:
                found = _dedupe(found)
                if len(found) > most:
                    break
            if final:
                break
            reported = max(reported, base_offset + limit)
            # the next buffer starts `overlap` bytes before `limit`: a regex that needs text before
            # its secret (`password = ...`) still sees it when the border falls in between
            keep_from = max(limit - self.overlap, 0)
            if not binary:
                base_line += buf.count(b"\n", 0, keep_from)
            base_offset += keep_from
            buf = buf[keep_from:] + more
        return _dedupe(found)

    def scan_whole(self, buf: bytes, path: str) -> list[Located]:
        """`scan_stream` of text that fits one chunk, given whole: the same matches and lines."""
        matches = self.scan_buffer(buf, path)
        if not matches:
            return []
        return _dedupe([Located(m, line) for m, line in zip(matches, line_numbers(buf, matches))])

    def hits(self, read: Callable[[int], bytes], path: str, ordinal: int,
             inner_path: Optional[str] = None) -> list[Hit]:
        return [to_hit(loc.match, path, loc.line, ordinal, self.keep_values, inner_path)
                for loc in self.scan_stream(read, path)]


def to_hit(m: Match, path: str, line: Optional[int], ordinal: int, keep: bool,
           inner_path: Optional[str] = None) -> Hit:
    return Hit(rule_id=m.rule_id, detector=m.detector, severity=m.severity, title=m.title,
               path=path, line=line, secret=make_secret(m.secret, keep), inner_path=inner_path,
               ordinal=ordinal)


def line_numbers(buf: bytes, matches: list[Match], first: int = 1) -> list[int]:
    """The line (`first` for the buffer's first) of each match's start, in the order given: the
    newlines are counted in one pass, whatever the number of matches (a file made of secrets)."""
    lines = [first] * len(matches)
    line = pos = 0
    for i in sorted(range(len(matches)), key=lambda i: matches[i].start):
        line += buf.count(b"\n", pos, matches[i].start)
        pos = matches[i].start
        lines[i] += line
    return lines


def _shift(m: Match, offset: int) -> Match:
    if not offset:
        return m
    return Match(m.rule_id, m.detector, m.severity, m.title, m.start + offset, m.end + offset, m.secret)


def _dedupe(found: list[Located]) -> list[Located]:
    """One report per (rule, offset): the same span can come from an overlap re-scan."""
    seen: set[tuple[str, int]] = set()
    out = []
    for loc in found:
        key = (loc.match.rule_id, loc.match.start)
        if key not in seen:
            seen.add(key)
            out.append(loc)
    return out
