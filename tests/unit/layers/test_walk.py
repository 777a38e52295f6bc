"""The layer walk: one pass over a tar stream, path events for the overlay, hits for every file."""
from __future__ import annotations

import tarfile

import pytest

from scanner.layers.walk import norm_path, scan_layer
from scanner.models import Skipped
from scanner.pathevents import EntryKind, PathEvent
from scanner.sources.interface import SourceError
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import layer_file, raw_entry

ENV = f"A=1\nKEY={sc.AWS_KEY_ID}\n".encode()  # the key is on line 2


def events(scan) -> list[tuple[str, EntryKind, int]]:
    return [(e.path, e.kind, e.ordinal) for e in scan.events]


def hits(scan) -> list[tuple[str, str, int, int]]:
    return [(h.rule_id, h.path, h.line, h.ordinal) for h in scan.hits]


def test_events_for_every_entry_kind(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [
        ik.dir("/"),  # the root entry itself: no event, but it keeps its ordinal
        ik.dir("/app"),
        ik.file("/app/.env", ENV),
        ik.symlink("/app/link", "/app/.env"),
        ik.hardlink("/app/hard", "/app/.env"),
        ik.whiteout("/app/old.conf"),
        ik.dir("/var"),
        ik.opaque("/var"),
        ik.fifo("/var/pipe"),
        ik.device("/var/null"),
        ik.whiteout("/etc"),
    ])
    scan = scan_layer(layer, content)
    assert events(scan) == [
        ("/app", EntryKind.DIR, 1),
        ("/app/.env", EntryKind.FILE, 2),
        ("/app/link", EntryKind.SYMLINK, 3),
        ("/app/hard", EntryKind.HARDLINK, 4),
        ("/app/old.conf", EntryKind.WHITEOUT, 5),
        ("/var", EntryKind.DIR, 6),
        ("/var", EntryKind.OPAQUE, 7),
        ("/var/pipe", EntryKind.OTHER, 8),
        ("/var/null", EntryKind.OTHER, 9),
        ("/etc", EntryKind.WHITEOUT, 10),
    ]
    assert scan.files == 2  # the file and its hardlink
    assert scan.bytes == len(ik.layer_tar([ik.dir("/"), ik.dir("/app"), ik.file("/app/.env", ENV),
                                           ik.symlink("/app/link", "/app/.env"),
                                           ik.hardlink("/app/hard", "/app/.env"),
                                           ik.whiteout("/app/old.conf"), ik.dir("/var"), ik.opaque("/var"),
                                           ik.fifo("/var/pipe"), ik.device("/var/null"), ik.whiteout("/etc")]))
    assert scan.skipped == ()


def test_hidden_file_whiteout_and_root_opaque(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [ik.whiteout("/app/.env"), ik.opaque("/")])
    assert events(scan_layer(layer, content)) == [("/app/.env", EntryKind.WHITEOUT, 0), ("/", EntryKind.OPAQUE, 1)]


def test_whiteout_markers_are_not_scanned_as_files(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [ik.whiteout("/app/.env"), ik.opaque("/srv")])
    scan = scan_layer(layer, content)
    assert scan.files == 0 and scan.hits == ()


@pytest.mark.parametrize("compression", ik.COMPRESSIONS)
def test_dot_slash_names_are_normalised(tmp_path, content, compression):
    layer = layer_file(tmp_path / "l.tar", [
        ik.dir("/"), ik.dir("/app"), ik.file("/app/.env", ENV), ik.hardlink("/app/hard", "/app/.env"),
        ik.whiteout("/app/gone"), ik.opaque("/app")], compression=compression, dot_slash=True)
    scan = scan_layer(layer, content)
    assert events(scan) == [("/app", EntryKind.DIR, 1), ("/app/.env", EntryKind.FILE, 2),
                            ("/app/hard", EntryKind.HARDLINK, 3), ("/app/gone", EntryKind.WHITEOUT, 4),
                            ("/app", EntryKind.OPAQUE, 5)]
    assert hits(scan) == [("unit-aws-key-id", "/app/.env", 2, 2), ("unit-aws-key-id", "/app/hard", 2, 3)]


