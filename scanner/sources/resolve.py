"""What the user typed -> a Source. Explicit transports first, then a path on disk.

Forms (the names skopeo users know):
  docker-archive:PATH[:NAME:TAG|:@N]   a `docker save` tarball (legacy, Docker 25+, crane/ko/jib)
  oci-archive:PATH[:NAME|:@N]          an OCI layout in a tarball
  oci:DIR[:NAME|:@N]                   an OCI layout directory
  PATH[:NAME:TAG|:@N]                  any of the above, told apart by what is inside
"""
from __future__ import annotations

import os
from typing import Optional

from scanner.models import SourceKind
from scanner.sources.docker_archive import DockerArchiveSource
from scanner.sources.interface import Source, SourceError
from scanner.sources.oci import OciSource
from scanner.sources.stores import DirStore, TarStore

TRANSPORTS = ("docker-archive:", "oci-archive:", "oci:")
REMOTE = ("docker-daemon:", "docker://", "registry:")


def split_path(spec: str) -> tuple[str, Optional[str]]:
    """`PATH[:SELECTOR]`, where PATH is the longest prefix that exists on disk."""
    if os.path.exists(spec):
        return spec, None
    cut = len(spec)
    while (cut := spec.rfind(":", 0, cut)) > 0:
        if os.path.exists(spec[:cut]):
            return spec[:cut], spec[cut + 1:] or None
    raise SourceError(f"{spec}: no such file or directory")


def open_source(spec: str, platform: Optional[str] = None) -> Source:
    if spec.startswith(REMOTE):
        raise SourceError(f"{spec}: the Docker daemon and registry sources are not in this build; "
                          "scan a `docker save` tarball or an OCI layout instead")
    for transport in TRANSPORTS:
        if spec.startswith(transport):
            path, sel = split_path(spec[len(transport):])
            return _open(path, sel, spec, transport[:-1], platform)
    path, sel = split_path(spec)
    return _open(path, sel, spec, None, platform)


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
