"""`docker save` tarballs: legacy (`<id>/layer.tar`), Docker 25+ (OCI layout inside), crane/ko/jib."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

from scanner.limits import NO_DEADLINE, Deadline, ManifestBudget
from scanner.models import Image, SourceKind
from scanner.sources.config import build_image
from scanner.sources.interface import Source, SourceError
from scanner.sources.oci import (ManifestRef, attestation_label, blob_name, image_labels, load_manifest_image,
                                 no_platform, select, walk_index)
from scanner.sources.schema import ARCHIVE_MANIFEST, check
from scanner.sources.stores import Store

# A config stored under its own digest: `<hex>.json` (docker), `sha256:<hex>` (crane), `blobs/sha256/<hex>`.
_CONFIG_DIGEST = re.compile(r"^(?:blobs/sha256/|sha256:)?([0-9a-f]{64})(?:\.json)?$")
_BLOB_DIGEST = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")


@dataclass(frozen=True)
class ArchiveEntry:
    config: str
    layers: tuple[str, ...]
    name: Optional[str]
    tags: tuple[str, ...]


def _platform_matches(have: Optional[str], want: Optional[str]) -> bool:
    return want in (None, "all") or have in (None, want) or (have or "").startswith(want + "/")


def _digest(pattern: re.Pattern, name: str) -> Optional[str]:
    m = pattern.match(name)
    return f"sha256:{m.group(1)}" if m else None


class DockerArchiveSource(Source):
    def __init__(self, store: Store, ref: str, select: Optional[str] = None, platform: Optional[str] = None,
                 deadline: Deadline = NO_DEADLINE, budget: Optional[ManifestBudget] = None) -> None:
        self.store, self.ref, self.select, self.platform = store, ref, select, platform
        self.deadline, self.budget = deadline, budget or ManifestBudget()

    def entries(self) -> list[ArchiveEntry]:
        doc = self.store.json("manifest.json")
        if not isinstance(doc, list) or not doc:
            raise SourceError(f"{self.store.location}: manifest.json lists no images")
        check(doc, ARCHIVE_MANIFEST, f"{self.store.location}: manifest.json")
        entries = []
        for item in doc:
            tags = tuple(item.get("RepoTags") or ())
            entries.append(ArchiveEntry(item["Config"], tuple(item["Layers"]), tags[0] if tags else None, tags))
        return entries

    def images(self) -> Iterator[Image]:
        self.budget.begin()
        entries = self.entries()
        index = self._index()
        manifest_digests = self._manifest_digests(index)
        others: set[str] = set()
        picked = select(entries, self.select, self.store.location)
        images = []
        for (i, entry), label in zip(picked, image_labels(self.ref, picked, bool(self.select))):
            self.deadline.check(f"while reading {self.store.location}")
            self.budget.take(f"{self.store.location}: {entry.name or entry.config}")
            image = self._image(entry, label, manifest_digests)
            if _platform_matches(image.platform, self.platform):
                images.append(image)
                yield image
            else:
                others.add(image.platform or "?")
        if not images and others:  # never scan another platform than the one asked for
            raise no_platform(str(self.platform), others)
        yield from self._attestations(index, images)

    def _image(self, entry: ArchiveEntry, label: str, manifest_digests: dict[str, str]) -> Image:
        where = f"{self.store.location}: {entry.name or entry.config}"
        config_digest = _digest(_CONFIG_DIGEST, entry.config)
        config = self.store.json(entry.config, config_digest)
        blobs = [(self.store.blob(name, _digest(_BLOB_DIGEST, name)), "") for name in entry.layers]
        return build_image(label, SourceKind.DOCKER_ARCHIVE, manifest_digests.get(config_digest or ""),
                           config, blobs, None, where)

    def _index(self) -> list[ManifestRef]:
        """Docker 25+ archives carry an OCI index too (with BuildKit's attestations, where the
        engine's image store kept them): every manifest it reaches, read as a layout's are."""
        if not self.store.has("index.json"):
            return []
        fetch = lambda d: self.store.json(blob_name(d, self.store.location), d)
        return walk_index(self.store.json("index.json"), fetch, self.store.location, self.budget)

    def _manifest_digests(self, index: list[ManifestRef]) -> dict[str, str]:
        """config digest -> manifest digest, for the images of the archive's index."""
        out: dict[str, str] = {}
        for m in index:
            if m.attestation_of is None:
                self.budget.take(f"{self.store.location}: manifest {m.digest[:19]}")
                manifest = self.store.json(blob_name(m.digest, self.store.location), m.digest)
                cfg = manifest.get("config") if isinstance(manifest, dict) else None
                if isinstance(cfg, dict) and isinstance(cfg.get("digest"), str):
                    out[cfg["digest"]] = m.digest
        return out

    def _attestations(self, index: list[ManifestRef], images: list[Image]) -> Iterator[Image]:
        """The attestation manifests of the images scanned, as from a layout or a registry."""
        subjects = {image.digest: image for image in images if image.digest}
        for m in index:
            if m.attestation_of in subjects:
                self.deadline.check(f"while reading {self.store.location}")
                self.budget.take(f"{self.store.location}: manifest {m.digest[:19]}")
                subject = subjects[m.attestation_of]
                label = attestation_label(subject.ref, subject.platform)
                image = load_manifest_image(self.store, m, label, SourceKind.DOCKER_ARCHIVE)
                yield image