@pytest.mark.parametrize("name,expected", [
    ("../../etc/shadow", "/etc/shadow"),
    ("./../app/.env", "/app/.env"),
    ("app/../../../x/.env", "/x/.env"),
    ("/abs/.env", "/abs/.env"),
    ("//double//slash/.env", "/double/slash/.env"),
    ("./a/./b/.env", "/a/b/.env"),
])
def test_climbing_names_stay_inside_the_root(tmp_path, content, name, expected):
    layer = layer_file(tmp_path / "l.tar", tar=ik.layer_tar([raw_entry(name, ENV)]))
    scan = scan_layer(layer, content)
    assert events(scan) == [(expected, EntryKind.FILE, 0)]
    assert hits(scan) == [("unit-aws-key-id", expected, 2, 0)]


@pytest.mark.parametrize("name,expected", [
    ("", "/"), (".", "/"), ("./", "/"), ("/", "/"), ("..", "/"), ("../..", "/"), ("a/b/..", "/a"),
])
def test_norm_path(name, expected):
    assert norm_path(name) == expected


def test_climbing_whiteout_and_opaque_stay_inside(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", tar=ik.layer_tar([
        raw_entry("../../app/.wh..env"), raw_entry("../.wh..wh..opq")]))
    assert events(scan_layer(layer, content)) == [("/app/.env", EntryKind.WHITEOUT, 0), ("/", EntryKind.OPAQUE, 1)]


def test_hardlink_content_is_attributed_to_the_link(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [
        ik.dir("/app"), ik.file("/app/.env", ENV), ik.hardlink("/srv/copy", "/app/.env"),
        ik.hardlink("/srv/copy2", "/srv/copy")])  # a link to a link
    scan = scan_layer(layer, content)
    assert hits(scan) == [
        ("unit-aws-key-id", "/app/.env", 2, 1),
        ("unit-aws-key-id", "/srv/copy", 2, 2),
        ("unit-aws-key-id", "/srv/copy2", 2, 3),
    ]
    assert len({h.secret.sha256 for h in scan.hits}) == 1
    assert scan.skipped == ()


def test_hardlink_to_a_missing_target_is_skipped(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [
        ik.dir("/app"), ik.hardlink("/app/link", "/app/missing"),
        ik.hardlink("/app/early", "/app/.env"), ik.file("/app/.env", ENV)],  # target after the link
        index=3)
    scan = scan_layer(layer, content)
    assert scan.skipped == (
        Skipped("/app/link", "hardlink to /app/missing, which this layer does not hold", 3),
        Skipped("/app/early", "hardlink to /app/.env, which this layer does not hold", 3),
    )
    assert hits(scan) == [("unit-aws-key-id", "/app/.env", 2, 3)]


def test_hardlink_with_climbing_target(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", tar=ik.layer_tar([
        raw_entry("app/.env", ENV), raw_entry("app/link", type_=tarfile.LNKTYPE, linkname="../../app/.env")]))
    assert hits(scan_layer(layer, content)) == [
        ("unit-aws-key-id", "/app/.env", 2, 0), ("unit-aws-key-id", "/app/link", 2, 1)]


@pytest.mark.parametrize("target", ["/app/.env", ".env", "../../../../app/.env", "/etc/passwd", "/proc/self/environ"])
def test_symlinks_are_never_followed(tmp_path, content, target):
    layer = layer_file(tmp_path / "l.tar", [
        ik.dir("/app"), ik.file("/app/.env", ENV), ik.symlink("/app/link", target)])
    scan = scan_layer(layer, content)
    assert hits(scan) == [("unit-aws-key-id", "/app/.env", 2, 1)]
    assert events(scan)[-1] == ("/app/link", EntryKind.SYMLINK, 2)
    assert scan.files == 1 and scan.skipped == ()


