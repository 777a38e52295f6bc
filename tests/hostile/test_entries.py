"""Hostile tar entries in a layer: each case with a secret planted beside it, which must still be
found. Outcomes are exact: the findings (rule, path, status, layer, removed in), the skipped list,
or the one error line."""
from __future__ import annotations

import tarfile

import pytest

from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit

AWS = "unit-aws-key-id"
ENV = f"A=1\nKEY={sc.AWS_KEY_ID}\n".encode()
BESIDE = kit.member("app/.env", ENV)  # the secret planted beside the hostile content
FOUND = (AWS, "/app/.env", "present", 0, None)


def one_layer(tmp_path, *members: bytes, kind: str = "oci-archive", compression: str = "gzip"):
    path, _ = kit.write(tmp_path, kit.image_of(kit.tar(*members)), kind, compression)
    return path


def link(name, target, type_=tarfile.SYMTYPE) -> bytes:
    return kit.header(name, type_=type_, linkname=target)


# --- names that climb out, absolute names --------------------------------------------------------


def test_traversal_and_absolute_names_land_inside_the_image(tmp_path, scan):
    path = one_layer(tmp_path, kit.member("../../etc/passwd", ENV), kit.member("/abs/.env", ENV),
                     kit.member("./../../../../root/.env", ENV), link("../../escape", "/etc/shadow"),
                     kit.member("app/../../.wh.victim"), BESIDE)
    assert scan(path).findings == (
        (AWS, "/etc/passwd", "present", 0, None), (AWS, "/abs/.env", "present", 0, None),
        (AWS, "/root/.env", "present", 0, None), FOUND)
    assert scan(path).skipped == ()


# --- links: loops, pointing outside, dangling ----------------------------------------------------


def test_symlink_loops_and_links_out_of_the_image_are_never_followed(tmp_path, scan):
    path = one_layer(tmp_path, link("a", "b"), link("b", "a"), link("self", "self"),
                     link("loop/x", "../loop/x"), link("up", "../../../../../.."),
                     link("app/passwd", "/etc/passwd"), link("app/proc", "/proc/self/environ"),
                     link("app/host", "../../../../../../host/.env"), BESIDE)
    outcome = scan(path)
    assert (outcome.findings, outcome.skipped) == ((FOUND,), ())


def test_hardlink_loops_and_links_out_of_the_image_are_skipped_with_the_reason(tmp_path, scan):
    hard = tarfile.LNKTYPE
    path = one_layer(tmp_path, link("h1", "h2", hard), link("h2", "h1", hard), link("hself", "hself", hard),
                     link("hout", "../../../../etc/shadow", hard), link("hsym", "sym", hard), link("sym", "app/.env"),
                     BESIDE, link("copy", "app/.env", hard))
    outcome = scan(path)
    assert outcome.findings == (FOUND, (AWS, "/copy", "present", 0, None))
    assert outcome.skipped == (
        (0, "/h1", "hardlink to /h2, which this layer does not hold"),
        (0, "/h2", "hardlink to /h1, which this layer does not hold"),
        (0, "/hself", "hardlink to /hself, which this layer does not hold"),
        (0, "/hout", "hardlink to /etc/shadow, which this layer does not hold"),
        (0, "/hsym", "hardlink to /sym, which this layer does not hold"))


def test_hardlink_to_a_file_that_does_not_exist(tmp_path, scan):
    path = one_layer(tmp_path, link("app/ghost", "app/nowhere", tarfile.LNKTYPE), BESIDE)
    outcome = scan(path)
    assert outcome.findings == (FOUND,)
    assert outcome.skipped == ((0, "/app/ghost", "hardlink to /app/nowhere, which this layer does not hold"),)


def test_archive_member_symlinks_that_loop_or_leave_the_archive(tmp_path, scan):
    """The image archive's own members: Docker 25+ `<id>/layer.tar` are symlinks into blobs/."""
    path, archive = kit.write(tmp_path, kit.image_of(kit.tar(BESIDE)), "docker-oci", "none")
    files = ik.read_archive(path)
    layer = archive.layer_member(0, 0)
    entries = [ik.file(n, files[n]) for n in files if n != layer]
    for target, reason in (("loop/layer.tar", "missing"), ("../../../../etc/passwd", "missing")):
        members = entries + [ik.symlink("loop/layer.tar", "../loop/layer.tar"), ik.symlink(layer, target)]
        path.write_bytes(ik.layer_tar(members))
        assert scan(path).error == f"{path}: missing {layer}"


