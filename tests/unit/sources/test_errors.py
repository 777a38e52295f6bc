"""Bad input gives one `SourceError` with one clear line, never a traceback or a partial result."""
from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from scanner.layers.walk import scan_layer
from scanner.sources.interface import SourceError
from scanner.sources.resolve import open_source
from tests import imagekit as ik
from tests.unit.conftest import FORMATS, write_image
from tests.unit.sources.test_formats import noise

TARBALLS = ("docker-legacy", "docker-oci", "oci-archive", "crane")


def spec() -> ik.ImageSpec:
    return ik.ImageSpec([
        ik.LayerSpec("ADD base.tar /", [ik.dir("/app"), ik.file("/app/data.txt", noise(6000))]),
        ik.EmptyLayer("ENV A=1"),
        ik.LayerSpec("RUN rm /app/data.txt", [ik.whiteout("/app/data.txt")]),
    ], tags=["unit/app:1"])


def scan_all(ref: str, content) -> None:
    """What the pipeline does with a source: resolve every image, then walk every layer."""
    for image in open_source(ref).images():
        for layer in image.layers:
            scan_layer(layer, content)


def error_of(ref: str, content) -> str:
    with pytest.raises(SourceError) as err:
        scan_all(ref, content)
    message = str(err.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_intact_images_scan(tmp_path, content):
    for kind in FORMATS:
        for compression in ik.COMPRESSIONS:
            path, _ = write_image(tmp_path, spec(), kind, compression, name=f"{kind}-{compression}")
            scan_all(str(path), content)  # the baseline the damaged copies below differ from


@pytest.mark.parametrize("kind", TARBALLS)
def test_truncated_tarball(tmp_path, content, kind):
    path, _ = write_image(tmp_path, spec(), kind, "gzip")
    ik.truncate(path)
    assert error_of(str(path), content).startswith(f"{path}: truncated archive (")


@pytest.mark.parametrize("kind", TARBALLS)
@pytest.mark.parametrize("cut", [512, 1024 + 300, 2048])
def test_tarball_cut_at_a_header_is_truncated_not_smaller(tmp_path, content, kind, cut):
    """tarfile stops quietly at a missing or partial header; the store must still call it truncated."""
    path, _ = write_image(tmp_path, spec(), kind, "gzip")
    ik.truncate(path, cut)
    assert error_of(str(path), content).startswith(f"{path}: truncated archive (")


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci", "oci-layout", "oci-archive", "crane"])
def test_corrupt_gzip_layer(tmp_path, content, kind, inflater):
    path, archive = write_image(tmp_path, spec(), kind, "gzip")
    ik.corrupt(path, archive.layer_member(0, 0))
    digest = archive.images[0].layers[0].digest if kind not in ("docker-legacy", "crane") else \
        archive.images[0].layers[0].diff_id
    assert error_of(str(path), content).startswith(f"layer 0 ({digest[:19]}): corrupt compressed stream (")


@pytest.mark.parametrize("offset", [20, 200, None])
@pytest.mark.parametrize("kind", ["docker-oci", "oci-layout", "oci-archive"])
def test_corrupt_zstd_layer(tmp_path, content, kind, offset):
    path, archive = write_image(tmp_path, spec(), kind, "zstd")
    ik.corrupt(path, archive.layer_member(0, 0), offset)
    digest = archive.images[0].layers[0].digest
    assert error_of(str(path), content).startswith(f"layer 0 ({digest[:19]}): corrupt compressed stream (")


@pytest.mark.parametrize("offset", [20, 200])
def test_corrupt_gzip_early_is_a_compressed_stream_error_not_a_tar_error(tmp_path, content, offset, inflater):
    """tarfile turns a zlib error into a tar error; the message must still blame the compression."""
    path, archive = write_image(tmp_path, spec(), "oci-archive", "gzip")
    ik.corrupt(path, archive.layer_member(0, 0), offset)
    message = error_of(str(path), content)
    assert "corrupt compressed stream" in message, message


@pytest.mark.parametrize("kind", ["docker-oci", "oci-layout", "oci-archive"])
def test_blob_not_matching_its_digest_uncompressed(tmp_path, content, kind):
    path, archive = write_image(tmp_path, spec(), kind, "none")
    ik.corrupt(path, archive.layer_member(0, 0))  # inside the file data: the tar stays readable
    digest = archive.images[0].layers[0].digest
    message = error_of(str(path), content)
    assert message.startswith(f"layer 0 ({digest[:19]}): digest mismatch (expected {digest[:23]}…, got sha256:")


@pytest.mark.parametrize("kind", ["docker-oci", "oci-layout", "oci-archive"])
def test_gzip_blob_not_matching_its_digest(tmp_path, content, kind):
    """A byte of the gzip header's mtime: same content, same diff_id, different blob: still refused."""
    path, archive = write_image(tmp_path, spec(), kind, "gzip")
    ik.corrupt(path, archive.layer_member(0, 0), offset=4)
    digest = archive.images[0].layers[0].digest
    assert error_of(str(path), content).startswith(f"layer 0 ({digest[:19]}): digest mismatch (expected ")


@pytest.mark.parametrize("kind", ["docker-legacy", "crane"])
def test_layer_not_matching_its_diff_id(tmp_path, content, kind):
    path, archive = write_image(tmp_path, spec(), kind, "none")
    ik.corrupt(path, archive.layer_member(0, 0))
    diff_id = archive.images[0].layers[0].diff_id
    assert error_of(str(path), content).startswith(
        f"layer 0 ({diff_id[:19]}) diff_id: digest mismatch (expected {diff_id[:23]}…, got sha256:")


@pytest.mark.parametrize("kind", FORMATS)
def test_missing_blob(tmp_path, content, kind):
    path, archive = write_image(tmp_path, spec(), kind, "gzip")
    member = archive.layer_member(0, 1)
    ik.remove_member(path, member)
    assert error_of(str(path), content) == f"{path}: missing {member}"


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci", "crane"])
def test_manifest_json_not_json(tmp_path, content, kind):
    path, _ = write_image(tmp_path, spec(), kind, "gzip")
    ik.replace_member(path, "manifest.json", b'[{"Config": ')
    assert error_of(str(path), content) == f"{path}: manifest.json: not valid JSON"


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
def test_index_json_not_json(tmp_path, content, kind):
    path, _ = write_image(tmp_path, spec(), kind, "gzip")
    ik.replace_member(path, "index.json", b"not json")
    assert error_of(str(path), content) == f"{path}: index.json: not valid JSON"


def repoint_manifest(path: Path, data: bytes) -> str:
    """An OCI layout dir whose only manifest is `data`, stored under its true digest."""
    digest = ik.sha256(data)
    ik.replace_member(path, ik.blob_path(digest), data)
    index = {"schemaVersion": 2, "mediaType": ik.OCI_INDEX,
             "manifests": [{"mediaType": ik.OCI_MANIFEST, "digest": digest, "size": len(data)}]}
    ik.replace_member(path, "index.json", ik.canonical_json(index))
    return digest


def test_image_manifest_not_json_with_right_digest(tmp_path, content):
    path, _ = write_image(tmp_path, spec(), "oci-layout", "gzip")
    digest = repoint_manifest(path, b"{not json")
    assert error_of(str(path), content) == f"{path}: {ik.blob_path(digest)}: not valid JSON"


def test_image_manifest_that_is_not_a_manifest(tmp_path, content):
    path, _ = write_image(tmp_path, spec(), "oci-layout", "gzip")
    digest = repoint_manifest(path, b'{"schemaVersion": 2}')
    assert error_of(str(path), content) == f"{path}: manifest {digest[:19]}: not an image manifest"


@pytest.mark.parametrize("kind", FORMATS)
def test_manifest_or_config_replaced_is_a_digest_mismatch_naming_the_archive(tmp_path, content, kind):
    path, archive = write_image(tmp_path, spec(), kind, "gzip")
    member = archive.manifest_member(0) or archive.config_member(0)
    ik.replace_member(path, member, b"{}")
    message = error_of(str(path), content)
    assert message.startswith(f"{path}: {member}: digest mismatch (expected sha256:"), message


@pytest.mark.parametrize("kind", FORMATS)
def test_config_not_json(tmp_path, content, kind):
    """raw_config keeps the digests right: the JSON parse is what fails."""
    s = spec()
    s.raw_config = b"this is not { json"
    path, archive = write_image(tmp_path, s, kind, "gzip")
    assert error_of(str(path), content) == f"{path}: {archive.config_member(0)}: not valid JSON"


def test_path_does_not_exist(tmp_path, content):
    missing = tmp_path / "nope" / "image.tar"
    assert error_of(str(missing), content) == f"{missing}: no such file or directory"
    assert error_of(f"oci-archive:{missing}:app:1", content) == f"{missing}:app:1: no such file or directory"


@pytest.mark.parametrize("kind", TARBALLS)
def test_archive_itself_gzip_compressed(tmp_path, content, kind):
    path, _ = write_image(tmp_path, spec(), kind, "none")
    gz = tmp_path / "image.tar.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert error_of(str(gz), content) == (
        f"{gz}: not a readable image archive (the archive itself is compressed: "
        "decompress it first, e.g. `gunzip` or `zstd -d`)")


