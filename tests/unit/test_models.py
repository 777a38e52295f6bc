"""The packed path events of a layer: the same events back, in order, pickled whole."""
from __future__ import annotations

import pickle

import pytest

from scanner.cache import decode, encode
from scanner.models import LayerScan
from scanner.pathevents import EntryKind, PathEvent, PathEvents

EVENTS = [PathEvent("/app/.env", EntryKind.FILE, 3), PathEvent("/", EntryKind.OPAQUE, 0),
          PathEvent("/usr/lib/é/x\\x00y", EntryKind.SYMLINK, 7), PathEvent("/srv", EntryKind.DIR, 2 ** 40),
          PathEvent("/app/.env", EntryKind.WHITEOUT, 9), PathEvent("/s\udcff", EntryKind.HARDLINK, 1)]


def test_events_come_back_as_given():
    packed = PathEvents(EVENTS)
    assert list(packed) == EVENTS and len(packed) == len(EVENTS)
    assert packed == tuple(EVENTS) and packed == PathEvents(EVENTS) and packed != tuple(EVENTS[:-1])
    assert PathEvents() == () and list(PathEvents()) == [] and len(PathEvents()) == 0
    assert PathEvents([PathEvent("", EntryKind.FILE, 0)]) == (PathEvent("", EntryKind.FILE, 0),)


def test_the_events_at_some_paths_in_order():
    packed = PathEvents(EVENTS)
    for wanted in ({"/app/.env"}, {"/", "/s\udcff", "/nowhere"}, set(), {e.path for e in EVENTS}):
        assert list(packed.at(wanted)) == [e for e in EVENTS if e.path in wanted]
    assert list(PathEvents().at({"/"})) == []


def test_pickled_and_cached_whole():
    packed = PathEvents(EVENTS[:-1])  # the cache's JSON holds text (walk paths never hold surrogates)
    assert pickle.loads(pickle.dumps(packed)) == packed
    scan = LayerScan("sha256:" + "a" * 64, "sha256:" + "b" * 64, packed, (), (), 3, 1024)
    assert pickle.loads(pickle.dumps(scan)) == scan
    assert decode(encode(scan), 0).events == packed


def test_a_nul_in_a_path_is_refused():
    with pytest.raises(ValueError, match="NUL"):
        PathEvents([PathEvent("/a\0b", EntryKind.FILE, 0)])


def test_many_events_take_the_memory_of_their_paths():
    import tracemalloc
    tracemalloc.start()
    packed = PathEvents()
    for i in range(200_000):
        packed.add(f"/usr/lib/python3/site-packages/pkg{i % 997}/module_{i}.py", EntryKind.FILE, i)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # the paths' bytes, about 12 MB (as PathEvent objects: over 40 MB)
    assert len(packed) == 200_000 and size < 20 << 20, size


@pytest.mark.parametrize("parts", [
    (b"/a\0/b", b"\0", [1]),  # two paths, one kind
    (b"/a", b"\0\0", [1, 2]),  # one path, two kinds
    (b"/a", b"\0", [1, 2]),  # one path, two ordinals
    (b"/a", b"\x63", [1]),  # no such kind
    (b"/a", b"", []),  # a path, no event
])
def test_packed_parts_that_do_not_fit_are_refused(parts):
    from array import array
    from scanner.cache import decode_row, encode
    paths, kinds, ordinals = parts
    with pytest.raises(ValueError):
        PathEvents.from_parts(paths, kinds, array("q", ordinals))
    good = encode(LayerScan("sha256:" + "a" * 64, "sha256:" + "b" * 64, PathEvents(EVENTS[:1]), (), (), 1, 1))
    bad = good.replace('"/app/.env"', '"/app/.env\\u0000/x"')
    assert bad != good and decode_row((bad,), 0) is None  # a damaged cache entry is a miss: scanned again