def test_layout_blob_symlink_loop_is_a_missing_blob(tmp_path, scan):
    path, archive = kit.write(tmp_path, kit.image_of(kit.tar(BESIDE)), "oci-layout", "gzip")
    blob = path / archive.layer_member(0, 0)
    blob.unlink()
    blob.symlink_to(blob.name)  # a link to itself: ELOOP
    assert scan(path).error == f"{path}: missing {archive.layer_member(0, 0)}"


# --- devices, FIFOs, odd types ---------------------------------------------------------------------


def test_devices_and_fifos_are_never_opened(tmp_path, scan):
    path = one_layer(tmp_path, kit.header("dev/sda", type_=tarfile.BLKTYPE), kit.header("dev/zero", type_=tarfile.CHRTYPE),
                     kit.header("run/pipe", type_=tarfile.FIFOTYPE), kit.header("dev/tty", type_=tarfile.CHRTYPE),
                     BESIDE)
    outcome = scan(path)
    assert (outcome.findings, outcome.skipped) == ((FOUND,), ())


def test_a_device_that_claims_data_is_read_as_tar_and_go_read_it(tmp_path, scan):
    """tarfile and Go's archive/tar agree: a device has no data, whatever its size field says.
    The bytes after it are the next header: here a well-formed file, with the secret."""
    path = one_layer(tmp_path, kit.header("dev/null", type_=tarfile.CHRTYPE, size=len(BESIDE)), BESIDE)
    assert scan(path).findings == (FOUND,)


def test_unknown_entry_type_with_data_is_listed_as_not_scanned(tmp_path, scan):
    path = one_layer(tmp_path, kit.member("weird", ENV, type_=b"Z"), BESIDE)
    outcome = scan(path)
    assert outcome.findings == (FOUND,)
    assert outcome.skipped == ((0, "/weird", f"tar entry of unknown type 'Z': its {len(ENV)} bytes not scanned"),)


# --- deep, long, odd names --------------------------------------------------------------------------


def test_a_1000_level_deep_directory(tmp_path, scan):
    dirs = ["/".join(["d"] * i) for i in range(1, 1001)]
    deep = dirs[-1] + "/.env"
    layer0 = ik.layer_tar([ik.dir(d) for d in dirs] + [ik.file(deep, ENV)], fmt="pax")
    layer1 = ik.layer_tar([ik.whiteout("/d/d")], fmt="pax")  # deletes everything below level 1
    path, _ = kit.write(tmp_path, kit.image_of(layer0, kit.tar(BESIDE), layer1))
    assert scan(path).findings == ((AWS, "/" + deep, "deleted", 0, 2), (AWS, "/app/.env", "present", 1, None))


def test_gnu_long_names_and_link_names(tmp_path, scan):
    long_name = "app/" + "n" * 5000 + ".env"
    path = one_layer(tmp_path, kit.gnu_long(long_name.encode()), kit.member("x", ENV),
                     kit.gnu_long(b"t" * 3000, tarfile.GNUTYPE_LONGLINK), link("app/longlink", "x"),
                     BESIDE)
    assert scan(path).findings == ((AWS, "/" + long_name, "present", 0, None), FOUND)


def test_gnu_long_name_over_a_mebibyte_is_an_error(tmp_path, scan):
    path = one_layer(tmp_path, kit.gnu_long(b"n" * (1 << 20) + b".env"), kit.member("x", ENV), BESIDE)
    assert scan(path).error == "layer 0: corrupt tar stream (GNU long name of 1048581 bytes at byte 0 (over 1048576, which Go's archive/tar refuses too))"


def test_names_that_are_not_utf8(tmp_path, scan):
    path = one_layer(tmp_path, kit.member(b"app/caf\xe9.env", ENV, uname=b"\xff\xfeuser"),
                     kit.member(b"\xff\xfe/\x80.env", ENV), link(b"app/\xc3", b"\xff"), BESIDE)
    outcome = scan(path)
    assert outcome.findings == ((AWS, "/app/caf\\xe9.env", "present", 0, None),
                                (AWS, "/\\xff\\xfe/\\x80.env", "present", 0, None), FOUND)
    for f in outcome.result.findings:
        f.hit.path.encode("utf-8")  # printable and serialisable


