"""The differential test: every tar stream is read as Go's archive/tar reads it (containerd, moby
and umoci apply layers with it), or layerscan stops with an error; never a third reading.

`tests/hostile/gotar` (Go, the standard library only) lists each entry of a stream: type, name,
link name, size and the sha256 of its data as Go's Reader returns it. The same streams go through
layerscan's reader (`tarstream`, what the walk reads with) and its walk (`scan_layer`). The
streams: one per hostile class (below), the fuzz seeds, and hypothesis mutations of them.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.seeds import SEEDS
from scanner.layers.tarstream import members, open_member, open_tar
from tests.hostile import kit
from tests.hostile.test_fuzz import hostile_member, mutated
from tests.services import INSTALL_HINT, ServiceUnavailable, require

GOTAR = Path(__file__).parent / "gotar"
ENV = b"KEY=AKIAIOSFODNN7EXAMPLE\n"
TOO_LONG = "archive/tar: header field too long"  # Go's ErrFieldTooLong: a PAX header over 1 MiB


class GoTar:
    """The Go lister, built once and kept running: one stream in, its listing out."""

    def __init__(self, work: Path) -> None:
        go = shutil.which("go") or shutil.which("go", path="/usr/lib/go/bin")
        if go is None:
            raise ServiceUnavailable(f"go not found ({INSTALL_HINT}: Debian golang-go)")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "GOCACHE": str(work / "cache"),
               "GOPATH": str(work / "gopath"), "GOPROXY": "off", "GOFLAGS": "", "GOTOOLCHAIN": "local",
               "CGO_ENABLED": "0"}
        binary = work / "gotar"
        subprocess.run([go, "build", "-o", str(binary), "."], cwd=GOTAR, env=env, check=True, timeout=300,
                       capture_output=True)
        self.proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def list(self, data: bytes) -> tuple[list[tuple], Optional[str]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(struct.pack(">Q", len(data)) + data)
        self.proc.stdin.flush()
        entries = []
        while True:
            line = json.loads(self.proc.stdout.readline())
            if "end" in line or "error" in line:
                return entries, line.get("error")
            entries.append((line["type"].encode("latin-1"), bytes.fromhex(line["name"]),
                            bytes.fromhex(line["linkname"]), line["size"], line["data"], line["dense"]))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def gotar(tmp_path_factory):
    lister = require(lambda: GoTar(tmp_path_factory.mktemp("gotar")))
    yield lister
    lister.close()


def ours(data: bytes) -> tuple[list[tuple], Optional[str], list[bool]]:
    """layerscan's reading: the entries as `gotar` lists them, the error, which entries are sparse
    and which carry PAX records too big to read (`skipped`)."""
    out, sparse, skipped = [], [], []
    try:
        tf = open_tar(_Reader(data), 4096)
        for h in members(tf):
            f, _ = open_member(tf, h)
            body = f.read()
            out.append((h.type, h.name.encode("utf-8", "surrogateescape"),
                        h.linkname.encode("utf-8", "surrogateescape"), h.size,
                        hashlib.sha256(body).hexdigest(), hashlib.sha256(body.replace(b"\0", b"")).hexdigest()))
            sparse.append(h.sparse is not None)
            skipped.append(bool(h.skipped))
    except tarfile.ReadError as exc:
        return out, str(exc) or "error", sparse + skipped
    return out, None, sparse + skipped


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> bytes:
        piece = self.data[self.pos:self.pos + n]
        self.pos += len(piece)
        return piece


def agree(gotar: GoTar, data: bytes) -> tuple[list[tuple], Optional[str], Optional[str]]:
    """Assert that layerscan reads `data` as Go does, or stops with an error where Go's entries
    so far are its own. Gives Go's listing and both errors."""
    theirs, their_error = gotar.list(data)
    mine, my_error, flags = ours(data)
    if their_error is not None and their_error.startswith("gotar:"):  # the lister's bound: what came before
        mine, my_error, flags = mine[:len(theirs)], "(past the lister's bound)", flags[:len(theirs)] + \
            flags[len(mine):len(mine) + len(theirs)]
    n = len(mine)
    sparse, skipped = flags[:n], flags[n:]

    def same(a: tuple, b: tuple, is_sparse: bool) -> bool:  # a sparse file: stored segments, not holes
        return a[:4] == b[:4] and (a[5] == b[5] if is_sparse else a[4] == b[4])

    if my_error is not None:  # stopping is allowed; what came before it must be Go's
        assert len(theirs) >= n and all(same(t, m, s) for t, m, s in zip(theirs, mine, sparse)), (data[:2048], theirs,
                                                                                                   mine)
        return theirs, their_error, my_error
    if their_error == TOO_LONG and any(skipped):  # layerscan reads on past the PAX record Go refuses
        assert all(same(t, m, s) for t, m, s in zip(theirs, mine, sparse)), (theirs, mine)
        return theirs, their_error, my_error
    assert their_error is None, (their_error, mine)
    assert len(theirs) == n and all(same(t, m, s) for t, m, s in zip(theirs, mine, sparse)), (theirs, mine)
    return theirs, their_error, my_error


