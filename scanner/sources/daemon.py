"""`DaemonSource`: an image in the local Docker engine (or Podman's Docker-compatible socket),
streamed out with `docker save` (`get_image`) and scanned as it streams: no copy on disk.

A `docker save` stream puts the layers before manifest.json (members come in name order), so
the layers cannot be matched to the image as they pass. They need not be: a layer's scan is a
pure function of its bytes. Each layer member is scanned the moment it passes (by the
`LayerSink` the pipeline hands over, i.e. the layer runner) and remembered by the diff_id its
bytes hash to; small members (configs, manifest.json, index.json, tiny layers) are kept in
memory. When the stream ends, the archive is read like any `docker save` tarball from that
memory store, the streamed layers standing as `STREAMED` blobs that the runner matches by
diff_id: the config's diff_ids are what binds each scan to its layer, and verifies it.
"""
from __future__ import annotations

import io
import os
import posixpath
import re
import tarfile
from dataclasses import replace
from typing import Any, BinaryIO, Callable, Iterator, Optional, Protocol

from scanner.models import Blob, BlobKind, Image, SourceKind
from scanner.sources.blobs import GZIP_MAGIC, ZSTD_MAGIC
from scanner.sources.docker_archive import DockerArchiveSource
from scanner.sources.interface import Source, SourceError
from scanner.sources.stores import Store

STREAM_AT = 1 << 20  # layer members this big or bigger are scanned as they pass; smaller ones kept
MAX_DOCUMENT = 64 << 20  # a member that is no layer (config, manifest) is kept in memory up to this
CHUNK = 1 << 20
ENGINE_TIMEOUT = 300
_BLOB_NAME = re.compile(r"^blobs/sha256/([0-9a-f]{64})$")


class LayerSink(Protocol):
    """Where layer members go as they pass: the pipeline's layer runner, with progress."""

    def begin(self, label: str, total_bytes: int) -> None: ...
    def layer(self, stream: BinaryIO, what: str, expected_diff_id: Optional[str]) -> None: ...
    def end(self) -> None: ...


def engine_client(environ: Optional[dict] = None) -> Any:
    """A docker SDK client for the engine the docker CLI would use: DOCKER_HOST, else the
    current context (DOCKER_CONTEXT or ~/.docker/config.json's currentContext), else the default
    socket. `version="auto"`: Debian's dockerd 20.10 speaks API 1.41, older than the SDK's default."""
    import docker
    from docker.context import ContextAPI

    env = os.environ if environ is None else environ
    try:
        context = None if env.get("DOCKER_HOST") else _context_name(env)
        if context not in (None, "default"):
            ctx = ContextAPI.get_context(context)
            if ctx is None:
                raise SourceError(f"Docker context {context!r} not found")
            return docker.DockerClient(base_url=ctx.Host, tls=ctx.TLSConfig or False, version="auto",
                                       timeout=ENGINE_TIMEOUT)
        return docker.from_env(version="auto", timeout=ENGINE_TIMEOUT, environment=env)
    except docker.errors.DockerException as exc:
        raise SourceError(f"the local Docker engine is not reachable ({engine_whereabouts(env)}; {_reason(exc)})") from None


def _context_name(env: Any) -> Optional[str]:
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"]
    from docker.context.config import get_current_context_name

    return get_current_context_name()


DEFAULT_SOCKET = "/var/run/docker.sock"


def engine_whereabouts(environ: Optional[dict] = None) -> str:
    """Where the engine was looked for, and what was found there, in words: `DOCKER_HOST unset,
    no /var/run/docker.sock`; for a message saying the engine did not answer."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return f"DOCKER_HOST={env['DOCKER_HOST']} did not answer"
    if env.get("DOCKER_CONTEXT"):
        return f"Docker context {env['DOCKER_CONTEXT']} did not answer"
    if not os.path.exists(DEFAULT_SOCKET):
        return f"DOCKER_HOST unset, no {DEFAULT_SOCKET}"
    if not os.access(DEFAULT_SOCKET, os.R_OK | os.W_OK):
        return f"DOCKER_HOST unset, no permission on {DEFAULT_SOCKET}"
    return f"DOCKER_HOST unset, {DEFAULT_SOCKET} did not answer"


_PHRASES = (("refused", "connection refused"), ("permission denied", "permission denied"),
            ("no such file", "no such socket"), ("timed out", "timed out"), ("timeout", "timed out"),
            ("not found", "not found"), ("404", "not found"), ("500", "the engine failed (HTTP 500)"))


def _reason(exc: BaseException) -> str:
    """A few words for what went wrong, never the exception's own text (it carries URLs, reprs
    and Python internals): the system's words for an OS error, else a known phrase, else its kind."""
    text = str(exc)
    found = re.search(r"\[Errno -?\d+\] ([A-Za-z ,']+)", text)
    if found:
        return found.group(1).strip().rstrip(",'").lower()
    low = text.lower()
    return next((phrase for key, phrase in _PHRASES if key in low), exc.__class__.__name__)


