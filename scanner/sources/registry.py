"""`RegistrySource`: an image pulled from a registry by the distribution spec, no daemon needed.

Manifest (Docker schema2 or OCI) or index (manifest list / OCI index, platform chosen as for
OCI layouts), config fetched and verified, layers described as registry blobs: each layer is
fetched, verified and scanned by whichever process scans it, as it streams (nothing on disk).
Attestations ride along: the `unknown/unknown` manifests of an index that BuildKit attaches to
a platform image, and the OCI referrers of each image where the registry has that API. Their
layers are in-toto JSON documents, scanned as files.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import replace
from typing import Any, Iterator, Optional

from scanner.limits import NO_DEADLINE, Deadline, ManifestBudget
from scanner.models import Blob, BlobKind, Image, SourceKind
from scanner.sources.auth import resolve_credentials
from scanner.sources.bounded import MAX_CONFIG, MAX_LIST, read_body
from scanner.sources.config import build_artifact, build_image
from scanner.sources.interface import Source, SourceError
from scanner.sources.oci import REFERENCE_TYPE  # noqa: F401  (re-exported: `serve` reads it here)
from scanner.sources.oci import (INDEX_TYPES, MANIFEST_TYPES, attestation_label, check_platform, choose_platform,
                                 image_labels, no_platform, walk_index)
from scanner.sources.reference import Reference
from scanner.sources.registry_http import BlobOrigin, Endpoint, RegistryClient, probe, sha256_digest
from scanner.sources.remote import RegistryOptions
from scanner.sources.schema import INDEX, MANIFEST, check
from scanner.sources.stores import parse_json

ACCEPT = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1"


def endpoint_for(ref: Reference, options: RegistryOptions, deadline: Deadline = NO_DEADLINE) -> Endpoint:
    """Probe the registry of `ref` (scheme, trust) and attach the credentials for it; the hosts of
    --insecure-registry are also the token servers allowed to have them (see `auth`)."""
    host = ref.api_host
    insecure = host in options.insecure or ref.domain in options.insecure
    creds = resolve_credentials(ref.domain, options.username, options.password)
    found = probe(host, _trust(ref.domain, options.ca_file), insecure, _loopback(host), options.retry, deadline)
    return replace(found, credentials=creds, trusted_realms=tuple(h.lower() for h in options.insecure))

def _trust(domain: str, ca_file: Optional[str]) -> Any:
    """--ca-file, else a `certs.d/HOST/ca.crt` as Docker and Podman keep them, else system CAs."""
    if ca_file:
        if not os.path.isfile(ca_file):
            raise SourceError(f"--ca-file {ca_file}: no such file")
        return ca_file
    for base in (os.path.expanduser("~/.docker/certs.d"), "/etc/docker/certs.d", "/etc/containers/certs.d"):
        ca = os.path.join(base, domain, "ca.crt")
        if os.path.isfile(ca):
            return ca
    return True


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistrySource(Source):
    def __init__(self, ref: Reference, label: str, options: RegistryOptions = RegistryOptions(),
                 platform: Optional[str] = None, endpoint: Optional[Endpoint] = None,
                 deadline: Deadline = NO_DEADLINE, budget: Optional[ManifestBudget] = None) -> None:
        check_platform(platform)
        self.ref, self.label, self.options, self.platform = ref, label, options, platform
        self._endpoint, self.deadline, self.budget = endpoint, deadline, budget or ManifestBudget()

    def images(self) -> Iterator[Image]:
        endpoint = self._endpoint or endpoint_for(self.ref, self.options, self.deadline)
        client = RegistryClient(endpoint, self.ref.path, self.deadline)
        self.budget.begin()
        try:
            yield from self._images(client)
        finally:
            client.close()

    def _images(self, client: RegistryClient) -> Iterator[Image]:
        self.budget.take(str(self.ref))
        body, media, digest = fetch_manifest(client, self.ref.ref, str(self.ref))
        doc = parse_json(body, str(self.ref))
        if media in INDEX_TYPES or (not media and isinstance(doc.get("manifests"), list)):
            yield from self._index(client, doc)
        else:
            image = manifest_image(client, doc, media, digest, self.label, None)
            self._check_platform(image)
            yield image
            yield from self._referrers(client, digest, self.label)

    def _index(self, client: RegistryClient, index: dict) -> Iterator[Image]:
        """Every image the index (and the indexes in it) lists for the platform, then the
        attestations BuildKit attached to them."""
        found = walk_index(index, lambda d: self._nested(client, d), str(self.ref), self.budget)
        chosen = choose_platform(found, self.platform)
        if not chosen:
            raise SourceError(f"{self.ref}: the image index lists no images")
        pairs = list(enumerate(chosen))
        for (_, m), label in zip(pairs, image_labels(self.label, pairs, True)):
            yield from self._with_referrers(client, m.digest, label, m.platform)
        subjects = {m.digest: m.platform for m in chosen}
        for m in found:
            if m.attestation_of in subjects:
                yield self._artifact(client, m.digest, attestation_label(self.label, subjects[m.attestation_of]))

    def _nested(self, client: RegistryClient, digest: str) -> Any:
        what = f"{self.ref}: index {digest[:19]}"
        body, _, _ = fetch_manifest(client, digest, what)
        return parse_json(body, what)

    def _with_referrers(self, client: RegistryClient, digest: str, label: str,
                        platform: Optional[str]) -> Iterator[Image]:
        self.budget.take(f"{label}: manifest {digest[:19]}")
        body, media, got = fetch_manifest(client, digest, f"{label}: manifest {digest[:19]}")
        yield manifest_image(client, parse_json(body, label), media, got, label, platform)
        yield from self._referrers(client, got, label)

    def _artifact(self, client: RegistryClient, digest: str, label: str) -> Image:
        self.budget.take(f"{label}: manifest {digest[:19]}")
        return artifact_image(client, digest, label)

    def _check_platform(self, image: Image) -> None:
        want = self.platform
        if want in (None, "all") or image.platform is None:
            return
        if image.platform != want and not image.platform.startswith(want + "/"):
            raise no_platform(want, {image.platform})

    def _referrers(self, client: RegistryClient, digest: str, label: str) -> Iterator[Image]:
        """OCI 1.1 referrers of `digest` (signatures, SBOMs, provenance), where the registry has the API."""
        resp = client.get(f"referrers/{digest}", {"Accept": OCI_INDEX})
        if resp.status_code != 200 or "json" not in resp.headers.get("Content-Type", ""):
            resp.close()
            return
        what = f"{label}: referrers of {digest[:19]}"
        doc = parse_json(read_body(resp, MAX_LIST, what, client.deadline, client.endpoint.host), what)
        check(doc, INDEX, what)
        for desc in doc["manifests"]:
            if desc.get("mediaType") in MANIFEST_TYPES:
                yield self._artifact(client, desc["digest"], f"{label} [referrer {desc.get('artifactType') or 'artifact'}]")

def fetch_manifest(client: RegistryClient, ref: str, what: str) -> tuple[bytes, str, str]:
    """(body, media type, digest) of a manifest or index; the digest checked when `ref` is one."""
    body, headers = client.document(f"manifests/{ref}", ACCEPT, what)
    digest = sha256_digest(body)
    if ref.startswith("sha256:") and ref != digest:
        raise SourceError(f"{what}: manifest digest mismatch (asked for {ref[:19]}…, got {digest[:19]}…)")
    if ref.startswith(("sha512:", "sha384:")):
        raise SourceError(f"{what}: unsupported digest algorithm {ref.split(':')[0]}")
    said = headers.get("Docker-Content-Digest", "")
    if said.startswith("sha256:") and said != digest:
        raise SourceError(f"{what}: manifest digest mismatch (registry says {said[:19]}…, got {digest[:19]}…)")
    media = headers.get("Content-Type", "").split(";")[0].strip()
    if media.startswith(SCHEMA1):
        raise SourceError(f"{what}: Docker schema 1 manifests are not supported (push it again with a current client)")
    try:
        inner = parse_json(body, what).get("mediaType")
    except AttributeError:
        raise SourceError(f"{what}: the manifest is not a JSON object") from None
    return body, inner if isinstance(inner, str) and inner else media, digest


def registry_blob(client: RegistryClient, desc: Any, where: str) -> Blob:
    if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str) \
            or not isinstance(desc.get("size"), int) or desc["size"] < 0:
        raise SourceError(f"{where}: bad blob descriptor")
    digest = desc["digest"]
    if not digest.startswith("sha256:"):
        raise SourceError(f"{where}: unsupported digest algorithm in {digest[:20]!r}")
    return Blob(client.url(f"blobs/{digest}"), 0, desc["size"], digest, kind=BlobKind.REGISTRY,
                origin=BlobOrigin(client.endpoint, client.repository, client.deadline))


def fetch_config(client: RegistryClient, desc: Any, where: str) -> Any:
    """A config (or an artifact's JSON config) read whole, within `MAX_CONFIG` and the deadlines,
    checked against its descriptor's digest and size."""
    blob = registry_blob(client, desc, where)
    what = f"{where}: config"
    if blob.size > MAX_CONFIG:
        raise SourceError(f"{what}: {blob.size} bytes is too large for a JSON document")
    body, _ = client.document(f"blobs/{blob.digest}", "*/*", what, cap=MAX_CONFIG)
    if len(body) != blob.size or sha256_digest(body) != blob.digest:
        raise SourceError(f"{what}: not what its descriptor says (digest mismatch or {len(body)} bytes "
                          f"where {blob.size} were expected)")
    return parse_json(body, what)


def manifest_image(client: RegistryClient, manifest: Any, media: str, digest: str, label: str,
                   platform: Optional[str]) -> Image:
    where = f"{label}: manifest {digest[:19]}"
    if media not in MANIFEST_TYPES and media:
        raise SourceError(f"{where}: not an image manifest ({media})")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise SourceError(f"{where}: not an image manifest")
    check(manifest, MANIFEST, where)
    config = fetch_config(client, manifest["config"], where)
    blobs = [(registry_blob(client, d, where), d.get("mediaType") or "") for d in manifest["layers"]]
    return build_image(label, SourceKind.REGISTRY, digest, config, blobs, platform, where)


def artifact_image(client: RegistryClient, digest: str, label: str) -> Image:
    """An attestation or other artifact: its layers (in-toto JSON and the like) scanned as files."""
    body, _, got = fetch_manifest(client, digest, f"{label}: manifest {digest[:19]}")
    return artifact_from(client, parse_json(body, label), got, label)


def artifact_from(client: RegistryClient, manifest: Any, got: str, label: str) -> Image:
    """`artifact_image` of a manifest already read (`layerscan serve`: the one being pushed)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise SourceError(f"{label}: not an artifact manifest")
    check(manifest, MANIFEST, label)
    config: Any = {}
    cdesc = manifest["config"]
    if "json" in (cdesc.get("mediaType") or "") and (cdesc.get("size") or 0) > 2:
        config = fetch_config(client, cdesc, label)
    layers = [(registry_blob(client, desc, label), desc) for desc in manifest["layers"]]
    return build_artifact(label, SourceKind.REGISTRY, got, config, layers)
