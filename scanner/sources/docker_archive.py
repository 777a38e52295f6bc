"""`docker save` tarballs: legacy (`<id>/layer.tar`), Docker 25+ (OCI layout inside), crane/ko/jib."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

from scanner.models import Image, SourceKind
from scanner.sources.config import build_image
from scanner.sources.interface import Source, SourceError
from scanner.sources.oci import MANIFEST_TYPES, blob_name, select
from scanner.sources.stores import TarStore

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
    def __init__(self, store: TarStore, ref: str, select: Optional[str] = None,
                 platform: Optional[str] = None) -> None:
        self.store, self.ref, self.select, self.platform = store, ref, select, platform

    def entries(self) -> list[ArchiveEntry]:
        doc = self.store.json("manifest.json")
        if not isinstance(doc, list) or not doc:
            raise SourceError(f"{self.store.location}: manifest.json lists no images")
        entries = []
        for item in doc:
            if not isinstance(item, dict) or not isinstance(item.get("Config"), str) \
                    or not isinstance(item.get("Layers"), list):
                raise SourceError(f"{self.store.location}: manifest.json entry lacks Config or Layers")
            tags = tuple(t for t in item.get("RepoTags") or () if isinstance(t, str))
            entries.append(ArchiveEntry(item["Config"], tuple(map(str, item["Layers"])),
                                        tags[0] if tags else None, tags))
        return entries

    def images(self) -> Iterator[Image]:
        entries = self.entries()
        manifest_digests = self._manifest_digests()
        others: set[str] = set()
        yielded = False
        for i, entry in select(entries, self.select, self.store.location):
            label = self.ref if len(entries) == 1 or self.select else f"{self.ref}:{entry.name or '@%d' % i}"
            image = self._image(entry, label, manifest_digests)
            if _platform_matches(image.platform, self.platform):
                yielded = True
                yield image
            else:
                others.add(image.platform or "?")
        if not yielded and others:  # never scan another platform than the one asked for
            raise SourceError(f"no image for platform {self.platform} (available: {', '.join(sorted(others))}); "
                              "use --platform")

    def _image(self, entry: ArchiveEntry, label: str, manifest_digests: dict[str, str]) -> Image:
        where = f"{self.store.location}: {entry.name or entry.config}"
        config_digest = _digest(_CONFIG_DIGEST, entry.config)
        config = self.store.json(entry.config, config_digest)
        blobs = [(self.store.blob(name, _digest(_BLOB_DIGEST, name)), "") for name in entry.layers]
        return build_image(label, SourceKind.DOCKER_ARCHIVE, manifest_digests.get(config_digest or ""),
                           config, blobs, None, where)

    def _manifest_digests(self) -> dict[str, str]:
        """Docker 25+ archives carry an OCI index too: config digest -> manifest digest."""
        if not self.store.has("index.json"):
            return {}
        out: dict[str, str] = {}
        index = self.store.json("index.json")
        for desc in index.get("manifests", []) if isinstance(index, dict) else []:
            if isinstance(desc, dict) and desc.get("mediaType") in MANIFEST_TYPES:
                manifest = self.store.json(blob_name(desc.get("digest"), "index.json"), desc["digest"])
                cfg = manifest.get("config", {}) if isinstance(manifest, dict) else {}
                if isinstance(cfg, dict) and isinstance(cfg.get("digest"), str):
                    out[cfg["digest"]] = desc["digest"]
        return out