class MemoryStore(Store):
    """The members of a stream that went past: small ones in memory, layers as STREAMED blobs."""

    def __init__(self, location: str) -> None:
        self.location = location
        self._blobs: dict[str, Blob] = {}
        self._links: dict[str, str] = {}

    def keep(self, name: str, data: bytes) -> None:
        self._blobs[name] = Blob(f"{self.location}:{name}", 0, len(data), kind=BlobKind.MEMORY, data=data)

    def streamed(self, name: str, size: int) -> None:
        self._blobs[name] = Blob(f"{self.location}:{name}", 0, size, kind=BlobKind.STREAMED)

    def link(self, name: str, target: str) -> None:
        self._links[name] = target

    def get(self, name: str, digest: Optional[str] = None) -> Optional[Blob]:
        name = _clean(name)
        for _ in range(8):  # Docker 25+ writes `<id>/layer.tar` as a symlink into blobs/
            if name in self._blobs:
                return replace(self._blobs[name], digest=digest)
            if name not in self._links:
                return None
            name = self._links[name]
        return None


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


class _Chunks(io.RawIOBase):
    """A file over the chunks of an HTTP stream (the SDK's `get_image`)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._left:
            try:
                self._left = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._left))
        buffer[:n], self._left = self._left[:n], self._left[n:]
        return n


def _layer_like(head: bytes) -> bool:
    return head.startswith((GZIP_MAGIC, ZSTD_MAGIC)) or head[257:262] == b"ustar"


class DaemonSource(Source):
    def __init__(self, name: str, label: str, sink: Optional[LayerSink] = None, platform: Optional[str] = None,
                 client_factory: Optional[Callable[[], Any]] = None) -> None:
        self.name, self.label, self.sink, self.platform = name, label, sink, platform
        self.client_factory = client_factory

    def images(self) -> Iterator[Image]:
        import docker

        client = (self.client_factory or engine_client)()
        try:
            try:
                found = client.images.get(self.name)
            except docker.errors.ImageNotFound:
                raise SourceError(f"{self.name}: no such image in the Docker engine") from None
            store = self._stream(client, found)
        except docker.errors.DockerException as exc:
            raise SourceError(f"{self.name}: the Docker engine failed ({_reason(exc)})") from None
        finally:
            client.close()
        for image in DockerArchiveSource(store, self.label, platform=self.platform).images():
            yield replace(image, source=SourceKind.DAEMON)

    def _stream(self, client: Any, found: Any) -> MemoryStore:
        import requests

        store = MemoryStore(f"docker-daemon:{self.name}")
        sink = self.sink
        if sink is not None:
            sink.begin(f"{self.label} (from the engine)", int(found.attrs.get("Size") or 0))
        try:
            raw = io.BufferedReader(_Chunks(client.api.get_image(found.id, chunk_size=CHUNK)), CHUNK)
            with tarfile.open(fileobj=raw, mode="r|") as outer:
                for info in outer:
                    self._member(outer, info, store)
        except tarfile.TarError as exc:
            raise SourceError(f"{self.name}: the engine's image stream is not a readable tar ({exc})") from None
        except (requests.RequestException, OSError) as exc:
            raise SourceError(f"{self.name}: the engine's image stream broke off ({_reason(exc)})") from None
        finally:
            if sink is not None:
                sink.end()
        return store

    def _member(self, outer: tarfile.TarFile, info: tarfile.TarInfo, store: MemoryStore) -> None:
        name = _clean(info.name)
        if info.issym():
            store.link(name, _clean(posixpath.join(posixpath.dirname(name), info.linkname)))
            return
        if info.islnk():
            store.link(name, _clean(info.linkname))
            return
        if not info.isreg():
            return
        f = outer.extractfile(info)
        head = f.peek(512)[:512] if f is not None else b""
        layer_like = _layer_like(head) or name.endswith("/layer.tar")
        if f is not None and info.size >= STREAM_AT and layer_like:
            if self.sink is not None:  # without a sink (listing layers only) it just goes past
                found = _BLOB_NAME.match(name)
                plain = found is not None and not head.startswith((GZIP_MAGIC, ZSTD_MAGIC))
                self.sink.layer(f, f"{self.name}: {name}", "sha256:" + found.group(1) if plain and found else None)
            store.streamed(name, info.size)
        elif info.size > MAX_DOCUMENT and not layer_like:
            raise SourceError(f"{self.name}: unexpected {info.size >> 20} MiB member {name} in the engine's stream")
        else:
            store.keep(name, f.read() if f is not None else b"")
