"""Every package record of an image's layers, looked up by a finding: which package, by what
evidence, its file came from (`scanner.triage` decides what that is worth).

- digest evidence (dpkg, apk, rpm, pip RECORD, Maven `.sha1`, Cargo checksums, Gradle's cache
  directories): the file is byte-identical to what some package, in any layer, recorded. A file a
  package upgrade replaced is still what a package shipped.
- layer evidence (npm, egg-info, Composer, gems, Go modules): the file lies under a package's
  directory (not below a nested `node_modules`) or is listed by it, the package's manifest came
  in the same layer as the file, and no later write replaced that file (status `overwritten`):
  what a layer did says nothing of what a later one did.
"""
from __future__ import annotations

import base64
import posixpath
from dataclasses import dataclass
from typing import Iterable, Optional

from scanner.models import FileMeta, Finding, LayerScan, LocationKind, PackageRef, Status
from scanner.packages import python
from scanner.packages.distro import canonical
from scanner.packages.records import Package, headers, records
from scanner.packages.registries import GRADLE

ECOSYSTEM = {"dpkg": "debian", "apk": "alpine", "rpm": "rpm", "pip": "pypi", "npm": "npm", "maven": "maven",
             "gem": "gem", "go": "golang", "composer": "composer", "cargo": "cargo"}
DISTRO = frozenset({"dpkg", "apk", "rpm"})


@dataclass(frozen=True)
class Match:
    """The package a finding's file came from, and what the evidence says of it."""

    package: PackageRef
    distro: bool  # a distro package (triage `vendor`), else a language package (`package`)
    local: bool = False  # installed from a local path or a VCS: the image author's own code


class PackageIndex:
    def __init__(self, scans: Iterable[LayerScan]) -> None:
        self._digests: dict[str, list[tuple[str, Package]]] = {}
        self._trees: dict[tuple[int, str], Package] = {}  # (layer, directory)
        self._files: dict[tuple[int, str], Package] = {}  # (layer, file)
        self._names: dict[tuple[str, str], tuple[str, str]] = {}  # (manager, key) -> name, version
        self._local: set[tuple[str, str]] = set()
        for layer, scan in enumerate(scans):
            for db in scan.packages:
                self._add(layer, db.manager, db.files)

    def _add(self, layer: int, manager: str, files: str) -> None:
        for p in headers(manager, files):
            if p.key:
                name, version = self._names.get((manager, p.key), ("", ""))
                self._names[(manager, p.key)] = (p.name or name, p.version or version)
                if p.local:
                    self._local.add((manager, p.key))
        for e in records(manager, files):
            if e.kind == "digest":
                self._digests.setdefault(canonical(e.path), []).append((e.value, e.package))
            elif e.kind == "tree":
                self._trees[(layer, e.path)] = e.package
            else:
                self._files[(layer, e.path)] = e.package

    def __bool__(self) -> bool:
        return bool(self._digests or self._trees or self._files)

    def lookup(self, f: Finding) -> Optional[Match]:
        h = f.hit
        if h.kind is not LocationKind.FILE or f.layer is None:
            return None
        found = self._by_digest(h.path, h.file)
        if found is not None or f.status is Status.OVERWRITTEN:
            return found
        layer = f.layer.index
        package = self._files.get((layer, h.path))
        parent = h.path
        while package is None and parent not in ("/", ""):
            parent = posixpath.dirname(parent)
            if posixpath.basename(parent) == "node_modules":
                break  # a file directly in node_modules, or in a package nested there that has no record
            package = self._trees.get((layer, parent))
        return None if package is None else self._match(package)

    def _by_digest(self, path: str, meta: Optional[FileMeta]) -> Optional[Match]:
        if meta is None:
            return None
        mine = {f"md5:{meta.md5}", f"sha1:{meta.sha1}", f"sha256:{meta.sha256}"}
        if meta.sha256:
            mine.add("sha256b64:" + base64.urlsafe_b64encode(bytes.fromhex(meta.sha256)).rstrip(b"=").decode())
        for digest, package in self._digests.get(canonical(path), ()):
            if digest in mine:
                return self._match(package)
        gradle = GRADLE.search(path) if "/files-2.1/" in path else None
        if gradle is not None and meta.sha1 and meta.sha1.lstrip("0") == gradle["sha1"].lstrip("0"):
            name = f"{gradle['group']}:{gradle['artifact']}"
            return Match(PackageRef("maven", name, gradle["version"]), distro=False)
        return None

    def _match(self, p: Package) -> Match:
        name, version = self._names.get((p.manager, p.key), ("", ""))
        name, version = p.name or name, p.version or version
        if not name and p.manager == "pip":
            name, version = python.dist_name(p.key)
        ref = PackageRef(ECOSYSTEM.get(p.manager, p.manager), name or "?", version or None)
        return Match(ref, p.manager in DISTRO, p.local or (p.manager, p.key) in self._local)