def test_symlink_before_its_target_is_not_read_either(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [ik.symlink("/link", "/real"), ik.file("/real", ENV)])
    assert hits(scan_layer(layer, content)) == [("unit-aws-key-id", "/real", 2, 1)]


def test_duplicate_entries_in_one_layer_are_both_scanned(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [ik.file("/app/.env", ENV), ik.file("/app/.env", b"clean\n")])
    scan = scan_layer(layer, content)
    assert events(scan) == [("/app/.env", EntryKind.FILE, 0), ("/app/.env", EntryKind.FILE, 1)]
    assert hits(scan) == [("unit-aws-key-id", "/app/.env", 2, 0)]


def test_layer_scan_digests_when_the_source_knows_none(tmp_path, content):
    entries = [ik.file("/a", b"a")]
    layer = layer_file(tmp_path / "l.tar.gz", entries, compression="gzip", check=False)
    tar = ik.layer_tar(entries)
    scan = scan_layer(layer, content)
    assert scan.diff_id == ik.sha256(tar)
    assert scan.digest == ik.sha256(ik.compress(tar, "gzip"))
    assert scan.bytes == len(tar)


def test_progress_reports_every_blob_byte(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar.zst", [ik.file(f"/f{i}", bytes(range(256)) * 64) for i in range(40)],
                       compression="zstd")
    seen: list[int] = []
    scan_layer(layer, content, seen.append)
    assert sum(seen) == layer.blob.size


def test_garbage_header_mid_layer_is_an_error_not_an_early_end(tmp_path, content):
    """Entries after a broken header would be silently unscanned: it must be an error."""
    tar = (ik.layer_tar([ik.file("/a", b"a")], end_marker=False) + b"\x01" * 512
           + ik.layer_tar([ik.file("/app/.env", ENV)]))
    layer = layer_file(tmp_path / "l.tar", tar=tar)  # the digests match the damaged bytes
    with pytest.raises(SourceError) as err:
        scan_layer(layer, content)
    assert str(err.value).startswith("layer 0: corrupt tar stream (")


def test_layer_cut_inside_a_header_is_an_error(tmp_path, content):
    tar = ik.layer_tar([ik.file("/a", b"a")], end_marker=False) + ik.layer_tar([ik.file("/b", b"b")])[:300]
    layer = layer_file(tmp_path / "l.tar", tar=tar)
    with pytest.raises(SourceError) as err:
        scan_layer(layer, content)
    assert str(err.value).startswith("layer 0: corrupt tar stream (")


def test_layer_cut_inside_file_data_is_an_error(tmp_path, content):
    tar = ik.layer_tar([ik.file("/a", b"x" * 5000)], end_marker=False)[:2000]
    layer = layer_file(tmp_path / "l.tar", tar=tar)
    with pytest.raises(SourceError) as err:
        scan_layer(layer, content)
    assert str(err.value) == "layer 0: corrupt tar stream (unexpected end of data)"


def test_empty_layer(tmp_path, content):
    layer = layer_file(tmp_path / "l.tar", [])
    scan = scan_layer(layer, content)
    assert (scan.events, scan.hits, scan.skipped, scan.files, scan.bytes) == ((), (), (), 0, 1024)


def test_path_event_model():
    assert PathEvent("/a", EntryKind.FILE, 0) == PathEvent("/a", EntryKind.FILE, 0)


def _raw_name_member(name: bytes, data: bytes, fmt: int) -> bytes:
    info = tarfile.TarInfo(name.decode("utf-8", "surrogateescape"))
    info.size, info.mode = len(data), 0o644
    return info.tobuf(fmt, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % 512)


