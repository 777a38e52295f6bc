"""Every on-disk format x every layer compression resolves to the right `Image`; selectors pick one."""
from __future__ import annotations

import random

import pytest

from scanner.models import SourceKind
from scanner.sources.blobs import open_layer
from scanner.sources.interface import SourceError
from scanner.sources.resolve import open_source
from tests import imagekit as ik
from tests.unit.conftest import FORMATS, write_image

KINDS = {"docker-legacy": SourceKind.DOCKER_ARCHIVE, "docker-oci": SourceKind.DOCKER_ARCHIVE,
         "crane": SourceKind.DOCKER_ARCHIVE, "oci-layout": SourceKind.OCI_LAYOUT,
         "oci-archive": SourceKind.OCI_ARCHIVE}
# formats whose layers are named by their digest in a way the source checks (blobs/sha256/<hex>)
DIGEST_NAMED = {"docker-oci", "oci-layout", "oci-archive"}
MANIFEST_DIGEST = {"docker-oci", "oci-layout", "oci-archive"}  # the others store no manifest


def noise(n: int, seed: int = 0) -> bytes:
    rnd = random.Random(seed)
    return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz0123456789 \n") for _ in range(n)).encode()


def five_step_spec(tags=("unit/app:1",)) -> ik.ImageSpec:
    return ik.ImageSpec([
        ik.LayerSpec("ADD base.tar / # buildkit", [ik.dir("/app"), ik.file("/app/a.txt", noise(3000))]),
        ik.EmptyLayer("ENV A=1"),
        ik.LayerSpec("RUN /bin/sh -c make", [ik.file("/app/b.txt", b"b\n")]),
        ik.EmptyLayer("LABEL x=y"),
        ik.EmptyLayer('CMD ["app"]'),
        ik.LayerSpec("COPY c.txt /app/c.txt # buildkit", [ik.file("/app/c.txt", b"c\n")]),
    ], tags=list(tags))


@pytest.mark.parametrize("compression", ik.COMPRESSIONS)
@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_and_compression_resolves(tmp_path, kind, compression):
    path, archive = write_image(tmp_path, five_step_spec(), kind, compression)
    built = archive.images[0]

    images = list(open_source(str(path)).images())

    assert len(images) == 1
    image = images[0]
    assert image.ref == str(path)
    assert image.source is KINDS[kind]
    assert image.digest == (built.manifest_digest if kind in MANIFEST_DIGEST else None)
    assert image.platform == "linux/amd64"
    assert image.config == built.config
    assert [layer.index for layer in image.layers] == [0, 1, 2]
    assert [layer.diff_id for layer in image.layers] == [b.diff_id for b in built.layers]
    assert [layer.created_by for layer in image.layers] == [
        "ADD base.tar / # buildkit", "RUN /bin/sh -c make", "COPY c.txt /app/c.txt # buildkit"]
    assert [layer.history_index for layer in image.layers] == [0, 2, 5]
    assert [layer.created for layer in image.layers] == [
        "2024-01-01T00:00:00Z", "2024-01-01T00:02:00Z", "2024-01-01T00:05:00Z"]
    assert [layer.blob.size for layer in image.layers] == [b.size for b in built.layers]
    expected_blob_digests = [b.digest if kind in DIGEST_NAMED else None for b in built.layers]
    assert [layer.blob.digest for layer in image.layers] == expected_blob_digests
    if kind in ("oci-layout", "oci-archive"):
        assert [layer.media_type for layer in image.layers] == [b.media_type for b in built.layers]
    for layer, b in zip(image.layers, built.layers):
        with open_layer(layer) as stream:
            assert stream.read() == b.tar  # sniffed and decompressed, whatever the name says


@pytest.mark.parametrize("kind", FORMATS)
def test_mixed_compressions_in_one_image(tmp_path, kind):
    spec = ik.ImageSpec([
        ik.LayerSpec("L0", [ik.file("/a", b"a")], compression="none"),
        ik.LayerSpec("L1", [ik.file("/b", b"b")], compression="gzip"),
        ik.LayerSpec("L2", [ik.file("/c", b"c")], compression="zstd"),
    ], tags=["unit/mixed:1"])
    for layer in spec.layers:
        layer.media_type = ik.layer_media_type(layer.compression, "oci")
    path, archive = write_image(tmp_path, spec, kind, "gzip")
    image = next(open_source(str(path)).images())
    for layer, b in zip(image.layers, archive.images[0].layers):
        with open_layer(layer) as stream:
            assert stream.read() == b.tar


