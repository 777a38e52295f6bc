"""The lean tar reader parses headers exactly as tarfile does: every field, every error."""
from __future__ import annotations

import io
import random
import tarfile

from scanner.layers.tarheaders import SafeTarInfo, _calc_chksums, _checksum_ok
from scanner.layers.tarstream import _Buffered

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


# --- whole streams: the lean reader lists what tarfile lists --------------------------------------

MEMBER_FIELDS = FIELDS + ("offset", "offset_data", "pax_headers", "sparse")


def listing(read_members, data: bytes):
    out = []
    try:
        for info in read_members(data):
            out.append({f: getattr(info, f, None) for f in MEMBER_FIELDS})
    except Exception as exc:
        out.append((type(exc).__name__,))
    return out


def with_tarfile(data: bytes):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|", tarinfo=SafeTarInfo) as tf:
        for info in tf:
            yield info


def with_lean_reader(data: bytes):
    from scanner.layers.tarstream import members, open_tar
    yield from members(open_tar(io.BytesIO(data), 1024))


def with_plain_tarfile(data: bytes):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tf:
        yield from tf


def streams(damaged: bool = True) -> list[bytes]:
    r = random.Random(8)
    out = []
    names = ["a.txt", "ü/é.txt", "x" * 150, "d/" + "y" * 120 + ".py", "bad\udcff.bin", "dir/"]
    for _ in range(150):
        buf = io.BytesIO()
        fmt = r.choice([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
        with tarfile.open(fileobj=buf, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape",
                          pax_headers=r.choice([{}, {}, {"comment": "g"}])) as tf:
            for i in range(r.randint(1, 5)):
                info = tarfile.TarInfo(r.choice(names) + str(i))
                data = r.randbytes(r.randint(0, 1500))
                if r.random() < 0.2:  # a directory, a link, a fifo: no data
                    info.type = r.choice([tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.FIFOTYPE])
                    info.linkname, data = "t", b""
                info.size, info.mtime = len(data), r.choice([0, 1.5e9 + 0.25, 2 ** 34])
                info.uname, info.uid = r.choice(["", "ü", "root"]), r.choice([0, 2 ** 21 + 1])
                if r.random() < 0.2:
                    info.pax_headers = {"comment": r.choice(["x", "é"]), "size": str(len(data))}
                try:
                    tf.addfile(info, io.BytesIO(data))
                except ValueError:
                    continue
        raw = buf.getvalue()
        out.append(raw)
        for _ in range(3 if damaged else 0):  # damage: a byte anywhere, mostly in the first headers
            m = bytearray(raw)
            at = r.randrange(min(len(m), 3072))
            m[at] = r.choice([0, 0x0A, ord("="), ord("9"), 0xFF, r.getrandbits(8)])
            out.append(bytes(m))
    return out


def size_only_in_pax() -> bytes:
    """A member whose size is given by its PAX record alone (the header says 0), as for files over
    8 GiB: the next header is found from the record's size."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in (("big.bin", b"x" * 1300), ("after.txt", b"hello")):
            info = tarfile.TarInfo(name)
            info.size, info.pax_headers = len(data), {"size": str(len(data))}
            tf.addfile(info, io.BytesIO(data))
    raw = bytearray(buf.getvalue())
    header = raw.index(b"big.bin", 512) - raw.index(b"big.bin", 512) % 512  # the header after the PAX one
    raw[header + 124:header + 136] = b"00000000000\0"
    raw[header + 148:header + 156] = b" " * 8
    raw[header + 148:header + 156] = b"%06o\0 " % (sum(raw[header:header + 512]))
    return bytes(raw)


def directory_in_prefix() -> bytes:
    """A ustar directory whose whole path sits in the prefix field, the name field empty (the
    path `frombuf` joins ends in a slash, which `tarfile` strips after), then a symlink whose
    header gives a size: no data blocks follow it."""
    header = bytearray(512)
    header[124:136] = b"00000000000\0"
    header[156:157] = tarfile.DIRTYPE
    header[257:265] = b"ustar\x0000"
    header[345:353] = b"app/conf"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        link = tarfile.TarInfo("app/link")
        link.type, link.linkname, link.size = tarfile.SYMTYPE, "conf", 700  # a size, and no data after it
        tf.addfile(link)
        tf.addfile(tarfile.TarInfo("app/after"))
    return bytes(header) + buf.getvalue()


def test_headers_are_read_as_plain_tarfile_reads_them() -> None:
    """Every member of undamaged streams (ustar, GNU, PAX, global PAX headers, directories in the
    prefix field) has the fields plain `tarfile.TarInfo` gives it: `SafeTarInfo`'s short ways included."""
    lean = listing(with_lean_reader, directory_in_prefix())
    assert [m["name"] for m in lean] == ["app/conf", "app/link", "app/after"]
    assert lean == listing(with_plain_tarfile, directory_in_prefix())
    for data in streams(damaged=False):
        assert listing(with_lean_reader, data) == listing(with_plain_tarfile, data), data[:1536]


def test_streams_list_the_same_members_as_tarfile() -> None:
    lean = listing(with_lean_reader, size_only_in_pax())
    assert [m["name"] for m in lean] == ["big.bin", "after.txt"] and lean[0]["size"] == 1300
    assert lean == listing(with_tarfile, size_only_in_pax())
    for data in streams():
        assert listing(with_lean_reader, data) == listing(with_tarfile, data), data[:1536]
