"""Text views of a file: plain bytes, UTF-16 decoded, binaries' raw bytes plus their UTF-16LE strings."""
from __future__ import annotations

import io
import py_compile
import random
import re

import pytest

from scanner.detectors import decode
from scanner.detectors.content import ContentScanner
from scanner.detectors.decode import PushScan, TextKind, Utf16Strings, classify, prefixed, scan_views
from scanner.detectors.signature import SignatureDetector
from tests import secrets_catalog as sc

KEY, PAT = sc.AWS_KEY_ID, sc.GITHUB_PAT
CHUNK, OVERLAP = 4096, 256
ELF_HEAD = b"\x7fELF\x02\x01\x01\x00" + bytes(56)


@pytest.fixture(scope="module")
def small(unit_rules) -> ContentScanner:
    return ContentScanner([SignatureDetector(unit_rules)], keep_values=True, chunk=CHUNK, overlap=OVERLAP)


def views(scanner: ContentScanner, data: bytes) -> list[tuple[str, object, bytes]]:
    return [(loc.match.rule_id, loc.line, loc.match.secret) for loc in scan_views(scanner, io.BytesIO(data).read, "/f")]


def text(lines_before: int, secret: str, after: int = 3) -> str:
    return "".join(f"line {i} ok\n" for i in range(lines_before)) + f"token = {secret}\n" + "tail\n" * after


# --- classify -----------------------------------------------------------------------------------


@pytest.mark.parametrize("head, kind", [
    (b"", TextKind.TEXT),
    (b"plain ascii\n", TextKind.TEXT),
    ("caf\u00e9 na\u00efve\n".encode("latin-1"), TextKind.TEXT),
    ("\ufeffutf-8 with a BOM \u00e9\n".encode("utf-8"), TextKind.TEXT),
    ("\ufeffhello".encode("utf-16-le"), TextKind.UTF16_LE),
    ("\ufeffhello".encode("utf-16-be"), TextKind.UTF16_BE),
    ("no bom but utf-16 text\n".encode("utf-16-le"), TextKind.UTF16_LE),
    ("no bom but utf-16 text\n".encode("utf-16-be"), TextKind.UTF16_BE),
    ("\ufeffutf-32".encode("utf-32-le"), TextKind.BINARY),
    (ELF_HEAD + b"text", TextKind.BINARY),
    (b"\xca\xfe\xba\xbe\x00\x00\x00\x34", TextKind.BINARY),
    (b"\xa7\r\r\n\x00\x00\x00\x00" + b"x" * 8, TextKind.BINARY),  # .pyc of 3.11
    (b"text then a NUL\x00 and more", TextKind.BINARY),
])
def test_classify(head, kind):
    assert classify(head) is kind


def test_a_nul_after_the_first_8kb_keeps_text_a_text():
    assert classify(b"a" * 8192 + b"\x00") is TextKind.TEXT


# --- text views -----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])  # "utf-16" writes a BOM
def test_utf16_text_is_decoded_with_its_lines(small, encoding):
    data = text(4, KEY).encode(encoding)
    assert views(small, data) == [("unit-aws-key-id", 5, KEY.encode())]


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_larger_than_the_chunk_secret_on_a_border(small, encoding):
    for lines_before in range(340, 380, 3):  # the secret's bytes cross CHUNK-aligned borders
        data = text(lines_before, PAT, after=500).encode(encoding)
        assert views(small, data) == [("unit-github-pat", lines_before + 1, PAT.encode())], lines_before


def test_latin1_text_is_scanned_as_is(small):
    data = ("r\u00e9sum\u00e9 \u00e0 la cr\u00e8me\n" * 3 + f"cl\u00e9={KEY}\n").encode("latin-1")
    assert views(small, data) == [("unit-aws-key-id", 4, KEY.encode())]


def test_plain_text_secret_on_a_chunk_border(small):
    for start in range(CHUNK - len(KEY), CHUNK + 1, 3):
        data = b"x" * (start - 1) + b"\n" + KEY.encode() + b"\n" + b"y\n" * 5000
        assert views(small, data) == [("unit-aws-key-id", 2, KEY.encode())], start


