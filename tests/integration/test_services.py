"""The real components the other integration tests stand on: engine, base image, registry, skopeo."""
from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from tests import services

pytestmark = pytest.mark.integration

OCI_ZSTD_LAYER = "application/vnd.oci.image.layer.v1.tar+zstd"


@pytest.fixture(scope="module")
def base_archive(docker_engine, base_image, save_image, tmp_path_factory):
    """The busybox base as a `docker save` tarball."""
    return save_image(base_image, tmp_path_factory.mktemp("archive") / "busybox.tar")


def test_engine_builds_a_dockerfile_from_the_busybox_base(docker_engine, build_image):
    image = build_image(
        "FROM layerscan-test/busybox:1\n"
        "ARG GREETING\n"
        "RUN mkdir -p /app && echo \"$GREETING\" > /app/hello && cat /app/hello\n"
        "RUN rm /app/hello\n",
        buildargs={"GREETING": "hello from the build"},
    )
    created_by = [entry["CreatedBy"] for entry in image.history()]
    assert any("|1 GREETING=hello from the build /bin/sh -c mkdir -p /app" in c for c in created_by)
    assert any("rm /app/hello" in c for c in created_by)

    output = docker_engine.client().containers.run(image.id, "ls /app", network_mode="host", remove=True)
    assert output == b""  # the file is gone from the final filesystem


def test_base_image_is_one_imported_layer_with_its_tag(base_image):
    assert base_image.tags == [services.BASE_IMAGE]
    assert len(base_image.history()) == 1


def test_skopeo_pushes_to_the_registry_and_the_registry_lists_it(registry, base_archive):
    ref = registry.push(f"docker-archive:{base_archive}", "layerscan-test/busybox:1")

    assert ref == f"{registry.host}/layerscan-test/busybox:1"
    assert "layerscan-test/busybox" in registry.catalog()
    assert registry.tags("layerscan-test/busybox") == ["1"]
    assert (registry.storage_dir / "docker/registry/v2/repositories/layerscan-test/busybox").is_dir()


def test_skopeo_pushes_zstd_layers(registry_factory, base_archive):
    # A registry of its own: skopeo reuses a layer the registry already holds (its blob-info
    # cache knows the gzip copy pushed above) instead of compressing it anew.
    registry = registry_factory()
    registry.push(f"docker-archive:{base_archive}", "layerscan-test/busybox-zstd:1",
                  "--format", "oci", "--dest-compress-format", "zstd")

    status, _, body = registry.request("/v2/layerscan-test/busybox-zstd/manifests/1",
                                       headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})
    assert status == 200
    assert [layer["mediaType"] for layer in json.loads(body)["layers"]] == [OCI_ZSTD_LAYER]


def test_registry_with_basic_auth_over_tls(registry_factory, base_archive):
    registry = registry_factory(auth=True, tls=True)
    assert registry.url.startswith("https://127.0.0.1:")

    status, headers, _ = registry.request("/v2/", authenticate=False)
    assert status == 401
    assert headers.get("Www-Authenticate", "").startswith("Basic ")

    registry.push(f"docker-archive:{base_archive}", "private/busybox:1")
    assert registry.catalog() == ["private/busybox"]


def test_registry_refuses_a_wrong_password(registry_factory, base_archive):
    registry = registry_factory(auth=True)
    proc = subprocess.run(["skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                           f"--dest-creds={registry.username}:not-the-password",
                           f"docker-archive:{base_archive}", f"docker://{registry.host}/private/busybox:1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "unauthorized" in proc.stderr.lower()
    assert registry.catalog() == []


def test_tls_certificate_is_trusted_only_through_the_test_ca(registry_factory):
    registry = registry_factory(tls=True)
    proc = subprocess.run(["openssl", "verify", "-CAfile", str(registry.ca_cert),
                           str(registry.root / "server.crt")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    status, _, _ = registry.request("/v2/")
    assert status == 200
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(registry.url + "/v2/", timeout=5)
