"""npm packages (also yarn's and pnpm's layouts) as installed under `node_modules`.

npm keeps no digest of the files it installs, so the evidence is the layer: a package's
`package.json` at `.../node_modules/<name>/package.json` (or `@scope/<name>`; pnpm's
`node_modules/.pnpm/<name>@<version>/node_modules/<name>/`) makes the package's directory a `tree`
record of its layer, and triage takes a file under it (not under a nested `node_modules`) only
when that same layer wrote it.

Never triaged, the image author's own code: a package resolved from a local path, a link or a
VCS: `_resolved`/`_from` in its package.json (npm 6), `resolved`/`link` in `node_modules/.package-lock.json`,
`package-lock.json` or `npm-shrinkwrap.json` (v1 `dependencies` and v2/v3 `packages`), a `yarn.lock`
entry `name@file:...` (taken at its hoisted place only), or a pnpm store directory named for
such a source (`foo@file+..`, `git+...`).

npm's own cache (`~/.npm/_cacache`): a content file named by the sha512 an index entry gives for an
http(s) download, in the same layer as that entry (`read_cache_index`).
"""
from __future__ import annotations

import base64
import json
import posixpath
import re
from typing import Any, Iterator, Optional
from urllib.parse import unquote

from scanner.models import PackageDb
from scanner.packages.records import Writer, clean, joined

NAMES = ("package.json", ".package-lock.json", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock")
_MANIFEST = re.compile(r"^(?P<root>/.*/node_modules/(?:@[^/]+/)?[^/@.][^/]*)/package\.json$")
_LOCAL = ("file:", "link:", "git+", "git:", "github:", "gitlab:", "bitbucket:", "portal:", "workspace:")
_PNPM_LOCAL = re.compile(r"/node_modules/\.pnpm/[^/]*(?:^|[@+_])"
                         r"(?:file|link|git|github\.com|gitlab\.com|bitbucket\.org)\+")


_CACHE_URL = re.compile(r"^make-fetch-happen:request-cache:(?P<url>https?://[^/]+/(?:.*?/)??"
                        r"(?P<name>(?:@[^/]+/)?[^/@]+?)(?:/-/(?P<file>[^/]+)\.tgz)?)$")


def is_cache_index(path: str, base: str) -> bool:
    """An index bucket of npm's cache (`_cacache/index-v5/ab/cd/<60 hex>`): its name says nothing
    cheap, so the walk asks only of names of that length."""
    return len(base) == 60 and "/_cacache/index-v5/" in path


def read_cache_index(path: str, data: bytes) -> Optional[PackageDb]:
    """`<sha1>\t<json>` lines: a download's `key` (the URL) and the sha512 `integrity` that names
    its content file (`_cacache/content-v2/sha512/ab/cd/ef...`). A content file is layer evidence
    of what that registry URL served (npm checked its integrity when it wrote it); entries of
    anything but an http(s) download (a `file:` tarball) are no evidence."""
    cache = path[:path.index("/_cacache/") + len("/_cacache")]
    out = Writer()
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line.partition("\t")[2])
        except ValueError:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("integrity"), str):
            continue
        m = _CACHE_URL.match(unquote(entry["key"])) if isinstance(entry.get("key"), str) else None
        sha512 = next((h[len("sha512-"):] for h in entry["integrity"].split() if h.startswith("sha512-")), None)
        try:
            hexdigest = base64.b64decode(sha512 or "", validate=True).hex()
        except ValueError:
            continue
        if m is None or len(hexdigest) != 128:
            continue
        name = m["name"]
        version = m["file"][len(name.rsplit("/", 1)[-1]) + 1:] if m["file"] else ""
        out.package(name, version, f"{cache}:{hexdigest}")
        out.file(f"{cache}/content-v2/sha512/{hexdigest[:2]}/{hexdigest[2:4]}/{hexdigest[4:]}")
    return PackageDb(path, "npm", out.text())


def is_npm(path: str, base: str) -> bool:
    if base == "package.json":
        return "/node_modules/" in path and _MANIFEST.match(path) is not None
    return True  # the lockfiles, wherever the project lies


def is_local_spec(spec: Any) -> bool:
    return isinstance(spec, str) and spec.strip().lower().startswith(_LOCAL)


def read_npm(path: str, data: bytes) -> Optional[PackageDb]:
    if path.endswith("/yarn.lock"):
        return _yarn(path, data)
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    out = Writer()
    if posixpath.basename(path) == "package.json":
        root = path[:-len("/package.json")]
        local = any(is_local_spec(doc.get(k)) for k in ("_resolved", "_from")) or bool(_PNPM_LOCAL.search(path))
        out.package(doc.get("name"), doc.get("version"), root, local=local)
        out.tree(root)
    else:
        project = posixpath.dirname(path)
        if posixpath.basename(path) == ".package-lock.json":  # node_modules/.package-lock.json
            project = posixpath.dirname(project)
        for root, name, version in _locals(doc, project):
            out.package(name, version, root, local=True)
    return PackageDb(path, "npm", out.text())


def _yarn(path: str, data: bytes) -> PackageDb:
    """yarn.lock (v1 and Berry): an entry whose spec is `name@file:...` (`link:`, `portal:`,
    `workspace:`, git...) names a local package, taken at its hoisted place `node_modules/<name>`."""
    out = Writer()
    project = posixpath.dirname(path)
    for line in data.decode("utf-8", "replace").splitlines():
        if not line or line[0] in " \t#" or not line.endswith(":"):
            continue
        for spec in line[:-1].split(","):
            spec = spec.strip().strip('"')
            at = spec.find("@", 1)
            name, want = spec[:at], spec[at + 1:]
            if at > 0 and (is_local_spec(want) or is_local_spec(want.removeprefix("npm:"))):
                root = joined(project, f"node_modules/{name}")
                if root is not None:
                    out.package(name, "", root, local=True)
    return PackageDb(path, "npm", out.text())


def _locals(doc: dict, project: str) -> Iterator[tuple[str, Any, Any]]:
    """(directory, name, version) of each package a lockfile says came from a local path or a VCS."""
    packages = doc.get("packages")
    if isinstance(packages, dict):
        for key, entry in packages.items():
            if not (isinstance(key, str) and key and isinstance(entry, dict)):
                continue
            if entry.get("link") is True or is_local_spec(entry.get("resolved")) or is_local_spec(entry.get("version")):
                root = joined(project, key)
                if root is not None:
                    yield root, entry.get("name") or key.rsplit("node_modules/", 1)[-1], entry.get("version")
    yield from _v1(doc.get("dependencies"), project + "/node_modules", 0)


def _v1(deps: Any, under: str, depth: int) -> Iterator[tuple[str, Any, Any]]:
    """lockfileVersion 1: `dependencies: {name: {version, resolved, dependencies}}`, nested."""
    if not isinstance(deps, dict) or depth > 64:
        return
    for name, entry in deps.items():
        root = joined(under, clean(name)) if isinstance(name, str) else None
        if root is None or not isinstance(entry, dict):
            continue
        if is_local_spec(entry.get("version")) or is_local_spec(entry.get("resolved")):
            yield root, name, entry.get("version")
        yield from _v1(entry.get("dependencies"), root + "/node_modules", depth + 1)