def test_control_characters_in_names_never_reach_a_report_raw(tmp_path, scan):
    """An escape sequence in a file name would reach the terminal through the table report."""
    path = one_layer(tmp_path, kit.member("app/\x1b[2J\x1b]0;pwned\x07\n.env", ENV, uname=b"\x1b[31m"),
                     kit.member("app/pkg.zip", _zip({"\x1b[1mconf\r.env": ENV})), BESIDE)
    outcome = scan(path)
    assert outcome.findings == ((AWS, "/app/\\x1b[2J\\x1b]0;pwned\\x07\\x0a.env", "present", 0, None),
                                (AWS, "/app/pkg.zip", "present", 0, None), FOUND)
    assert outcome.result.findings[1].hit.inner_path == "\\x1b[1mconf\\x0d.env"
    assert outcome.result.findings[0].hit.file.uname == "\\x1b[31m"


def _zip(members: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_duplicate_entries(tmp_path, scan):
    path = one_layer(tmp_path, kit.member("app/.env", ENV), kit.member("app/.env", b"clean\n"),
                     kit.member("srv/.env", ENV), kit.member("srv/.env", ENV), BESIDE)
    assert scan(path).findings == ((AWS, "/app/.env", "overwritten", 0, 0), (AWS, "/srv/.env", "overwritten", 0, 0),
                                   (AWS, "/srv/.env", "present", 0, None), FOUND)


# --- whiteouts and opaque markers -----------------------------------------------------------------


def test_whiteout_for_a_path_never_created(tmp_path, scan):
    path, _ = kit.write(tmp_path, kit.image_of(kit.tar(BESIDE), ik.layer_tar([
        ik.whiteout("/never/was"), ik.whiteout("/app/.env.old"), ik.opaque("/nowhere"), ik.whiteout("/app/.env/x")])))
    assert scan(path).findings == (FOUND,)


def test_opaque_marker_at_the_root_hides_every_lower_layer(tmp_path, scan):
    path, _ = kit.write(tmp_path, kit.image_of(kit.tar(BESIDE), ik.layer_tar([ik.opaque("/")]),
                                              kit.tar(kit.member("app/.env", ENV))))
    assert scan(path).findings == ((AWS, "/app/.env", "deleted", 0, 1), (AWS, "/app/.env", "present", 2, None))


# --- PAX headers ----------------------------------------------------------------------------------


def test_pax_record_under_the_limit_is_read(tmp_path, scan):
    records = kit.pax_record(b"comment", b"c" * 900_000) + kit.pax_record(b"path", b"app/pax.env")
    path = one_layer(tmp_path, kit.pax(records), kit.member("short", ENV), BESIDE)
    assert scan(path).findings == ((AWS, "/app/pax.env", "present", 0, None), FOUND)


@pytest.mark.parametrize("case,members,reason", [
    ("huge declared size", [kit.pax(kit.pax_record(b"path", b"a"), declared=10 ** 10)],
     "extended header of 10000000000 bytes (over 67108864) in the extended header at byte 0"),
    ("zero-length record", [kit.pax(b"0 path=x\n"), kit.member("x")], "malformed PAX record in the extended header at byte 0"),
    ("negative size", [kit.pax(kit.pax_record(b"size", b"-5")), kit.member("x")],
     "negative size in the entry at byte 1024"),
    ("size past the end", [kit.pax(kit.pax_record(b"size", b"9" * 60)), kit.member("x")],
     "number out of range in a PAX header in the entry at byte 1024"),
    ("5000 headers in a row", [kit.pax(kit.pax_record(b"comment", b"x"))] * 5000,
     "over 64 extended headers in a row at byte 65536"),
    ("5000 long names in a row", [kit.gnu_long(b"a" * 200)] * 5000, "over 64 extended headers in a row at byte 65536"),
    ("GNU.sparse.map not numbers", [kit.pax(kit.pax_record(b"GNU.sparse.map", b"a,b")), kit.member("x")],
     "malformed number '' in a PAX header in the entry at byte 1024"),
    ("GNU.sparse.size not a number", [kit.pax(kit.pax_record(b"GNU.sparse.size", b"zz")
                                              + kit.pax_record(b"GNU.sparse.major", b"0")
                                              + kit.pax_record(b"GNU.sparse.minor", b"1")), kit.member("x")],
     "malformed number 'zz' in a PAX header in the entry at byte 1024"),
    ("sparse 1.0 map not numbers", [kit.pax(kit.pax_record(b"GNU.sparse.major", b"1")
                                            + kit.pax_record(b"GNU.sparse.minor", b"0")), kit.member("x", b"zz\n")],
     "unexpected end of data in a sparse map in the entry at byte 1024"),
])
def test_hostile_pax_headers_are_one_error(tmp_path, scan, case, members, reason):
    path = one_layer(tmp_path, *members, BESIDE)
    assert scan(path).error == f"layer 0: corrupt tar stream ({reason})", case


def test_pax_mtime_go_cannot_read_is_an_error(tmp_path, scan):
    """Go's parsePAXTime takes `[-]digits[.digits]` only: 1e400 or nan is a layer Docker refuses."""
    for mtime in (b"1e400", b"nan"):
        path = one_layer(tmp_path, kit.pax(kit.pax_record(b"mtime", mtime)), kit.member("app/inf.env", ENV), BESIDE)
        assert scan(path).error == "layer 0: corrupt tar stream (malformed number %r in a PAX header in the " \
            "entry at byte 1024)" % mtime.decode()


# --- sizes ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size_field,reason", [
    (b"\x80\0\0\0\x7f" + b"\xff" * 7, "unexpected end of data"),  # base-256: 2**63-1 bytes; used to hang
    (b"\x80" + b"\xff" * 11, "base-256 number over 63 bits in a header at byte 1024"),  # as Go
    (b"\xff" * 12, "negative size in the header at byte 1024"),
    (b"%011o\0" % (10 << 30), "unexpected end of data"),  # 10 GiB declared, 1 KiB there
])
@pytest.mark.parametrize("type_", [tarfile.REGTYPE, b"Z"])
def test_declared_sizes_past_the_data(tmp_path, scan, size_field, reason, type_):
    path = one_layer(tmp_path, BESIDE, kit.header("big", type_=type_, size_field=size_field) + kit.pad(b"x" * 1000))
    assert scan(path).error == f"layer 0: corrupt tar stream ({reason})"


