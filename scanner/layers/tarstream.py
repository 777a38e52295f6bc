"""One hardened way to stream a tar (a layer, or a tar inside a layer), read as Go's
`archive/tar` reads it: containerd, moby and umoci apply layers with it, so what it reads is what a
container holds. The header fields: `tarheaders`; here, Go's `Reader.Next` over a stream:

- extended headers apply in Go's order: a PAX header (`x`) to the next entry, a GNU long name or
  link (`L`, `K`) over any PAX `path`/`linkpath`, a `GNU.sparse.name` over both; a PAX global
  header (`g`) is an entry of its own (type `g`, size 0) that applies to no file;
- the end: no bytes where a header starts, or two zero blocks (one zero block then a header is an
  error, as in Go); a cut header or cut data is an error; bytes after the end are `trailing`;
- a type without data (links, devices, directories, fifos) has none whatever its size says;
- sparse files: their stored data segments back to back (holes are zeros), and a map that does not
  match the data is an error (Go's reader fails on it when the file is read);
- bounds Go does not have: at most `MAX_CHAIN` extended headers in a row, `MAX_SPARSE` segments.
  A PAX header over `MAX_SPECIAL` (1 MiB, where Go stops with an error) is read a record at a time
  up to `MAX_PAX`: a record that sets a field Go acts on is an error, any other too big to hold
  (an 8 MiB `comment`) is skipped and listed in the entry's `skipped`;
- every header is dropped once yielded: memory does not grow with the entry count.

Every problem is a `tarfile.ReadError` with a reason: the caller's "corrupt tar" error.
"""
from __future__ import annotations

import tarfile
from typing import BinaryIO, Iterator, Optional

from scanner.layers.tarheaders import (BLOCK, HEADER_ONLY, LONGLINK, LONGNAME, MAX_CHAIN, MAX_SPECIAL, SPARSE, XGL, XHD,
                                       Header, TarHeaderError, cstring, merge_pax, parse_block, parse_pax, text)
from scanner.layers.tarpax import huge_pax, sparse_entry
from scanner.sources.blobs import RawReader

READ = 1 << 20
ZERO = bytes(BLOCK)


class _Buffered:
    """A forward-only reader with `tell`, over a stream read `chunk` bytes at a time: what the
    header parsing of `tarfile.TarInfo` needs of `TarFile.fileobj`. Small reads are slices of the
    current chunk; a large read with nothing buffered goes straight to the stream."""

    def __init__(self, raw: BinaryIO, chunk: int, seek: bool = False) -> None:
        self._raw, self._chunk, self._seek = raw, chunk, seek  # seek: skips seek (a file on disk)
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
        if self._seek and n > len(self._buf) - self._pos:
            n -= len(self._buf) - self._pos
            at = self._start + len(self._buf)
            end = self._raw.seek(0, 2)
            self._buf, self._pos, self._start = b"", 0, min(at + n, end)
            self._raw.seek(self._start)
            return at + n <= end
        while n > 0:
            data = self.read(min(n, READ))
            if not data:
                return False
            n -= len(data)
        return True


