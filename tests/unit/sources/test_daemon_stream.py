"""The engine's `docker save` stream, scanned as it passes: the same findings as the saved
tarball, big layers never kept, a cached layer only hashed, damage refused. A fake docker
client serves imagekit archives in chunks, as the SDK's `get_image` does."""
from __future__ import annotations

import hashlib
import random

import docker
import pytest
import requests

from scanner.cache import SqliteLayerCache
from scanner.layers import walk as walk_module
from scanner.models import BlobKind
from scanner.pipeline import NoProgress, ScanOptions, Scanner
from scanner.sources import daemon, resolve
from scanner.sources.daemon import STREAM_AT, DaemonSource
from scanner.sources.interface import SourceError
from tests import imagekit as ik
from tests.secrets_catalog import AWS_KEY_ID, GITHUB_PAT

NAME = "unit/daemon:1"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def spec(arch: str = "amd64") -> ik.ImageSpec:
    noise = random.Random(3).randbytes(STREAM_AT + 4096)
    return ik.ImageSpec([
        ik.LayerSpec("ADD base /", [ik.dir("bin"), ik.file("bin/tool", noise)]),
        ik.LayerSpec("RUN write", [ik.dir("app"), ik.file("app/.env", f"K={AWS_KEY_ID}\n".encode()),
                                   ik.file("app/big", noise + f"\nT={GITHUB_PAT}\n".encode())]),
        ik.LayerSpec("RUN rm /app/.env", [ik.whiteout("app/.env")]),
        ik.EmptyLayer(f"ENV TOKEN={GITHUB_PAT}"),
    ], tags=[NAME], env=[f"TOKEN={GITHUB_PAT}"], architecture=arch)


class FakeClient:
    """images.get and api.get_image of the docker SDK, over one archive's bytes."""

    def __init__(self, data: bytes, break_at: int | None = None) -> None:
        self.data, self.break_at = data, break_at
        self.images, self.api = self, self
        self.closed = False

    def get(self, name: str):
        if name not in (NAME, "docker.io/" + NAME):
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return type("Img", (), {"id": "sha256:" + "1" * 64, "attrs": {"Size": len(self.data)}})()

    def get_image(self, image_id: str, chunk_size: int):
        for at in range(0, len(self.data), 65536):
            if self.break_at is not None and at >= self.break_at:
                raise requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
            yield self.data[at:at + 65536]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def engine(monkeypatch):
    """engine(archive bytes) installs a fake engine serving them; returns the client."""
    def install(data: bytes, **kwargs) -> FakeClient:
        fake = FakeClient(data, **kwargs)
        monkeypatch.setattr(daemon, "engine_client", lambda: fake)
        monkeypatch.setattr(resolve, "engine_client", lambda: fake)
        return fake
    return install


def scanner(unit_rules, cache=None, platform=None) -> Scanner:
    return Scanner(unit_rules, ScanOptions(workers=1, platform=platform), NoProgress(), cache)


def comparable(result) -> list[tuple]:
    return sorted((f.fingerprint, f.status.value, f.hit.path, f.layer.diff_id if f.layer else None,
                   f.layer.digest if f.layer else None, f.removed_in.index if f.removed_in else None)
                  for f in result.findings)


@pytest.mark.parametrize("kind", ["docker-legacy", "docker-oci"])
@pytest.mark.parametrize("spec_ref", [NAME, f"docker-daemon:{NAME}"])
def test_the_stream_finds_what_the_tarball_holds(tmp_path, unit_rules, engine, kind, spec_ref):
    path = tmp_path / "image.tar"
    ik.WRITERS[kind](spec(), path)
    fake = engine(path.read_bytes())
    from_engine = scanner(unit_rules).scan([spec_ref])
    from_file = scanner(unit_rules).scan([str(path)])
    assert comparable(from_engine) == comparable(from_file)
    assert {f.hit.secret.sha256 for f in from_engine.findings} == {sha(AWS_KEY_ID), sha(GITHUB_PAT)}
    assert from_engine.images[0].source.value == "daemon" and from_engine.images[0].ref == spec_ref
    assert fake.closed


