"""The text views of one file's bytes that the detectors see, streamed with bounded memory.

Rules are bytes regexes, so ASCII, UTF-8 and Latin-1 text is scanned as it is. Two kinds of file
need another view:

- UTF-16 text (BOM, or the NUL pattern of its first KBs): decoded incrementally to UTF-8
  (undecodable units become U+FFFD), so line numbers count the text's own lines.
- Binary files (NUL in the first 8 KB, or ELF/Mach-O/.class/.pyc magic): the raw bytes still go to
  the detectors (ASCII secrets are found in place) plus the UTF-16LE printable runs, re-encoded as
  ASCII one run a line, the way `strings -el` prints them. Lines are None in binary content.

No byte sequence makes any of this raise.
"""
from __future__ import annotations

import codecs
import enum
import io
import re
from dataclasses import replace
from typing import Callable, Optional

from scanner.detectors.content import BINARY_SNIFF, ContentScanner, Located
from scanner.detectors.marshal_strings import pyc_view

Read = Callable[[int], bytes]

UTF16_SNIFF = 4096  # bytes whose NUL pattern tells UTF-16 text without a BOM
UTF16_TAIL = 256  # bytes of the previous chunk kept for a keyword on a chunk border
MIN_RUN = 8  # printable characters in a UTF-16LE run of a binary, as `strings -n 8 -el`
MAX_TAIL = 64 << 10  # an unfinished run longer than this is passed on before it ends
PYC_MAX = 8 << 20  # a larger .pyc is scanned as raw bytes, streamed

