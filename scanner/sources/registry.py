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

from scanner.models import Blob, BlobKind, Image, Layer, SourceKind
from scanner.sources.auth import resolve_credentials
from scanner.sources.blobs import is_document, read_blob
from scanner.sources.config import build_image
from scanner.sources.interface import Source, SourceError
from scanner.sources.oci import INDEX_TYPES, MANIFEST_TYPES, ManifestRef, choose_platform, platform_of
from scanner.sources.reference import Reference
from scanner.sources.registry_http import BlobOrigin, Endpoint, RegistryClient, probe, sha256_digest
from scanner.sources.remote import RegistryOptions
from scanner.sources.stores import parse_json

ACCEPT = ", ".join(sorted(INDEX_TYPES | MANIFEST_TYPES))
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1"
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
PREDICATE_TYPE = "in-toto.io/predicate-type"
ATTESTATION = "unknown/unknown"


def endpoint_for(ref: Reference, options: RegistryOptions) -> Endpoint:
    """Probe the registry of `ref` (scheme, trust) and attach the credentials for it."""
    host = ref.api_host
    insecure = host in options.insecure or ref.domain in options.insecure
    creds = resolve_credentials(ref.domain, options.username, options.password)
    found = probe(host, _trust(ref.domain, options.ca_file), insecure, _loopback(host), options.retry)
    return replace(found, credentials=creds)


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
                 platform: Optional[str] = None, endpoint: Optional[Endpoint] = None) -> None:
        self.ref, self.label, self.options, self.platform = ref, label, options, platform
        self._endpoint = endpoint

    def images(self) -> Iterator[Image]:
        endpoint = self._endpoint or endpoint_for(self.ref, self.options)
        client = RegistryClient(endpoint, self.ref.path)
        try:
            yield from self._images(client)
        finally:
            client.close()

    def _images(self, client: RegistryClient) -> Iterator[Image]:
        body, media, digest = fetch_manifest(client, self.ref.ref, str(self.ref))
        doc = parse_json(body, str(self.ref))
        if media in INDEX_TYPES or (not media and isinstance(doc.get("manifests"), list)):
            chosen, attestations = self._choose(doc)
            many = len(chosen) > 1
            for m in chosen:
                label = f"{self.label} [{m.platform}]" if many else self.label
                yield from self._with_referrers(client, m.digest, label, m.platform)
            for subject, att in attestations:
                if subject in {m.digest for m in chosen}:
                    platform = next(m.platform for m in chosen if m.digest == subject)
                    yield artifact_image(client, att, f"{self.label} [attestation of {platform}]")
        else:
            image = manifest_image(client, doc, media, digest, self.label, None)
            self._check_platform(image)
            yield image
            yield from self._referrers(client, digest, self.label)

    def _with_referrers(self, client: RegistryClient, digest: str, label: str,
                        platform: Optional[str]) -> Iterator[Image]:
        body, media, got = fetch_manifest(client, digest, f"{label}: manifest {digest[:19]}")
        yield manifest_image(client, parse_json(body, label), media, got, label, platform)
        yield from self._referrers(client, got, label)

    def _choose(self, index: dict) -> tuple[list[ManifestRef], list[tuple[str, str]]]:
        refs, attestations = [], []
        for desc in index.get("manifests") or []:
            if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
                raise SourceError(f"{self.ref}: bad descriptor in the image index")
            annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
            if annotations.get(REFERENCE_TYPE) == "attestation-manifest":
                attestations.append((str(annotations.get(REFERENCE_DIGEST)), desc["digest"]))
            elif desc.get("mediaType", "") in MANIFEST_TYPES or not desc.get("mediaType"):
                refs.append(ManifestRef(desc["digest"], None, platform_of(desc)))
            elif desc.get("mediaType") in INDEX_TYPES:
                raise SourceError(f"{self.ref}: nested image indexes are not supported")
        if not refs:
            raise SourceError(f"{self.ref}: the image index lists no images")
        return choose_platform(refs, self.platform), attestations

    def _check_platform(self, image: Image) -> None:
        want = self.platform
        if want in (None, "all") or image.platform is None:
            return
        if image.platform != want and not image.platform.startswith(want + "/"):
            raise SourceError(f"no image for platform {want} (available: {image.platform}); use --platform")

    def _referrers(self, client: RegistryClient, digest: str, label: str) -> Iterator[Image]:
        """OCI 1.1 referrers of `digest` (signatures, SBOMs, provenance), where the registry has the API."""
        resp = client.get(f"referrers/{digest}", {"Accept": OCI_INDEX})
        try:
            if resp.status_code != 200 or "json" not in resp.headers.get("Content-Type", ""):
                return
            doc = resp.json()
        except ValueError:
            return
        finally:
            resp.close()
        for desc in doc.get("manifests") or [] if isinstance(doc, dict) else []:
            if isinstance(desc, dict) and desc.get("mediaType") in MANIFEST_TYPES and isinstance(desc.get("digest"), str):
                kind = desc.get("artifactType") or "artifact"
                yield artifact_image(client, desc["digest"], f"{label} [referrer {kind}]")


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
                origin=BlobOrigin(client.endpoint, client.repository))


def manifest_image(client: RegistryClient, manifest: Any, media: str, digest: str, label: str,
                   platform: Optional[str]) -> Image:
    where = f"{label}: manifest {digest[:19]}"
    if media not in MANIFEST_TYPES and media:
        raise SourceError(f"{where}: not an image manifest ({media})")
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise SourceError(f"{where}: not an image manifest")
    config = parse_json(read_blob(registry_blob(client, manifest.get("config"), where), f"{where}: config"), where)
    blobs = [(registry_blob(client, d, where), str(d.get("mediaType", ""))) for d in manifest["layers"]]
    return build_image(label, SourceKind.REGISTRY, digest, config, blobs, platform, where)


def artifact_image(client: RegistryClient, digest: str, label: str) -> Image:
    """An attestation or other artifact: its layers (in-toto JSON and the like) scanned as files."""
    body, _, got = fetch_manifest(client, digest, f"{label}: manifest {digest[:19]}")
    return artifact_from(client, parse_json(body, label), got, label)


def artifact_from(client: RegistryClient, manifest: Any, got: str, label: str) -> Image:
    """`artifact_image` of a manifest already read (`layerscan serve`: the one being pushed)."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
        raise SourceError(f"{label}: not an artifact manifest")
    config: Any = {}
    cdesc = manifest.get("config")
    if isinstance(cdesc, dict) and "json" in str(cdesc.get("mediaType", "")) and cdesc.get("size", 0) > 2:
        config = parse_json(read_blob(registry_blob(client, cdesc, label), f"{label}: config"), label)
    layers = []
    for i, desc in enumerate(manifest["layers"]):
        blob = registry_blob(client, desc, label)
        annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
        kind = annotations.get(PREDICATE_TYPE) or desc.get("mediaType") or "blob"
        media = str(desc.get("mediaType", ""))
        layers.append(Layer(index=i, blob=blob, diff_id=blob.digest if is_document(media) else None,
                            media_type=media, created_by=f"attestation: {kind}"))
    return Image(ref=label, source=SourceKind.REGISTRY, digest=got,
                 config=config if isinstance(config, dict) else {}, layers=tuple(layers), platform=ATTESTATION)

