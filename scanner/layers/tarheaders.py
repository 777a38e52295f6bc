"""Tar header blocks and PAX records read as Go's `archive/tar` reads them (containerd, moby and
umoci apply layers with it: what it reads is what a container gets).

Pure functions over bytes, no stream: `parse_block` (one 512-byte header: Go's `readHeader` and
`getFormat`), `parse_pax` (the records of an extended header: Go's `parsePAX`), `merge_pax` (Go's
`mergePAX`) and the sparse maps (`old_sparse`, `pax_sparse`). Where CPython's `tarfile` reads
otherwise (and an attacker can hide a file in the difference), Go is followed:

- numbers: leading and trailing NULs and spaces trimmed, then octal digits only (no sign, no
  `_`, no inner space), or base-256 of at most 63 bits; anything else is an error;
- a header without ustar magic (V7) has no user, group or prefix field; the prefix of a ustar
  header is joined to the name, that of a GNU header is not;
- the checksum field is read as a number (above), and either sum (unsigned, signed) matches;
- a PAX record is `<decimal length> <key>=<value>\\n` exactly, `hdrcharset` is ignored (names are
  bytes), an empty value keeps the header's field, and any malformed record is an error.

The reader of the stream (`tarstream.TarStream`) applies them in Go's order.
"""
from __future__ import annotations

import re
import struct
import tarfile
import zlib
from typing import Optional

BLOCK = 512
MAX_SPECIAL = 1 << 20  # bytes of one PAX header or GNU long name read whole (Go: the same)
MAX_CHAIN = 64  # extended headers in a row before one member
MAX_SPARSE = 1 << 16  # segments in one sparse map

XHD, XGL, LONGNAME, LONGLINK, SPARSE = b"x", b"g", b"L", b"K", b"S"
# Go's isHeaderOnlyType: a size they declare has no data after the header
HEADER_ONLY = frozenset((b"1", b"2", b"3", b"4", b"5", b"6"))
REGULAR = frozenset((b"0", b"\0", b"7", SPARSE))  # what the walk reads as a file
# the PAX keys Go's reader acts on: one too big to read is an error, never skipped
MEANINGFUL = frozenset(("path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime"))

V7, USTAR, STAR, GNU = "v7", "ustar", "star", "gnu"


class TarHeaderError(tarfile.ReadError):
    """A header Go's archive/tar refuses (its ErrHeader), with the reason."""


class Header:
    """One entry, as Go's `tar.Header` gives it: name and link name decoded from their bytes
    (not UTF-8: surrogates), `size` the logical size, `stored` the data bytes after the header
    (a sparse file's data segments), `sparse` its map or None."""

    __slots__ = ("name", "linkname", "type", "size", "mode", "uid", "gid", "mtime", "uname", "gname",
                 "offset", "offset_data", "stored", "sparse", "pax_headers", "skipped", "format")

    def __init__(self, name: str = "", type_: bytes = b"0", size: int = 0) -> None:
        self.name, self.linkname, self.type, self.size = name, "", type_, size
        self.mode = self.uid = self.gid = self.mtime = 0
        self.uname = self.gname = ""
        self.offset = self.offset_data = self.stored = 0
        self.sparse: Optional[list[tuple[int, int]]] = None
        self.pax_headers: dict[str, str] = {}
        self.skipped: tuple[str, ...] = ()  # PAX records too big to read: listed as not scanned
        self.format = USTAR

    def isreg(self) -> bool:
        return self.type in REGULAR

    def isdir(self) -> bool:
        return self.type == b"5"

    def issym(self) -> bool:
        return self.type == b"2"

    def islnk(self) -> bool:
        return self.type == b"1"


def text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def cstring(field: bytes) -> bytes:
    """Go's parseString: the bytes before the first NUL."""
    return field.partition(b"\0")[0]


_NOT_OCTAL = b"01234567"


