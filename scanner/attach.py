"""A report attached to the image it is about: an OCI 1.1 artifact whose `subject` is the image
manifest (an empty config, one layer: the report), found by the referrers API
(`GET /v2/<name>/referrers/<digest>`) or, on a registry without it (the distribution registry
2.8), by the spec's fallback: the `sha256-<hex>` tag, an index of the artifacts that refer to the
image, updated (never overwritten) as reports are added.

Used by `layerscan serve` (after a pass), `layerscan scan --attach` and `layerscan push --attach`.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Optional

from scanner.errors import LayerscanError
from scanner.sources.registry import OCI_INDEX, fetch_manifest
from scanner.sources.registry_http import RegistryClient, sha256_digest

if TYPE_CHECKING:
    from scanner.models import ImageResult, ScanResult
    from scanner.sources.remote import RegistryOptions

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
REPORT_TYPES = {"json": "application/vnd.layerscan.report.v1+json",
                "sarif": "application/vnd.layerscan.report.sarif.v1+json"}
TITLE = "org.opencontainers.image.title"
CREATED = "org.opencontainers.image.created"


class AttachError(LayerscanError):
    """The report could not be attached to the image."""


@dataclass(frozen=True)
class Subject:
    """The image manifest a report is about."""

    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Attached:
    digest: str  # of the artifact manifest
    via: str  # "referrers" or the fallback tag

    def __str__(self) -> str:
        return f"{self.digest} ({'referrers API' if self.via == 'referrers' else 'tag ' + self.via})"


def subject_of(client: RegistryClient, digest: str) -> Subject:
    """The descriptor of an image manifest already in the registry."""
    body, media, got = fetch_manifest(client, digest, f"{client.where}@{digest[:19]}")
    return Subject(got, media or OCI_MANIFEST, len(body))


def attach_report(client: RegistryClient, subject: Subject, report: bytes, fmt: str = "json") -> Attached:
    """Upload the report and its artifact manifest; add it to the fallback tag's index when the
    registry does not say it keeps referrers itself (no `OCI-Subject` header)."""
    artifact_type = REPORT_TYPES[fmt]
    upload(client, EMPTY_BLOB)
    upload(client, report)
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": sha256_digest(EMPTY_BLOB), "size": len(EMPTY_BLOB),
                   "data": base64.b64encode(EMPTY_BLOB).decode()},
        "layers": [{"mediaType": artifact_type, "digest": sha256_digest(report), "size": len(report),
                    "annotations": {TITLE: f"layerscan-report.{fmt}"}}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": {CREATED: created},
    }
    body = json.dumps(manifest, separators=(",", ":")).encode()
    digest = sha256_digest(body)
    resp = _put_manifest(client, digest, body, OCI_MANIFEST)
    if resp.headers.get("OCI-Subject") == subject.digest:
        return Attached(digest, "referrers")
    descriptor = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body), "artifactType": artifact_type,
                  "annotations": {CREATED: created}}
    tag = fallback_tag(subject.digest)
    add_to_index(client, tag, descriptor)
    return Attached(digest, tag)


def fallback_tag(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}"


def add_to_index(client: RegistryClient, tag: str, descriptor: dict) -> None:
    """The fallback tag's index with `descriptor` added (the ones already there kept)."""
    index = _fallback_index(client, tag) or {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if any(isinstance(d, dict) and d.get("digest") == descriptor["digest"] for d in index["manifests"]):
        return
    index["manifests"].append(descriptor)
    _put_manifest(client, tag, json.dumps(index, separators=(",", ":")).encode(), OCI_INDEX)


def _fallback_index(client: RegistryClient, tag: str) -> Optional[dict]:
    resp = client.get(f"manifests/{tag}", {"Accept": OCI_INDEX})
    try:
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise AttachError(f"{client.where}:{tag}: the registry answered HTTP {resp.status_code}")
        try:
            doc = resp.json()
        except ValueError:
            doc = None
    finally:
        resp.close()
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests"), list):
        raise AttachError(f"{client.where}:{tag}: the tag is not an OCI index: not overwritten")
    return doc


def upload(client: RegistryClient, data: bytes) -> str:
    """A blob, in one request after the POST that opens the upload; skipped if it is there."""
    digest = sha256_digest(data)
    head = client.request("HEAD", f"blobs/{digest}")
    head.close()
    if head.status_code == 200:
        return digest
    opened = client.request("POST", "blobs/uploads/", {"Content-Length": "0"})
    opened.close()
    location = opened.headers.get("Location")
    if opened.status_code != 202 or not location:
        raise AttachError(f"{client.where}: cannot start a blob upload (HTTP {opened.status_code})")
    if not location.startswith(("http://", "https://")):
        location = f"{client.endpoint.scheme}://{client.endpoint.host}{location}"
    sep = "&" if "?" in location else "?"
    done = client.request("PUT", f"{location}{sep}digest={digest}",
                          {"Content-Type": "application/octet-stream"}, data)
    done.close()
    if done.status_code != 201:
        raise AttachError(f"{client.where}: the blob upload failed (HTTP {done.status_code})")
    return digest


def _put_manifest(client: RegistryClient, reference: str, body: bytes, media: str):  # type: ignore[no-untyped-def]
    resp = client.request("PUT", f"manifests/{reference}", {"Content-Type": media}, body)
    resp.close()
    if resp.status_code != 201:
        raise AttachError(f"{client.where}: the registry refused the report's manifest {reference[:19]} "
                          f"(HTTP {resp.status_code})")
    return resp


# --- `layerscan scan --attach` and `layerscan push --attach` -----------------------------------

def report_format(fmt: str) -> str:
    """The report attached: SARIF when that is the format asked for, else the JSON report."""
    return "sarif" if fmt == "sarif" else "json"


def attach_to(reference: str, digest: str, image: "ImageResult", registry: "RegistryOptions",
              fmt: str) -> Attached:
    """Attach the report of one scanned image to `digest` in the repository of `reference`."""
    from scanner.models import ScanResult
    from scanner.reports import Format, report_for
    from scanner.sources.reference import parse_reference
    from scanner.sources.registry import endpoint_for

    ref = parse_reference(reference)
    kind = report_format(fmt)
    report = report_for(Format(kind)).render(ScanResult((image,))).encode()
    client = RegistryClient(endpoint_for(ref, registry), ref.path)
    try:
        return attach_report(client, subject_of(client, digest), report, kind)
    finally:
        client.close()


def attach_scanned(result: "ScanResult", registry: "RegistryOptions", fmt: str) -> list[tuple[str, Attached]]:
    """`scan --attach`: each registry image of the scan (each platform of an index, not the
    attestations or referrers that ride along) gets its report."""
    from scanner.models import SourceKind
    from scanner.sources.resolve import REGISTRY

    out = []
    for image in result.images:
        if image.source is not SourceKind.REGISTRY or image.digest is None or image.platform == "unknown/unknown" \
                or "[referrer " in image.ref:
            continue
        spec = image.ref.split(" [", 1)[0]
        for prefix in REGISTRY:
            spec = spec[len(prefix):] if spec.startswith(prefix) else spec
        out.append((image.ref, attach_to(spec, image.digest, image, registry, fmt)))
    if not out:
        raise AttachError("--attach: no registry image was scanned (attach needs IMAGE as a registry reference)")
    return out
