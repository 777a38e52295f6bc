"""One hardened way to stream a tar (a layer, or a tar inside a layer): tarfile trusts its input.

What a hostile tar does to a plain `tarfile.open(mode="r|")`, and what it does here instead:

- a garbled or cut header past the first ends the stream quietly: everything after it would pass
  for clean. Here: an error (a zero block still ends the tar).
- chains of PAX headers or GNU long names are parsed by recursion: a few thousand in a row overflow
  the stack. Here: at most `MAX_CHAIN` in a row.
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

import re
import tarfile
import zlib
from typing import BinaryIO, Iterator, Optional

from scanner.sources.blobs import RawReader

MAX_SPECIAL = 1 << 20  # bytes of one PAX header, GNU long name or sparse map (Go: the same)
MAX_CHAIN = 64  # extended headers in a row before one member
MAX_SPARSE = 1 << 16  # segments in one sparse map
READ = 1 << 20

_SPECIAL = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
            tarfile.GNUTYPE_LONGLINK)
# what tarfile's header parsing raises on malformed fields (UnicodeDecodeError is a ValueError)
_PARSE_ERRORS = (ValueError, IndexError, OverflowError, KeyError, TypeError)
_HIGH = bytes(range(128, 256))


def _calc_chksums(buf: bytes) -> tuple[int, int]:
    """tarfile.calc_chksums, the same two sums (unsigned, signed) without unpacking 504 integers:
    a signed byte is its unsigned value less 256 when its top bit is set."""
    head = buf[:148] + buf[156:512]
    unsigned = 256 + sum(head)
    return unsigned, unsigned - 256 * (len(head) - len(head.translate(None, _HIGH)))


def _checksum_ok(buf: bytes, chksum: int) -> bool:
    """`chksum in _calc_chksums(buf)`, the unsigned sum first and fast: zlib's Adler-32 of a piece
    of at most 178 bytes holds its byte sum exactly (below Adler's modulus, 65521)."""
    unsigned = 253 + (zlib.adler32(buf[:148]) & 0xFFFF) + (zlib.adler32(buf[156:334]) & 0xFFFF) + \
        (zlib.adler32(buf[334:512]) & 0xFFFF)
    return chksum == unsigned or chksum in _calc_chksums(buf)


def _nti(field: bytes) -> int:
    """tarfile.nti, its common case (octal digits) without a decode: anything else goes to it."""
    if field[0] in (0o200, 0o377):
        return tarfile.nti(field)
    end = field.find(b"\0")
    try:
        return int((field if end < 0 else field[:end]).strip() or b"0", 8)
    except ValueError:
        return tarfile.nti(field)  # its error, or its reading of what bytes.strip leaves


def _nts(field: bytes, encoding: str, errors: str) -> str:
    end = field.find(b"\0")
    return (field if end < 0 else field[:end]).decode(encoding, errors)


_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")  # "<length> <keyword>=<value>\n", POSIX.1-2001


def _plain_pax_records(buf: bytes) -> Optional[dict[str, str]]:
    """The records of an extended header, keyword -> value, when all are plain UTF-8 and none is
    a charset or a GNU sparse field; else None."""
    if b"hdrcharset" in buf or b"GNU.sparse" in buf:
        return None
    records: dict[str, str] = {}
    pos = 0
    while (m := _PAX_RECORD.match(buf, pos)) is not None:
        length = int(m.group(1))
        if length == 0:
            return None
        try:
            records[m.group(2).decode("utf-8")] = buf[m.end(2) + 1:m.start(1) + length - 1].decode("utf-8")
        except UnicodeDecodeError:
            return None
        pos += length
    return records


class SafeTarInfo(tarfile.TarInfo):
    strict = True  # a garbled or cut header is an error (False: tarfile's quiet end, for callers that check)

    @classmethod
    def frombuf(cls, buf: bytes, encoding: str, errors: str) -> tarfile.TarInfo:
        """`tarfile.TarInfo.frombuf` with fewer calls; the same fields, checks and errors (an
        empty, cut, all-zero or old GNU sparse header goes to tarfile's own)."""
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] == tarfile.GNUTYPE_SPARSE or not buf.strip(b"\0"):
            return super().frombuf(buf, encoding, errors)
        chksum = _nti(buf[148:156])
        if not _checksum_ok(buf, chksum):
            raise tarfile.InvalidHeaderError("bad checksum")  # type: ignore[attr-defined]
        obj = cls()
        obj.name = _nts(buf[0:100], encoding, errors)
        obj.mode = _nti(buf[100:108])
        obj.uid = _nti(buf[108:116])
        obj.gid = _nti(buf[116:124])
        obj.size = _nti(buf[124:136])
        obj.mtime = _nti(buf[136:148])
        obj.chksum = chksum
        obj.type = buf[156:157]
        obj.linkname = _nts(buf[157:257], encoding, errors)
        obj.uname = _nts(buf[265:297], encoding, errors)
        obj.gname = _nts(buf[297:329], encoding, errors)
        obj.devmajor = _nti(buf[329:337])
        obj.devminor = _nti(buf[337:345])
        prefix = _nts(buf[345:500], encoding, errors)
        if obj.type == tarfile.AREGTYPE and obj.name.endswith("/"):  # V7 directory
            obj.type = tarfile.DIRTYPE
        if obj.type == tarfile.DIRTYPE:
            obj.name = obj.name.rstrip("/")
        if prefix and obj.type not in tarfile.GNU_TYPES:
            obj.name = prefix + "/" + obj.name
        return obj

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> tarfile.TarInfo:
        depth = getattr(tf, "_layerscan_chain", 0)
        if depth >= MAX_CHAIN:
            raise tarfile.ReadError(f"over {MAX_CHAIN} extended headers in a row at byte {tf.offset}")
        tf._layerscan_chain = depth + 1  # type: ignore[attr-defined]
        try:
            info = super().fromtarfile(tf)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:  # type: ignore[attr-defined]
            if not cls.strict:
                raise
            raise tarfile.ReadError(f"{exc} at byte {tf.offset}") from None
        except _PARSE_ERRORS as exc:
            raise tarfile.ReadError(f"malformed header at byte {tf.offset} ({exc.__class__.__name__})") from None
        finally:
            tf._layerscan_chain = depth  # type: ignore[attr-defined]
        if info.size < 0 or any(o < 0 or n < 0 for o, n in info.sparse or ()):
            raise tarfile.ReadError(f"negative size in the header at byte {info.offset}")
        return info

    def _proc_member(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        if self.size < 0:
            raise tarfile.ReadError(f"negative size in the header at byte {self.offset}")
        if self.type in _SPECIAL and self.size > MAX_SPECIAL:
            raise tarfile.ReadError(f"extended header of {self.size} bytes at byte {self.offset} "
                                    f"(over {MAX_SPECIAL})")
        if self.type == tarfile.XHDTYPE and isinstance(tf, TarStream) and not tf.pax_headers:
            member = self._proc_plain_pax(tf)
            if member is not None:
                return member
        return super()._proc_member(tf)  # type: ignore[misc]

    def _proc_plain_pax(self, tf: "TarStream") -> Optional[tarfile.TarInfo]:
        """An extended header of plain UTF-8 records (what nearly every writer makes), applied to
        the member after it as `tarfile` applies it, without its searches for a charset and
        sparse maps. None, the header put back unread: `tarfile` reads it (a charset, a GNU sparse
        map, bytes that are not UTF-8, a malformed record)."""
        buf = tf.fileobj.read(self._block(self.size))
        records = _plain_pax_records(buf)
        if records is None:
            tf.fileobj.unread(buf)
            return None
        try:
            member = self.fromtarfile(tf)  # type: ignore[arg-type]
        except tarfile.HeaderError as exc:  # type: ignore[attr-defined]
            raise tarfile.SubsequentHeaderError(str(exc)) from None  # type: ignore[attr-defined]
        member._apply_pax_info(records, tf.encoding, tf.errors)  # type: ignore[attr-defined]
        member.offset = self.offset
        if "size" in records:  # the header's size replaced: the next header is elsewhere
            offset = member.offset_data  # type: ignore[attr-defined]
            if member.isreg() or member.type not in tarfile.SUPPORTED_TYPES:
                offset += member._block(member.size)  # type: ignore[attr-defined]
            tf.offset = offset
        return member

    def _proc_sparse(self, tf: tarfile.TarFile) -> tarfile.TarInfo:
        """tarfile's own, with its extension blocks bounded and checked for a cut."""
        structs, isextended, origsize = self._sparse_structs  # type: ignore[attr-defined]
        del self._sparse_structs  # type: ignore[attr-defined]
        while isextended:
            buf = tf.fileobj.read(tarfile.BLOCKSIZE)  # type: ignore[union-attr]
            if len(buf) < tarfile.BLOCKSIZE:
                raise tarfile.ReadError("unexpected end of data in a sparse header")
            for pos in range(0, 21 * 24, 24):
                try:
                    offset, numbytes = tarfile.nti(buf[pos:pos + 12]), tarfile.nti(buf[pos + 12:pos + 24])
                except ValueError:
                    break
                if offset and numbytes:
                    structs.append((offset, numbytes))
            if len(structs) > MAX_SPARSE:
                raise tarfile.ReadError(f"sparse map of over {MAX_SPARSE} segments")
            isextended = bool(buf[504])
        self.sparse = structs
        self.offset_data = tf.fileobj.tell()  # type: ignore[union-attr]
        tf.offset = self.offset_data + self._block(self.size)  # type: ignore[attr-defined]
        self.size = origsize
        return self

    def _proc_gnusparse_10(self, next: tarfile.TarInfo, pax_headers: dict, tf: tarfile.TarFile) -> None:
        """tarfile's own (the map heads the member's data), with the map bounded and checked."""
        buf = tf.fileobj.read(tarfile.BLOCKSIZE)  # type: ignore[union-attr]
        seen = len(buf)
        if b"\n" not in buf:
            raise tarfile.ReadError("malformed sparse map")
        first, buf = buf.split(b"\n", 1)
        fields = int(first)
        if not 0 <= fields <= MAX_SPARSE:
            raise tarfile.ReadError(f"sparse map of {fields} segments")
        sparse: list[int] = []
        while len(sparse) < fields * 2:
            if b"\n" not in buf:
                more = tf.fileobj.read(tarfile.BLOCKSIZE)  # type: ignore[union-attr]
                seen += len(more)
                if not more or seen > MAX_SPECIAL:
                    raise tarfile.ReadError("malformed sparse map")
                buf += more
            number, buf = buf.split(b"\n", 1)
            sparse.append(int(number))
        next.offset_data = tf.fileobj.tell()  # type: ignore[union-attr]
        next.sparse = list(zip(sparse[::2], sparse[1::2]))


class LenientTarInfo(SafeTarInfo):
    """For a tar on disk read by offset (an image archive): its caller checks where the tar ended."""

    strict = False


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