class TarStream:
    """A tar read once from a stream, one entry at a time, as Go's `tar.Reader.Next`."""

    def __init__(self, fileobj: BinaryIO, bufsize: int = READ, seek: bool = False) -> None:
        self.fileobj = _Buffered(fileobj, bufsize, seek)
        self.marked = False  # ended by the end-of-archive marker (two zero blocks), not by the stream
        self.offset = 0  # where the current entry's data ends (its padding follows)
        self._block = ZERO  # the last header block read
        self.ended = False

    def __enter__(self) -> "TarStream":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def next(self) -> Optional[Header]:
        """The next entry, None at the end."""
        if self.ended:
            return None
        src = self.fileobj
        if src.tell() < self.offset and not src.skip(self.offset - src.tell()):
            raise tarfile.ReadError("unexpected end of data")
        if self.offset % BLOCK and not src.skip(-self.offset % BLOCK):
            return self._end()  # Go: padding cut short is the end
        pax: Optional[dict[str, str]] = None
        skipped: tuple[str, ...] = ()
        long_name = long_link = None
        for _ in range(MAX_CHAIN + 1):
            h = self._header()
            if h is None:
                return self._end()
            if h.type in (XHD, XGL):
                pax, skipped = self._pax(h)
                if h.type == XGL:  # an entry of its own, that applies to no file
                    try:
                        merge_pax(h, pax)  # as Go: its name (a `path` record), errors not checked
                    except TarHeaderError:
                        pass
                    g = Header(h.name, XGL)
                    g.offset, g.offset_data, g.pax_headers, g.skipped = h.offset, src.tell(), pax, skipped
                    self.offset = src.tell()
                    return g
            elif h.type in (LONGNAME, LONGLINK):
                if h.size > MAX_SPECIAL:
                    raise tarfile.ReadError(f"GNU long name of {h.size} bytes at byte {h.offset} (over "
                                            f"{MAX_SPECIAL}, which Go's archive/tar refuses too)")
                value = text(cstring(self._data(h.size)))
                if h.type == LONGNAME:
                    long_name = value
                else:
                    long_link = value
            else:
                return self._entry(h, pax or {}, skipped, long_name, long_link)
        raise tarfile.ReadError(f"over {MAX_CHAIN} extended headers in a row at byte {h.offset}")

    def _end(self) -> None:
        self.ended = True
        return None

    def _header(self) -> Optional[Header]:
        """The next header block parsed; None at the end (no bytes, or two zero blocks)."""
        src = self.fileobj
        at = src.tell()
        buf = src.read(BLOCK)
        if not buf:
            return None
        if len(buf) < BLOCK:
            raise tarfile.ReadError(f"unexpected end of data in the header at byte {at}")
        if buf == ZERO:
            second = src.read(BLOCK)
            if not second or second == ZERO:
                self.marked = True
                return None
            if len(second) < BLOCK:
                raise tarfile.ReadError(f"unexpected end of data in the header at byte {at + BLOCK}")
            raise tarfile.ReadError(f"a header after a zero block at byte {at + BLOCK} (Go's archive/tar "
                                    "stops with an error there)")
        try:
            h = parse_block(buf)
        except TarHeaderError as exc:
            raise tarfile.ReadError(f"{exc} at byte {at}") from None
        h.offset, self._block = at, buf
        if h.size < 0 and h.type not in HEADER_ONLY:
            raise tarfile.ReadError(f"negative size in the header at byte {at}")
        return h

    def _data(self, n: int) -> bytes:
        data = self.fileobj.read(n)
        if len(data) < n:
            raise tarfile.ReadError("unexpected end of data")
        self._pad(n)
        return data

    def _pad(self, n: int) -> None:
        if n % BLOCK:
            self.fileobj.skip(-n % BLOCK)

    def _pax(self, h: Header) -> tuple[dict[str, str], tuple[str, ...]]:
        try:
            if h.size <= MAX_SPECIAL:
                return parse_pax(self._data(h.size)), ()
            found = huge_pax(self.fileobj, h.size)
            self._pad(h.size)
            return found
        except TarHeaderError as exc:
            raise tarfile.ReadError(f"{exc} in the extended header at byte {h.offset}") from None

    def _entry(self, h: Header, pax: dict[str, str], skipped: tuple[str, ...], long_name: Optional[str],
               long_link: Optional[str]) -> Header:
        """Go's default case of `next`: the records merged, the long names over them, the sparse map."""
        src = self.fileobj
        try:
            if pax:
                merge_pax(h, pax)
            if long_name:
                h.name = long_name
            if long_link:
                h.linkname = long_link
            if h.type == b"\0":
                h.type = b"5" if h.name.endswith("/") else b"0"
            h.skipped = skipped
            h.stored = 0 if h.type in HEADER_ONLY else h.size
            if h.stored < 0:
                raise TarHeaderError("negative size")
            if pax or h.type == SPARSE:
                sparse_entry(h, self._block, self._blocks)
        except TarHeaderError as exc:
            raise tarfile.ReadError(f"{exc} in the entry at byte {h.offset}") from None
        h.offset_data = src.tell()
        self.offset = h.offset_data + h.stored
        return h

    def _blocks(self) -> bytes:
        buf = self.fileobj.read(BLOCK)
        if len(buf) < BLOCK:
            raise TarHeaderError("unexpected end of data in a sparse map")
        return buf


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


def open_tar(fileobj, bufsize: int = 64 << 10, seek: bool = False) -> TarStream:
    return TarStream(fileobj, bufsize, seek)


def members(tf: TarStream) -> Iterator[Header]:
    """Every header of a tar opened by `open_tar`, in order, none kept after it is yielded."""
    while True:
        info = tf.next()
        if info is None:
            return
        yield info


def open_member(tf: TarStream, info: Header) -> tuple[BinaryIO, int]:
    """A reader of a regular member's stored bytes and their count. A sparse member gives its data
    segments back to back, never its holes (zeros: nothing to find in them)."""
    if tf.fileobj.tell() != info.offset_data:
        raise tarfile.ReadError("member opened out of order")
    return _Member(tf.fileobj, info.stored), info.stored  # type: ignore[return-value]


def trailing(tf: TarStream) -> int:
    """Non-zero bytes after the end-of-archive marker: read by no tar tool, yet in the image."""
    found = 0
    while chunk := tf.fileobj.read(READ):  # type: ignore[union-attr]
        found += len(chunk) - chunk.count(0)
    return found
