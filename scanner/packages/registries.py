"""Package caches of the other ecosystems (the records of `scanner.models.PackageDb`).

| manager | file | evidence |
|---|---|---|
| maven | `<repo>/repository/<group>/<artifact>/<version>/<artifact>-<version>*.jar.sha1` | the jar's sha1 |
| maven | Gradle's `files-2.1/<group>/<artifact>/<version>/<sha1>/<file>` | the directory names the sha1 (`triage`) |
| cargo | `<dir>/<crate>-<version>/.cargo-checksum.json` (registry sources, `cargo vendor`) | sha256 of each file |
| composer | `<vendor>/composer/installed.json` | layer: each package's directory |
| gem | `<home>/specifications/<name>-<version>.gemspec` | layer: `<home>/gems/<name>-<version>/` |
| go | `<gopath>/pkg/mod/cache/download/<module>/@v/<version>.ziphash` | layer: `<gopath>/pkg/mod/<module>@<version>/` |

Never triaged: a crate whose checksum file has no `package` digest (a git or path source), a
Composer package installed from source (a VCS clone) or a `path` repository.
"""
from __future__ import annotations

import json
import posixpath
import re
from typing import Any, Optional

from scanner.models import PackageDb
from scanner.packages.records import Writer, joined

NAMES = (".cargo-checksum.json", "installed.json")
SUFFIXES = (".sha1", ".gemspec", ".ziphash")
_MAVEN = re.compile(r"^(?P<repo>/.*/repository)/(?P<group>.+)/(?P<artifact>[^/]+)/(?P<version>[^/]+)/"
                    r"(?P=artifact)-(?P=version)[^/]*\.(?:jar|war|aar|ear)\.sha1$")
GRADLE = re.compile(r"/files-2\.1/(?P<group>[^/]+)/(?P<artifact>[^/]+)/(?P<version>[^/]+)/"
                    r"(?P<sha1>[0-9a-f]{1,40})/[^/]+$")
_CRATE = re.compile(r"^(?P<name>.+?)-(?P<version>\d+\.\d+\.\d+[^/]*)$")
_GEMSPEC = re.compile(r"^(?P<home>/.*)/specifications/(?P<full>(?P<name>.+?)-(?P<version>\d[^/]*))\.gemspec$")
_ZIPHASH = re.compile(r"^(?P<mod>/.*/pkg/mod)/cache/download/(?P<module>.+)/@v/(?P<version>[^/]+)\.ziphash$")
_SHA1 = re.compile(r"^\s*([0-9a-fA-F]{40})(?:\s|$)")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def is_registry(path: str, base: str) -> bool:
    if base == ".cargo-checksum.json":
        return True
    if base == "installed.json":
        return path.endswith("/composer/installed.json")
    if base.endswith(".sha1"):
        return "/repository/" in path and _MAVEN.match(path) is not None
    if base.endswith(".gemspec"):
        return "/specifications/" in path and _GEMSPEC.match(path) is not None
    return base.endswith(".ziphash") and "/pkg/mod/cache/download/" in path and _ZIPHASH.match(path) is not None


def read_registry(path: str, data: bytes) -> Optional[PackageDb]:
    base = posixpath.basename(path)
    out = Writer()
    if base == ".cargo-checksum.json":
        return _cargo(path, data, out)
    if base == "installed.json":
        return _composer(path, data, out)
    if base.endswith(".sha1"):
        m = _MAVEN.match(path)
        sha1 = _SHA1.match(data[:200].decode("latin-1"))
        if m is None or sha1 is None:
            return None
        jar = path[:-len(".sha1")]
        out.package(f"{m['group'].replace('/', '.')}:{m['artifact']}", m["version"], jar)
        out.digest("sha1", sha1.group(1).lower(), jar)
        return PackageDb(path, "maven", out.text())
    if base.endswith(".gemspec"):
        m = _GEMSPEC.match(path)
        if m is None or posixpath.basename(posixpath.dirname(path)) != "specifications":
            return None
        root = f"{m['home']}/gems/{m['full']}"
        out.package(m["name"], m["version"], root)
        out.tree(root)
        return PackageDb(path, "gem", out.text())
    m = _ZIPHASH.match(path)
    if m is None:
        return None
    root = f"{m['mod']}/{m['module']}@{m['version']}"
    out.package(re.sub(r"!([a-z])", lambda c: c.group(1).upper(), m["module"]), m["version"], root)
    out.tree(root)
    return PackageDb(path, "go", out.text())


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _cargo(path: str, data: bytes, out: Writer) -> Optional[PackageDb]:
    doc = _json(data)
    crate = posixpath.dirname(path)
    m = _CRATE.match(posixpath.basename(crate))
    if not isinstance(doc, dict) or not isinstance(doc.get("files"), dict) or m is None:
        return None
    out.package(m["name"], m["version"], crate, local=not isinstance(doc.get("package"), str))
    for rel, digest in doc["files"].items():
        file = joined(crate, rel) if isinstance(rel, str) else None
        if file is not None and file.startswith(crate + "/") and isinstance(digest, str) and _SHA256.match(digest):
            out.digest("sha256", digest, file)
    return PackageDb(path, "cargo", out.text())


def _composer(path: str, data: bytes, out: Writer) -> Optional[PackageDb]:
    """Composer 1 (a list) and 2 (`{"packages": [...]}`); `install-path` is relative to vendor/composer."""
    doc = _json(data)
    packages = doc.get("packages") if isinstance(doc, dict) else doc
    if not isinstance(packages, list):
        return None
    here = posixpath.dirname(path)
    vendor = posixpath.dirname(here)
    for p in packages:
        if not isinstance(p, dict) or not isinstance(p.get("name"), str):
            continue
        where = p.get("install-path")
        root = joined(here, where) if isinstance(where, str) else joined(vendor, p["name"])
        if root is None or not root.startswith(vendor + "/"):
            continue
        dist = p.get("dist") if isinstance(p.get("dist"), dict) else {}
        local = p.get("installation-source") == "source" or dist.get("type") in (None, "path")
        out.package(p["name"], p.get("version"), root, local=local)
        out.tree(root)
    return PackageDb(path, "composer", out.text())
