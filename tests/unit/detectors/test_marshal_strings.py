"""The `.pyc` strings view: every str/bytes object on its own, whatever marshal framing is next to it."""
from __future__ import annotations

import importlib.util
import io
import marshal
import random

import pytest

from scanner.detectors.content import ContentScanner
from scanner.detectors.decode import scan_bytes, scan_views
from scanner.detectors.marshal_strings import pyc_header, pyc_strings, pyc_view
from scanner.detectors.signature import SignatureDetector
from tests import secrets_catalog as sc

PAT = sc.GITHUB_PAT


def pyc(source: str) -> bytes:
    """A real `.pyc` of this interpreter (header + marshalled code), as py_compile writes it."""
    code = compile(source, "mod.py", "exec")
    return importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(code)


def framed(obj: object) -> bytes:
    """Any marshalled object behind a .pyc header."""
    return importlib.util.MAGIC_NUMBER + b"\0" * 12 + marshal.dumps(obj)


@pytest.fixture(scope="module")
def content(unit_rules) -> ContentScanner:
    return ContentScanner([SignatureDetector(unit_rules)], keep_values=True)


def secrets(content: ContentScanner, data: bytes) -> list[bytes]:
    return [loc.match.secret for loc in scan_bytes(content, data, "/app/__pycache__/mod.cpython-311.pyc")]


def test_header_sizes():
    assert pyc_header(pyc("x = 1")) == 16
    assert pyc_header(b"\x33\x0d\r\n" + bytes(12)) == 12  # 3.6
    assert pyc_header(b"\x03\xf3\r\n" + bytes(12)) is None  # Python 2.7
    assert pyc_header(b"\x7fELF" + bytes(12)) is None


def test_constants_names_and_docstrings():
    strings = pyc_strings(pyc(f'"""Module doc."""\nTOKEN = "{PAT}"\ndef f(a):\n    return b"raw-bytes"\n'))
    assert {b"Module doc.", PAT.encode(), b"TOKEN", b"raw-bytes", b"f", b"a"} <= set(strings)


@pytest.mark.parametrize("neighbour", [None, 1, 1.5, (1, 2), ("a",), [PAT], {"k": PAT}, frozenset({"x"}),
                                       10 ** 30, b"\x00\x01", "\u00e9t\u00e9", True, ..., 2 + 3j])
def test_a_string_next_to_any_object_type(content, neighbour):
    """A token right before and after every marshal type byte (`N`, `)`, `z`, `\\xda`, `\\xe9`, ...)."""
    for obj in ((PAT, neighbour), (neighbour, PAT), [neighbour, PAT, neighbour]):
        data = framed(obj)
        assert PAT.encode() in pyc_strings(data)


@pytest.mark.parametrize("glue", [b"N", b"Z", b"z", b")", b"s", b"u", b"a", b"r", b"t", b"\xda", b"\xe9", b"A"])
def test_framing_bytes_glued_to_a_token_are_not_part_of_it(content, glue):
    # the same token constant before a None, a tuple, a short string... in a real code object
    data = pyc(f'X = ("{PAT}", None)\nY = ["{PAT}", ("{glue.decode("latin-1")}",)]\n')
    assert secrets(content, data) and set(secrets(content, data)) == {PAT.encode()}


def test_a_token_followed_by_a_type_byte_is_found_where_raw_bytes_miss_it(content):
    # a short-ascii string whose length byte is a letter and whose next object is `N`: raw bytes
    # read `Z(ghp_...N`, a token glued to letters on both sides
    data = framed((PAT, None, PAT + "x"))
    assert PAT.encode() in secrets(content, data)


def test_streamed_pyc_uses_the_view_too(content):
    data = pyc("\n".join(f'V{i} = "{"x" * 60}{i}"' for i in range(30000)) + f'\nT = "{PAT}"\n')
    assert len(data) > (1 << 20)
    found = scan_views(content, io.BytesIO(data).read, "/app/big.pyc")
    assert [loc.match.secret for loc in found] == [PAT.encode()] and found[0].line is None


def test_view_is_one_string_a_line():
    view = pyc_view(framed(("a", b"b\0c", "d")))
    assert view.split(b"\n")[:4] == [b"a", b"b", b"c", b"d"]


@pytest.mark.parametrize("seed", range(30))
def test_corrupt_or_truncated_streams_never_raise(seed):
    rnd = random.Random(seed)
    data = bytearray(pyc(f'A = "{PAT}"\ndef g():\n    return {{"k": [1, 2.5, "v" * 300]}}\n'))
    for _ in range(rnd.randrange(1, 4)):
        data[rnd.randrange(16, len(data))] = rnd.randrange(256)
    result = pyc_strings(bytes(data[:rnd.randrange(16, len(data) + 1)]))
    assert result is None or isinstance(result, list)


def test_a_huge_declared_count_is_refused_without_allocating():
    data = importlib.util.MAGIC_NUMBER + b"\0" * 12 + b"(" + (0x7FFFFFFF).to_bytes(4, "little") + b"N"
    assert pyc_strings(data) is None


def test_not_a_pyc_falls_back_to_raw_bytes(content):
    fake = importlib.util.MAGIC_NUMBER + b"\0" * 12 + b"\xe3garbage " + PAT.encode() + b" more"
    assert pyc_strings(fake) is None
    assert secrets(content, fake) == [PAT.encode()]