# --- the hostile classes, each crafted --------------------------------------------------------------

def v7(name: bytes, data: bytes = b"", **fields) -> bytes:
    """A header without ustar magic (V7), `fields` as kit.header's."""
    extra = {257: b"\0" * 8, **fields.pop("extra", {})}
    return kit.header(name, size=len(data), extra=extra, **fields) + kit.pad(data)


def star(name: bytes, prefix: bytes, data: bytes) -> bytes:
    return kit.header(name, size=len(data), extra={345: prefix, 508: b"tar\0"}) + kit.pad(data)


def gnu(name: bytes, data: bytes, extra: dict) -> bytes:
    buf = bytearray(kit.header(name, size=len(data), extra=extra))
    buf[257:265] = b"ustar  \0"
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf)
    return bytes(buf) + kit.pad(data)


def signed_checksum(block: bytes) -> bytes:
    buf = bytearray(block[:512])
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % (sum(buf) - 256 * sum(1 for c in buf if c > 127))
    return bytes(buf) + block[512:]


def rec(*pairs: tuple[bytes, bytes]) -> bytes:
    return b"".join(kit.pax_record(k, v) for k, v in pairs)


FILE = kit.member("app/.env", ENV)
CLASSES = {
    # a global header applies to no file (Go returns it as an entry; moby and containerd skip it)
    "global path and size": [kit.pax(rec((b"path", b"x"), (b"size", b"0")), tarfile.XGLTYPE), FILE, FILE],
    "global then local": [kit.pax(rec((b"path", b"g")), tarfile.XGLTYPE), kit.pax(rec((b"path", b"l"))), FILE],
    "local then global": [kit.pax(rec((b"path", b"l"))), kit.pax(rec((b"path", b"g")), tarfile.XGLTYPE), FILE],
    # numbers: NULs and spaces trimmed both ends; then octal digits only
    "size with leading NULs": [kit.header("a", size_field=b"\0\0\0\0\0\0\0\0031\0\0") + kit.pad(ENV), FILE],
    "size with leading spaces": [kit.header("a", size_field=b"      00031 ") + kit.pad(ENV), FILE],
    "size NUL inside": [kit.header("a", size_field=b"031\x00777\0\0\0\0") + kit.pad(ENV), FILE],
    "size with a space inside": [kit.header("a", size_field=b"0 31       ") + kit.pad(ENV), FILE],
    "size with an underscore": [kit.header("a", size_field=b"00000_00031\0") + kit.pad(ENV), FILE],
    "size with a sign": [kit.header("a", size_field=b"+0000000031\0") + kit.pad(ENV), FILE],
    "mode all spaces": [kit.header("a", size=len(ENV), extra={100: b"        "}) + kit.pad(ENV)],
    "checksum with NULs first": [kit.member("a", ENV)[:148] + b"\0" + kit.member("a", ENV)[148:155]
                                 + kit.member("a", ENV)[156:]],
    "signed checksum": [signed_checksum(kit.member("\xe9" * 90, ENV)), FILE],
    "base-256 size": [kit.header("a", size_field=b"\x80" + (len(ENV)).to_bytes(11, "big")) + kit.pad(ENV), FILE],
    "base-256 negative mtime": [kit.header("a", size=len(ENV), mtime_field=b"\xff" * 12) + kit.pad(ENV)],
    "base-256 over 63 bits": [kit.header("a", size_field=b"\x80\x80" + bytes(10)) + kit.pad(ENV)],
    "negative size on a directory": [kit.header("d", type_=b"5", size_field=b"\xff" * 12), FILE],
    # V7: no prefix, no user names
    "v7 prefix is no prefix": [v7(b".wh..env", extra={345: b"app"}), FILE],
    "v7 file": [v7(b"app/.env", ENV, extra={345: b"junk"})],
    "v7 directory by its slash": [v7(b"app/"), FILE],
    "ustar prefix": [kit.header("x.env", size=len(ENV), extra={345: b"app/deep"}) + kit.pad(ENV)],
    "ustar magic with another version": [kit.header("a", size=len(ENV), extra={263: b"zz", 345: b"p"}) + kit.pad(ENV)],
    "gnu magic, bad version": [gnu(b"a", ENV, {263: b"x\0", 345: b"pre"})],
    "gnu atime garbage, prefix fallback": [gnu(b"f", ENV, {345: b"zz/app"})],
    "gnu atime octal": [gnu(b"f", ENV, {345: b"00000000001\0"})],
    "star prefix": [star(b"f.env", b"app", ENV)],
    # GNU long names over PAX, PAX path over the header, sparse name over all
    "long name then pax path": [kit.gnu_long(b"long/name"), kit.pax(rec((b"path", b"pax/path"))), FILE],
    "pax path then long name": [kit.pax(rec((b"path", b"pax/path"))), kit.gnu_long(b"long/name"), FILE],
    "long link": [kit.gnu_long(b"t" * 200, tarfile.GNUTYPE_LONGLINK), kit.header("s", type_=b"2", linkname="x")],
    "two long names": [kit.gnu_long(b"first"), kit.gnu_long(b"second"), FILE],
    "long name with a NUL": [kit.gnu_long(b"a\0b"), FILE],
    "long name then nothing": [kit.gnu_long(b"dangling")],
    "empty pax path keeps the name": [kit.pax(rec((b"path", b""))), FILE],
    "pax value with =": [kit.pax(rec((b"path", b"a=b=c"))), FILE],
    "pax duplicate records": [kit.pax(rec((b"path", b"one"), (b"path", b"two"))), FILE],
    "pax path with NUL": [kit.pax(rec((b"path", b"a\0b"))), FILE],
    "pax key with NUL": [kit.pax(rec((b"co\0mment", b"x"))), FILE],
    "pax invalid utf-8 path": [kit.pax(rec((b"path", b"\xff\xfe/.env"))), FILE],
    "pax hdrcharset binary": [kit.pax(rec((b"hdrcharset", b"BINARY"), (b"path", b"\xe9.env"))), FILE],
    "pax size over the header": [kit.pax(rec((b"size", b"%d" % len(ENV)))), kit.header("a") + kit.pad(ENV), FILE],
    "pax size on a directory": [kit.pax(rec((b"size", b"512"))), kit.header("d", type_=b"5"), FILE],
    "pax uid not a number": [kit.pax(rec((b"uid", b"x"))), FILE],
    "pax mtime 1e400": [kit.pax(rec((b"mtime", b"1e400"))), FILE],
    "pax mtime fraction": [kit.pax(rec((b"mtime", b"-1.123456789123"))), FILE],
    "pax length with sign": [kit.pax(b"+13 path=abc\n"), FILE],
    "pax length zero-padded": [kit.pax(b"0013 path=ab\n"), FILE],
    "pax length zero": [kit.pax(b"0 path=x\n"), FILE],
    "pax record without =": [kit.pax(b"10 pathx\n\n"), FILE],
    "pax trailing NULs": [kit.pax(rec((b"path", b"a")) + b"\0\0"), FILE],
    "pax path to a dir by slash, type NUL": [kit.pax(rec((b"path", b"app/"))), kit.header("x", type_=b"\0"), FILE],
    # types without data: the data a header says they have is read as headers
    "directory claiming data": [kit.header("d", type_=b"5", size=512) + FILE, FILE],
    "symlink claiming data": [kit.header("s", type_=b"2", size=len(FILE)) + FILE],
    "unknown type with data": [kit.header("z", type_=b"Z", size=len(ENV)) + kit.pad(ENV), FILE],
    "contiguous file": [kit.header("c", type_=b"7", size=len(ENV)) + kit.pad(ENV)],
    # sparse files
    "old gnu sparse": [kit.old_gnu_sparse("app/s.env", [(0, ENV), (1 << 20, b"x")], (1 << 20) + 1)],
    "pax sparse 1.0": [kit.pax_sparse_10("app/s.env", [(0, ENV), (4096, b"x")], 4097)],
    "pax sparse 0.1": [kit.pax(rec((b"GNU.sparse.major", b"0"), (b"GNU.sparse.minor", b"1"),
                                   (b"GNU.sparse.numblocks", b"1"), (b"GNU.sparse.map", b"4096,%d" % len(ENV)),
                                   (b"GNU.sparse.size", b"9999"), (b"GNU.sparse.name", b"sp.env"))),
                       kit.header("x", size=len(ENV)) + kit.pad(ENV)],
    "pax sparse 0.0": [kit.pax(rec((b"GNU.sparse.numblocks", b"1"), (b"GNU.sparse.offset", b"10"),
                                   (b"GNU.sparse.numbytes", b"%d" % len(ENV)), (b"GNU.sparse.size", b"100"))),
                       kit.header("x", size=len(ENV)) + kit.pad(ENV)],
    "sparse map past its size": [kit.old_gnu_sparse("s", [(0, ENV), (1 << 20, b"x")], 10)],
    "sparse map over the data": [kit.pax(rec((b"GNU.sparse.major", b"0"), (b"GNU.sparse.minor", b"1"),
                                             (b"GNU.sparse.numblocks", b"1"), (b"GNU.sparse.map", b"0,5"),
                                             (b"GNU.sparse.size", b"9"))), kit.header("x", size=len(ENV)) + kit.pad(ENV)],
    "sparse name over a long name": [kit.gnu_long(b"long"), kit.pax_sparse_10("sparse", [(0, ENV)], 99)],
    "sparse on a directory": [kit.pax(rec((b"GNU.sparse.major", b"0"), (b"GNU.sparse.minor", b"1"),
                                          (b"GNU.sparse.numblocks", b"0"), (b"GNU.sparse.map", b""))),
                              kit.header("d", type_=b"5"), FILE],
    "sparse of unknown version": [kit.pax(rec((b"GNU.sparse.major", b"2"), (b"GNU.sparse.map", b"x"))), FILE],
    "old sparse with ustar magic": [kit.header("s", type_=b"S", size=len(ENV)) + kit.pad(ENV)],
}
ENDS = {  # how a stream ends
    "no end marker": [FILE],
    "one zero block then EOF": [FILE, bytes(512)],
    "one zero block then a header": [FILE, bytes(512), FILE],
    "zero block then a cut block": [FILE, bytes(512), b"x" * 100],
    "two zero blocks then garbage": [FILE, bytes(1024), b"garbage" * 100],
    "cut padding": [FILE[:512 + len(ENV) + 3]],
    "cut data": [FILE[:512 + 10]],
    "cut header": [FILE, FILE[:300]],
    "empty": [b""],
    "garbage first": [b"x" * 1024],
    "header of zeros but the checksum": [kit.header("", type_=b"\0")],
}