_MAGIC = (b"\x7fELF", b"\xca\xfe\xba\xbe", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf",
          b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe")
_PRINTABLE = rb"[\x20-\x7e\t]"
_RUN = re.compile(rb"(?:" + _PRINTABLE + rb"\x00){%d,}" % MIN_RUN)
_RUN_HEAD = re.compile(rb"(?:" + _PRINTABLE + rb"\x00)*")
# the unfinished run at the end of a buffer, matched on the reversed bytes: linear, anchored
_TAIL_REVERSED = re.compile(_PRINTABLE + rb"?(?:\x00" + _PRINTABLE + rb")*")


class TextKind(str, enum.Enum):
    TEXT = "text"
    UTF16_LE = "utf-16-le"
    UTF16_BE = "utf-16-be"
    BINARY = "binary"


def classify(head: bytes) -> TextKind:
    """What view a file needs, from its first bytes (8 KB or all of a shorter file)."""
    if head.startswith(b"\xff\xfe\x00\x00"):  # UTF-32LE: not supported as text
        return TextKind.BINARY
    if head.startswith(b"\xff\xfe"):
        return TextKind.UTF16_LE
    if head.startswith(b"\xfe\xff"):
        return TextKind.UTF16_BE
    if head.startswith(_MAGIC) or _is_pyc(head):
        return TextKind.BINARY
    nul_pattern = _utf16_by_nuls(head[:UTF16_SNIFF])
    if nul_pattern is not None:
        return nul_pattern
    return TextKind.BINARY if b"\0" in head[:BINARY_SNIFF] else TextKind.TEXT


def _is_pyc(head: bytes) -> bool:
    """CPython bytecode: a 2-byte version magic, b"\\r\\n", then a 4-byte flags word (0..3)."""
    return len(head) >= 16 and head[2:4] == b"\r\n" and head[5:8] == b"\0\0\0" and head[4] < 4


def _utf16_by_nuls(sample: bytes) -> Optional[TextKind]:
    """Mostly-ASCII UTF-16 has a NUL in one byte of nearly every pair and almost never in the other."""
    pairs = len(sample) // 2
    if pairs < MIN_RUN or b"\0" not in sample:  # no NUL, no NUL pattern (most text files)
        return None
    even, odd = sample[0:pairs * 2:2].count(0), sample[1:pairs * 2:2].count(0)
    if odd >= 0.3 * pairs and even <= 0.05 * pairs:
        return TextKind.UTF16_LE
    if even >= 0.3 * pairs and odd <= 0.05 * pairs:
        return TextKind.UTF16_BE
    return None


def prefixed(head: bytes, read: Read) -> Read:
    """`read` with `head` (bytes already read from it) put back in front."""
    pending = [head]

    def _read(n: int) -> bytes:
        if not pending[0]:
            return read(n)
        first = pending[0]
        if n <= len(first):
            pending[0] = first[n:]
            return first[:n]
        pending[0] = b""
        return first + read(n - len(first))

    return _read


def utf16_reader(read: Read, kind: TextKind) -> Read:
    """A reader of UTF-8 bytes over a reader of UTF-16 bytes; a leading BOM is dropped."""
    decoder = codecs.getincrementaldecoder(kind.value)(errors="replace")
    started = False

    def _read(n: int) -> bytes:
        nonlocal started
        while True:
            raw = read(n)
            text = decoder.decode(raw, final=not raw)
            if not started and text:
                started = True
                text = text[1:] if text[0] == "\ufeff" else text
            if text or not raw:
                return text.encode("utf-8", "replace")

    return _read


_IS_PRINTABLE = bytes(1 if c in range(0x20, 0x7F) or c == 0x09 else 0 for c in range(256))
_IS_NUL = bytes([1] + [0] * 255)
_ONES = b"\x01" * MIN_RUN


def utf16_runs(buf: bytes, pos: int = 0, end: Optional[int] = None) -> list[tuple[int, int]]:
    """(start, end) of each match of `_RUN.finditer(buf, pos, end)`, found faster.

    A run is a maximal sequence of (printable, NUL) byte pairs; a pair's first byte is never NUL,
    so runs of the two alignments never overlap and the regex's matches are exactly the runs of
    MIN_RUN pairs or more, of either alignment, clipped to [pos, end). Per alignment, the pairs are
    tested all at once: the even bytes mapped to 1 where printable, the odd bytes to 1 where NUL,
    the two ANDed as big integers; then runs of 1s are found in that half-size map."""
    end = len(buf) if end is None else min(end, len(buf))
    out: list[tuple[int, int]] = []
    for first in (pos, pos + 1):
        pairs = (end - first) // 2
        if pairs < MIN_RUN:
            continue
        chars = buf[first:first + 2 * pairs:2].translate(_IS_PRINTABLE)
        nuls = buf[first + 1:first + 2 * pairs:2].translate(_IS_NUL)
        good = (int.from_bytes(chars, "big") & int.from_bytes(nuls, "big")).to_bytes(pairs, "big")
        at = good.find(_ONES)
        while at >= 0:  # the first MIN_RUN 1s after a 0 start a run; the next 0 ends it
            stop = good.find(0, at + MIN_RUN)
            stop = pairs if stop < 0 else stop
            out.append((first + 2 * at, first + 2 * stop))
            at = good.find(_ONES, stop)
    out.sort()
    return out


class Utf16Strings:
    """Push bytes of a binary in, get its UTF-16LE printable runs out as ASCII, one run a line.

    A run may straddle two pushes: its unfinished tail is kept (at most MAX_TAIL bytes; a longer
    run is passed on in pieces, without a line break between them).
    """

    def __init__(self) -> None:
        self._carry = b""
        self._continuing = False  # the carry continues a run already partly passed on

    def feed(self, data: bytes) -> bytes:
        buf = self._carry + data
        out: list[bytes] = []
        pos = 0
        if self._continuing:
            pos = _RUN_HEAD.match(buf).end()
            out.append(buf[:pos:2])
            if pos >= len(buf) - 1:  # the run goes on past this buffer
                self._carry = buf[pos:]
                return b"".join(out)
            self._continuing = False
        window = buf[max(pos, len(buf) - MAX_TAIL):]
        tail = len(_TAIL_REVERSED.match(window[::-1]).group())
        end = len(buf) - tail
        if tail >= MAX_TAIL - 1:  # a very long open run: pass its whole pairs on now
            end = len(buf) - tail % 2
            self._continuing = True
        out.extend(b"\n" + buf[start:stop:2] for start, stop in utf16_runs(buf, pos, end))
        self._carry = buf[end:]
        return b"".join(out)

    def flush(self) -> bytes:
        """The run still open at the end of the file, if long enough (or the end of a long one)."""
        buf, self._carry = self._carry, b""
        continuing, self._continuing = self._continuing, False
        piece = _RUN_HEAD.match(buf).group()[::2]
        if continuing:
            return piece
        return b"\n" + piece if len(piece) >= MIN_RUN else b""


class PushScan:
    """ContentScanner.scan_stream turned around: bytes are pushed in, matches come out at the end.

    Same chunk and overlap rule, so a secret on a push border is found once. Lines are None: this
    serves derived views (binary strings) whose line numbers mean nothing.
    """

    def __init__(self, content: ContentScanner, path: Optional[str], most: Optional[int] = None) -> None:
        self.content, self.path, self.most = content, path, most
        self._pending = bytearray()
        self._base = 0
        self._found: list[Located] = []
        self._seen: set[tuple[str, int]] = set()

    def feed(self, data: bytes) -> None:
        self._pending += data
        if len(self._pending) >= self.content.chunk + self.content.overlap:
            self._scan(final=False)

    def finish(self) -> list[Located]:
        if self._pending:
            self._scan(final=True)
        return self._found

    def _scan(self, final: bool) -> None:
        if self.most is not None and len(self._found) > self.most:  # enough: the rest is not looked at
            self._pending.clear()
            return
        buf = bytes(self._pending)
        limit = len(buf) if final else len(buf) - self.content.overlap
        for m in self.content.scan_buffer(buf, self.path):
            key = (m.rule_id, m.start + self._base)
            if (m.start < limit or final) and key not in self._seen:
                self._seen.add(key)
                self._found.append(Located(replace(m, start=key[1], end=m.end + self._base), None))
        del self._pending[:limit]
        self._base += limit


def scan_bytes(content: ContentScanner, data: bytes, path: Optional[str], most: Optional[int] = None,
               whole: bool = False) -> list[Located]:
    """`scan_views` of a file held whole in memory: the same matches. Plain text and binaries of
    one chunk go straight in (a .pyc, a small .so: no readers and tees for one buffer)."""
    if len(data) <= content.chunk or (whole and _is_pyc(data)):  # `whole`: a .pyc `scan_views` read whole
        kind = classify(data[:BINARY_SNIFF])
        if kind is TextKind.TEXT:
            return content.scan_whole(data, path)
        if kind is TextKind.BINARY:
            found = _scan_binary(content, data, path, most)
            if _is_pyc(data) and (found or content.may_hold_framed(data)):
                strings = scan_pyc(content, data, path, most)
                return found if strings is None else strings
            return found
        # UTF-16 text: read as `scan_views` reads it (never back to `scan_views` itself: a `.pyc`
        # header on UTF-16 text would send the two to each other forever)
        return content.scan_stream(utf16_reader(io.BytesIO(data).read, kind), path, most)
    return scan_views(content, io.BytesIO(data).read, path, most)


def _scan_binary(content: ContentScanner, data: bytes, path: Optional[str], most: Optional[int]) -> list[Located]:
    found = [Located(loc.match, None) for loc in content.scan_whole(data, path)]  # no lines in binaries
    if content.may_hold_utf16(data):  # its UTF-16 strings, as `scan_views` extracts them
        strings, view = Utf16Strings(), PushScan(content, path, most)
        view.feed(strings.feed(data) + strings.flush())
        found += view.finish()
    return found


def scan_pyc(content: ContentScanner, data: bytes, path: Optional[str], most: Optional[int] = None
             ) -> Optional[list[Located]]:
    """A `.pyc` scanned as its string objects, one a line (`marshal_strings`): the marshal framing
    around a string no longer glues onto a token. None: a stream this cannot read (its raw bytes
    are scanned instead). Asked only where the raw bytes gave findings or a provider token may be
    glued (`may_hold_framed`): the other `.pyc` files read the same either way."""
    view = pyc_view(data)
    if view is None:
        return None
    # judged as the source it was compiled from: in code, only a quoted value is data
    source = path[:-1] if path and path.endswith(".pyc") else path
    return [Located(loc.match, None) for loc in scan_views(content, io.BytesIO(view).read, source, most)]


def _read_upto(read: Read, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = read(min(n - got, 1 << 20))
        if not data:
            break
        parts.append(data)
        got += len(data)
    return b"".join(parts)


def scan_views(content: ContentScanner, read: Read, path: Optional[str], most: Optional[int] = None) -> list[Located]:
    """Every view of the file `read` streams, through `content`; memory bounded by its chunk size
    (and, with `most`, by the matches kept: reading stops soon after there are more than that)."""
    head = read(BINARY_SNIFF)
    kind = classify(head)
    if _is_pyc(head):  # read whole (it is small) for its strings view
        head += _read_upto(read, PYC_MAX - len(head) + 1)
        if len(head) <= PYC_MAX:
            return scan_bytes(content, head, path, most, whole=True)
    source = prefixed(head, read)
    if kind is TextKind.TEXT:
        return content.scan_stream(source, path, most)
    if kind is not TextKind.BINARY:
        return content.scan_stream(utf16_reader(source, kind), path, most)
    strings, view = Utf16Strings(), PushScan(content, path, most)
    state = {"tail": b"", "fed": False}

    def tee(n: int) -> bytes:
        data = source(n)
        # extract UTF-16 runs only near a detector keyword (in this chunk, the end of the last
        # one, or right after a chunk that had one): extraction costs more than the scan itself
        wanted = content.may_hold_utf16(state["tail"] + data)
        if wanted and not state["fed"]:  # the keyword may start in the last chunk's tail
            view.feed(strings.feed(state["tail"]))
        if wanted or state["fed"]:
            view.feed(strings.feed(data))
        else:
            view.feed(strings.flush())
        state["tail"], state["fed"] = data[-UTF16_TAIL:], wanted
        return data

    raw = [Located(loc.match, None) for loc in content.scan_stream(tee, path, most)]
    view.feed(strings.flush())
    return raw + view.finish()
