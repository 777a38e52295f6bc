"""The parts of Go's `tar.Reader.Next` that read past one header block: sparse maps (as Go's
`handleSparseFile`) and PAX headers too big to hold (where Go stops, read here a record at a time).

Both read from `tarstream._Buffered` (`read(n)`, short at the end of the stream).
"""
from __future__ import annotations

from typing import Callable

from scanner.layers.tarheaders import (HEADER_ONLY, MAX_SPECIAL, MEANINGFUL, SPARSE, Header, TarHeaderError,
                                       old_sparse, parse_pax, pax_sparse, sparse_map_01, sparse_map_10,
                                       valid_sparse)

MAX_PAX = 64 << 20  # bytes of one PAX header read at all (records of it over HOLD are skipped)
HOLD = 64 << 10  # bytes of one record of a huge PAX header held and applied
_PIECE = 1 << 20


def sparse_entry(h: Header, block: bytes, blocks: Callable[[], bytes]) -> None:
    """Go's handleSparseFile: a sparse entry's map (`h.sparse`) and logical size (`h.size`), and
    its stored bytes (`h.stored`) less a map that heads them. `block` is the header block (an old
    GNU map is in it), `blocks()` reads the next block of the stream. The data must be what the
    map says it is (else Go's reader fails when the file is read): else an error."""
    if h.type == SPARSE:
        h.size, spd = old_sparse(block, blocks)
    else:
        version = pax_sparse(h)
        if version is None:
            return
        if version == "1.0":
            if h.stored < 512:
                raise TarHeaderError("unexpected end of data in a sparse map")
            spd, used = sparse_map_10(blocks(), _within(h.stored - 512, blocks))
            h.stored -= used
        else:
            spd = sparse_map_01(h.pax_headers)
    if h.type in HEADER_ONLY or not valid_sparse(spd, h.size):
        raise TarHeaderError("invalid sparse map")
    if sum(length for _, length in spd) != h.stored:
        raise TarHeaderError(f"sparse map of {sum(n for _, n in spd)} data bytes over {h.stored} stored")
    h.sparse = spd


def _within(budget: int, blocks: Callable[[], bytes]) -> Callable[[], bytes]:
    """`blocks`, as long as whole blocks of the entry's data are left (`budget` bytes)."""
    left = [budget]

    def more() -> bytes:
        if left[0] < 512:
            raise TarHeaderError("unexpected end of data in a sparse map")
        left[0] -= 512
        return blocks()
    return more


def huge_pax(src, size: int) -> tuple[dict[str, str], tuple[str, ...]]:
    """A PAX header of `size` bytes (over MAX_SPECIAL) read a record at a time in bounded memory:
    its records and the ones skipped (`key: N bytes`). A record over HOLD bytes is skipped unless
    Go's reader acts on its key (a path, a size, a sparse map ...): then an error, as in Go."""
    if size > MAX_PAX:
        raise TarHeaderError(f"extended header of {size} bytes (over {MAX_PAX})")
    reader = _Records(src, size)
    kept, skipped = bytearray(), []
    while reader.left or reader.buf:
        n, space = reader.length()
        if n <= HOLD:
            kept += reader.take(n)
            if len(kept) > MAX_SPECIAL:
                raise TarHeaderError(f"extended header with over {MAX_SPECIAL} bytes of records")
            continue
        key = reader.key(space, n)
        if key in MEANINGFUL or key.startswith("GNU.sparse."):
            raise TarHeaderError(f"PAX record {shown(key)} of {n} bytes (Go refuses over {MAX_SPECIAL})")
        reader.drop(n)
        skipped.append(f"{shown(key)}: {n} bytes")
    return parse_pax(bytes(kept)), tuple(skipped)


def shown(key: str) -> str:
    """A PAX key as a report may print it: ASCII, no control characters."""
    return "".join(c if c.isascii() and c.isprintable() else f"\\x{ord(c) & 0xFF:02x}" for c in key[:80])


class _Records:
    """The bytes of one PAX header, read as its records need them (never more than a piece ahead)."""

    def __init__(self, src, size: int) -> None:
        self.src, self.left, self.buf = src, size, b""

    def _more(self, want: int) -> None:
        while len(self.buf) < want and self.left:
            data = self.src.read(min(self.left, _PIECE, max(want - len(self.buf), 512)))
            if not data:
                raise TarHeaderError("unexpected end of data in an extended header")
            self.left -= len(data)
            self.buf += data

    def length(self) -> tuple[int, int]:
        """The next record's length (Go's parsePAXRecord: decimal, then a space) and that space's index."""
        self._more(32)
        space = self.buf.find(b" ", 0, 32)
        if space < 0 or not self.buf[:space].isdigit():
            raise TarHeaderError("malformed PAX record")
        n = int(self.buf[:space])
        if n < 5 or n > len(self.buf) + self.left or n <= space + 1:
            raise TarHeaderError("malformed PAX record")
        return n, space

    def take(self, n: int) -> bytes:
        self._more(n)
        record, self.buf = self.buf[:n], self.buf[n:]
        return record

    def key(self, space: int, n: int) -> str:
        self._more(space + 1 + 1024)
        key, eq, _ = self.buf[space + 1:min(n, space + 1 + 1024)].partition(b"=")
        if not eq or not key or b"\0" in key:
            raise TarHeaderError("malformed PAX record")
        return key.decode("utf-8", "surrogateescape")

    def drop(self, n: int) -> None:
        last = b""
        while n:
            self._more(1)
            piece = self.buf[:n]
            self.buf = self.buf[len(piece):]
            n -= len(piece)
            last = piece[-1:]
        if last != b"\n":
            raise TarHeaderError("malformed PAX record")
