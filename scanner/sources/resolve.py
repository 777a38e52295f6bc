"""What the user typed -> a Source. Explicit transports first, then a path on disk, then the
local Docker engine, then the registry.

Forms (the names skopeo users know):
  docker-daemon:NAME[:TAG|@DIGEST]     an image in the local Docker engine (or its image id)
  docker://NAME, registry:NAME         an image in a registry, pulled without any daemon
  docker-archive:PATH[:NAME:TAG|:@N]   a `docker save` tarball (legacy, Docker 25+, crane/ko/jib)
  oci-archive:PATH[:NAME|:@N]          an OCI layout in a tarball
  oci:DIR[:NAME|:@N]                   an OCI layout directory
  PATH[:NAME:TAG|:@N]                  any of the above, told apart by what is inside
  NAME[:TAG|@DIGEST]                   no such path: the local engine's image, else the registry's
"""
from __future__ import annotations

import os
from typing import Iterator, Optional

from scanner.models import Image, SourceKind
from scanner.sources.daemon import DaemonSource, LayerSink, engine_client
from scanner.sources.docker_archive import DockerArchiveSource
from scanner.sources.interface import Source, SourceError
from scanner.sources.oci import OciSource
from scanner.sources.reference import Reference, parse_reference, try_reference
from scanner.sources.registry import RegistrySource
from scanner.sources.remote import RegistryOptions
from scanner.sources.stores import DirStore, TarStore

TRANSPORTS = ("docker-archive:", "oci-archive:", "oci:")
DAEMON = "docker-daemon:"
REGISTRY = ("docker://", "registry:")


def split_path(spec: str) -> tuple[str, Optional[str]]:
    """`PATH[:SELECTOR]`, where PATH is the longest prefix that exists on disk."""
    if os.path.exists(spec):
        return spec, None
    cut = len(spec)
    while (cut := spec.rfind(":", 0, cut)) > 0:
        if os.path.exists(spec[:cut]):
            return spec[:cut], spec[cut + 1:] or None
    raise SourceError(f"{spec}: no such file or directory")


def open_source(spec: str, platform: Optional[str] = None, registry: RegistryOptions = RegistryOptions(),
                sink: Optional[LayerSink] = None) -> Source:
    """`sink` scans the layers of a stream as they pass (the engine's); without it they only pass."""
    if spec.startswith(DAEMON):
        name = spec[len(DAEMON):]
        if not name:
            raise SourceError(f"{spec}: name an image: docker-daemon:NAME[:TAG]")
        return DaemonSource(name, spec, sink, platform)
    for prefix in REGISTRY:
        if spec.startswith(prefix):
            return RegistrySource(parse_reference(spec[len(prefix):]), spec, registry, platform)
    for transport in TRANSPORTS:
        if spec.startswith(transport):
            path, sel = split_path(spec[len(transport):])
            return _open(path, sel, spec, transport[:-1], platform)
    try:
        path, sel = split_path(spec)
    except SourceError:
        ref = None if _looks_like_path(spec) else try_reference(spec)
        if ref is None:
            raise
        return EngineOrRegistrySource(spec, ref, registry, sink, platform)
    return _open(path, sel, spec, None, platform)


def _looks_like_path(spec: str) -> bool:
    """A missing file, not an image name: `./x`, `/x`, `~/x`, `x.tar`... (names never look so)."""
    return spec.startswith(("/", "./", "../", "~")) or os.sep in spec and os.sep != "/" \
        or spec.lower().endswith((".tar", ".tar.gz", ".tgz", ".tar.zst", ".oci"))


class EngineOrRegistrySource(Source):
    """A bare name: the local engine's image if the engine is there and has it, else the registry's."""

    def __init__(self, spec: str, ref: Reference, registry: RegistryOptions, sink: Optional[LayerSink],
                 platform: Optional[str]) -> None:
        self.spec, self.ref, self.registry, self.sink, self.platform = spec, ref, registry, sink, platform

    def images(self) -> Iterator[Image]:
        if _engine_has(self.spec):
            yield from DaemonSource(self.spec, self.spec, self.sink, self.platform).images()
            return
        try:
            images = list(RegistrySource(self.ref, self.spec, self.registry, self.platform).images())
        except SourceError as exc:
            raise SourceError(f"{self.spec}: not in a local Docker engine; from the registry: {exc}") from None
        yield from images


def _engine_has(name: str) -> bool:
    try:
        client = engine_client()
    except SourceError:
        return False
    try:
        client.images.get(name)
        return True
    except Exception:  # ImageNotFound, or any engine trouble: the registry is the next place to look
        return False
    finally:
        client.close()


def _open(path: str, sel: Optional[str], ref: str, transport: Optional[str], platform: Optional[str]) -> Source:
    if os.path.isdir(path):
        if transport not in (None, "oci"):
            raise SourceError(f"{path}: is a directory; {transport}: wants a tarball")
        store = DirStore(path)
        if not store.has("index.json"):
            raise SourceError(f"{path}: not an OCI image layout (no index.json)")
        return OciSource(store, ref, SourceKind.OCI_LAYOUT, sel, platform)
    if transport == "oci":
        raise SourceError(f"{path}: oci: wants a layout directory")
    tar = TarStore(path)
    if tar.has("manifest.json") and transport in (None, "docker-archive"):
        return DockerArchiveSource(tar, ref, sel, platform)
    if tar.has("index.json") and transport in (None, "oci-archive"):
        return OciSource(tar, ref, SourceKind.OCI_ARCHIVE, sel, platform)
    raise SourceError(f"{path}: not an image archive (no manifest.json or index.json inside)")
