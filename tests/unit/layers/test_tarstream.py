"""The tar reader follows Go's archive/tar (the differential test against Go itself:
tests/hostile/test_tar_go.py); here its parts, and well-formed streams read as any tar tool does."""
from __future__ import annotations

import io
import random
import tarfile

import pytest

from scanner.layers.tarheaders import (TarHeaderError, checksum_ok, checksums, decimal, numeric, parse_pax,
                                       pax_time)
from scanner.layers.tarstream import _Buffered, members, open_member, open_tar


def test_checksums() -> None:
    r = random.Random(2)
    for i in range(3000):
        buf = r.randbytes(512) if i % 2 else bytes(r.choice([0, 127, 128, 255]) for _ in range(512))
        unsigned, signed = checksums(buf)
        assert (unsigned, signed) == (256 + sum(buf[:148]) + sum(buf[156:]),
                                      256 + sum(b - 256 * (b > 127) for b in buf[:148] + buf[156:]))
        for value in (unsigned, signed, unsigned + 1, 0):
            assert checksum_ok(buf, value) == (value in (unsigned, signed))


@pytest.mark.parametrize("field,value", [
    (b"0000644\0", 0o644), (b"\0\0\0\x00644\0", 0o644), (b"  644   ", 0o644), (b"644\0junk", 0o644),
    (b"\0" * 8, 0), (b" " * 8, 0), (b"00000000012\0", 10), (b"\x80" + (5).to_bytes(11, "big"), 5),
    (b"\xff" * 12, -1), (b"\xff" * 11 + b"\xfe", -2), (b"\x80\0\0\0\x7f" + b"\xff" * 7, (1 << 63) - 1),
])
def test_numbers_as_go_reads_them(field, value) -> None:
    assert numeric(field) == value


@pytest.mark.parametrize("field", [b"6 44\0\0\0\0", b"0_644\0\0\0", b"+644\0\0\0\0", b"-644\0\0\0\0", b"0008\0\0\0\0",
                                   b"\x80\x80" + bytes(10), b"\t644\0\0\0\0"])
def test_numbers_go_refuses(field) -> None:
    with pytest.raises(TarHeaderError):
        numeric(field)


def test_pax_records_and_times() -> None:
    assert parse_pax(b"12 path=a=b\n11 path=cd\n") == {"path": "cd"}
    assert parse_pax(b"+12 path=ab\n") == {"path": "ab"}
    for bad in (b"0 path=x\n", b"12 path=ab", b"10 pathx\n\n", b"11 path=a\0\n", b"12 path=ab\n\0"):
        with pytest.raises(TarHeaderError):
            parse_pax(bad)
    assert pax_time("-1.5") == -1.5 and pax_time("7") == 7.0
    for bad in ("1e400", "nan", ".5", "1.5x"):
        with pytest.raises(TarHeaderError):
            pax_time(bad)
    with pytest.raises(TarHeaderError):
        decimal("1" * 30)


def test_buffered_reader_reads_and_skips_exactly() -> None:
    r = random.Random(1)
    for i in range(300):
        data = r.randbytes(r.randint(0, 5000))

        class Trickle:  # a stream that gives fewer bytes than asked
            def __init__(self) -> None:
                self.f = io.BytesIO(data)

            def read(self, n: int) -> bytes:
                return self.f.read(r.randint(1, max(1, n)))

        seek = i % 3 == 0
        reader, pos = _Buffered(io.BytesIO(data) if seek else Trickle(), r.choice([1, 7, 512, 4096]), seek), 0
        while pos < len(data):
            if r.random() < 0.2:
                n = r.randint(0, 700)
                assert reader.skip(n) == (pos + n <= len(data))
                pos = min(len(data), pos + n)
            else:
                n = r.randint(1, 1500)
                assert reader.read(n) == data[pos:pos + n]
                pos = min(len(data), pos + n)
            assert reader.tell() == pos


def written(fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for name, data in (("a.txt", b"hello"), ("d" * 120 + "/long.txt", b"x" * 700), ("ü/é", b""),
                           ("p" * 90 + "/" + "q" * 90, b"y")):
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.mtime = len(data), 1 << 20, 2 ** 32
            tf.addfile(info, io.BytesIO(data))
        for kind, name in ((tarfile.DIRTYPE, "dir"), (tarfile.SYMTYPE, "sym"), (tarfile.LNKTYPE, "hard")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "t" * 150 if kind != tarfile.DIRTYPE else ""
            try:
                tf.addfile(info)
            except ValueError:  # ustar: no such long link name
                pass
    return out.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_well_formed_streams_read_as_tarfile_reads_them(fmt) -> None:
    data = written(fmt)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tf:
        expected = [(i.name, i.type, i.size, i.linkname, i.uid, i.mtime,
                     tf.extractfile(i).read() if i.isreg() else b"") for i in tf]
    tf2 = open_tar(io.BytesIO(data), 1024)
    got = []
    for h in members(tf2):
        body = open_member(tf2, h)[0].read() if h.isreg() else b""
        got.append((h.name.rstrip("/"), h.type, h.size, h.linkname, h.uid, h.mtime, body))
    assert got == expected and tf2.marked
