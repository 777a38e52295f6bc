"""Where an on-disk image keeps its files: members of a tarball, or files of a layout directory.

A store maps a name (`manifest.json`, `blobs/sha256/<hex>`) to a `Blob`: a byte range of a local
file. Nothing is extracted; a tarball member is read in place at its data offset.
"""
from __future__ import annotations

import abc
import json
import os
import posixpath
import tarfile
from typing import Any, Optional

from scanner.layers.tarheaders import Header
from scanner.layers.tarstream import members, open_tar
from scanner.models import Blob
from scanner.sources.blobs import read_blob
from scanner.sources.interface import SourceError

MAX_JSON_DEPTH = 64
MAX_ARCHIVE_MEMBERS = 100_000  # an image archive holds a few files per layer: this bounds its index


class Store(abc.ABC):
    location: str

    @abc.abstractmethod
    def get(self, name: str, digest: Optional[str] = None) -> Optional[Blob]:
        """The blob stored under `name`, or None; `digest` is attached for checking on read."""

    def blob(self, name: str, digest: Optional[str] = None) -> Blob:
        found = self.get(name, digest)
        if found is None:
            raise SourceError(f"{self.location}: missing {name}")
        return found

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def json(self, name: str, digest: Optional[str] = None) -> Any:
        what = f"{self.location}: {name}"
        return parse_json(read_blob(self.blob(name, digest), what), what)


def parse_json(data: bytes, what: str) -> Any:
    try:
        doc = json.loads(data)
    except RecursionError:
        raise SourceError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise SourceError(f"{what}: not valid JSON") from None
    if _depth(doc) > MAX_JSON_DEPTH:
        raise SourceError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return doc


def _depth(doc: Any) -> int:
    depth, level = 0, [doc]
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            return depth
        nxt: list = []
        for item in level:
            if isinstance(item, dict):
                nxt.extend(item.values())
            elif isinstance(item, list):
                nxt.extend(item)
        level = nxt
    return depth


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


class TarStore(Store):
    """Members of an uncompressed tarball, indexed once by name; read in place by offset."""

    def __init__(self, path: str) -> None:
        self.location = path
        self._members: dict[str, Header] = {}
        info: Optional[Header] = None
        try:
            with open(path, "rb") as f:
                tf = open_tar(f, seek=True)
                for count, info in enumerate(members(tf)):
                    self._members[_clean(info.name)] = info
                    if count >= MAX_ARCHIVE_MEMBERS:
                        raise SourceError(f"{path}: over {MAX_ARCHIVE_MEMBERS} members: not an image archive")
        except tarfile.ReadError as exc:
            if str(exc).startswith("unexpected end of data") and self._members and info is not None:
                raise SourceError(f"{path}: truncated archive (it ends inside {info.name})") from None
            raise SourceError(f"{path}: not a readable image archive ({_tar_reason(exc, path)})") from None
        except (EOFError, OSError) as exc:
            raise SourceError(f"{path}: truncated or unreadable archive ({exc.__class__.__name__})") from None
        self._size = os.path.getsize(path)
        if not tf.marked:
            # Go's reader ends quietly where no header starts: without this, a cut archive would
            # read as a smaller archive ("no manifest.json") instead of a damaged one
            raise SourceError(f"{path}: truncated archive (no tar header or end-of-archive marker at byte "
                              f"{tf.fileobj.tell()})")

    def names(self) -> list[str]:
        return list(self._members)

    def get(self, name: str, digest: Optional[str] = None) -> Optional[Blob]:
        info = self._resolve(_clean(name))
        if info is None:
            return None
        if info.offset_data + info.stored > self._size:
            raise SourceError(f"{self.location}: {name} is truncated")
        return Blob(self.location, info.offset_data, info.stored, digest)

    def _resolve(self, name: str) -> Optional[Header]:
        for _ in range(8):  # Docker 25+ writes `<id>/layer.tar` as a symlink into blobs/
            info = self._members.get(name)
            if info is None or info.isreg():
                return info
            if info.issym():
                name = _clean(posixpath.join(posixpath.dirname(name), info.linkname))
            elif info.islnk():
                name = _clean(info.linkname)
            else:
                return None
        return None


def _tar_reason(exc: Exception, path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(b"\x1f\x8b") or head.startswith(b"\x28\xb5\x2f\xfd"):
        return "the archive itself is compressed: decompress it first, e.g. `gunzip` or `zstd -d`"
    return str(exc) or exc.__class__.__name__


class DirStore(Store):
    """Files of an OCI image layout directory. Names never leave the directory."""

    def __init__(self, root: str) -> None:
        self.location = root
        self._root = os.path.realpath(root)

    def get(self, name: str, digest: Optional[str] = None) -> Optional[Blob]:
        path = os.path.realpath(os.path.join(self._root, _clean(name)))
        if not path.startswith(self._root + os.sep) or not os.path.isfile(path):
            return None
        return Blob(path, 0, os.path.getsize(path), digest)