def test_history_without_empty_layers_and_short_history(tmp_path):
    """No history at all: layers still resolve, with no created_by and no history index."""
    spec = ik.ImageSpec([ik.LayerSpec("L0", [ik.file("/a", b"a")]), ik.LayerSpec("L1", [ik.file("/b", b"b")])],
                        tags=["unit/nohist:1"], extra={"history": []})
    path, _ = write_image(tmp_path, spec, "oci-layout", "gzip")
    image = next(open_source(str(path)).images())
    assert [(layer.created_by, layer.history_index) for layer in image.layers] == [(None, None), (None, None)]


# --- several images in one archive ------------------------------------------------------------


def three_images() -> list[ik.ImageSpec]:
    return [
        ik.ImageSpec([ik.LayerSpec("A0", [ik.file("/a", b"a")])], tags=["unit/a:1"]),
        ik.ImageSpec([ik.LayerSpec("B0", [ik.file("/b", b"b")]), ik.LayerSpec("B1", [ik.file("/b1", b"b")])],
                     tags=["unit/b:2"]),
        ik.ImageSpec([ik.LayerSpec(f"C{i}", [ik.file(f"/c{i}", b"c")]) for i in range(3)]),  # untagged
    ]


@pytest.mark.parametrize("kind", FORMATS)
def test_multi_image_archive_yields_all(tmp_path, kind):
    path, archive = write_image(tmp_path, three_images(), kind, "gzip")
    images = list(open_source(str(path)).images())
    assert [(i.ref, len(i.layers)) for i in images] == [
        (f"{path}:unit/a:1", 1), (f"{path}:unit/b:2", 2), (f"{path}:@2", 3)]
    assert [[layer.diff_id for layer in i.layers] for i in images] == [
        [b.diff_id for b in built.layers] for built in archive.images]


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("selector,layers", [("unit/b:2", 2), ("@1", 2), ("@0", 1), ("@2", 3), ("unit/a:1", 1)])
def test_selector_picks_one(tmp_path, kind, selector, layers):
    path, _ = write_image(tmp_path, three_images(), kind, "gzip")
    spec = f"{path}:{selector}"
    images = list(open_source(spec).images())
    assert [(i.ref, len(i.layers)) for i in images] == [(spec, layers)]


@pytest.mark.parametrize("kind", ["oci-archive", "docker-oci"])
def test_oci_archive_transport_with_ref(tmp_path, kind):
    path, _ = write_image(tmp_path, three_images(), kind, "zstd")
    spec = f"oci-archive:{path}:unit/b:2"
    images = list(open_source(spec).images())
    assert [(i.ref, i.source, len(i.layers)) for i in images] == [(spec, SourceKind.OCI_ARCHIVE, 2)]


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci", "crane"])
def test_docker_archive_transport_with_ref(tmp_path, kind):
    path, _ = write_image(tmp_path, three_images(), kind, "gzip")
    spec = f"docker-archive:{path}:unit/a:1"
    images = list(open_source(spec).images())
    assert [(i.ref, i.source, len(i.layers)) for i in images] == [(spec, SourceKind.DOCKER_ARCHIVE, 1)]


def test_oci_transport_on_layout_dir(tmp_path):
    path, _ = write_image(tmp_path, three_images(), "oci-layout", "none")
    spec = f"oci:{path}:@2"
    assert [(i.ref, len(i.layers)) for i in open_source(spec).images()] == [(spec, 3)]


@pytest.mark.parametrize("kind", FORMATS)
def test_unknown_selector_names_the_available_images(tmp_path, kind):
    path, _ = write_image(tmp_path, three_images(), kind, "gzip")
    with pytest.raises(SourceError) as err:
        list(open_source(f"{path}:unit/nope:9").images())
    assert str(err.value) == f"{path}: no image named 'unit/nope:9' (names: unit/a:1, unit/b:2)"


@pytest.mark.parametrize("kind", FORMATS)
def test_position_out_of_range(tmp_path, kind):
    path, _ = write_image(tmp_path, three_images(), kind, "gzip")
    with pytest.raises(SourceError) as err:
        list(open_source(f"{path}:@3").images())
    assert str(err.value) == f"{path}: no image @3 (it holds 3)"