def octal(field: bytes) -> int:
    """Go's parseOctal: NULs and spaces trimmed both ends, then up to a NUL, octal digits only."""
    t = field.strip(b" \0")
    if b"\0" in t:
        t = t.partition(b"\0")[0]
    if not t:
        return 0
    if t.translate(None, _NOT_OCTAL):
        raise TarHeaderError(f"malformed number {field!r} in a header")
    return int(t, 8)


def numeric(field: bytes) -> int:
    """Go's parseNumeric: base-256 (two's complement, the top bit set) or octal."""
    if field[0] & 0x80:
        inv = 0xFF if field[0] & 0x40 else 0
        x = int.from_bytes(bytes(c ^ inv for c in field), "big") & ((1 << (8 * len(field) - 1)) - 1)
        if x >> 63:
            raise TarHeaderError("base-256 number over 63 bits in a header")
        return ~x if inv else x
    return octal(field)


def checksums(buf: bytes) -> tuple[int, int]:
    """The two sums Go (and tar) accept: every byte unsigned and signed, the checksum field as spaces."""
    head = buf[:148] + buf[156:512]
    unsigned = 256 + sum(head)
    return unsigned, unsigned - 256 * (len(head) - len(head.translate(None, _HIGH)))


_HIGH = bytes(range(128, 256))


def checksum_ok(buf: bytes, chksum: int) -> bool:
    """`chksum in checksums(buf)`, the unsigned sum first and fast: zlib's Adler-32 of a piece of
    at most 178 bytes holds its byte sum exactly (below Adler's modulus, 65521)."""
    unsigned = 253 + (zlib.adler32(buf[:148]) & 0xFFFF) + (zlib.adler32(buf[156:334]) & 0xFFFF) + \
        (zlib.adler32(buf[334:512]) & 0xFFFF)
    return chksum == unsigned or chksum in checksums(buf)


# name, mode, uid, gid, size, mtime, chksum, typeflag, linkname, magic, version, uname, gname,
# devmajor, devminor, prefix (ustar; star and GNU lay out its bytes otherwise)
_FIELDS = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s")


_ENDS = (0, 32)  # a NUL or a space after the digits: how nearly every writer ends a number


def _number(field: bytes) -> int:
    """`numeric(field)`, the common case (octal digits, then one NUL or space) first."""
    head = field[:-1]
    if field[-1] in _ENDS and head.isdigit():
        try:
            return int(head, 8)
        except ValueError:  # an 8 or a 9: numeric says why
            pass
    return numeric(field)


def parse_block(buf: bytes) -> Header:
    """One header block as Go's readHeader reads it (not all zeros: the caller looks first)."""
    (name, mode, uid, gid, size, mtime, chksum, type_, linkname, _, _, uname, gname,
     devmajor, devminor, prefix) = _FIELDS.unpack_from(buf)
    if not checksum_ok(buf, octal(chksum)):
        raise TarHeaderError("bad checksum")
    h = _new(Header)
    h.type, h.size, h.mode, h.uid, h.gid, h.mtime = (type_, _number(size), _number(mode), _number(uid),
                                                     _number(gid), _number(mtime))
    h.offset = h.offset_data = h.stored = 0
    h.sparse, h.pax_headers, h.skipped = None, _NO_RECORDS, ()
    name = name.partition(b"\0")[0]
    h.format = parse_format(buf)
    if h.format is V7:
        h.uname = h.gname = ""
    else:
        h.uname, h.gname = text(uname.partition(b"\0")[0]), text(gname.partition(b"\0")[0])
        _number(devmajor), _number(devminor)  # only checked: a malformed one is an error in Go
        prefix = _prefix(buf, h.format, prefix)
        if prefix:
            name = prefix + b"/" + name
    h.name, h.linkname = text(name), text(linkname.partition(b"\0")[0])
    return h


_new = object.__new__
_NO_RECORDS: dict[str, str] = {}  # shared, never written: merge_pax gives a header its own


