"""Errors that point at the fix (issue 20.3): the exact one line of each, and the sources' gaps
(20.4): attestations from a local layout, distinct names per platform, a fleet scan's platforms."""
from __future__ import annotations

import json

import pytest

from scanner.sources import daemon, resolve
from scanner.sources.auth import docker_config_credentials
from scanner.sources.interface import SourceError
from scanner.sources.resolve import open_source
from tests import imagekit as ik
from tests.unit.sources.test_formats import multi_platform, platform_image


def error(spec: str, platform=None) -> str:
    with pytest.raises(SourceError) as err:
        list(open_source(spec, platform).images())
    return str(err.value)


def test_a_mistyped_path_is_no_such_file_with_the_close_match(tmp_path, monkeypatch):
    (tmp_path / "sample_images").mkdir()
    (tmp_path / "sample_images" / "leaky-app.tar").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert error("sample_images/leaky-app.tr") == (
        "sample_images/leaky-app.tr: no such file or directory; did you mean sample_images/leaky-app.tar?")


def test_a_missing_path_with_an_extension_is_no_such_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert error("images/app.oci.zip") == "images/app.oci.zip: no such file or directory"


def test_a_name_whose_parent_directory_exists_is_a_path(tmp_path, monkeypatch):
    (tmp_path / "team").mkdir()
    monkeypatch.chdir(tmp_path)
    assert error("team/app") == "team/app: no such file or directory"


def test_the_engine_that_did_not_answer_is_not_reachable(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    monkeypatch.setattr(daemon, "DEFAULT_SOCKET", str(tmp_path / "docker.sock"))
    monkeypatch.setattr(resolve, "engine_client", lambda: (_ for _ in ()).throw(SourceError("x")))

    def registry_down(self):
        raise SourceError("cannot reach registry registry-1.docker.io (Name or service not known)")
        yield

    monkeypatch.setattr(resolve.RegistrySource, "images", registry_down)
    assert error("leaky-app:1") == (
        f"leaky-app:1: the local Docker engine is not reachable (DOCKER_HOST unset, no {tmp_path}/docker.sock); "
        "from the registry: cannot reach registry registry-1.docker.io (Name or service not known)")


def test_an_engine_error_carries_no_exception_text():
    class Boom(Exception):
        def __str__(self) -> str:
            return "HTTPConnectionPool(host='localhost', port=2375): Max retries exceeded with url: /v1.41/version"

    assert daemon._reason(Boom()) == "Boom"
    assert daemon._reason(OSError(13, "Permission denied")) == "permission denied"


@pytest.mark.parametrize("given,message", [
    ("amd64", "--platform amd64: not an os/arch[/variant] platform (e.g. linux/amd64, linux/arm64/v8, or all); "
              "did you mean --platform linux/amd64?"),
    ("linux/", "--platform linux/: not an os/arch[/variant] platform (e.g. linux/amd64, linux/arm64/v8, or all)"),
])
def test_a_platform_not_in_the_os_arch_form(tmp_path, given, message):
    path = tmp_path / "image"
    ik.write_oci_layout([multi_platform()], path)
    assert error(str(path), given) == message


def test_a_credential_helper_that_is_not_installed_is_named_and_skipped(tmp_path, monkeypatch, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"credsStore": "desktop-missing-here"}))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert docker_config_credentials("r.example", str(config)) is None
    assert capsys.readouterr().err == (
        "layerscan: warning: r.example: docker-credential-desktop-missing-here not found (the credential helper "
        "the Docker config names): asking the registry without credentials\n")


# --- 20.4 ---------------------------------------------------------------------------------------------

def test_the_platforms_of_one_layout_get_distinct_names(tmp_path):
    path = tmp_path / "multi"
    ik.write_oci_layout([multi_platform()], path)
    refs = [image.ref for image in open_source(str(path), "all").images()]
    assert refs == [f"{path} [linux/amd64]", f"{path} [linux/arm64/v8]", f"{path} [linux/arm/v7]"]


def test_attestations_in_a_local_layout_are_scanned(tmp_path):
    path = tmp_path / "att"
    ik.write_oci_layout([platform_image("amd64")], path)
    index = json.loads((path / "index.json").read_bytes())
    subject = index["manifests"][0]
    statement = b'{"predicate": {"buildArgs": {"TOKEN": "x"}}}'
    empty = b"{}"
    for blob in (statement, empty):
        (path / ik.blob_path(ik.sha256(blob))).write_bytes(blob)
    manifest = ik.canonical_json({"schemaVersion": 2, "mediaType": ik.OCI_MANIFEST,
                                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                             "digest": ik.sha256(empty), "size": 2},
                                  "layers": [{"mediaType": "application/vnd.in-toto+json",
                                              "digest": ik.sha256(statement), "size": len(statement),
                                              "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}]})
    (path / ik.blob_path(ik.sha256(manifest))).write_bytes(manifest)
    subject = dict(subject, platform={"os": "linux", "architecture": "amd64"})
    index["manifests"] = [subject, {"mediaType": ik.OCI_MANIFEST, "digest": ik.sha256(manifest), "size": len(manifest),
                                    "platform": {"os": "unknown", "architecture": "unknown"},
                                    "annotations": {"vnd.docker.reference.type": "attestation-manifest",
                                                    "vnd.docker.reference.digest": subject["digest"]}}]
    (path / "index.json").write_bytes(ik.canonical_json(index))
    images = list(open_source(str(path)).images())
    assert [i.ref for i in images] == [str(path), f"{path} [attestation of linux/amd64]"]
    assert images[1].layers[0].diff_id == ik.sha256(statement)
    assert images[1].layers[0].created_by == "attestation: https://slsa.dev/provenance/v0.2"


def test_a_fleet_scan_takes_every_platform_by_default(monkeypatch):
    from scanner import fleet
    from scanner.pipeline import ScanOptions

    seen = []

    class Recorder:
        def __init__(self, ref, label, options, platform, *rest):
            seen.append(platform)

        def images(self):
            return iter(())

    monkeypatch.setattr(fleet, "RegistrySource", Recorder)
    monkeypatch.setattr(fleet, "endpoint_for", lambda *a: None)
    scanner = type("S", (), {"options": ScanOptions(), "deadline": fleet.NO_DEADLINE})()
    fleet.Fleet(scanner).resolve(["r.example/a:1"])
    scanner.options = ScanOptions(platform="linux/arm64")
    fleet.Fleet(scanner).resolve(["r.example/a:1"])
    assert seen == ["all", "linux/arm64"]