@pytest.mark.parametrize("case", sorted(CLASSES))
def test_each_hostile_class_is_read_as_go_reads_it(gotar, case):
    data = kit.tar(*CLASSES[case])
    theirs, their_error, my_error = agree(gotar, data)
    if their_error is not None and their_error != TOO_LONG:
        assert my_error is not None, case  # Go refuses the layer: layerscan does too


@pytest.mark.parametrize("case", sorted(ENDS))
def test_each_way_a_stream_ends_is_go_s(gotar, case):
    theirs, their_error, my_error = agree(gotar, b"".join(ENDS[case]))
    assert (their_error is None) == (my_error is None), (case, their_error, my_error)


def test_the_classes_are_not_all_alike(gotar):
    """The crafted streams reach both sides of Go's reader: some it refuses, some it reads."""
    errors = [gotar.list(kit.tar(*CLASSES[c]))[1] is not None for c in CLASSES]
    assert 10 < sum(errors) < len(errors) - 20


def test_a_huge_pax_comment_is_read_past_where_go_refuses(gotar):
    data = kit.tar(kit.pax(rec((b"comment", b"c" * (2 << 20))) + rec((b"path", b"app/p.env"))), FILE)
    theirs, their_error, my_error = agree(gotar, data)
    assert their_error == TOO_LONG and my_error is None
    assert ours(data)[0][0][1] == b"app/p.env"


def test_seeds_are_read_as_go_reads_them(gotar):
    for seed in SEEDS["tar_walk"]() + SEEDS["nested"]():
        agree(gotar, seed)


DIFF = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))
PLAIN = [s for s in SEEDS["tar_walk"]() if s[257:262] == b"ustar"] + [kit.tar(*m) for m in CLASSES.values()]


@DIFF
@given(mutated(PLAIN))
def test_mutations_are_read_as_go_reads_them(gotar, data):
    agree(gotar, data)


@DIFF
@given(st.lists(hostile_member(), max_size=6), st.booleans())
def test_structured_streams_are_read_as_go_reads_them(gotar, members_, end):
    agree(gotar, kit.tar(*members_, FILE, end=end))
