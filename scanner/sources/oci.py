"""OCI image layouts (directory or `oci-archive` tarball): index.json -> manifests -> config + layers."""
from __future__ import annotations

import platform as _platform
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Optional

from scanner.limits import MAX_INDEX_DEPTH, NO_DEADLINE, Deadline, ManifestBudget
from scanner.models import Blob, Image, SourceKind
from scanner.sources.config import ATTESTATION, build_artifact, build_image
from scanner.sources.interface import Source, SourceError
from scanner.sources.schema import INDEX, MANIFEST, check
from scanner.sources.stores import Store

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
MANIFEST_TYPES = {"application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json"}
REF_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
REFERENCE_TYPE = "vnd.docker.reference.type"  # BuildKit's annotations of an attestation manifest
REFERENCE_DIGEST = "vnd.docker.reference.digest"
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
    parts = [p.get("os"), p.get("architecture")] + ([p["variant"]] if p.get("variant") else [])
    if not all(isinstance(part, str) for part in parts):
        raise SourceError("bad platform in an image index (os, architecture and variant must be strings)")
    return "/".join(parts)


@dataclass(frozen=True)
class ManifestRef:
    digest: str
    name: Optional[str]  # the tag or name the index gives it
    platform: Optional[str]
    tags: tuple[str, ...] = ()  # every name it is listed under (an image tagged twice is read once)
    attestation_of: Optional[str] = None  # an attestation manifest: the digest of the image it is about


def check_platform(wanted: Optional[str]) -> None:
    """`--platform` is `os/arch[/variant]` or `all`."""
    if wanted in (None, "all"):
        return
    parts = wanted.split("/")
    if not 2 <= len(parts) <= 3 or not all(parts):
        hint = f"; did you mean --platform linux/{wanted}?" if len(parts) == 1 and wanted else ""
        raise SourceError(f"--platform {wanted}: not an os/arch[/variant] platform "
                          f"(e.g. linux/amd64, linux/arm64/v8, or all){hint}")


def choose_platform(found: list[ManifestRef], wanted: Optional[str]) -> list[ManifestRef]:
    """The images of `wanted` (`all`: every one; None: this machine's), attestations left out."""
    real = [m for m in found if m.attestation_of is None and m.platform != ATTESTATION]
    if wanted == "all" or len({m.platform for m in real}) <= 1:
        return real
    want = wanted or host_platform()
    chosen = [m for m in real if m.platform in (None, want) or (m.platform or "").startswith(want + "/")]
    if not chosen:
        raise no_platform(want, {m.platform or "?" for m in real})
    return chosen


def no_platform(want: str, have: set[str]) -> SourceError:
    return SourceError(f"no image for platform {want} (available: {', '.join(sorted(have))}): "
                       "pick one with --platform os/arch[/variant], or --platform all")


def walk_index(index: Any, fetch: Callable[[str], Any], where: str, budget: ManifestBudget) -> list[ManifestRef]:
    """Every manifest an index reaches, level by level: each nested index read once (references
    deduplicated by digest before they are followed), every read counted against `budget`, at
    most `MAX_INDEX_DEPTH` levels. An image listed twice is one `ManifestRef` with both names."""
    found: dict[str, ManifestRef] = {}
    seen: set[str] = set()
    level: list[tuple[Any, Optional[str]]] = [(index, None)]
    for _ in range(MAX_INDEX_DEPTH + 1):
        nested: list[tuple[str, Optional[str]]] = []
        for doc, name in level:
            for desc, ref in _descriptors(doc, name, where):
                media, digest = desc.get("mediaType") or "", desc["digest"]
                if media in INDEX_TYPES and digest not in seen:
                    seen.add(digest)
                    nested.append((digest, ref))
                elif media in MANIFEST_TYPES or not media:
                    _add(found, desc, ref)
        if not nested:
            return list(found.values())
        level = []
        for digest, ref in nested:
            budget.take(f"{where}: index {digest[:19]}")
            level.append((fetch(digest), ref))
    raise SourceError(f"{where}: image indexes nested over {MAX_INDEX_DEPTH} deep")


def _descriptors(index: Any, name: Optional[str], where: str) -> Iterator[tuple[dict, Optional[str]]]:
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise SourceError(f"{where}: index has no manifests list")
    check(index, INDEX, where)
    for desc in index["manifests"]:
        blob_name(desc["digest"], where)
        annotations = desc.get("annotations") or {}
        ref = next((annotations[k] for k in REF_ANNOTATIONS if isinstance(annotations.get(k), str)), name)
        yield desc, ref