def test_big_layers_pass_small_ones_stay(tmp_path, engine):
    path = tmp_path / "image.tar"
    archive = ik.write_docker_archive_legacy(spec(), path)
    engine(path.read_bytes())
    passed = []

    class Sink:
        def begin(self, label, total):
            pass

        def layer(self, stream, what, expected):
            passed.append((what, len(stream.read()), expected))

        def end(self):
            pass

    image = next(DaemonSource(NAME, NAME, Sink()).images())
    assert [layer.blob.kind for layer in image.layers] == [BlobKind.STREAMED, BlobKind.STREAMED, BlobKind.MEMORY]
    assert sorted(size for _, size, _ in passed) == sorted(len(archive.images[0].layers[i].blob) for i in (0, 1))
    assert all(expected is None for _, _, expected in passed)  # legacy names say nothing of the content


def test_a_cached_layer_is_only_hashed(tmp_path, unit_rules, engine, monkeypatch):
    """Docker 25+ names a layer by its digest: a layer in the cache is hashed as it passes, not walked."""
    path = tmp_path / "image.tar"
    ik.write_docker_archive_oci(spec(), path)
    engine(path.read_bytes())
    cache = SqliteLayerCache(str(tmp_path / "cache"))
    first = scanner(unit_rules, cache).scan([NAME])
    walks = []
    real = walk_module.walk_stream
    monkeypatch.setattr(walk_module, "walk_stream", lambda *a, **k: walks.append(1) or real(*a, **k))
    second = scanner(unit_rules, cache).scan([NAME])
    assert walks == []
    assert comparable(first) == comparable(second)


def test_a_layer_member_not_matching_its_name(tmp_path, unit_rules, engine):
    path = tmp_path / "image.tar"
    archive = ik.write_docker_archive_oci(spec(), path)
    ik.corrupt(path, archive.layer_member(0, 0))  # inside file data: the tar stays readable
    engine(path.read_bytes())
    with pytest.raises(SourceError, match=r"blobs/sha256/.*: digest mismatch \(expected sha256:"):
        scanner(unit_rules).scan([NAME])


def test_a_corrupt_layer_in_the_stream(tmp_path, unit_rules, engine):
    path = tmp_path / "image.tar"
    archive = ik.write_docker_archive_legacy(spec(), path)
    ik.corrupt(path, archive.layer_member(0, 1), offset=700)  # a tar header of the streamed layer
    engine(path.read_bytes())
    with pytest.raises(SourceError, match="corrupt tar"):
        scanner(unit_rules).scan([NAME])


def test_a_stream_that_breaks_off(tmp_path, unit_rules, engine):
    path = tmp_path / "image.tar"
    ik.write_docker_archive_legacy(spec(), path)
    fake = engine(path.read_bytes(), break_at=len(path.read_bytes()) // 2)
    with pytest.raises(SourceError, match="the engine's image stream broke off"):
        scanner(unit_rules).scan([f"docker-daemon:{NAME}"])
    assert fake.closed


def test_an_image_the_engine_lacks(tmp_path, unit_rules, engine):
    engine(b"")
    with pytest.raises(SourceError, match="no such image in the Docker engine"):
        scanner(unit_rules).scan(["docker-daemon:unit/other:1"])


def test_another_platform(tmp_path, unit_rules, engine):
    path = tmp_path / "image.tar"
    ik.write_docker_archive_legacy(spec("arm64"), path)
    engine(path.read_bytes())
    with pytest.raises(SourceError, match="no image for platform linux/amd64 .available: linux/arm64"):
        scanner(unit_rules, platform="linux/amd64").scan([f"docker-daemon:{NAME}"])
