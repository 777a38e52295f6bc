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

import difflib
import os
import re
from typing import Iterator, Optional, Union

from scanner.limits import NO_DEADLINE, Deadline, ManifestBudget
from scanner.models import Image, SourceKind
from scanner.sources.daemon import DaemonSource, LayerSink, engine_client, engine_whereabouts
from scanner.sources.docker_archive import DockerArchiveSource
from scanner.sources.interface import Source, SourceError
from scanner.sources.oci import OciSource, check_platform
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
    raise no_such_file(spec)


def no_such_file(spec: str) -> SourceError:
    """`PATH: no such file`, with the closest name in its directory when one is close."""
    parent, name = os.path.split(spec.rstrip("/"))
    try:
        names = os.listdir(parent or ".")
    except OSError:
        names = []
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    hint = f"; did you mean {os.path.join(parent, close[0])}?" if close else ""
    return SourceError(f"{spec}: no such file or directory{hint}")


def open_source(spec: str, platform: Optional[str] = None, registry: RegistryOptions = RegistryOptions(),
                sink: Optional[LayerSink] = None, deadline: Deadline = NO_DEADLINE,
                budget: Optional[ManifestBudget] = None) -> Source:
    """`sink` scans the layers of a stream as they pass (the engine's); without it they only pass.
    `deadline` is the run's --timeout, `budget` its bound on manifests (one per run is shared)."""
    check_platform(platform)
    budget = budget or ManifestBudget()
    if spec.startswith(DAEMON):
        name = spec[len(DAEMON):]
        if not name:
            raise SourceError(f"{spec}: name an image: docker-daemon:NAME[:TAG]")
        return DaemonSource(name, spec, sink, platform)
    for prefix in REGISTRY:
        if spec.startswith(prefix):
            return RegistrySource(parse_reference(spec[len(prefix):]), spec, registry, platform,
                                  deadline=deadline, budget=budget)
    for transport in TRANSPORTS:
        if spec.startswith(transport):
            path, sel = split_path(spec[len(transport):])
            return _open(path, sel, spec, transport[:-1], platform, deadline, budget)
    try:
        path, sel = split_path(spec)
    except SourceError:
        ref = None if looks_like_path(spec) else try_reference(spec)
        if ref is None:
            raise
        return EngineOrRegistrySource(spec, ref, registry, sink, platform, deadline, budget)
    return _open(path, sel, spec, None, platform, deadline, budget)


_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,5}$")


def looks_like_path(spec: str) -> bool:
    """A missing file, not an image name: `./x`, `/x`, `~/x`, `x.tar`, `dir/x.ext` (a `/` and an
    extension), or `dir/x` whose directory exists. Names rarely look so; a name that does can be
    given as `docker://NAME` or `docker-daemon:NAME`."""
    if spec.startswith(("/", "./", "../", "~")) or os.sep in spec and os.sep != "/" \
            or spec.lower().endswith((".tar", ".tar.gz", ".tgz", ".tar.zst", ".oci")):
        return True
    parent, last = spec.rpartition("/")[0], spec.rpartition("/")[2]
    if not parent:
        return False
    return (":" not in last and "@" not in last and bool(_EXTENSION.search(last))) or os.path.isdir(parent)


class EngineOrRegistrySource(Source):
    """A bare name: the local engine's image if the engine is there and has it, else the registry's."""

    def __init__(self, spec: str, ref: Reference, registry: RegistryOptions, sink: Optional[LayerSink],
                 platform: Optional[str], deadline: Deadline = NO_DEADLINE,
                 budget: Optional[ManifestBudget] = None) -> None:
        self.spec, self.ref, self.registry, self.sink, self.platform = spec, ref, registry, sink, platform
        self.deadline, self.budget = deadline, budget

    def images(self) -> Iterator[Image]:
        engine = engine_state(self.spec)
        if engine is True:
            yield from DaemonSource(self.spec, self.spec, self.sink, self.platform).images()
            return
        source = RegistrySource(self.ref, self.spec, self.registry, self.platform, deadline=self.deadline,
                                budget=self.budget)
        try:
            images = list(source.images())
        except SourceError as exc:
            local = "not in the local Docker engine" if engine is False else f"the local Docker engine is {engine}"
            raise SourceError(f"{self.spec}: {local}; from the registry: {_without(str(exc), self.spec)}") from None
        yield from images


def _without(message: str, spec: str) -> str:
    return message.removeprefix(f"{spec}: ")


def engine_state(name: str) -> Union[bool, str]:
    """True: the engine has the image; False: it answered and has not; else why it did not answer
    (`not reachable (DOCKER_HOST unset, no /var/run/docker.sock)`)."""
    import docker

    try:
        client = engine_client()
    except SourceError:
        return f"not reachable ({engine_whereabouts()})"
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False
    except Exception:  # the SDK's transport raises what requests raises: any trouble means no engine
        return f"not reachable ({engine_whereabouts()})"
    finally:
        client.close()


def _open(path: str, sel: Optional[str], ref: str, transport: Optional[str], platform: Optional[str],
          deadline: Deadline = NO_DEADLINE, budget: Optional[ManifestBudget] = None) -> Source:
    if os.path.isdir(path):
        if transport not in (None, "oci"):
            raise SourceError(f"{path}: is a directory; {transport}: wants a tarball")
        store = DirStore(path)
        if not store.has("index.json"):
            raise SourceError(f"{path}: not an OCI image layout (no index.json)")
        return OciSource(store, ref, SourceKind.OCI_LAYOUT, sel, platform, deadline, budget)
    if transport == "oci":
        raise SourceError(f"{path}: oci: wants a layout directory")
    tar = TarStore(path)
    if tar.has("manifest.json") and transport in (None, "docker-archive"):
        return DockerArchiveSource(tar, ref, sel, platform, deadline, budget)
    if tar.has("index.json") and transport in (None, "oci-archive"):
        return OciSource(tar, ref, SourceKind.OCI_ARCHIVE, sel, platform, deadline, budget)
    raise SourceError(f"{path}: not an image archive (no manifest.json or index.json inside)")
