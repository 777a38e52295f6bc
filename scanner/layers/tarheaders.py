"""Tar headers as `tarfile.TarInfo` parses them, with what a hostile header does bounded.

`SafeTarInfo` (strict: a garbled or cut header is an error) and `LenientTarInfo` (for a tar on
disk read by offset, whose caller checks where it ended) parse headers with `tarfile.TarInfo`'s
own methods, the common fields with fewer calls (`frombuf`), and bound what tarfile trusts: chains
of extended headers (`MAX_CHAIN`), the size of one (`MAX_SPECIAL`, as Go's archive/tar), sparse
maps (`MAX_SPARSE`), negative sizes and malformed fields. A reader whose `fileobj` can `unread`
(`tarstream.TarStream`) gets plain PAX headers applied without tarfile's searches. The readers,
and what each bound is for: `scanner.layers.tarstream`.
"""
from __future__ import annotations

import re
import struct
import tarfile
import zlib
from typing import Optional

MAX_SPECIAL = 1 << 20  # bytes of one PAX header, GNU long name or sparse map (Go: the same)
MAX_CHAIN = 64  # extended headers in a row before one member
MAX_SPARSE = 1 << 16  # segments in one sparse map

_SPECIAL = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
            tarfile.GNUTYPE_LONGLINK)
# the types `tarfile.TarInfo._proc_builtin` takes: no extended header, no sparse map; the regular
# ones have data blocks after the header
_REGULAR = frozenset(tarfile.REGULAR_TYPES) - {tarfile.GNUTYPE_SPARSE}
_PLAIN = _REGULAR | {tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CHRTYPE,
                     tarfile.BLKTYPE}
# what tarfile's header parsing raises on malformed fields (UnicodeDecodeError is a ValueError)
_PARSE_ERRORS = (ValueError, IndexError, OverflowError, KeyError, TypeError)
_HIGH = bytes(range(128, 256))
# a ustar header's fields: name, mode, uid, gid, size, mtime, chksum, typeflag, linkname,
# (magic and version skipped), uname, gname, devmajor, devminor, prefix
_USTAR = struct.Struct("100s8s8s8s12s12s8sc100s8x32s32s8s8s155s")


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
        empty, cut, all-zero or old GNU sparse header goes to tarfile's own). The numbers are read
        as `tarfile.nti` reads them (up to the first NUL, by `int(..., 8)`); a header with a field
        it would read otherwise (base-256, blank, malformed) has them all read by `tarfile.nti`."""
        if len(buf) != tarfile.BLOCKSIZE or buf[156:157] == tarfile.GNUTYPE_SPARSE or not buf.strip(b"\0"):
            return super().frombuf(buf, encoding, errors)
        (name, mode, uid, gid, size, mtime, chksum_field, type_, linkname, uname, gname, devmajor, devminor,
         prefix) = _USTAR.unpack_from(buf)
        numbers = (mode, uid, gid, size, mtime, devmajor, devminor)
        try:
            chksum = int(chksum_field.partition(b"\0")[0] or b"0", 8)
            values = [int(f.partition(b"\0")[0] or b"0", 8) for f in numbers]
        except ValueError:
            chksum, values = tarfile.nti(chksum_field), None
        if not _checksum_ok(buf, chksum):
            raise tarfile.InvalidHeaderError("bad checksum")  # type: ignore[attr-defined]
        if values is None:  # after the checksum, as tarfile: a bad checksum is reported first
            values = [tarfile.nti(f) for f in numbers]
        obj = cls()
        obj.mode, obj.uid, obj.gid, obj.size, obj.mtime, obj.devmajor, obj.devminor = values
        obj.chksum = chksum
        obj.type = type_
        obj.name = name.partition(b"\0")[0].decode(encoding, errors)
        obj.linkname = linkname.partition(b"\0")[0].decode(encoding, errors)
        obj.uname = uname.partition(b"\0")[0].decode(encoding, errors)
        obj.gname = gname.partition(b"\0")[0].decode(encoding, errors)
        prefix = prefix.partition(b"\0")[0].decode(encoding, errors)
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
        try:  # tarfile.TarInfo.fromtarfile's own steps
            buf = tf.fileobj.read(tarfile.BLOCKSIZE)  # type: ignore[union-attr]
            info = cls.frombuf(buf, tf.encoding, tf.errors)
            info.offset = tf.fileobj.tell() - tarfile.BLOCKSIZE  # type: ignore[union-attr]
            info = info._proc_member(tf)  # type: ignore[attr-defined]
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
        if self.type in _PLAIN and not tf.pax_headers:  # nearly every header: `_proc_builtin`, inline
            self.offset_data = offset = tf.fileobj.tell()  # type: ignore[union-attr]
            if self.type in _REGULAR:
                offset += self._block(self.size)  # type: ignore[attr-defined]
            tf.offset = offset
            self.pax_headers = {}
            if self.type == tarfile.DIRTYPE:  # a prefix joined in `frombuf` may end in one
                self.name = self.name.rstrip("/")
            return self
        if self.type in _SPECIAL and self.size > MAX_SPECIAL:
            raise tarfile.ReadError(f"extended header of {self.size} bytes at byte {self.offset} "
                                    f"(over {MAX_SPECIAL})")
        if self.type == tarfile.XHDTYPE and hasattr(tf.fileobj, "unread") and not tf.pax_headers:
            member = self._proc_plain_pax(tf)
            if member is not None:
                return member
        return super()._proc_member(tf)  # type: ignore[misc]

    def _proc_plain_pax(self, tf) -> Optional[tarfile.TarInfo]:
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
