"""OCI image layouts (directory or `oci-archive` tarball): index.json -> manifests -> config + layers."""
from __future__ import annotations

import platform as _platform
import re
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from scanner.models import Blob, Image, SourceKind
from scanner.sources.config import build_image
from scanner.sources.interface import Source, SourceError
from scanner.sources.stores import Store

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
MANIFEST_TYPES = {"application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json"}
REF_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def blob_name(digest: str, where: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise SourceError(f"{where}: bad digest {str(digest)[:80]!r}")
    return "blobs/sha256/" + digest.split(":", 1)[1]


def host_platform() -> str:
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(_platform.machine(), _platform.machine())
    return f"linux/{arch}"


def platform_of(desc: dict) -> Optional[str]:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return None
    parts = [str(p.get("os", "")), str(p.get("architecture", ""))]
    if p.get("variant"):
        parts.append(str(p["variant"]))
    return "/".join(parts)


@dataclass(frozen=True)
class ManifestRef:
    digest: str
    name: Optional[str]  # the tag or name the index gives it
    platform: Optional[str]


def manifests(store: Store, platform: Optional[str] = None) -> list[ManifestRef]:
    """Every image manifest reachable from index.json, nested indexes expanded, platforms chosen."""
    index = store.json("index.json")
    found: list[ManifestRef] = []
    _walk_index(store, index, None, found, depth=0)
    return choose_platform(found, platform)


def choose_platform(found: list[ManifestRef], wanted: Optional[str]) -> list[ManifestRef]:
    real = [m for m in found if m.platform != "unknown/unknown"]  # attestations: see the registry issue
    if wanted == "all" or len({m.platform for m in real}) <= 1:
        return real
    want = wanted or host_platform()
    chosen = [m for m in real if m.platform in (None, want) or (m.platform or "").startswith(want + "/")]
    if not chosen:
        have = ", ".join(sorted({m.platform or "?" for m in real}))
        raise SourceError(f"no image for platform {want} (available: {have}); use --platform")
    return chosen


def _walk_index(store: Store, index: Any, name: Optional[str], out: list, depth: int) -> None:
    if depth > 4:
        raise SourceError(f"{store.location}: image indexes nested too deep")
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise SourceError(f"{store.location}: index has no manifests list")
    for desc in index["manifests"]:
        if not isinstance(desc, dict):
            raise SourceError(f"{store.location}: bad descriptor in index")
        annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
        ref = next((annotations[k] for k in REF_ANNOTATIONS if k in annotations), name)
        media = desc.get("mediaType", "")
        if media in INDEX_TYPES:
            nested = store.json(blob_name(desc.get("digest"), store.location), desc["digest"])
            _walk_index(store, nested, ref, out, depth + 1)
        elif media in MANIFEST_TYPES or not media:
            out.append(ManifestRef(desc.get("digest"), ref, platform_of(desc)))


def load_manifest_image(store: Store, mref: ManifestRef, ref: str, kind: SourceKind) -> Image:
    where = f"{store.location}: manifest {str(mref.digest)[:19]}"
    manifest = store.json(blob_name(mref.digest, where), mref.digest)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) \
            or not isinstance(manifest.get("layers"), list):
        raise SourceError(f"{where}: not an image manifest")
    cdesc = manifest["config"]
    cname = blob_name(cdesc.get("digest"), where)
    _check_size(cdesc, store.blob(cname, cdesc["digest"]), "config", where)
    config = store.json(cname, cdesc["digest"])
    layers = []
    for desc in manifest["layers"]:
        if not isinstance(desc, dict):
            raise SourceError(f"{where}: bad layer descriptor")
        name = blob_name(desc.get("digest"), where)
        blob = store.blob(name, desc["digest"])
        _check_size(desc, blob, "layer", where)
        layers.append((blob, str(desc.get("mediaType", ""))))
    return build_image(ref, kind, mref.digest, config, layers, mref.platform, where)


def _check_size(desc: dict, blob: Blob, what: str, where: str) -> None:
    """A descriptor's size must be the blob's: a manifest that lies about one is not trusted."""
    if isinstance(desc.get("size"), int) and desc["size"] != blob.size:
        raise SourceError(f"{where}: {what} {desc['digest'][:19]} is {blob.size} bytes, manifest says {desc['size']}")


class OciSource(Source):
    """An OCI image layout, as a directory (`oci:`) or a tarball (`oci-archive:`)."""

    def __init__(self, store: Store, ref: str, kind: SourceKind, select: Optional[str] = None,
                 platform: Optional[str] = None) -> None:
        self.store, self.ref, self.kind, self.select, self.platform = store, ref, kind, select, platform

    def images(self) -> Iterator[Image]:
        refs = manifests(self.store, self.platform)
        if not refs:
            raise SourceError(f"{self.store.location}: index.json lists no images")
        seen: set[str] = set()
        single = len({m.digest for m in refs}) == 1
        for i, m in select(refs, self.select, self.store.location):
            if m.digest in seen:  # one image under several tags: scan it once, named by its first
                continue
            seen.add(m.digest)
            label = self.ref if single or self.select else f"{self.ref}:{m.name or '@%d' % i}"
            yield load_manifest_image(self.store, m, label, self.kind)


def select(refs: list, wanted: Optional[str], where: str) -> list[tuple[int, Any]]:
    """Pick images by name (`name:tag`, a bare tag) or by position (`@N`); None picks all."""
    items = list(enumerate(refs))
    if wanted is None:
        return items
    if wanted.startswith("@") and wanted[1:].isdigit():
        n = int(wanted[1:])
        if n >= len(refs):
            raise SourceError(f"{where}: no image @{n} (it holds {len(refs)})")
        return [items[n]]
    hits = [(i, r) for i, r in items if any(_name_matches(n, wanted) for n in _names(r))]
    if not hits:
        names = ", ".join(sorted({n for r in refs for n in _names(r) if n})) or "none"
        raise SourceError(f"{where}: no image named {wanted!r} (names: {names})")
    return hits


def _names(ref: Any) -> tuple[Optional[str], ...]:
    """Every name an image answers to: all the RepoTags of a docker archive entry, else its name."""
    return tuple(getattr(ref, "tags", ())) or (ref.name,)


def _name_matches(name: Optional[str], wanted: str) -> bool:
    if not name:
        return False
    short = lambda n: n.removeprefix("docker.io/").removeprefix("library/")
    return name == wanted or short(name) == short(wanted) or name.rsplit(":", 1)[-1] == wanted
