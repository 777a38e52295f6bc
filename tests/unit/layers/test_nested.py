"""Nested archives and compressed files: every secret with its path, inner path and line; every
limit and every corrupt member a Skipped with its reason, and the rest still scanned."""
from __future__ import annotations

import gzip
import io
import posixpath
import random
import tarfile
import tracemalloc
import zipfile

import pytest
import zstandard

from scanner.detectors.content import ContentScanner
from scanner.detectors.signature import SignatureDetector
from scanner.layers.nested import FileScanner, human_size
from scanner.layers.walk import scan_layer
from scanner.limits import MiB, Limits
from scanner.sources.interface import SourceError
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import layer_file

KEY, PAT = sc.AWS_KEY_ID, sc.GITHUB_PAT
AWS, GH = "unit-aws-key-id", "unit-github-pat"
PROPS = f"server.port=8080\n# creds\naws.key={KEY}\n".encode()  # the key is on line 3
MEMBER = "conf/app.properties"
ZIPS = ("zip", "jar", "war", "whl")
KINDS = ZIPS + ("tar", "tar.gz", "tar.zst", "gz", "zst")


# --- archive makers -----------------------------------------------------------------------------


class _Unseekable(io.RawIOBase):
    """zipfile writes data descriptors (sizes after the data) to a stream it cannot seek back in."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.data += b
        return len(b)


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED, *, streamed: bool = False,
              zip64: bool = False) -> bytes:
    out = _Unseekable() if streamed else io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            with z.open(info, "w", force_zip64=zip64) as f:
                f.write(data)
    return bytes(out.data) if streamed else out.getvalue()


def tar_bytes(members: dict[str, bytes]) -> bytes:
    return ik.pack_tar(members, dirs=False)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


def wrap(kind: str, member: str, data: bytes) -> tuple[str, bytes]:
    """An archive of `kind` holding `data` as `member`: a file name for it, and its bytes."""
    if kind in ("gz", "zst"):
        return f"{member}.{kind}", (gz if kind == "gz" else zst)(data)
    if kind in ZIPS:
        return f"pkg.{kind}", zip_bytes({member: data})
    tar = tar_bytes({member: data})
    return f"pkg.{kind}", {"tar": tar, "tar.gz": gz(tar), "tar.zst": zst(tar)}[kind]


def level_name(kind: str, member: str) -> str:
    """The inner-path level of `member` once wrapped: compressed files are named by their file name."""
    return posixpath.basename(member) if kind in ("gz", "zst") else member


def text_filler(n: int) -> bytes:
    """n bytes of lines that compress like real text (about 2:1), no secret in them."""
    rnd = random.Random(n)
    return b"".join(rnd.randbytes(24).hex().encode() + b"\n" for _ in range(n // 49 + 1))[:n]


# --- scanning --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(unit_rules) -> ContentScanner:
    return ContentScanner([SignatureDetector(unit_rules)], keep_values=True, chunk=4096, overlap=256)


def scan(content: ContentScanner, data: bytes, path: str = "/srv/file", limits: Limits = Limits(),
         files: FileScanner | None = None):
    files = files or FileScanner(content, limits)
    hits, skipped = files.scan(io.BytesIO(data).read, len(data), path, 7)
    assert all(h.ordinal == 7 and h.path == path for h in hits)
    assert all(s.path == path and s.layer is None for s in skipped)
    return [(h.rule_id, h.inner_path, h.line) for h in hits], [s.reason for s in skipped]


# --- every container kind, depth 1 and 2 ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_secret_at_depth_1(content, kind):
    name, blob = wrap(kind, MEMBER, PROPS)
    assert scan(content, blob, f"/srv/{name}") == ([(AWS, level_name(kind, MEMBER), 3)], [])


@pytest.mark.parametrize("kind", KINDS)
def test_secret_at_depth_2(content, kind):
    inner_name, inner = wrap(kind, MEMBER, PROPS)
    outer_name, outer = wrap(kind, "lib/" + inner_name, inner)
    expected = f"{level_name(kind, 'lib/' + inner_name)}!{level_name(kind, MEMBER)}"
    assert scan(content, outer, f"/srv/{outer_name}") == ([(AWS, expected, 3)], [])


def test_spring_boot_jar_in_a_war(content):
    jar = zip_bytes({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n", "application.properties": PROPS})
    war = zip_bytes({"index.html": b"<html/>", "BOOT-INF/lib/inner.jar": jar, "WEB-INF/web.xml": f"<t>{PAT}</t>".encode()})
    assert scan(content, war, "/app/app.war") == (
        [(AWS, "BOOT-INF/lib/inner.jar!application.properties", 3), (GH, "WEB-INF/web.xml", 1)], [])


@pytest.mark.parametrize("outer, inner", [("tar.gz", "whl"), ("zip", "gz"), ("tar.zst", "jar"), ("gz", "zip"),
                                          ("whl", "tar.gz"), ("tar", "zst")])
def test_mixed_nesting(content, outer, inner):
    inner_name, inner_blob = wrap(inner, MEMBER, PROPS)
    outer_name, outer_blob = wrap(outer, "deps/" + inner_name, inner_blob)
    expected = f"{level_name(outer, 'deps/' + inner_name)}!{level_name(inner, MEMBER)}"
    assert scan(content, outer_blob, f"/srv/{outer_name}")[0] == [(AWS, expected, 3)]


def test_gzip_header_name_names_the_content(content):
    buf = io.BytesIO()
    with gzip.GzipFile(filename="prod-dump.sql", fileobj=buf, mode="wb", mtime=0) as f:
        f.write(b"INSERT INTO t VALUES (1);\n" + f"-- {PAT}\n".encode())
    assert scan(content, buf.getvalue(), "/backup/latest.gz") == ([(GH, "prod-dump.sql", 2)], [])


@pytest.mark.parametrize("variant", [dict(streamed=True), dict(zip64=True), dict(method=zipfile.ZIP_STORED),
                                     dict(method=zipfile.ZIP_BZIP2), dict(streamed=True, zip64=True)])
def test_zip_variants(content, variant):
    blob = zip_bytes({"a.txt": b"nothing\n", MEMBER: PROPS}, **variant)
    assert scan(content, blob, "/x.zip") == ([(AWS, MEMBER, 3)], [])


def test_magic_bytes_not_names_decide(content):
    _, tgz = wrap("tar.gz", MEMBER, PROPS)
    assert scan(content, tgz, "/srv/readme.txt") == ([(AWS, MEMBER, 3)], [])
    assert scan(content, PROPS, "/srv/fake.zip") == ([(AWS, None, 3)], [])


# --- binaries, encodings and chunk borders inside archives -----------------------------------------


def test_binary_and_utf16_members(content):
    elf = b"\x7fELF\x02\x01\x01" + bytes(100) + KEY.encode() + bytes(50) + PAT.encode("utf-16-le") + bytes(9)
    ps1 = f"# deploy\r\n$token = '{PAT}'\r\n".encode("utf-16")
    blob = zip_bytes({"bin/tool": elf, "deploy.ps1": ps1, "be.txt": f"x\n\n{KEY}\n".encode("utf-16-be")})
    assert scan(content, blob, "/x.zip") == (
        [(AWS, "bin/tool", None), (GH, "bin/tool", None), (GH, "deploy.ps1", 2), (AWS, "be.txt", 3)], [])


@pytest.mark.parametrize("kind", ["zip", "gz", "tar.zst"])
def test_member_larger_than_the_chunk_secret_on_a_border(small, kind):
    for start in (4096 - 12, 3 * 4096 - 256 - 5, 5 * 4096 - 3):
        before = text_filler(start - 1) + b"\n"
        data = before + KEY.encode() + b"\n" + text_filler(20000)
        name, blob = wrap(kind, "logs/big.log", data)
        line = before.count(b"\n") + 1
        assert scan(small, blob, f"/var/{name}") == ([(AWS, level_name(kind, "logs/big.log"), line)], []), start


@pytest.mark.parametrize("kind", ["zip", "gz"])
def test_a_large_member_is_streamed_not_read_whole(small, kind):
    size = 24 * MiB
    _, blob = wrap(kind, "big.log", text_filler(size - 100) + f"\n{KEY}\n".encode())
    tracemalloc.start()
    try:
        hits, skipped = scan(small, blob, "/big")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [h[0] for h in hits] == [AWS] and skipped == []
    assert peak < 8 * MiB, f"peak {peak} bytes for a {size}-byte member"


# --- bombs, depth, corruption: a Skipped, and the rest still scanned --------------------------------


def test_zip_bomb_stops_while_expanding(content):
    blob = zip_bytes({"ok.txt": PAT.encode(), "bomb.bin": bytes(256 * MiB), "after.txt": KEY.encode()})
    assert len(blob) < 400_000
    hits, skipped = scan(content, blob, "/srv/bomb.zip")
    assert hits == [(GH, "ok.txt", 1)]
    assert skipped == ["zip member bomb.bin: expansion ratio over 200:1 (bomb?); rest of the archive not scanned"]


def test_gzip_bomb(content, inflater):
    assert scan(content, gz(bytes(256 * MiB)), "/srv/zeros.gz") == ([], ["gzip: expansion ratio over 200:1 (bomb?)"])


def test_gzip_bomb_inside_a_zip_and_the_zip_goes_on(content):
    blob = zip_bytes({"a/zeros.gz": gz(bytes(64 * MiB)), "b.txt": PROPS}, zipfile.ZIP_STORED)
    assert scan(content, blob, "/x.zip") == ([(AWS, "b.txt", 3)], ["gzip a/zeros.gz: expansion ratio over 200:1 (bomb?)"])


def test_zstd_bomb(content):
    assert scan(content, zst(bytes(256 * MiB)), "/z.zst") == ([], ["zstd: expansion ratio over 200:1 (bomb?)"])


def test_ten_deep_nesting_stops_at_max_depth(content):
    blob = PROPS
    for level in range(10, 0, -1):
        blob = zip_bytes({f"l{level}.zip" if level < 10 else "secret.properties": blob})
    hits, skipped = scan(content, blob, "/deep.zip")
    assert hits == []
    assert skipped == ["archive member l1.zip!l2.zip!l3.zip: nested deeper than 3"]


def test_self_including_gzip_stops_at_max_depth(content):
    blob = PROPS
    for _ in range(12):
        blob = gz(blob)  # r.gz holds r.gz holds r.gz ...
    assert scan(content, blob, "/x/r.gz") == ([], ["archive member r!r!r: nested deeper than 3"])


def test_an_unopened_archive_still_has_its_raw_bytes_scanned(content):
    stored = zip_bytes({"k.txt": PROPS}, zipfile.ZIP_STORED)
    hits, skipped = scan(content, zip_bytes({"inner.zip": stored}), "/o.zip", Limits(max_depth=1))
    assert hits == [(AWS, "inner.zip", None)]
    assert skipped == ["archive member inner.zip: nested deeper than 1"]


def test_max_depth_zero_opens_nothing(content):
    _, blob = wrap("zip", MEMBER, PROPS)
    assert scan(content, blob, "/a.zip", Limits(max_depth=0))[1] == ["zip archive: nested deeper than 0"]


def corrupt_local_crc(blob: bytes, member: str) -> bytes:
    at = blob.index(b"PK\x03\x04")
    while blob[at + 30:at + 30 + len(member)] != member.encode():
        at = blob.index(b"PK\x03\x04", at + 4)
    data = bytearray(blob)
    data[at + 14] ^= 0xFF
    return bytes(data)


def test_zip_member_with_a_bad_crc_and_the_next_member_is_scanned(content):
    blob = corrupt_local_crc(zip_bytes({"a/b.txt": b"hello\n", "c.txt": PROPS}), "a/b.txt")
    assert scan(content, blob, "/x.jar") == ([(AWS, "c.txt", 3)], ["zip: corrupt member a/b.txt (bad CRC)"])


def test_zip_member_with_bad_deflate_data(content):
    blob = bytearray(zip_bytes({"first.txt": PROPS, "a/b.txt": text_filler(5000)}))
    at = blob.index(b"a/b.txt") + len("a/b.txt")
    blob[at + 5:at + 40] = bytes(35)
    hits, skipped = scan(content, bytes(blob), "/x.zip")
    assert hits == [(AWS, "first.txt", 3)]
    assert len(skipped) == 1 and skipped[0].startswith("zip: corrupt member a/b.txt (")


def test_truncated_zip(content):
    blob = zip_bytes({"first.txt": PROPS, "big.txt": text_filler(50000)})
    cut = blob[:blob.index(b"big.txt") + 2000]
    assert scan(content, cut, "/x.zip") == (
        [(AWS, "first.txt", 3)], ["zip: truncated in member big.txt; rest of the archive not scanned"])


def test_zip_cut_before_its_central_directory(content):
    blob = zip_bytes({"first.txt": PROPS})
    cut = blob[:blob.index(b"PK\x01\x02")]
    assert scan(content, cut, "/x.zip") == (
        [(AWS, "first.txt", 3)], ["zip: truncated after member first.txt; rest of the archive not scanned"])


def test_encrypted_zip_member(content):
    blob = bytearray(zip_bytes({"s.txt": PROPS, "t.txt": PROPS}, zipfile.ZIP_STORED))
    blob[6] |= 1  # general purpose flag bit 0 of the first local header: encrypted
    assert scan(content, bytes(blob), "/e.zip") == (
        [], ["zip: encrypted member s.txt (no password); rest of the archive not scanned"])


def test_zip_with_an_unsupported_method(content):
    blob = zip_bytes({"a.txt": PROPS}, zipfile.ZIP_LZMA)
    assert scan(content, blob, "/l.zip") == (
        [], ["zip: unsupported compression method 14 at its start; rest of the archive not scanned"])


def test_truncated_gzip_keeps_what_came_before(content, inflater):
    blob = gz(PROPS + text_filler(300_000))
    assert scan(content, blob[:len(blob) // 2], "/d.sql.gz") == (
        [(AWS, "d.sql", 3)], ["gzip: corrupt stream (truncated)"])


def test_corrupt_zstd(content):
    blob = bytearray(zst(PROPS + text_filler(100_000)))
    blob[20:60] = bytes(range(40))
    hits, skipped = scan(content, bytes(blob), "/d.zst")
    assert len(skipped) == 1 and skipped[0].startswith("zstd: corrupt stream (")


def test_nested_tar_with_a_garbled_header(content):
    tar = bytearray(tar_bytes({"a.txt": PROPS, "b.txt": b"b\n", "c.txt": PROPS}))
    second = tar.index(b"b.txt") - 0
    tar[second + 148:second + 154] = b"000001"  # the second header's checksum field
    hits, skipped = scan(content, bytes(tar), "/x.tar")
    assert hits == [(AWS, "a.txt", 3)]
    assert skipped == [f"tar: corrupt archive after member a.txt (bad checksum at byte {second}); "
                       "rest of the archive not scanned"]


def test_nested_tar_truncated_in_a_member(content):
    tar = tar_bytes({"a.txt": PROPS, "b.txt": text_filler(10000)})
    hits, skipped = scan(content, tar[:3000], "/x.tar")
    assert hits == [(AWS, "a.txt", 3)]
    assert skipped == ["tar: truncated in member b.txt; rest of the archive not scanned"]


@pytest.mark.parametrize("magic", [b"PK\x03\x04", b"\x1f\x8b\x08", b"\x28\xb5\x2f\xfd"])
@pytest.mark.parametrize("seed", range(15))
def test_garbage_after_a_magic_is_skipped_never_raised_never_silent(content, magic, seed):
    rnd = random.Random(seed)
    data = magic + rnd.randbytes(rnd.randrange(0, 5000))
    hits, skipped = scan(content, data, "/g")
    assert skipped, "a corrupt archive must not pass for clean"


# --- limits ---------------------------------------------------------------------------------------


def test_max_archive_bytes(content):
    blob = zip_bytes({"a.txt": text_filler(MiB), "b.txt": PROPS + text_filler(MiB),
                      "c.txt": text_filler(2 * MiB) + PROPS})
    hits, skipped = scan(content, blob, "/x.zip", Limits(max_archive_bytes=3 * MiB))
    assert hits == [(AWS, "b.txt", 3)]
    assert skipped == ["zip member c.txt: over 3 MiB expanded from one archive (max archive bytes); "
                       "rest of the archive not scanned"]


def test_max_layer_bytes_counts_every_archive_of_one_layer(content):
    files = FileScanner(content, Limits(max_layer_bytes=int(2.5 * MiB)))
    first = gz(PROPS + text_filler(2 * MiB))
    assert scan(content, first, "/a.gz", files=files) == ([(AWS, "a", 3)], [])
    assert scan(content, PROPS, "/plain", files=files) == ([(AWS, None, 3)], [])  # not an archive: scanned
    hits, skipped = scan(content, gz(text_filler(MiB) + PROPS), "/b.gz", files=files)
    assert hits == []
    assert skipped == [f"gzip: over {human_size(int(2.5 * MiB))} expanded from archives in this layer "
                       "(max layer bytes)"]
    fresh = FileScanner(content, Limits(max_layer_bytes=int(2.5 * MiB)))  # the next layer starts afresh
    assert scan(content, gz(PROPS + text_filler(MiB)), "/b.gz", files=fresh) == ([(AWS, "b", 3)], [])


def log_lines(n: int) -> bytes:
    """n bytes of log lines: compress about 10:1, under every ratio limit."""
    return b"".join(b"%08d INFO GET /api/items served in %d ms\n" % (i, i % 97) for i in range(n // 40 + 1))[:n]


def test_max_file_size_scans_the_first_bytes_and_goes_on(content):
    big = PROPS + log_lines(3 * MiB) + f"\nlate={PAT}\n".encode()
    blob = zip_bytes({"big.txt": big, "next.txt": f"{PAT}\n".encode()})
    assert len(blob) < MiB
    hits, skipped = scan(content, blob, "/x.zip", Limits(max_file_size=MiB))
    assert hits == [(AWS, "big.txt", 3), (GH, "next.txt", 1)]
    assert skipped == ["zip member big.txt: over the max file size: only the first 1 MiB scanned"]


def test_max_file_size_of_a_layer_file(content):
    data = PROPS + text_filler(2 * MiB) + f"\n{PAT}\n".encode()
    hits, skipped = scan(content, data, "/var/log/huge.log", Limits(max_file_size=MiB))
    assert hits == [(AWS, None, 3)]
    assert skipped == [f"file of {len(data)} bytes is over the max file size: only the first 1 MiB scanned"]


def test_max_file_size_below_a_small_file(content):
    """A file read whole (the small-file path) is still cut at the cap."""
    data = PROPS + text_filler(20_000) + f"\n{PAT}\n".encode()
    hits, skipped = scan(content, data, "/etc/app.conf", Limits(max_file_size=10_000))
    assert hits == [(AWS, None, 3)]
    assert skipped == [f"file of {len(data)} bytes is over the max file size: only the first 10000 bytes scanned"]


def test_a_capped_archive_says_so_once(content):
    rnd = random.Random(5)
    blob = zip_bytes({"a.txt": PROPS, "b.bin": rnd.randbytes(700_000), "c.bin": rnd.randbytes(700_000)})
    hits, skipped = scan(content, blob, "/x.zip", Limits(max_file_size=MiB))
    assert hits == [(AWS, "a.txt", 3)]
    assert skipped == [f"file of {len(blob)} bytes is over the max file size: only the first 1 MiB scanned"]


# --- through the layer walk ---------------------------------------------------------------------


def test_scan_layer_reaches_nested_content_and_lists_what_it_skipped(tmp_path, content):
    jar = zip_bytes({"application.properties": PROPS})
    war = zip_bytes({"index.html": b"<html/>", "BOOT-INF/lib/inner.jar": jar})
    deep = PROPS
    for level in range(10, 0, -1):
        deep = zip_bytes({f"l{level}.zip" if level < 10 else "k.properties": deep})
    broken = zip_bytes({"first.txt": f"{PAT}\n".encode(), "second.txt": text_filler(40000)})
    layer = layer_file(tmp_path / "layer.tar.gz", [
        ik.dir("/srv"),
        ik.file("/srv/app.war", war),
        ik.file("/srv/bomb.zip", zip_bytes({"bomb.bin": bytes(128 * MiB)})),
        ik.file("/srv/deep.zip", deep),
        ik.file("/srv/broken.zip", broken[:broken.index(b"second.txt") + 500]),
        ik.file("/backup/dump.sql.gz", gz(b"-- dump\n" + f"INSERT INTO k VALUES ('{KEY}');\n".encode())),
        ik.file("/app/.env", f"A=1\nTOKEN={PAT}\n".encode()),
        ik.hardlink("/srv/copy.war", "/srv/app.war"),
    ], compression="gzip", index=4)
    result = scan_layer(layer, content)
    assert [(h.rule_id, h.path, h.inner_path, h.line) for h in result.hits] == [
        (AWS, "/srv/app.war", "BOOT-INF/lib/inner.jar!application.properties", 3),
        (GH, "/srv/broken.zip", "first.txt", 1),
        (AWS, "/backup/dump.sql.gz", "dump.sql", 2),
        (GH, "/app/.env", None, 2),
        (AWS, "/srv/copy.war", "BOOT-INF/lib/inner.jar!application.properties", 3),
    ]
    assert [(s.layer, s.path, s.reason) for s in result.skipped] == [
        (4, "/srv/bomb.zip", "zip member bomb.bin: expansion ratio over 200:1 (bomb?); rest of the archive not scanned"),
        (4, "/srv/deep.zip", "archive member l1.zip!l2.zip!l3.zip: nested deeper than 3"),
        (4, "/srv/broken.zip", "zip: truncated in member second.txt; rest of the archive not scanned"),
    ]


def test_scan_layer_passes_its_limits_on(tmp_path, content):
    _, war = wrap("war", "WEB-INF/lib/app.jar", zip_bytes({"a.properties": PROPS}))
    layer = layer_file(tmp_path / "l.tar", [ik.file("/srv/app.war", war)])
    result = scan_layer(layer, content, limits=Limits(max_depth=1))
    assert result.hits == ()
    assert [(s.layer, s.reason) for s in result.skipped] == [(0, "archive member WEB-INF/lib/app.jar: nested deeper than 1")]


def test_alpine_apk_concatenated_gzip_streams(content, inflater):
    """An Alpine .apk: gzip streams of tar segments (signature, control, data) one after the other."""
    segments = [ik.layer_tar([ik.file(".SIGN.RSA.key.pub", b"sig")], end_marker=False),
                ik.layer_tar([ik.file(".PKGINFO", b"pkgname = app\n")], end_marker=False),
                ik.layer_tar([ik.file("etc/app/app.conf", PROPS)])]
    blob = b"".join(gz(s) for s in segments)
    assert scan(content, blob, "/lib/apk/cache/app-1.0.apk") == ([(AWS, "etc/app/app.conf", 3)], [])


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "zst"])
def test_a_truncated_layer_is_a_layer_error_not_a_skipped_member(tmp_path, content, kind):
    _, blob = wrap(kind, MEMBER, PROPS + text_filler(200_000))
    tar = ik.layer_tar([ik.file("/srv/pkg", blob)])
    layer = layer_file(tmp_path / "l.tar", tar=tar[:512 + len(blob) // 2], check=False)
    with pytest.raises(SourceError, match="corrupt tar stream"):
        scan_layer(layer, content)


def test_zstd_frame_with_a_huge_window_is_skipped_not_decoded(content):
    params = zstandard.ZstdCompressionParameters(window_log=27, compression_level=3, write_content_size=False)
    out = io.BytesIO()
    with zstandard.ZstdCompressor(compression_params=params).stream_writer(out, closefd=False) as w:
        w.write(PROPS)
    assert scan(content, out.getvalue(), "/x.zst") == (
        [], ["zstd: a frame needs over 32 MiB of decoder memory: not decoded"])


# --- a small gzip file inflated in one call finds what the streams find --------------------------

def _named_gz(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=out, mtime=0) as f:
        f.write(data)
    return out.getvalue()


@pytest.mark.parametrize("name,blob", [
    ("text", gz(PROPS)),
    ("named", _named_gz("app.properties", PROPS)),
    ("zero padded", gz(PROPS) + b"\0" * 600),
    ("two members", gz(PROPS) + gz(f"\n{PAT}\n".encode())),
    ("garbage after", gz(PROPS) + b"garbage!"),
    ("truncated", gz(PROPS + text_filler(50_000))[:-20]),
    ("crc damaged", gz(PROPS)[:-8] + b"\0\0\0\0" + gz(PROPS)[-4:]),
    ("tar inside", gz(tar_bytes({"a.properties": PROPS}))),
    ("gzip inside", gz(gz(PROPS))),
    ("expands past the ratio floor", gz(PROPS + b"\0" * (2 * MiB))),
    ("over the max file size", gz(text_filler(300_000) + f"\n{PAT}\n".encode())),
])
def test_small_gzip_in_one_call_equals_the_streams(content, monkeypatch, name, blob, inflater):
    limits = Limits(max_file_size=200_000)
    used = []
    one_call = FileScanner._small_gzip
    monkeypatch.setattr(FileScanner, "_small_gzip", lambda self, data, loc: used.append(one_call(self, data, loc)) or used[-1])
    fast = scan(content, blob, "/usr/share/doc/x/notes.gz", limits)
    if name in ("text", "named", "zero padded"):
        assert used == [True] and fast[0], "the one-call path was not taken"
    monkeypatch.setattr(FileScanner, "_small_gzip", lambda self, data, loc: False)
    assert scan(content, blob, "/usr/share/doc/x/notes.gz", limits) == fast, name


@pytest.mark.parametrize("kind", ["zip", "tar.gz", "tar.zst"])
def test_a_member_read_whole_finds_what_its_stream_finds(content, kind):
    """A member of up to one read is scanned whole (like a file of the layer); each kind of content,
    at the sizes around that read, gives what `scan_views` gives streaming the member's bytes."""
    from scanner.detectors.decode import scan_views
    from scanner.layers.nested import PULL
    text = PROPS + text_filler(3000) + f"token: {PAT}\n".encode()
    binary = b"\x7fELF\x02\x01\x01\x00" + bytes(64) + f"key={KEY}".encode("utf-16-le") + bytes(100)
    members = {"a.properties": text, "b.so": binary, "c.txt": "\ufeff" .encode("utf-16-le") +
               f"x\naws={KEY}\n".encode("utf-16-le"),
               "d.log": text_filler(PULL - len(PROPS)) + PROPS,  # exactly one read: the key on its last line
               "e.log": text_filler(PULL + 1 - len(PROPS)) + PROPS,  # one byte more: streamed
               "f.log": PROPS + text_filler(3 * PULL)}
    expected = [(loc.match.rule_id, name, loc.line) for name, data in members.items()
                for loc in scan_views(content, io.BytesIO(data).read, name)]
    archive = zip_bytes(members) if kind == "zip" else {"tar.gz": gz, "tar.zst": zst}[kind](tar_bytes(members))
    found, skipped = scan(content, archive, f"/srv/pkg.{kind}")
    assert sorted(found, key=str) == sorted(expected, key=str) and skipped == []
    assert {name for _, name, _ in found} == set(members)  # every member has its secret