# --- sparse files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", [kit.old_gnu_sparse, kit.pax_sparse_10], ids=["gnu-old", "pax-1.0"])
def test_sparse_file_of_terabytes_is_read_as_stored(tmp_path, scan, maker):
    """Its holes would read as 1 TiB of zeros: only the stored segments are scanned."""
    path = one_layer(tmp_path, maker("app/sparse.env", [(0, b"head\n"), (1 << 40, ENV)], (1 << 40) + len(ENV)),
                     BESIDE)
    outcome = scan(path)
    assert outcome.findings == ((AWS, "/app/sparse.env", "present", 0, None), FOUND)
    assert outcome.result.findings[0].hit.line == 3 and outcome.result.findings[0].hit.file.size == (1 << 40) + len(ENV)


def test_sparse_header_cut_short_is_an_error(tmp_path, scan):
    cut = kit.header("sp", type_=tarfile.GNUTYPE_SPARSE, extra={482: b"\x01"})  # "extended", then nothing
    path, _ = kit.write(tmp_path, kit.image_of(kit.tar(BESIDE, end=False) + cut))
    assert scan(path).error == "layer 0: corrupt tar stream (sparse header that is not GNU in the entry at byte 1024)"


# --- what comes after the end-of-archive marker ------------------------------------------------------


def test_data_after_the_end_of_archive_marker_is_listed_never_silent(tmp_path, scan):
    """No tar tool reads past the marker (Docker neither), so a second tar there is not in the
    filesystem; its bytes are in the image all the same: the report says so."""
    hidden = kit.tar(kit.member("app/hidden.env", ENV))
    path, _ = kit.write(tmp_path, kit.image_of(kit.tar(BESIDE) + hidden))
    outcome = scan(path)
    assert outcome.findings == (FOUND,)
    nonzero = len(hidden) - hidden.count(0)
    assert outcome.skipped == ((0, "/", f"data after the tar's end-of-archive marker ({nonzero} non-zero bytes): "
                                        "in the image, but no tar tool reads it; not scanned"),)


def test_zero_padding_after_the_marker_is_not_reported(tmp_path, scan):
    path, _ = kit.write(tmp_path, kit.image_of(kit.tar(BESIDE) + b"\0" * 10240))
    assert (scan(path).findings, scan(path).skipped) == ((FOUND,), ())
