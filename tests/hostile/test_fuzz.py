"""The fuzz targets of fuzz/targets.py under hypothesis, in every test run: structured hostile
tars, mutations of the seeds, and raw bytes. A target may end only in a LayerscanError; anything
else is a crash (atheris explores the same targets for longer: fuzz/run.py)."""
from __future__ import annotations

import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.seeds import SEEDS
from fuzz.targets import TARGETS
from tests.hostile import kit

FUZZ = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A seed with a few bytes overwritten, maybe cut short, maybe grown with noise."""
    edits = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=6)

    def apply(args) -> bytes:
        seed, changes, cut, tail = args
        data = bytearray(seed)
        for at, value in changes:
            if data:
                data[at % len(data)] = value
        if cut is not None and data:
            del data[cut % len(data):]
        return bytes(data) + tail

    return st.tuples(st.sampled_from(seeds), edits, st.none() | st.integers(0, 1 << 20),
                     st.binary(max_size=64)).map(apply)


NAMES = st.sampled_from([b"a", b"app/.env", b"../../etc/passwd", b"/abs", b".wh..wh..opq", b"app/.wh.x",
                         b"\xff\xfe", b"", b"./", b"d/" * 60 + b"f"])
TYPES = st.sampled_from([tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE, tarfile.CHRTYPE,
                         tarfile.BLKTYPE, tarfile.DIRTYPE, tarfile.FIFOTYPE, tarfile.CONTTYPE, b"Z", b"\0"])
RECORDS = st.sampled_from([b"path", b"linkpath", b"size", b"mtime", b"uid", b"hdrcharset", b"GNU.sparse.map",
                           b"GNU.sparse.size", b"GNU.sparse.major", b"GNU.sparse.minor", b"GNU.sparse.realsize",
                           b"GNU.sparse.name", b"comment"])


@st.composite
def hostile_member(draw) -> bytes:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        records = b"".join(kit.pax_record(k, v) for k, v in draw(st.lists(
            st.tuples(RECORDS, st.sampled_from([b"1", b"0", b"-1", b"x", b"9" * 30, b"1e400", b"a,b", b"\xff",
                                                b"0,5,10,3"])), max_size=4)))
        return kit.pax(records, draw(st.sampled_from([tarfile.XHDTYPE, tarfile.XGLTYPE])))
    if kind == 1:
        return kit.gnu_long(draw(NAMES), draw(st.sampled_from([tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK])))
    if kind == 2:
        return kit.old_gnu_sparse("s", [(draw(st.integers(0, 1 << 41)), b"KEY=AKIAIOSFODNN7EXAMPLE")],
                                  draw(st.integers(0, 1 << 41)))
    if kind == 3:
        size_field = draw(st.none() | st.sampled_from([b"\x80" + b"\xff" * 11, b"\xff" * 12, b"zzzzzzzzzzz\0"]))
        return kit.header(draw(NAMES), type_=draw(TYPES), size_field=size_field) + kit.pad(b"x" * 100)
    data = draw(st.binary(max_size=600))
    return kit.header(draw(NAMES), size=len(data), type_=draw(TYPES), linkname=draw(NAMES)) + kit.pad(data)


@FUZZ
@given(st.lists(hostile_member(), max_size=6), st.booleans())
def test_tar_walk_structured(members, end):
    TARGETS["tar_walk"](kit.tar(*members, kit.member("app/.env", b"KEY=AKIAIOSFODNN7EXAMPLE\n"), end=end))


@FUZZ
@given(st.lists(hostile_member(), max_size=6))
def test_nested_tar_structured(members):
    TARGETS["nested"](kit.tar(*members))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_seeds_pass(target):
    for seed in SEEDS[target]():
        TARGETS[target](seed)


def _mutation_test(target: str):
    @FUZZ
    @given(mutated(SEEDS[target]()))
    def test(data):
        TARGETS[target](data)
    test.__name__ = f"test_{target}_mutated"
    return test


def _raw_test(target: str):
    @FUZZ
    @given(st.binary(max_size=4096))
    def test(data):
        TARGETS[target](data)
    test.__name__ = f"test_{target}_raw_bytes"
    return test


for _target in TARGETS:
    globals()[f"test_{_target}_mutated"] = _mutation_test(_target)
    globals()[f"test_{_target}_raw_bytes"] = _raw_test(_target)
