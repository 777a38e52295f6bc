"""A layer holds what Go's archive/tar reads from it (containerd, moby and umoci apply layers
with it): where CPython's tarfile reads otherwise, a secret was hidden. Each case plants one that
Docker would extract, or a whiteout that Docker would not apply; the walk must agree with Go.
(The differential test over many more streams: test_tar_go.py.)"""
from __future__ import annotations

import time
import tracemalloc

import pytest

from tests.hostile import kit
from tests.hostile.test_entries import AWS, BESIDE, ENV, FOUND, one_layer


def rec(key: bytes, value: bytes) -> bytes:
    return kit.pax_record(key, value)


def test_a_global_header_applies_to_no_file(tmp_path, scan):
    """Was: its `size=0` emptied every later file (tarfile applies global records to each), and
    the files' data read as headers: the secret was never scanned."""
    path = one_layer(tmp_path, kit.pax(rec(b"size", b"0") + rec(b"path", b"x"), b"g"),
                     kit.member("app/a.env", ENV), BESIDE)
    outcome = scan(path)
    assert outcome.error is None
    assert outcome.findings == ((AWS, "/app/a.env", "present", 0, None), FOUND)


def test_a_global_header_names_no_path(tmp_path, scan):
    """A `g` entry named like a file is no file: it neither adds nor replaces one."""
    path = one_layer(tmp_path, BESIDE, kit.pax(rec(b"path", b"app/.env"), b"g"))
    assert scan(path).findings == (FOUND,)


@pytest.mark.parametrize("field", [b"\0\0\0\0\0\0\0\0%o\0\0", b"   00000%o  ", b"\0 \0 00000%o\0"])
def test_sizes_with_leading_nuls_or_spaces_are_read_as_go_reads_them(tmp_path, scan, field):
    """Was: tarfile read the size up to its first NUL (0), so the file's data was taken for the
    next header (and, a valid one planted there, the secret file was never scanned)."""
    field %= len(ENV)
    path = one_layer(tmp_path, kit.header("app/a.env", size_field=field) + kit.pad(ENV), BESIDE)
    assert scan(path).findings == ((AWS, "/app/a.env", "present", 0, None), FOUND)


def test_a_v7_header_has_no_prefix(tmp_path, scan):
    """Was: the prefix of a header without ustar magic was joined to its name, so `.wh..env` with
    a prefix `app` deleted /app/.env of the layer below; Go reads the whiteout as `/.env`."""
    whiteout = kit.header(".wh..env", extra={257: b"\0" * 8, 345: b"app"})
    layers = kit.image_of(kit.tar(BESIDE), kit.tar(whiteout))
    path, _ = kit.write(tmp_path, layers)
    assert scan(path).findings == (FOUND,)


def test_a_gnu_long_name_wins_over_a_pax_path(tmp_path, scan):
    """Go applies a GNU long name after the PAX records, whatever their order."""
    path = one_layer(tmp_path, kit.pax(rec(b"path", b"decoy")), kit.gnu_long(b"app/long.env"),
                     kit.member("short", ENV), BESIDE)
    assert scan(path).findings == ((AWS, "/app/long.env", "present", 0, None), FOUND)


def test_a_directory_claiming_data_hides_no_file(tmp_path, scan):
    """A directory's declared size has no data (Go): what follows is the next header, a file."""
    path = one_layer(tmp_path, kit.header("app/d", type_=b"5", size=512), kit.member("app/in.env", ENV), BESIDE)
    assert scan(path).findings == ((AWS, "/app/in.env", "present", 0, None), FOUND)


def test_a_zero_block_then_a_header_is_an_error(tmp_path, scan):
    """Go's reader stops with an error there; one zero block is not the end of the archive."""
    path, _ = kit.write(tmp_path, kit.image_of(BESIDE + bytes(512) + kit.member("app/after.env", ENV) + kit.END))
    assert scan(path).error == ("layer 0: corrupt tar stream (a header after a zero block at byte 1536 (Go's "
                                "archive/tar stops with an error there))")


def test_a_sparse_map_that_does_not_match_the_data_is_an_error(tmp_path, scan):
    path = one_layer(tmp_path, kit.pax(rec(b"GNU.sparse.major", b"0") + rec(b"GNU.sparse.minor", b"1")
                                       + rec(b"GNU.sparse.numblocks", b"1") + rec(b"GNU.sparse.map", b"0,5")
                                       + rec(b"GNU.sparse.size", b"9")), kit.member("x", ENV), BESIDE)
    assert scan(path).error == f"layer 0: corrupt tar stream (sparse map of 5 data bytes over {len(ENV)} stored " \
                               "in the entry at byte 1024)"


# --- a huge PAX record ---------------------------------------------------------------------------------


def test_a_huge_pax_comment_is_skipped_and_the_rest_scanned(tmp_path, scan):
    """Was: an 8 MiB `comment` made the whole layer an error. Now it is read past in bounded
    memory, listed as not scanned, and the entry it heads (its other records applied) scanned."""
    records = rec(b"comment", b"c" * (8 << 20)) + rec(b"path", b"app/pax.env")
    path = one_layer(tmp_path, kit.pax(records), kit.member("short", ENV), BESIDE)
    tracemalloc.start()
    started = time.monotonic()
    outcome = scan(path)
    elapsed, (_, peak) = time.monotonic() - started, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert outcome.error is None
    assert outcome.findings == ((AWS, "/app/pax.env", "present", 0, None), FOUND)
    assert outcome.skipped == ((0, "/app/pax.env", f"PAX record comment: {len(rec(b'comment', b'c' * (8 << 20)))} "
                                                   "bytes too big to read: not scanned"),)
    print(f"8 MiB PAX comment: {elapsed:.2f} s, peak traced memory {peak / 2**20:.1f} MiB")
    assert peak < 40 << 20  # the layer blob itself is held by the test's image writer: not 8 MiB more per record


@pytest.mark.parametrize("key", [b"path", b"linkpath", b"size", b"GNU.sparse.map"])
def test_a_huge_pax_record_go_acts_on_is_an_error(tmp_path, scan, key):
    """A path of 2 MiB is no path anyone can extract (Go refuses the header): one clear error."""
    records = rec(key, b"a" * (2 << 20))
    path = one_layer(tmp_path, kit.pax(records), kit.member("x", ENV), BESIDE)
    assert scan(path).error == (f"layer 0: corrupt tar stream (PAX record {key.decode()} of {len(records)} bytes "
                                "(Go refuses over 1048576) in the extended header at byte 0)")


def test_the_whole_pax_header_is_bounded(tmp_path, scan):
    path = one_layer(tmp_path, kit.pax(b"", declared=65 << 20) + b"\0" * (65 << 20), BESIDE)
    assert scan(path).error == ("layer 0: corrupt tar stream (extended header of 68157440 bytes (over 67108864) in "
                                "the extended header at byte 0)")


def test_many_small_records_past_a_mebibyte_are_an_error(tmp_path, scan):
    records = rec(b"comment", b"c" * 1000) * 1200
    path = one_layer(tmp_path, kit.pax(records), kit.member("x", ENV), BESIDE)
    assert scan(path).error == ("layer 0: corrupt tar stream (extended header with over 1048576 bytes of records "
                                "in the extended header at byte 0)")