@pytest.mark.parametrize("kind", FORMATS)
def test_image_with_two_tags_is_one_image_selectable_by_either(tmp_path, kind):
    spec = ik.ImageSpec([ik.LayerSpec("L0", [ik.file("/a", b"a")])], tags=["unit/app:1", "unit/app:latest"])
    path, _ = write_image(tmp_path, [spec], kind, "gzip")
    assert [i.ref for i in open_source(str(path)).images()] == [str(path)]  # not scanned once per tag
    for tag in ("unit/app:1", "unit/app:latest"):
        assert [i.ref for i in open_source(f"{path}:{tag}").images()] == [f"{path}:{tag}"]


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
def test_bare_tag_selects_in_oci_layout(tmp_path, kind):
    path, _ = write_image(tmp_path, three_images(), kind, "gzip")
    assert [len(i.layers) for i in open_source(f"{path}:2").images()] == [2]


# --- platforms ----------------------------------------------------------------------------------------


def platform_image(arch: str, variant=None, tags=()) -> ik.ImageSpec:
    return ik.ImageSpec([ik.LayerSpec(f"ADD {arch}", [ik.file(f"/{arch}", b"x")])], architecture=arch,
                        variant=variant, tags=list(tags))


def multi_platform() -> ik.IndexSpec:
    return ik.IndexSpec([platform_image("amd64"), platform_image("arm64", "v8"), platform_image("arm", "v7")],
                        tags=["unit/multi:1"])


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
@pytest.mark.parametrize("wanted,host,expected", [
    (None, "linux/amd64", ["ADD amd64"]),
    (None, "linux/arm64", ["ADD arm64"]),
    ("linux/arm64", "linux/amd64", ["ADD arm64"]),
    ("linux/arm64/v8", "linux/amd64", ["ADD arm64"]),
    ("linux/arm", "linux/amd64", ["ADD arm"]),
    ("all", "linux/amd64", ["ADD amd64", "ADD arm64", "ADD arm"]),
])
def test_oci_index_platform_choice(tmp_path, monkeypatch, kind, wanted, host, expected):
    monkeypatch.setattr("scanner.sources.oci.host_platform", lambda: host)
    path, _ = write_image(tmp_path, [multi_platform()], kind, "gzip")
    images = list(open_source(str(path), wanted).images())
    assert [i.layers[0].created_by for i in images] == expected
    assert [i.platform for i in images] == [
        {"ADD amd64": "linux/amd64", "ADD arm64": "linux/arm64/v8", "ADD arm": "linux/arm/v7"}[e] for e in expected]


@pytest.mark.parametrize("kind", ["oci-layout", "oci-archive"])
def test_oci_index_without_the_wanted_platform(tmp_path, kind):
    path, _ = write_image(tmp_path, [multi_platform()], kind, "gzip")
    with pytest.raises(SourceError) as err:
        list(open_source(str(path), "linux/s390x").images())
    assert str(err.value) == ("no image for platform linux/s390x "
                              "(available: linux/amd64, linux/arm/v7, linux/arm64/v8): "
                              "pick one with --platform os/arch[/variant], or --platform all")


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci", "crane"])
@pytest.mark.parametrize("wanted,expected", [
    (None, ["ADD arm64", "ADD amd64"]), ("all", ["ADD arm64", "ADD amd64"]), ("linux/arm64", ["ADD arm64"]),
    ("linux/arm64/v8", ["ADD arm64"]), ("linux/amd64", ["ADD amd64"]),
])
def test_docker_archive_honours_platform(tmp_path, kind, wanted, expected):
    images = [platform_image("arm64", "v8", ["unit/a:1"]), platform_image("amd64", None, ["unit/b:1"])]
    path, _ = write_image(tmp_path, images, kind, "gzip")
    assert [i.layers[0].created_by for i in open_source(str(path), wanted).images()] == expected


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci", "crane"])
def test_docker_archive_without_the_wanted_platform(tmp_path, kind):
    """--platform must never be ignored: scanning another platform would report the wrong image."""
    path, _ = write_image(tmp_path, platform_image("amd64", tags=["unit/a:1"]), kind, "gzip")
    with pytest.raises(SourceError) as err:
        list(open_source(str(path), "linux/arm64").images())
    assert str(err.value) == ("no image for platform linux/arm64 (available: linux/amd64): "
                              "pick one with --platform os/arch[/variant], or --platform all")
