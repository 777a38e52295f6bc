"""The referrers fallback tag: an index of the reports, added to, never overwritten."""
from __future__ import annotations

import json

import pytest

from scanner.attach import AttachError, add_to_index, fallback_tag


class Response:
    def __init__(self, status: int, body: bytes = b"") -> None:
        self.status_code, self.body, self.headers = status, body, {}

    def json(self):
        return json.loads(self.body)

    def close(self) -> None:
        pass


class Registry:
    """Manifests by tag, as a RegistryClient sees them."""

    where = "reg/app"

    def __init__(self, tags: dict[str, bytes]) -> None:
        self.tags = tags

    def get(self, path, headers=None, stream=False):
        tag = path.split("/", 1)[1]
        return Response(200, self.tags[tag]) if tag in self.tags else Response(404)

    def request(self, method, path, headers=None, data=None, stream=False):
        assert method == "PUT" and headers["Content-Type"] == "application/vnd.oci.image.index.v1+json"
        self.tags[path.split("/", 1)[1]] = data
        return Response(201)


def desc(n: int) -> dict:
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{n:064x}", "size": 9}


def test_the_fallback_tag_is_the_digest_with_a_dash():
    assert fallback_tag("sha256:" + "ab" * 32) == "sha256-" + "ab" * 32


def test_reports_are_added_to_the_index_already_there():
    registry = Registry({})
    add_to_index(registry, "sha256-x", desc(1))
    add_to_index(registry, "sha256-x", desc(2))
    add_to_index(registry, "sha256-x", desc(2))  # the same artifact once
    index = json.loads(registry.tags["sha256-x"])
    assert [d["digest"] for d in index["manifests"]] == [desc(1)["digest"], desc(2)["digest"]]


def test_a_tag_that_is_not_an_index_is_not_overwritten():
    registry = Registry({"sha256-x": b'{"schemaVersion": 2, "layers": []}'})
    with pytest.raises(AttachError, match="not an OCI index: not overwritten"):
        add_to_index(registry, "sha256-x", desc(1))
    assert registry.tags["sha256-x"] == b'{"schemaVersion": 2, "layers": []}'