# --- binaries ---------------------------------------------------------------------------------------


def test_elf_binary_raw_ascii_and_utf16le_strings(small):
    data = (ELF_HEAD + bytes(range(256)) * 4 + b"\x00" + KEY.encode() + b"\x00"
            + bytes(300) + ("token=" + PAT).encode("utf-16-le") + b"\x00\x00" + bytes(range(256)))
    assert sorted(views(small, data)) == [("unit-aws-key-id", None, KEY.encode()),
                                          ("unit-github-pat", None, PAT.encode())]


def test_utf16le_string_at_an_odd_offset_of_a_binary(small):
    data = ELF_HEAD + b"\x01" + PAT.encode("utf-16-le") + b"\x00\x00\x07"
    assert views(small, data) == [("unit-github-pat", None, PAT.encode())]


def test_utf16le_string_on_a_chunk_border_of_a_large_binary(small):
    for pad in range(CHUNK - 80, CHUNK + 2, 7):
        data = ELF_HEAD + b"\x01" * pad + PAT.encode("utf-16-le") + b"\x00\x00" + b"\x02" * (3 * CHUNK)
        assert views(small, data) == [("unit-github-pat", None, PAT.encode())], pad


def test_pyc_holds_the_secret(small, tmp_path):
    source = tmp_path / "settings.py"
    source.write_text(f'AWS_KEY = "{KEY}"\nDEBUG = False\n')
    pyc = py_compile.compile(str(source), cfile=str(tmp_path / "settings.pyc"), doraise=True)
    data = open(pyc, "rb").read()
    assert classify(data[:8192]) is TextKind.BINARY
    assert views(small, data) == [("unit-aws-key-id", None, KEY.encode())]


def test_java_class_constant_pool_string(small):
    data = b"\xca\xfe\xba\xbe\x00\x00\x00\x34\x00\x10\x01\x00\x14" + KEY.encode() + b"\x07\x00\x02"
    assert views(small, data) == [("unit-aws-key-id", None, KEY.encode())]


# --- never crash ---------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_any_bytes_scan_without_error(small, seed):
    rnd = random.Random(seed)
    prefixes = [b"", b"\xff\xfe", b"\xfe\xff", ELF_HEAD, b"\xff\xfe\x00\x00", "abc".encode("utf-16-le")]
    body = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 3 * CHUNK)))
    data = rnd.choice(prefixes) + body + rnd.choice([b"", b"\xd8", b"\x00\xd8", b"\xdc\x00"])
    views(small, data)  # lone surrogates, odd lengths, anything: no exception


# --- the pieces -----------------------------------------------------------------------------------

_RUN = re.compile(rb"(?:[\x20-\x7e\t]\x00){8,}")


def strings_in_pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    s, out, prev = Utf16Strings(), b"", 0
    for cut in sorted(cuts) + [len(data)]:
        out += s.feed(data[prev:cut])
        prev = cut
    out += s.flush()
    return [line for line in out.split(b"\n") if line]


def random_binary(rnd: random.Random, longest: int) -> bytes:
    parts = []
    for _ in range(rnd.randint(0, 10)):
        if rnd.random() < 0.5:
            parts.append(bytes(rnd.choice(b"abcXYZ019 \t") for _ in range(rnd.randint(1, longest))).decode()
                         .encode("utf-16-le"))
        else:
            parts.append(bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 10))))
    return b"".join(parts)


@pytest.mark.parametrize("max_tail", [decode.MAX_TAIL, 64])
def test_utf16_strings_are_the_same_however_the_bytes_are_cut(monkeypatch, max_tail):
    monkeypatch.setattr(decode, "MAX_TAIL", max_tail)  # 64: long runs go out in pieces
    rnd = random.Random(max_tail)
    for _ in range(1500):
        data = random_binary(rnd, 200)
        cuts = [rnd.randint(0, len(data)) for _ in range(rnd.randint(0, 8))]
        assert strings_in_pieces(data, cuts) == [m.group()[::2] for m in _RUN.finditer(data)], (data, cuts)


