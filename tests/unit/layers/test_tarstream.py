"""The lean tar reader parses headers exactly as tarfile does: every field, every error."""
from __future__ import annotations

import io
import random
import tarfile

from scanner.layers.tarstream import SafeTarInfo, _Buffered, _calc_chksums, _checksum_ok

FIELDS = ("name", "mode", "uid", "gid", "size", "mtime", "chksum", "type", "linkname", "uname", "gname",
          "devmajor", "devminor")


def parsed(frombuf, buf: bytes):
    try:
        info = frombuf(buf, "utf-8", "surrogateescape")
    except Exception as exc:  # the very error tarfile raises is part of the contract
        return type(exc).__name__, str(exc)
    return {f: getattr(info, f) for f in FIELDS} | {"sparse": getattr(info, "_sparse_structs", None)}


def headers() -> list[bytes]:
    r = random.Random(4)
    out = []
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        for name in ("a.txt", "dir/", "x" * 120 + "/y", "ü/é", "l" * 99):
            for kind in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.AREGTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE):
                info = tarfile.TarInfo(name)
                info.type, info.linkname, info.uname = kind, "t" * r.choice([1, 50]), "ü"
                info.size = r.choice([0, 5, 10 ** 10]) if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
                info.mtime, info.uid = r.choice([0, 1.5e9, 2 ** 40]), r.choice([0, 2 ** 22])
                try:
                    raw = info.tobuf(fmt, "utf-8", "surrogateescape")
                except ValueError:
                    continue
                out += [raw[i:i + 512] for i in range(0, len(raw), 512)]
    mutated = []
    for buf in out:  # bytes changed, then (mostly) the checksum made right again, to reach the fields
        for _ in range(20):
            m = bytearray(buf)
            for _ in range(r.randint(1, 4)):
                m[r.randrange(512)] = r.choice([0, 32, 48, 55, 56, 0x80, 0xFF, 0x1C, ord("_"), ord("-"),
                                                r.getrandbits(8)])
            if r.random() < 0.7:
                m[148:156] = b" " * 8
                total = 256 + sum(m[:148]) + sum(m[156:])
                m[148:156] = b"%06o\0 " % total
            mutated.append(bytes(m))
    sparse = bytearray(out[0])
    sparse[156:157] = tarfile.GNUTYPE_SPARSE
    return out + mutated + [b"", bytes(512), bytes(100), bytes(sparse)]


def test_header_fields_and_errors_are_tarfile_s() -> None:
    reference = tarfile.TarInfo.frombuf.__func__  # type: ignore[attr-defined]
    for buf in headers():
        assert parsed(SafeTarInfo.frombuf, buf) == parsed(lambda *a: reference(SafeTarInfo, *a), buf), buf


def test_checksums() -> None:
    r = random.Random(2)
    for i in range(3000):
        buf = r.randbytes(512) if i % 2 else bytes(r.choice([0, 127, 128, 255]) for _ in range(512))
        unsigned, signed = _calc_chksums(buf)
        assert (unsigned, signed) == (256 + sum(buf[:148]) + sum(buf[156:]),
                                      256 + sum(b - 256 * (b > 127) for b in buf[:148] + buf[156:]))
        for value in (unsigned, signed, unsigned + 1, 0):
            assert _checksum_ok(buf, value) == (value in (unsigned, signed))


def test_buffered_reader_reads_and_skips_exactly() -> None:
    r = random.Random(1)
    for _ in range(300):
        data = r.randbytes(r.randint(0, 5000))

        class Trickle:  # a stream that gives fewer bytes than asked
            def __init__(self) -> None:
                self.f = io.BytesIO(data)

            def read(self, n: int) -> bytes:
                return self.f.read(r.randint(1, max(1, n)))

        reader, pos = _Buffered(Trickle(), r.choice([1, 7, 512, 4096])), 0
        while pos < len(data):
            if r.random() < 0.2:
                n = r.randint(0, 700)
                reader.skip(n)
                pos = min(len(data), pos + n)
            else:
                n = r.randint(1, 1500)
                assert reader.read(n) == data[pos:pos + n]
                pos = min(len(data), pos + n)
            assert reader.tell() == pos