def _add(found: dict[str, ManifestRef], desc: dict, ref: Optional[str]) -> None:
    digest = desc["digest"]
    old = found.get(digest)
    if old is not None:  # one image under several names: read once, answering to all of them
        if ref and ref not in old.tags:
            found[digest] = replace(old, tags=old.tags + (ref,), name=old.name or ref)
        return
    annotations = desc.get("annotations") or {}
    subject = None
    if annotations.get(REFERENCE_TYPE) == "attestation-manifest" and isinstance(annotations.get(REFERENCE_DIGEST), str):
        subject = annotations[REFERENCE_DIGEST]
    found[digest] = ManifestRef(digest, ref, platform_of(desc), (ref,) if ref else (), subject)


def load_manifest_image(store: Store, mref: ManifestRef, ref: str, kind: SourceKind) -> Image:
    """The image (or, for an attestation, the artifact) a manifest of the layout describes."""
    where = f"{store.location}: manifest {str(mref.digest)[:19]}"
    manifest = store.json(blob_name(mref.digest, where), mref.digest)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict) \
            or not isinstance(manifest.get("layers"), list):
        raise SourceError(f"{where}: not an image manifest")
    check(manifest, MANIFEST, where)
    cdesc = manifest["config"]
    cname = blob_name(cdesc["digest"], where)
    _check_size(cdesc, store.blob(cname, cdesc["digest"]), "config", where)
    layers = []
    for desc in manifest["layers"]:
        blob = store.blob(blob_name(desc["digest"], where), desc["digest"])
        _check_size(desc, blob, "layer", where)
        layers.append((blob, desc))
    if mref.attestation_of is not None:
        config = store.json(cname, cdesc["digest"]) if "json" in (cdesc.get("mediaType") or "") else {}
        return build_artifact(ref, kind, mref.digest, config, layers)
    config = store.json(cname, cdesc["digest"])
    return build_image(ref, kind, mref.digest, config, [(b, d.get("mediaType") or "") for b, d in layers],
                       mref.platform, where)


def _check_size(desc: dict, blob: Blob, what: str, where: str) -> None:
    """A descriptor's size must be the blob's: a manifest that lies about one is not trusted."""
    if isinstance(desc.get("size"), int) and desc["size"] != blob.size:
        raise SourceError(f"{where}: {what} {desc['digest'][:19]} is {blob.size} bytes, manifest says {desc['size']}")


class OciSource(Source):
    """An OCI image layout, as a directory (`oci:`) or a tarball (`oci-archive:`)."""

    def __init__(self, store: Store, ref: str, kind: SourceKind, select: Optional[str] = None,
                 platform: Optional[str] = None, deadline: Deadline = NO_DEADLINE,
                 budget: Optional[ManifestBudget] = None) -> None:
        self.store, self.ref, self.kind, self.select, self.platform = store, ref, kind, select, platform
        self.deadline, self.budget = deadline, budget or ManifestBudget()

    def images(self) -> Iterator[Image]:
        self.budget.begin()
        found = walk_index(self.store.json("index.json"), self._index, self.store.location, self.budget)
        chosen = choose_platform(found, self.platform)
        if not chosen:
            raise SourceError(f"{self.store.location}: index.json lists no images")
        picked = select(chosen, self.select, self.store.location)
        labels = image_labels(self.ref, picked, bool(self.select))
        for (_, m), label in zip(picked, labels):
            yield self._load(m, label)
        by_subject = {m.digest: (label, m.platform) for (_, m), label in zip(picked, labels)}
        for m in found:
            if m.attestation_of in by_subject:
                yield self._load(m, attestation_label(*by_subject[m.attestation_of]))

    def _index(self, digest: str) -> Any:
        self.deadline.check(f"while reading {self.store.location}")
        return self.store.json(blob_name(digest, self.store.location), digest)

    def _load(self, m: ManifestRef, label: str) -> Image:
        self.deadline.check(f"while reading {self.store.location}")
        self.budget.take(f"{self.store.location}: manifest {m.digest[:19]}")
        return load_manifest_image(self.store, m, label, self.kind)


def attestation_label(label: str, platform: Optional[str]) -> str:
    """`app [attestation of linux/amd64]`: the name of the image it is about, its platform once."""
    if platform is None:
        return f"{label} [attestation]"
    return f"{label.removesuffix(f' [{platform}]')} [attestation of {platform}]"


def image_labels(ref: str, picked: list[tuple[int, Any]], selected: bool) -> list[str]:
    """A distinct name for each image of one layout or archive: the reference alone when it names
    one image (or they all share one name), else `REF:NAME` (`REF:@N` for an unnamed one); images
    that would still share a name get their platform: `layout:multi [linux/arm64]`."""
    names = {m.name for _, m in picked}
    plain = selected or len(picked) == 1 or len(names) == 1
    labels = [ref if plain else f"{ref}:{m.name or '@%d' % i}" for i, m in picked]
    counts = {label: labels.count(label) for label in labels}
    platforms = [getattr(m, "platform", None) for _, m in picked]
    return [label if counts[label] == 1 else f"{label} [{p}]" if p else f"{label}:@{i}"
            for label, p, (i, _) in zip(labels, platforms, picked)]


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
