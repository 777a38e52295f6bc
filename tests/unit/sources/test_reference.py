"""Image references, normalised as Docker does, and how `open_source` tells names from paths."""
from __future__ import annotations

import pytest

from scanner.sources.daemon import DaemonSource
from scanner.sources.interface import SourceError
from scanner.sources.reference import Reference, parse_reference, try_reference
from scanner.sources.registry import RegistrySource
from scanner.sources.resolve import EngineOrRegistrySource, open_source

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, full", [
    ("alpine", "docker.io/library/alpine:latest"),
    ("alpine:3.19", "docker.io/library/alpine:3.19"),
    ("library/alpine", "docker.io/library/alpine:latest"),
    ("docker.io/alpine", "docker.io/library/alpine:latest"),
    ("index.docker.io/library/alpine:1", "docker.io/library/alpine:1"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("ghcr.io/org/team/app:v1.2-rc_3", "ghcr.io/org/team/app:v1.2-rc_3"),
    ("localhost/app", "localhost/app:latest"),
    ("localhost:5000/app", "localhost:5000/app:latest"),
    ("127.0.0.1:5000/team/app:1", "127.0.0.1:5000/team/app:1"),
    ("[::1]:5000/app:1", "[::1]:5000/app:1"),
    ("Registry.Example.com/app", "Registry.Example.com/app:latest"),  # upper case: a host, never a path
    (f"registry.example.com/team/app@{DIGEST}", f"registry.example.com/team/app@{DIGEST}"),
    (f"alpine:3@{DIGEST}", f"docker.io/library/alpine:3@{DIGEST}"),
    ("my-app__x/z.y", "docker.io/my-app__x/z.y:latest"),
])
def test_normalised_like_docker(text, full):
    assert str(parse_reference(text)) == full


@pytest.mark.parametrize("text, familiar", [
    ("docker.io/library/alpine:latest", "alpine:latest"),
    ("bitnami/redis:7", "bitnami/redis:7"),
    ("ghcr.io/org/app:1", "ghcr.io/org/app:1"),
])
def test_familiar_form(text, familiar):
    assert parse_reference(text).familiar == familiar


def test_parts_and_api_host():
    ref = parse_reference(f"alpine@{DIGEST}")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("docker.io", "library/alpine", None, DIGEST)
    assert ref.ref == DIGEST and ref.api_host == "registry-1.docker.io"
    assert Reference("127.0.0.1:5000", "a/b", "1").api_host == "127.0.0.1:5000"
    assert parse_reference("a/b:2").ref == "2"


@pytest.mark.parametrize("text", [
    "", "my_host.example/app", "Alpine", "app:", "app:bad tag", "app@sha256:short", "-app", "a//b", "app:-x",
    "host:notaport/app", "a" * 256, "app:" + "t" * 129, "/abs/path", "./rel",
])
def test_not_references(text):
    assert try_reference(text) is None
    with pytest.raises(SourceError, match="not a valid image reference"):
        parse_reference(text)


def test_transports_pick_their_source():
    assert isinstance(open_source("docker-daemon:app:1"), DaemonSource)
    assert isinstance(open_source("docker://alpine"), RegistrySource)
    assert isinstance(open_source("registry:ghcr.io/org/app:1"), RegistrySource)
    assert open_source("docker://alpine").ref == parse_reference("alpine")


def test_a_name_that_is_no_path_goes_to_the_engine_then_the_registry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = open_source("team/app:1")
    assert isinstance(source, EngineOrRegistrySource) and str(source.ref) == "docker.io/team/app:1"


@pytest.mark.parametrize("spec", ["missing.tar", "./app", "/no/such/image", "images/app.tar.gz"])
def test_a_missing_path_stays_a_missing_path(tmp_path, monkeypatch, spec):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SourceError, match="no such file or directory"):
        open_source(spec)


def test_a_path_on_disk_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "alpine").mkdir()
    with pytest.raises(SourceError, match="not an OCI image layout"):
        open_source("alpine")


def test_bad_transport_arguments():
    with pytest.raises(SourceError, match="name an image"):
        open_source("docker-daemon:")
    with pytest.raises(SourceError, match="not a valid image reference"):
        open_source("docker://Not/Valid")