def test_names_that_are_not_utf8_become_printable(tmp_path, content):
    """Latin-1 file names exist in real images: they must hash, print and serialise."""
    tar = (_raw_name_member(b"app/caf\xe9.env", ENV, tarfile.GNU_FORMAT)
           + _raw_name_member(b"app/\xff" + b"x" * 120 + b".env", ENV, tarfile.PAX_FORMAT) + b"\0" * 1024)
    scan = scan_layer(layer_file(tmp_path / "l.tar", tar=tar), content)
    long_name = "/app/\\xff" + "x" * 120 + ".env"
    assert events(scan) == [("/app/caf\\xe9.env", EntryKind.FILE, 0), (long_name, EntryKind.FILE, 1)]
    assert hits(scan) == [("unit-aws-key-id", "/app/caf\\xe9.env", 2, 0), ("unit-aws-key-id", long_name, 2, 1)]
    for e in scan.events:
        e.path.encode("utf-8")  # no surrogates left


@pytest.mark.parametrize("path", ["/usr/lib/big", "/app/big"])
@pytest.mark.parametrize("size", [100, (8 << 20) + 5, (20 << 20) + 3])
def test_the_file_of_a_hit_is_hashed_whole(tmp_path, content, size, path):
    """sha256 and md5 (provenance, dpkg triage) of the whole file, kept in memory or hashed beside
    the scan (over 8 MiB); sha1 (apk) of files kept whole. Streamed, md5 only where a package may
    have put the file (not /app). The key sits at the file's start, so the scan has its hit long
    before the end."""
    import hashlib
    data = ENV + b"abcdefghijklmno\n" * (size // 16) + b"x" * (size % 16)
    other = ik.file("/after", ENV)  # the walk reads on from the right place afterwards
    scan = scan_layer(layer_file(tmp_path / "l.tar", [ik.file(path, data), other], compression="gzip"), content)
    assert hits(scan) == [("unit-aws-key-id", path, 2, 0), ("unit-aws-key-id", "/after", 2, 1)]
    meta = scan.hits[0].file
    kept = size < 8 << 20
    md5 = hashlib.md5(data).hexdigest() if kept or path.startswith("/usr/") else None
    assert (meta.size, meta.sha256, meta.md5) == (len(data), hashlib.sha256(data).hexdigest(), md5)
    assert meta.sha1 == (hashlib.sha1(data).hexdigest() if kept else None)


def test_a_file_stopped_early_is_still_hashed_whole(tmp_path, content):
    """The scanner stops reading a file made of secrets: the rest is hashed all the same."""
    import hashlib
    from scanner.limits import Limits
    data = b"".join(b"KEY=AKIA%s\n" % hashlib.sha256(b"%d" % i).hexdigest().upper()[:16].encode()
                    for i in range(400_000))  # 10 MiB
    scan = scan_layer(layer_file(tmp_path / "l.tar", [ik.file("/dump", data)]), content,
                      limits=Limits(max_file_findings=3))
    assert len(scan.hits) == 3 and {h.file.sha256 for h in scan.hits} == {hashlib.sha256(data).hexdigest()}
    assert [s.reason.split(":")[0] for s in scan.skipped] == ["over 3 findings in this file"]


def test_norm_path_shortcuts_change_nothing():
    """Plain printable names skip the escaping, normal ones skip normpath: the same paths as the
    general way, on names made of the pieces that matter."""
    import posixpath
    import random
    from scanner.layers.walk import CONTROL

    def general(name: str) -> str:
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").translate(CONTROL)
        return posixpath.normpath("/" + name.lstrip("/")) if name not in ("", ".", "./") else "/"
    rng = random.Random(7)
    pieces = ["a", "bc", "/", ".", "..", "//", "./", "../", "x/", "\x00", "\n", "\x7f", "\udcff", "é", " "]
    for _ in range(50_000):
        name = "".join(rng.choice(pieces) for _ in range(rng.randrange(9)))
        assert norm_path(name) == general(name), repr(name)
