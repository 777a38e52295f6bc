"""A file's digests for the provenance of its hits (sha256) and for triage (md5 and sha1: what dpkg
and apk record of the files they install), at little cost to the walk."""
from __future__ import annotations

import hashlib
from typing import Callable, Optional

from scanner.packagedb import in_jar_cache, may_be_packaged

KEPT = 8 << 20  # bytes of a file kept in memory, to hash it only if it has a hit


class HashingRead:
    """The file's sha256 for provenance, and its md5 and sha1 for triage (what dpkg and apk record of
    the files they install), at little cost: a file of up to KEPT bytes (nearly all of them) is
    hashed only if it had a hit, from the chunks kept; past that, the chunks kept so far and the
    rest are hashed as they stream: sha256, and md5 only where a package may have put the file
    (`packagedb.may_be_packaged`; md5 cost the walk of a Python install 0.6 s)."""

    def __init__(self, f, path: str, tick: Optional[Callable[[], None]] = None) -> None:
        self._f = f
        self._path = path
        self._tick = tick  # the image-wide limits, checked between reads of a long file
        self._kept: list[bytes] = []
        self._kept_bytes = 0
        self._hash: Optional["hashlib._Hash"] = None  # streaming: past KEPT
        self._md5: Optional["hashlib._Hash"] = None
        self._sha1: Optional["hashlib._Hash"] = None  # streamed: of a Maven or Gradle jar only (triage)

    def read(self, n: int = -1) -> bytes:
        if self._tick is not None:
            self._tick()
        data = self._f.read(n)
        if self._hash is not None:
            self._update(data)
            return data
        self._kept.append(data)
        self._kept_bytes += len(data)
        if self._kept_bytes > KEPT:  # too much to keep: hash from here on
            self._hash = hashlib.sha256()
            self._md5 = hashlib.md5() if may_be_packaged(self._path) else None
            self._sha1 = hashlib.sha1() if in_jar_cache(self._path) else None
            for chunk in self._kept:
                self._update(chunk)
            self._kept = []
        return data

    def _update(self, data: bytes) -> None:
        self._hash.update(data)  # type: ignore[union-attr]
        if self._md5 is not None:
            self._md5.update(data)
        if self._sha1 is not None:
            self._sha1.update(data)

    def digests(self) -> tuple[str, Optional[str], Optional[str]]:
        """sha256, md5 (not of a file streamed outside the packaged places) and sha1 (of a file
        streamed: only of a jar in a Maven or Gradle cache), of the whole file."""
        while self.read(1 << 20):  # the scanner may stop early (limits): hash what it did not read
            pass
        if self._hash is not None:
            return (self._hash.hexdigest(), self._md5.hexdigest() if self._md5 is not None else None,
                    self._sha1.hexdigest() if self._sha1 is not None else None)
        return held_digests(b"".join(self._kept))


def held_digests(data: bytes) -> tuple[str, str, str]:
    """sha256, md5 and sha1 of a file held whole."""
    return hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest()
