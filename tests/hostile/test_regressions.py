"""Every crash, hang or blind spot found by fuzzing or by hand, kept as a test.

Layer-level cases (the same headers directly in a layer) are in test_entries.py; here are the
same hostile headers inside a tar that is a file of a layer (nested: a Skipped entry, the rest of
the layer still scanned), and the inputs the fuzzers found.
"""
from __future__ import annotations

import io
import json
import time

import pytest

from fuzz.targets import TARGETS
from scanner.layers.nested import FileScanner
from scanner.limits import Limits
from scanner.reports.json import JsonReport
from tests import secrets_catalog as sc
from tests.hostile import kit

ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()
REST = "; rest of the archive not scanned"


def nested(content, data: bytes):
    hits, skipped = FileScanner(content, Limits()).scan(io.BytesIO(data).read, len(data), "/srv/x.tar", 0)
    return [h.inner_path for h in hits], [s.reason for s in skipped]


@pytest.mark.parametrize("case,members,reason", [
    # was RecursionError (tarfile parses header chains by recursion)
    ("5000 PAX headers", [kit.pax(kit.pax_record(b"comment", b"x"))] * 5000,
     "over 64 extended headers in a row at byte 66560"),
    ("5000 GNU long names", [kit.gnu_long(b"n" * 100)] * 5000, "over 64 extended headers in a row at byte 66560"),
    # was a hang: tarfile skips a 2**88-byte member with a seek loop that runs on past the data
    ("base-256 size", [kit.header("big", type_=b"Z", size_field=b"\x80\0\0\0\x7f" + b"\xff" * 7) + kit.pad(b"x" * 600)],
     "unexpected end of data"),
    # were ValueError / IndexError out of tarfile's GNU sparse parsing
    ("GNU.sparse.map", [kit.pax(kit.pax_record(b"GNU.sparse.map", b"a,b")), kit.member("x")],
     "malformed number '' in a PAX header in the entry at byte 2048"),
    ("sparse extension cut", [kit.header("sp", type_=b"S", extra={482: b"\x01"})],
     "sparse header that is not GNU in the entry at byte 1024"),
    # was read whole whatever its size
    ("PAX header of 2 GiB", [kit.pax(b"", declared=2 << 30)], "extended header of 2147483648 bytes (over 67108864) "
                                                              "in the extended header at byte 1024"),
])
def test_hostile_headers_in_a_nested_tar_are_skipped_and_the_rest_scanned(content, case, members, reason):
    found = nested(content, kit.tar(kit.member("a.env", ENV), *members, end=False))
    assert found == (["a.env"], [f"tar: corrupt archive after member a.env ({reason}){REST}"]), case


def test_sparse_member_of_a_nested_tar_is_read_as_stored(content):
    """Was: its holes read as a terabyte of zeros (capped only by the max file size, 8 GiB)."""
    started = time.monotonic()
    data = kit.tar(kit.old_gnu_sparse("s.env", [(0, b"x\n"), (1 << 40, ENV)], (1 << 40) + len(ENV)))
    assert nested(content, data) == (["s.env"], [])
    assert time.monotonic() - started < 5


def test_json_report_never_holds_infinity_or_nan(tmp_path, scan):
    """Was: a PAX mtime of 1e400 reached the JSON report as `Infinity`, which is not JSON (now an
    error, as in Go); the widest mtime Go reads is a finite number."""
    path, _ = kit.write(tmp_path, kit.image_of(kit.tar(kit.pax(kit.pax_record(b"mtime", b"-9223372036854775808.999")),
                                                      kit.member("inf.env", ENV))))
    text = JsonReport().render(scan(path).result)

    def refuse(name):
        raise AssertionError(f"{name} in the JSON report")
    doc = json.loads(text, parse_constant=refuse)
    assert [f["file"]["mtime"] for f in doc["findings"]] == [-9223372036854775808.999]


