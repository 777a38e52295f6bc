"""gzip inflation (`scanner.inflate`): ISA-L and zlib give the same bytes, and both fail on damage.

The layer reader (`blobs.GzipMembers`) and the one-call path for small `.gz` files use whichever
is installed; the tests that read gzip layers and nested `.gz` files run with each
(the `inflater` fixture)."""
from __future__ import annotations

import gzip
import io
import random
import struct
import zlib

import pytest

from scanner import inflate
from scanner.sources.blobs import DECODE_ERRORS, GzipMembers


def _text(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz_=:/.0123456789", k=rng.randint(2, 12))) for _ in range(500)]
    out = bytearray()
    while len(out) < n:
        out += b" ".join(rng.choices(words, k=12)) + b"\n"
    return bytes(out[:n])


def _read_all(blob: bytes, step: int, size: int) -> bytes:
    reader = GzipMembers(io.BytesIO(blob), step)
    parts = []
    while chunk := reader.read(size):
        parts.append(chunk)
    return b"".join(parts)


def test_the_environment_forces_zlib(monkeypatch):
    monkeypatch.setenv("LAYERSCAN_INFLATE", "zlib")
    assert inflate.engine() is zlib and inflate.engine_name() == "zlib"
    monkeypatch.setenv("LAYERSCAN_INFLATE", "auto")
    assert inflate.engine() is (inflate.isal_zlib or zlib)


@pytest.mark.parametrize("step,size", [(256 << 10, 1 << 20), (1000, 777), (64 << 10, 1)])
def test_members_padding_and_small_steps_give_the_same_bytes(inflater, step, size):
    """Several members, zero padding between and after them, output limits smaller than the input
    (`unconsumed_tail`) and inputs cut anywhere: what gzip itself reads."""
    a, b = _text(300_000, 1), _text(5_000, 2) + bytes(range(256)) * 40
    blob = gzip.compress(a) + b"\0" * 700 + gzip.compress(b, compresslevel=1) + gzip.compress(b"") + b"\0" * 3
    if size == 1:
        blob = gzip.compress(a[:20_000])  # a byte at a time: a small member is enough
    assert _read_all(blob, step, size) == gzip.decompress(blob)


def _every_header_field(body: bytes) -> bytes:
    """A gzip member whose header has every optional field: extra, name, comment and its own CRC."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = deflate.compress(body) + deflate.flush()
    head = b"\x1f\x8b\x08\x1e\0\0\0\0\0\xff" + struct.pack("<H", 6) + b"AB\x02\0xy" + b"notes.txt\0" + b"a comment\0"
    head += struct.pack("<H", zlib.crc32(head) & 0xFFFF)
    return head + data + struct.pack("<II", zlib.crc32(body), len(body))


def test_a_header_with_every_optional_field(inflater):
    body = _text(50_000)
    assert _read_all(_every_header_field(body), 1000, 4096) == body == gzip.decompress(_every_header_field(body))


@pytest.mark.parametrize("damage", ["deflate data", "crc", "length", "method", "header crc", "cut", "garbage after"])
def test_damage_fails_with_either_inflater(inflater, damage):
    good = gzip.compress(_text(200_000)) if damage != "header crc" else _every_header_field(_text(200_000))
    blob = bytearray(good)
    if damage == "header crc":
        blob[good.index(b"a comment\0") + 10] ^= 1
    elif damage == "deflate data":
        blob[40:80] = bytes(range(40))
    elif damage == "crc":
        blob[-8] ^= 1
    elif damage == "length":
        blob[-2] ^= 1
    elif damage == "method":
        blob[2] = 7
    elif damage == "cut":
        blob = blob[:-5]
    else:
        blob += b"\x01garbage"
    with pytest.raises(DECODE_ERRORS):
        _read_all(bytes(blob), 4096, 1 << 16)


def test_the_inflater_lets_go_of_the_gil(inflater):
    """Layers are inflated on a thread of their own, beside the walk: both inflaters must release
    the GIL, or the thread would only take turns with the walk."""
    import threading
    import time
    blob = gzip.compress(_text(8 << 20), compresslevel=1)
    start = threading.Event()
    seen = []

    def count():
        start.wait()
        n = 0
        while start.is_set():
            n += 1
            time.sleep(0)
        seen.append(n)

    other = threading.Thread(target=count)
    other.start()
    start.set()
    try:
        for _ in range(3):
            inflate.gzip_inflater().decompress(blob)
    finally:
        start.clear()
        other.join()
    assert seen[0] > 50  # the other thread ran while C inflated