def test_push_scan_finds_a_secret_on_a_push_border_once(small):
    for start in range(CHUNK - 30, CHUNK + OVERLAP + 40, 11):
        data = b"." * start + KEY.encode() + b"." * (2 * CHUNK)
        push = PushScan(small, "/f")
        for i in range(0, len(data), 1000):
            push.feed(data[i:i + 1000])
        found = [(loc.match.start, loc.line) for loc in push.finish()]
        assert found == [(start, None)], start


def test_prefixed_gives_back_the_head_then_the_rest():
    stream = io.BytesIO(b"0123456789")
    head = stream.read(4)
    read = prefixed(head, stream.read)
    assert [read(3), read(3), read(10), read(10)] == [b"012", b"3" + b"45", b"6789", b""]


# --- the fast UTF-16 run finder is the regex, exactly -------------------------------------------

def _binaryish(r: random.Random, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        pick = r.random()
        if pick < 0.3:  # a UTF-16LE run, with bytes just outside the printable range in it
            out += b"".join(bytes([r.choice(b"abc\t ~\x7f\x19\x00"), 0]) for _ in range(r.randint(1, 20)))
        elif pick < 0.4:
            out += b"\0" * r.randint(1, 5)
        else:
            out += bytes(r.getrandbits(8) for _ in range(r.randint(1, 10)))
    return bytes(out[:n])


def test_utf16_runs_are_the_regex_matches() -> None:
    r = random.Random(11)
    for _ in range(5000):
        buf = _binaryish(r, r.randint(0, 300))
        pos = r.randint(0, len(buf))
        end = r.randint(pos, len(buf))
        want = [(m.start(), m.end()) for m in decode._RUN.finditer(buf, pos, end)]
        assert decode.utf16_runs(buf, pos, end) == want, (buf, pos, end)


def _binaries(seed: int) -> bytes:
    """A binary of up to one chunk: NULs or a magic head, ASCII and UTF-16LE secrets (odd offsets,
    at the very end, in runs longer than MAX_TAIL), noise."""
    rng = random.Random(seed)
    pyc = b"\xa7\x0d\r\n" + bytes(12)
    parts = [rng.choice([ELF_HEAD, pyc, b"\xca\xfe\xba\xbeplain text, no nul in the head\n"])]
    for _ in range(rng.randrange(1, 12)):
        pick = rng.randrange(6)
        if pick == 0:
            parts.append(f"token = {PAT}\n".encode())
        elif pick == 1:
            parts.append(b"\x00" * rng.randrange(2) + f"aws_key={KEY};".encode("utf-16-le"))
        elif pick == 2:
            parts.append(("x" * rng.randrange(decode.MAX_TAIL // 2, decode.MAX_TAIL + 50) + f" {KEY}").encode("utf-16-le"))
        elif pick == 3:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))))
        else:
            parts.append(f"secret key {KEY}\n".encode("utf-16-le" if pick == 4 else "ascii"))
    return b"".join(parts)[:CHUNK * 40]


@pytest.mark.parametrize("seed", range(60))
def test_a_binary_held_whole_gives_what_its_stream_gives(unit_rules, seed):
    """`scan_bytes` scans a binary of one chunk in one go: the same matches, offsets and lines as
    `scan_views` reading it in chunks of the same size, and with `most`."""
    scanner = ContentScanner([SignatureDetector(unit_rules)], keep_values=True, chunk=CHUNK * 40, overlap=OVERLAP)
    data = _binaries(seed)
    assert classify(data[:8192]) is TextKind.BINARY

    def shown(found):
        return sorted((loc.match.rule_id, loc.match.start, loc.match.end, loc.line, loc.match.secret) for loc in found)
    streamed = shown(scan_views(scanner, io.BytesIO(data).read, "/f"))
    assert shown(decode.scan_bytes(scanner, data, "/f")) == streamed
    assert shown(decode.scan_bytes(scanner, data, "/f", most=2)) == shown(scan_views(scanner, io.BytesIO(data).read, "/f", 2))
    if seed < 3:
        assert streamed  # the generator does plant secrets
