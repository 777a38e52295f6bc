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
"""
from __future__ import annotations

import copy
import tarfile
from typing import BinaryIO, Iterator, Optional

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


tarfile.calc_chksums = _calc_chksums  # tarfile's header parsing looks it up at each header


class SafeTarInfo(tarfile.TarInfo):
    strict = True  # a garbled or cut header is an error (False: tarfile's quiet end, for callers that check)

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
        return super()._proc_member(tf)  # type: ignore[misc]

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


def open_tar(fileobj, bufsize: int = tarfile.RECORDSIZE) -> tarfile.TarFile:
    return tarfile.open(fileobj=fileobj, mode="r|", bufsize=bufsize, tarinfo=SafeTarInfo)


def members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    """Every header of a tar opened by `open_tar`, in order, none kept after it is yielded."""
    if tf.firstmember is not None:  # type: ignore[attr-defined]  # read by tarfile.open itself
        first = tf.next()
        tf.members.clear()
        if first is not None:
            yield first
    while True:
        _skip_to_next_header(tf)
        info = tf.next()
        tf.members.clear()
        if info is None:
            return
        yield info


def _skip_to_next_header(tf: tarfile.TarFile) -> None:
    """Read what is left of the last member: `_Stream.seek` would loop on for a huge size."""
    stream = tf.fileobj
    while stream.tell() < tf.offset:  # type: ignore[union-attr, attr-defined]
        if not stream.read(min(READ, tf.offset - stream.tell())):  # type: ignore[union-attr, attr-defined]
            raise tarfile.ReadError("unexpected end of data")


def open_member(tf: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[Optional[BinaryIO], int]:
    """A reader of a regular member's stored bytes and their count. A sparse member gives its data
    segments back to back, never its holes; a lying map is cut at the bytes the member stores."""
    if info.sparse is None:
        return tf.extractfile(info), info.size  # type: ignore[return-value]
    stored = tf.offset - info.offset_data  # type: ignore[attr-defined]
    flat = copy.copy(info)
    flat.sparse = None
    flat.size = min(sum(n for _, n in info.sparse), stored)
    return tf.extractfile(flat), flat.size  # type: ignore[return-value]


def trailing(tf: tarfile.TarFile) -> int:
    """Non-zero bytes after the end-of-archive marker: read by no tar tool, yet in the image."""
    found = 0
    while chunk := tf.fileobj.read(READ):  # type: ignore[union-attr]
        found += len(chunk) - chunk.count(0)
    return found
