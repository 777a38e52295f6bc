"""Hostile compressed streams and hostile image documents (manifest, index, config): each is one
exact outcome, an error line or a result, never a crash or a partial result passed off as whole."""
from __future__ import annotations

import gzip
import json

import pytest
import zstandard

from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit

AWS = "unit-aws-key-id"
ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()
TAR = kit.tar(kit.member("app/.env", ENV))
FOUND = (AWS, "/app/.env", "present", 0, None)


def image(tmp_path, *layers: bytes, kind: str = "oci-archive", **spec):
    return kit.write(tmp_path, kit.image_of(*(layers or (TAR,)), **spec), kind)


def swap_layer_blob(path, blob: bytes) -> None:
    """Store `blob` as layer 0 and point the manifest at it: digest and size match the new bytes,
    so only the decompressor can tell that they are damaged."""
    def change(manifest):
        manifest["layers"][0].update(digest=ik.sha256(blob), size=len(blob))
    kit.rewrite_oci(path, change, blobs=[blob])


# --- compressed streams -------------------------------------------------------------------------

GZ = gzip.compress(TAR, mtime=0)
ZST = zstandard.ZstdCompressor(write_checksum=True).compress(TAR)


CUT = "Compressed file ended before the end-of-stream marker was reached"


@pytest.mark.parametrize("name,blob,reasons", [  # the reason in the error, with zlib and with ISA-L
    ("gzip cut in half", GZ[: len(GZ) // 2], (CUT, CUT)),
    ("gzip without its trailer", GZ[:-8], (CUT, CUT)),
    ("gzip with garbage after it", GZ + b"garbage!", ("Not a gzipped file (b'ga')",) * 2),
    ("gzip with a bad CRC", GZ[:-8] + b"\0\0\0\0" + GZ[-4:], ("incorrect data check", "Incorrect checksum")),
    ("gzip with a bad length", GZ[:-4] + b"\1\0\0\0", ("incorrect length check", "Incorrect checksum")),
    ("gzip deflate data flipped", GZ[:12] + bytes(b ^ 0xFF for b in GZ[12:40]) + GZ[40:], ("invalid ", "Invalid ")),
])
def test_damaged_gzip_layer_whose_digest_matches(tmp_path, scan, name, blob, reasons, inflater):
    reason = reasons[inflater == "isal"]
    path, _ = image(tmp_path)
    swap_layer_blob(path, blob)
    error = scan(path).error
    assert error is not None, name
    assert error.startswith(f"layer 0 ({ik.sha256(blob)[:19]}): corrupt compressed stream ("), (name, error)
    assert reason in error, (name, error)


@pytest.mark.parametrize("name,blob", [
    ("zstd frame corrupted", ZST[:8] + bytes(b ^ 0x55 for b in ZST[8:30]) + ZST[30:]),
    ("zstd bad checksum", ZST[:-4] + b"\0\0\0\0"),
])
def test_damaged_zstd_layer_whose_digest_matches(tmp_path, scan, name, blob):
    path, _ = image(tmp_path)
    swap_layer_blob(path, blob)
    error = scan(path).error
    assert error is not None, name
    assert error.startswith(f"layer 0 ({ik.sha256(blob)[:19]}): corrupt compressed stream ("), (name, error)


def test_zstd_cut_mid_frame_ends_quietly_and_the_tar_says_so(tmp_path, scan):
    """python-zstandard's reader ends without an error where a frame is cut: what it gave is
    short, so the tar walk (or else the diff_id check) fails, never a clean result."""
    blob = ZST[: len(ZST) // 2]
    path, _ = image(tmp_path)
    swap_layer_blob(path, blob)
    assert scan(path).error.startswith("layer 0 (sha256:")  # as Go: no tar left, then the diff_id check
    assert "diff_id: digest mismatch" in scan(path).error


def test_gzip_of_a_truncated_tar_is_a_tar_error(tmp_path, scan):
    blob = gzip.compress(TAR[:700], mtime=0)  # well-formed gzip, the tar inside cut in a file's data
    path, _ = image(tmp_path)
    swap_layer_blob(path, blob)
    assert scan(path).error == "layer 0: corrupt tar stream (unexpected end of data)" or \
        "diff_id: digest mismatch" in scan(path).error


# --- manifests that list a layer twice, or one that is missing --------------------------------------


def test_manifest_listing_the_same_layer_twice(tmp_path, scan):
    """Scanned once; the second copy re-adds the same path: the first is overwritten by it."""
    path, archive = image(tmp_path)
    layer = archive.images[0].manifest["layers"][0]

    def twice_manifest(manifest):
        manifest["layers"] = [layer, layer]

    def twice_config(config):
        config["rootfs"]["diff_ids"] *= 2
        config["history"] *= 2
    kit.rewrite_oci(path, twice_manifest, twice_config)
    assert scan(path).findings == ((AWS, "/app/.env", "overwritten", 0, 1), (AWS, "/app/.env", "present", 1, None))


def test_docker_manifest_listing_the_same_layer_twice_against_one_diff_id(tmp_path, scan):
    path, _ = image(tmp_path, kind="docker-legacy")
    kit.rewrite_docker(path, lambda doc: doc[0].update(Layers=doc[0]["Layers"] * 2))
    assert scan(path).error.endswith(": manifest lists 2 layers, config has 1 diff_ids")


@pytest.mark.parametrize("kind", ["oci-archive", "oci-layout", "docker-oci", "crane"])
def test_manifest_naming_a_layer_that_is_missing(tmp_path, scan, kind):
    path, archive = image(tmp_path, kind=kind)
    ik.remove_member(path, archive.layer_member(0, 0))
    error = scan(path).error
    assert error is not None and error.endswith(f"missing {archive.layer_member(0, 0)}"), error


def test_manifest_naming_a_layer_by_a_digest_no_blob_has(tmp_path, scan):
    path, _ = image(tmp_path)
    ghost = ik.sha256(b"no such layer")
    kit.rewrite_oci(path, lambda m: m["layers"][0].update(digest=ghost))
    assert scan(path).error.endswith(f"missing blobs/sha256/{ghost[7:]}")


# --- config history longer or shorter than the layers -----------------------------------------------


def test_history_longer_than_the_layers(tmp_path, scan):
    path, _ = image(tmp_path)

    def longer(config):
        config["history"] += [{"created_by": f"RUN step {i}"} for i in range(5000)]
        config["history"][7]["created_by"] = f"RUN echo {sc.AWS_KEY_ID}"
    kit.rewrite_oci(path, change_config=longer)
    outcome = scan(path)
    assert outcome.findings == (FOUND, (AWS, "history[7]", "history", None, None))
    assert outcome.result.images[0].layers[0].created_by == "ADD layer0 /"
    assert len(outcome.result.images[0].history) == 5001


def test_history_shorter_than_the_layers(tmp_path, scan):
    path, _ = image(tmp_path, TAR, kit.tar(kit.member("srv/.env", ENV)))
    kit.rewrite_oci(path, change_config=lambda config: config.update(history=[]))
    outcome = scan(path)
    assert outcome.findings == (FOUND, (AWS, "/srv/.env", "present", 1, None))
    assert [layer.created_by for layer in outcome.result.images[0].layers] == [None, None]


@pytest.mark.parametrize("history", [None, [{"created_by": "\ud800 lone"}]])
def test_history_missing_or_odd_text_is_read(tmp_path, scan, history):
    path, _ = image(tmp_path)
    kit.rewrite_oci(path, change_config=lambda config: json.dumps({**config, "history": history}).encode())
    assert scan(path).findings == (FOUND,)


@pytest.mark.parametrize("history,field", [
    ("not a list", "history: expected a list of objects, got a string"),
    ([1, "x", None, {"empty_layer": "yes"}], "history[0]: expected an object, got a number"),
    ([{"created_by": 7, "created": ["x"]}], "history[0].created: expected a string, got a list")])
def test_history_of_the_wrong_shape_is_one_error(tmp_path, scan, history, field):
    """History is scanned for secrets: a history the scan cannot read is no clean result."""
    path, _ = image(tmp_path)
    kit.rewrite_oci(path, change_config=lambda config: json.dumps({**config, "history": history}).encode())
    assert scan(path).error.endswith(f": config: {field}")


# --- JSON nested 100,000 deep ---------------------------------------------------------------------

DEEP = b"[" * 100_000 + b"]" * 100_000


def test_config_nested_100000_deep(tmp_path, scan):
    path, _ = image(tmp_path)
    kit.rewrite_oci(path, change_config=lambda config: DEEP)
    assert scan(path).error.endswith(": JSON nested deeper than 64 levels")


def test_config_value_nested_100000_deep(tmp_path, scan):
    path, _ = image(tmp_path)
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000

    def change(config):
        return ik.canonical_json(config)[:-1] + b',"x":' + deep + b"}"
    kit.rewrite_oci(path, change_config=change)
    assert scan(path).error.endswith(": JSON nested deeper than 64 levels")


@pytest.mark.parametrize("kind,member", [("oci-archive", "index.json"), ("docker-legacy", "manifest.json")])
def test_top_document_nested_100000_deep(tmp_path, scan, kind, member):
    path, _ = image(tmp_path, kind=kind)
    ik.replace_member(path, member, DEEP)
    assert scan(path).error == f"{path}: {member}: JSON nested deeper than 64 levels"


def test_json_65_deep_in_a_label_is_refused_64_is_read(tmp_path, scan):
    path, _ = image(tmp_path)
    kit.rewrite_oci(path, change_config=lambda c: c["config"].update(Custom={"k": json.loads("[" * 60 + "]" * 60)}))
    assert scan(path).findings == (FOUND,)
    kit.rewrite_oci(path, change_config=lambda c: c["config"].update(Custom={"k": json.loads("[" * 62 + "]" * 62)}))
    assert scan(path).error.endswith(": JSON nested deeper than 64 levels")


# --- a 10 GB declared size on a 1 KB blob ---------------------------------------------------------

TEN_GB = 10 * 10 ** 9


def test_layer_descriptor_declaring_10_gb(tmp_path, scan):
    path, archive = image(tmp_path)
    layer = archive.images[0].layers[0]
    kit.rewrite_oci(path, lambda m: m["layers"][0].update(size=TEN_GB))
    assert scan(path).error.endswith(f": layer {layer.digest[:19]} is {layer.size} bytes, manifest says {TEN_GB}")


def test_config_descriptor_declaring_10_gb(tmp_path, scan):
    path, archive = image(tmp_path)
    kit.rewrite_oci(path, lambda m: m["config"].update(size=TEN_GB))
    config = archive.images[0].config_bytes
    assert scan(path).error.endswith(f": config {ik.sha256(config)[:19]} is {len(config)} bytes, "
                                     f"manifest says {TEN_GB}")


def test_tar_entry_declaring_10_gb_in_a_1_kb_layer(tmp_path, scan):
    path, _ = image(tmp_path, kit.header("big", size=TEN_GB) + kit.pad(ENV) + kit.END)
    assert scan(path).error == "layer 0: corrupt tar stream (unexpected end of data)"


def test_archive_member_declaring_10_gb(tmp_path, scan):
    """The image archive's own member header: the archive ends long before."""
    path, archive = image(tmp_path, kind="docker-legacy")
    data = bytearray(path.read_bytes())
    files = ik.read_archive(path)
    at = bytes(data).find(archive.layer_member(0, 0).encode())
    data[at + 124: at + 136] = b"\x80" + TEN_GB.to_bytes(11, "big")
    data[at + 148: at + 156] = b" " * 8
    data[at + 148: at + 156] = b"%06o\0 " % sum(data[at: at + 512])
    path.write_bytes(bytes(data))
    assert files and scan(path).error.startswith(f"{path}: ")