@pytest.mark.parametrize("bad", ["sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "", None])
@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
def test_oci_index_with_bad_digest(tmp_path, content, kind, bad):
    path, _ = write_image(tmp_path, spec(), kind, "gzip")
    index = json.loads(ik.read_archive(path)["index.json"])
    index["manifests"][0]["digest"] = bad
    ik.replace_member(path, "index.json", json.dumps(index).encode())
    wanted = f": bad digest {str(bad)!r}" if isinstance(bad, str) else ": manifests[0].digest: expected a string, got null"
    assert error_of(str(path), content).endswith(wanted)


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
def test_nested_index_with_bad_digest(tmp_path, content, kind):
    path, _ = write_image(tmp_path, spec(), kind, "gzip")
    index = {"schemaVersion": 2, "mediaType": ik.OCI_INDEX,
             "manifests": [{"mediaType": ik.OCI_INDEX, "digest": "sha256:../../etc/passwd", "size": 3}]}
    ik.replace_member(path, "index.json", ik.canonical_json(index))
    assert error_of(str(path), content) == f"{path}: bad digest 'sha256:../../etc/passwd'"


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("count", [1, 3])
def test_layer_count_differs_from_diff_ids(tmp_path, content, kind, count):
    s = spec()
    diff_ids = [ik.sha256(layer.tar_bytes()) for layer in s.layers]  # 2 layers
    diff_ids = (diff_ids + [ik.sha256(b"extra")])[:count]
    s.extra = {"rootfs": {"type": "layers", "diff_ids": diff_ids}}
    path, _ = write_image(tmp_path, s, kind, "gzip")
    message = error_of(str(path), content)
    assert message.endswith(f": manifest lists 2 layers, config has {count} diff_ids"), message
    assert message.startswith(f"{path}: ")


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
def test_layer_size_differs_from_manifest(tmp_path, content, kind):
    path, archive = write_image(tmp_path, spec(), kind, "gzip")
    ik.truncate(path, member=archive.layer_member(0, 0))
    built = archive.images[0].layers[0]
    assert error_of(str(path), content).endswith(
        f"layer {built.digest[:19]} is {built.size // 2} bytes, manifest says {built.size}")


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci", "crane"])
def test_truncated_layer_member(tmp_path, content, kind):
    path, archive = write_image(tmp_path, spec(), kind, "gzip")
    ik.truncate(path, member=archive.layer_member(0, 0))
    assert "layer 0 (" in error_of(str(path), content)


def test_directory_without_index(tmp_path, content):
    (tmp_path / "empty").mkdir()
    assert error_of(str(tmp_path / "empty"), content) == f"{tmp_path / 'empty'}: not an OCI image layout (no index.json)"


def test_file_that_is_not_an_archive(tmp_path, content):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"hello, I am not a tarball\n" * 40)
    assert error_of(str(junk), content).startswith(f"{junk}: not a readable image archive (")


def test_tarball_without_manifest_or_index(tmp_path, content):
    other = tmp_path / "other.tar"
    other.write_bytes(ik.pack_tar({"hello.txt": b"hi"}))
    assert error_of(str(other), content) == f"{other}: not an image archive (no manifest.json or index.json inside)"


def test_wrong_transport_for_a_directory(tmp_path, content):
    path, _ = write_image(tmp_path, spec(), "oci-layout", "gzip")
    assert error_of(f"docker-archive:{path}", content) == f"{path}: is a directory; docker-archive: wants a tarball"


def test_layout_blob_symlink_cannot_leave_the_layout(tmp_path, content):
    path, archive = write_image(tmp_path, spec(), "oci-layout", "gzip")
    member = path / archive.layer_member(0, 0)
    outside = tmp_path / "outside"
    shutil.move(member, outside)
    member.symlink_to(outside)
    assert error_of(str(path), content) == f"{path}: missing {archive.layer_member(0, 0)}"
