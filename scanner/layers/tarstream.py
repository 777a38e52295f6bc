"""One hardened way to stream a tar (a layer, or a tar inside a layer): tarfile trusts its input.

What a hostile tar does to a plain `tarfile.open(mode="r|")`, and what it does here instead:

- a garbled or cut header past the first ends the stream quietly: everything after it would pass
  for clean. Here: an error (a zero block still ends the tar).
- chains of PAX headers or GNU long names are parsed by recursion: a few thousand in a row overflow
  the stack. Here: at most `MAX_CHAIN` in a row (`tarheaders`, as the bounds below).
- an extended header (PAX, GNU long name/link) is read whole, whatever size it declares. Here: at
  most `MAX_SPECIAL` bytes, as Go's archive/tar (what dockerd and containerd read layers with).
- malformed GNU sparse records raise ValueError or IndexError. Here: a header error.
- a size in base-256 (up to 2**95) is skipped with `_Stream.seek`, which loops once per buffer
  even past the end of the data: a hang. Here: the skip reads, and stops at the end of the data.
- a sparse member reads with its holes: a few bytes stored can read as terabytes of zeros. Here:
  its stored data segments only (holes are zeros: nothing to find in them).
- every header is kept in `TarFile.members`: memory grows with the entry count. Here: dropped.
- bytes after the end-of-archive marker are not part of the filesystem; `trailing` counts them.

Every problem is a `tarfile.ReadError` with a reason: the caller's "corrupt tar" error.

Headers are parsed by `tarfile.TarInfo`'s own methods (through `SafeTarInfo`, which also does the
common cases with fewer calls), but over `TarStream`, a lean forward-only reader, instead of
`TarFile` and its `_Stream`: the per-member cost of the walk was mostly theirs. What `TarStream`
lists is what `tarfile.open(mode="r|")` lists, header by header and error by error
(`tests/unit/layers/test_tarstream.py`).
"""
from __future__ import annotations

import tarfile
from typing import BinaryIO, Iterator, Optional

from scanner.layers.tarheaders import SafeTarInfo
from scanner.sources.blobs import RawReader

READ = 1 << 20


class _Buffered:
    """A forward-only reader with `tell`, over a stream read `chunk` bytes at a time: what the
    header parsing of `tarfile.TarInfo` needs of `TarFile.fileobj`. Small reads are slices of the
    current chunk; a large read with nothing buffered goes straight to the stream."""

    def __init__(self, raw: BinaryIO, chunk: int) -> None:
        self._raw, self._chunk = raw, chunk
        self._buf, self._pos, self._start = b"", 0, 0  # _start: stream offset of _buf[0]

    def tell(self) -> int:
        return self._start + self._pos

    def read(self, n: int) -> bytes:
        buf, pos = self._buf, self._pos
        if pos + n <= len(buf):
            self._pos = pos + n
            return buf[pos:pos + n]
        parts = [buf[pos:]] if pos < len(buf) else []
        have = len(buf) - pos
        self._start += len(buf)
        self._buf, self._pos = b"", 0
        while have < n:
            data = self._raw.read(n - have if n - have >= self._chunk else self._chunk)
            if not data:
                break
            need = n - have
            if len(data) > need:
                parts.append(data[:need])
                self._buf, self._pos = data, need  # data[0] sits at offset _start
                have = n
                break
            parts.append(data)
            self._start += len(data)
            have += len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def unread(self, data: bytes) -> None:
        """Put back `data`, the bytes just read: the next read starts with them."""
        start = self.tell() - len(data)
        self._buf, self._pos, self._start = data + self._buf[self._pos:], 0, start

    def skip(self, n: int) -> bool:
        """Read past `n` bytes; False if the stream ended first."""
        while n > 0:
            data = self.read(min(n, READ))
            if not data:
                return False
            n -= len(data)
        return True


class TarStream:
    """A tar read once from a stream, one header at a time: `tarfile.TarInfo`'s own header
    parsing (through `SafeTarInfo`) over a lean reader, instead of `tarfile.open(mode="r|")`,
    whose stream copies what is left of its buffer on every read and whose members go through
    two more reader objects each. Only what the header parsing uses of a `TarFile` is here."""

    def __init__(self, fileobj: BinaryIO, bufsize: int = READ) -> None:
        self.fileobj = _Buffered(fileobj, bufsize)
        self.encoding, self.errors = tarfile.ENCODING, "surrogateescape"
        self.pax_headers: dict = {}  # global PAX headers: they apply to every member after them
        self.offset = 0  # where the next header starts
        self._layerscan_chain = 0
        self.ended = False

    def __enter__(self) -> "TarStream":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def next(self) -> Optional[tarfile.TarInfo]:
        """The next member's header, None at the end; errors as `tarfile.TarFile.next` raises them."""
        if self.ended:
            return None
        if self.fileobj.tell() < self.offset and not self.fileobj.skip(self.offset - self.fileobj.tell()):
            raise tarfile.ReadError("unexpected end of data")
        try:
            return SafeTarInfo.fromtarfile(self)  # type: ignore[arg-type]
        except tarfile.EOFHeaderError:  # type: ignore[attr-defined]
            pass
        except tarfile.EmptyHeaderError:  # type: ignore[attr-defined]
            if self.offset == 0:
                raise tarfile.ReadError("empty file") from None
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:  # type: ignore[attr-defined]
            if self.offset == 0:
                raise tarfile.ReadError(str(exc)) from None
        except tarfile.SubsequentHeaderError as exc:  # type: ignore[attr-defined]
            raise tarfile.ReadError(str(exc)) from None
        self.ended = True
        return None


class _Member(RawReader):
    """A member's stored bytes: exactly `size` of them, or an error if the stream ends first."""

    def __init__(self, src: _Buffered, size: int) -> None:
        self._src, self._left = src, size

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if n is None or n < 0 or n > self._left:
            n = self._left
        if n <= 0:
            return b""
        data = self._src.read(n)
        if len(data) < n:
            raise tarfile.ReadError("unexpected end of data")
        self._left -= n
        return data


def open_tar(fileobj, bufsize: int = 64 << 10) -> TarStream:
    return TarStream(fileobj, bufsize)


def members(tf: TarStream) -> Iterator[tarfile.TarInfo]:
    """Every header of a tar opened by `open_tar`, in order, none kept after it is yielded."""
    while True:
        info = tf.next()
        if info is None:
            return
        yield info


def open_member(tf: TarStream, info: tarfile.TarInfo) -> tuple[Optional[BinaryIO], int]:
    """A reader of a regular member's stored bytes and their count. A sparse member gives its data
    segments back to back, never its holes; a lying map is cut at the bytes the member stores."""
    if tf.fileobj.tell() != info.offset_data:  # type: ignore[attr-defined]
        raise tarfile.ReadError("member opened out of order")
    if info.sparse is None:
        return _Member(tf.fileobj, info.size), info.size  # type: ignore[return-value]
    stored = tf.offset - info.offset_data  # type: ignore[attr-defined]
    size = min(sum(n for _, n in info.sparse), stored)
    return _Member(tf.fileobj, size), size  # type: ignore[return-value]


def trailing(tf: TarStream) -> int:
    """Non-zero bytes after the end-of-archive marker: read by no tar tool, yet in the image."""
    found = 0
    while chunk := tf.fileobj.read(READ):  # type: ignore[union-attr]
        found += len(chunk) - chunk.count(0)
    return found