def _prefix(buf: bytes, format_: str, prefix: bytes) -> bytes:
    if format_ is USTAR:
        return cstring(prefix)
    if format_ is STAR:
        numeric(buf[476:488]), numeric(buf[488:500])  # atime, ctime
        return cstring(buf[345:476])
    try:  # GNU: atime and ctime where ustar has its prefix; a pre-Go-1.8 writer put a prefix there
        if buf[345]:
            numeric(buf[345:357])
        if buf[357]:
            numeric(buf[357:369])
    except TarHeaderError:
        found = cstring(prefix)
        return found if found.isascii() else b""
    return b""


_DECIMAL = re.compile(rb"[+-]?[0-9]+\Z")
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)


def decimal(value: str | bytes, bits: int = 64) -> int:
    """Go's strconv.ParseInt(value, 10, 64): an optional sign and digits, nothing else."""
    pattern = _DECIMAL if isinstance(value, bytes) else _DECIMAL_TEXT
    if not pattern.match(value):  # type: ignore[arg-type]
        raise TarHeaderError(f"malformed number {value[:40]!r} in a PAX header")
    n = int(value)
    if not -(1 << (bits - 1)) <= n < 1 << (bits - 1):
        raise TarHeaderError("number out of range in a PAX header")
    return n


def pax_record(buf: bytes, pos: int) -> tuple[str, str, int]:
    """Go's parsePAXRecord at `pos`: key, value and where the next record starts."""
    space = buf.find(b" ", pos, pos + 32)
    if space < 0:
        raise TarHeaderError("malformed PAX record")
    n = decimal(buf[pos:space])
    end = pos + n
    if n < 5 or end > len(buf) or end <= space + 1 or buf[end - 1] != 10:
        raise TarHeaderError("malformed PAX record")
    key, eq, value = buf[space + 1:end - 1].partition(b"=")
    if not eq or not key or (b"\0" in value if key in (b"path", b"linkpath", b"uname", b"gname")
                             else b"\0" in key):
        raise TarHeaderError("malformed PAX record")
    return text(key), text(value), end


def parse_pax(buf: bytes) -> dict[str, str]:
    """Go's parsePAX: every record of an extended header; the GNU sparse 0.0 offset and numbytes
    records, in turn, become one `GNU.sparse.map`."""
    records: dict[str, str] = {}
    sparse: list[str] = []
    pos = 0
    while pos < len(buf):
        key, value, pos = pax_record(buf, pos)
        if key in ("GNU.sparse.offset", "GNU.sparse.numbytes"):
            if key != ("GNU.sparse.offset", "GNU.sparse.numbytes")[len(sparse) % 2] or "," in value:
                raise TarHeaderError("malformed GNU sparse records")
            sparse.append(value)
        else:
            records[key] = value
    if sparse:
        records["GNU.sparse.map"] = ",".join(sparse)
    return records


def merge_pax(h: Header, records: dict[str, str]) -> None:
    """Go's mergePAX: the records that replace header fields (an empty one keeps the field)."""
    for key, value in records.items():
        if not value:
            continue
        if key == "path":
            h.name = value
        elif key == "linkpath":
            h.linkname = value
        elif key == "size":
            h.size = decimal(value)
        elif key == "uname":
            h.uname = value
        elif key == "gname":
            h.gname = value
        elif key in ("uid", "gid"):
            setattr(h, key, decimal(value))
        elif key in ("mtime", "atime", "ctime"):
            seconds = pax_time(value)
            if key == "mtime":
                h.mtime = seconds
    h.pax_headers = records


def pax_time(value: str) -> float:
    """Go's parsePAXTime: `[-]seconds[.digits]`, else an error."""
    seconds, _, fraction = value.partition(".")
    whole = decimal(seconds)
    if fraction and fraction.strip("0123456789"):
        raise TarHeaderError("malformed time in a PAX header")
    return float(whole) + (float("0." + fraction[:9]) if fraction else 0.0) * (-1 if seconds[:1] == "-" else 1)


