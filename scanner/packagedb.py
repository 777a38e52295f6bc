"""Package evidence found in an image: distro package databases and language package manifests,
each reduced to a `PackageDb` (what its packages installed: file digests, or the directories the
package wrote in that layer). Triage (`scanner.triage`) marks a finding by it.

Read while a layer is walked (`is_package_db` picks the files, `read_package_db` reduces one):
the layer scan stays a pure function of the layer's bytes, and the reduced form is what the layer
cache keeps. `is_package_db` runs on every file of every layer: a look at the base name first, a
pattern only for the few names that may be evidence. The readers (`scanner.packages`):

- `distro`: dpkg, apk, rpm;
- `python`: dist-info RECORD, METADATA, direct_url.json; egg-info PKG-INFO, installed-files.txt;
- `npm`: node_modules package.json, lockfiles (npm, yarn and pnpm layouts), npm's cache index;
- `registries`: Maven caches, Cargo registry sources, Composer, RubyGems, the Go module cache.
"""
from __future__ import annotations

from typing import Iterator, Optional

from scanner.models import PackageDb
from scanner.packages import npm, python, registries
from scanner.packages.distro import (MAX_PACKAGE_DB, canonical, is_distro_db, may_be_packaged, read_distro_db,
                                     rpm_header_files)
from scanner.packages.records import records

__all__ = ["MAX_PACKAGE_DB", "MAX_MANIFEST", "canonical", "entries", "in_jar_cache", "is_package_db", "may_be_packaged",
           "read_package_db", "rpm_header_files"]

MAX_MANIFEST = 32 << 20  # a larger language manifest is scanned like any file, not read for triage
_DISTRO = ("/var/lib/dpkg/", "/lib/apk/db/", "/usr/lib/apk/db/", "/var/lib/rpm/", "/usr/lib/sysimage/rpm/")
_BY_NAME = {**{n: (python.is_python, python.read_python) for n in python.NAMES},
            **{n: (npm.is_npm, npm.read_npm) for n in npm.NAMES},
            **{n: (registries.is_registry, registries.read_registry) for n in registries.NAMES}}
_BY_SUFFIX = {s: (registries.is_registry, registries.read_registry) for s in registries.SUFFIXES}
_NPM_CACHE = (npm.is_cache_index, npm.read_cache_index)  # hex names: asked of names of their length only


def _reader(path: str):
    base = path[path.rfind("/") + 1:]
    pair = _BY_NAME.get(base)
    if pair is None:
        dot = base.rfind(".")
        pair = _BY_SUFFIX.get(base[dot:]) if dot > 0 else _NPM_CACHE if len(base) == 60 else None
    return pair if pair is not None and pair[0](path, base) else None


def in_jar_cache(path: str) -> bool:
    """A jar in a Maven repository or Gradle's cache: the walk keeps the sha1 of such a file even
    when it streams it (the digest both caches record; a Maven/Gradle jar is often over 8 MiB)."""
    return path.endswith((".jar", ".war", ".aar", ".ear")) and ("/repository/" in path or "/files-2.1/" in path)


def is_package_db(path: str, size: int = 1) -> bool:
    """Whether the walk should read the file at `path` (of `size` bytes) as package evidence."""
    if path.startswith(_DISTRO):
        return size <= MAX_PACKAGE_DB and is_distro_db(path)
    return size <= MAX_MANIFEST and _reader(path) is not None


def read_package_db(path: str, data: bytes) -> Optional[PackageDb]:
    """The file's records as `PackageDb`, or None when it is not evidence (or cannot be read)."""
    try:
        if path.startswith(_DISTRO):
            return read_distro_db(path, data)
        pair = _reader(path)
        return None if pair is None else pair[1](path, data)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        return None  # evidence that cannot be read is no evidence; the file is still scanned


def entries(db: PackageDb) -> Iterator[tuple[str, str]]:
    """(canonical path, "algo:hex") of every file digest the evidence records."""
    for e in records(db.manager, db.files):
        if e.kind == "digest":
            yield canonical(e.path), e.value