# --- inputs found by the fuzzers (fuzz/run.py, tests/hostile/test_fuzz.py) ------------------------------

FOUND: list[tuple[str, bytes]] = [
    # atheris, `nested`: a zip whose deflate64 member has a malformed Huffman table; stream_inflate
    # raised TypeError ('>' between None and None), which escaped the scan
    ("nested", bytes.fromhex(
        "504b03041400000008004d457e5dc3e906f41b0000001900000007000000612f622e747874f3768db475f4f675f4f40f"
        "76f377f1f334778d70f40df071e50200504b03041400000009004d457e5d65f0b545553b00007f000000b10000000000"
        "000009000025006c69622f782e6a06f41b00000019000000070000000000000000000000800100000000612f622e7478"
        "74504b0102140300000008004d457e5dc3e906f41b0000000d0a1900000007000000612f622e747874f3768db475f4f6"
        "74007f0000004d457e5d65f0b545550000007f0000000900000000000000000000008001400000006c69622f782e6a61"
        "72504b0506000000005b0000000900000000000000000000008001420000006c69622f782e00000000000000006a6172"
        "504b050600000000020042006c000000b90000000000")),
    # atheris, `cache_row`: a cached hit at `//app.env`; the overlay climbs a path to `/` by dirname,
    # and `//` is its own dirname: a loop for ever. Hit paths of an entry must be absolute and normalised
    ("cache_row", bytes.fromhex(
        "7b22646966665f6964223a227368613235363a3131313131303030303030303030303030303337313439363932393236"
        "323230363221343738222c22646967657374223a227368613235363a3232323232323232323232323232323232323232"
        "323232323232323232323232323232323232323232323232222c2266696c6573223a322c226279746573223a33303732"
        "2c226576656e7473223a5b222f6170705c75303030302f617070a22e656e765c75303030302f6170702f6f6c64222c22"
        "5c75303030315c75303030305c7530303035222c22414141414141414141414146414141414141414141414941414141"
        "4141414141225d2c2268697473223a5b5b22617773222c227369676e6174757265222c22637269746963616c222c2241"
        "5753206b6579222c222f2f6170702e656e76222c312c226162626162616261626162616261626162222c22414b49412a"
        "2a2a2a222c6e756c6c2c312c2266696c65222c7b226d6f6465223a3432302c22756964223a302c22676964223a302c22"
        "73697a65223a32342c226d74696d65223a302e302c22736861323536223a226364636463646364636463646364636463"
        "6463646364636463646364636463646364636463646364636463646364636364636f74222c22676e616d65223a22726f"
        "6f74222c226d6435223a6e756c6c2c2273686131223a6e756c6c7d5d5d2c22736b6970706564223a5b5b222f78222c22"
        "746f6f20626967222c305d5d2c227061636b61676573223a5b5b222f7661722f6c69622764706b672f696e666f2f612e"
        "6d643573756d73222c2264706b67222c226d64353a3030202f7573722f61225d5d7d")),
    # atheris, `nested`: UTF-16 text (a BOM) that also reads as a `.pyc` header: `scan_bytes` sent it
    # to `scan_views` and `scan_views` back, for ever (RecursionError)
    ("nested", bytes.fromhex("fffe0d0a01000000ff0073c3c2000045" "00")),
]


@pytest.mark.parametrize("target,data", FOUND, ids=[f"{t}-{i}" for i, (t, _) in enumerate(FOUND)])
def test_fuzzer_findings(target, data):
    TARGETS[target](data)


def test_deflate64_member_that_breaks_the_inflater_is_a_skipped_member(content):
    inner, skipped = nested(content, FOUND[0][1])
    assert inner == [] and skipped[0] == "zip: corrupt member a/b.txt (bad CRC)"
    assert skipped[1].startswith("zip: corrupt member \\x00\\x00\\x00\\x00\\x09")  # control bytes spelt out
    assert skipped[1].endswith("(bad compressed data: TypeError); rest of the archive not scanned")