def old_sparse(buf: bytes, blocks) -> tuple[int, list[tuple[int, int]]]:
    """Go's readOldGNUSparseMap: the real size and map of a GNU sparse header `buf`; `blocks()`
    reads the next extension block (an error if the stream ends)."""
    if parse_format(buf) is not GNU:
        raise TarHeaderError("sparse header that is not GNU")
    size = numeric(buf[483:495])
    spd: list[tuple[int, int]] = []
    area, extended = buf[386:482], buf[482]
    while True:
        for pos in range(0, len(area), 24):
            if area[pos] == 0:
                break
            spd.append((numeric(area[pos:pos + 12]), numeric(area[pos + 12:pos + 24])))
        if len(spd) > MAX_SPARSE:
            raise TarHeaderError(f"sparse map of over {MAX_SPARSE} segments")
        if not extended:
            return size, spd
        ext = blocks()
        area, extended = ext[:504], ext[504]


def parse_format(buf: bytes) -> str:
    magic = buf[257:263]
    if magic == b"ustar\0":
        return STAR if buf[508:512] == b"tar\0" else USTAR
    return GNU if magic == b"ustar " and buf[263:265] == b" \0" else V7


def pax_sparse(h: Header) -> Optional[str]:
    """Go's readGNUSparsePAXHeaders, the part before the map: None (not a PAX sparse file),
    "1.0" (the map heads the data) or "0.1" (the map is a record). Sets the name and size."""
    records = h.pax_headers
    major, minor = records.get("GNU.sparse.major", ""), records.get("GNU.sparse.minor", "")
    if major == "0" and minor in ("0", "1"):
        version = "0.1"
    elif major == "1" and minor == "0":
        version = "1.0"
    elif major or minor or not records.get("GNU.sparse.map"):
        return None
    else:
        version = "0.1"
    if records.get("GNU.sparse.name"):
        h.name = records["GNU.sparse.name"]
    size = records.get("GNU.sparse.size") or records.get("GNU.sparse.realsize")
    if size:
        h.size = decimal(size)
    return version


def sparse_map_01(records: dict[str, str]) -> list[tuple[int, int]]:
    """Go's readGNUSparseMap0x1."""
    count = decimal(records.get("GNU.sparse.numblocks", ""))
    fields = records.get("GNU.sparse.map", "").split(",")
    if fields == [""]:
        fields = []
    if count < 0 or count > MAX_SPARSE or len(fields) != 2 * count:
        raise TarHeaderError("malformed GNU sparse map")
    numbers = [decimal(f) for f in fields]
    return list(zip(numbers[::2], numbers[1::2]))


def sparse_map_10(first: bytes, more) -> tuple[list[tuple[int, int]], int]:
    """Go's readGNUSparseMap1x0: the map that heads the data, read a block at a time (`first`,
    then `more()`); the map and the bytes of data it took (whole blocks)."""
    buf, used = first, len(first)
    while b"\n" not in buf:
        buf += more()
        used += BLOCK
    count = decimal(buf.partition(b"\n")[0], 64)
    if not 0 <= count <= MAX_SPARSE:
        raise TarHeaderError(f"sparse map of {count} segments")
    while buf.count(b"\n") < 2 * count + 1:
        if used > MAX_SPECIAL:
            raise TarHeaderError("malformed GNU sparse map")
        buf += more()
        used += BLOCK
    tokens = buf.split(b"\n", 2 * count + 1)[1:2 * count + 1]
    numbers = [decimal(t) for t in tokens]
    return list(zip(numbers[::2], numbers[1::2])), used


def valid_sparse(spd: list[tuple[int, int]], size: int) -> bool:
    """Go's validateSparseEntries."""
    if size < 0:
        return False
    end = 0
    for offset, length in spd:
        if offset < 0 or length < 0 or offset > (1 << 63) - 1 - length or offset + length > size or end > offset:
            return False
        end = offset + length
    return True
