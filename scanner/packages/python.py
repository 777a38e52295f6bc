"""Python distributions as pip installed them (the records of `scanner.models.PackageDb`).

| file | evidence |
|---|---|
| `<site>/<name>-<version>.dist-info/RECORD` | sha256 of each file (kept in RECORD's urlsafe base64, `sha256b64:`; paths relative to `<site>`) |
| `<name>.dist-info/METADATA`, `<name>.egg-info/PKG-INFO` | the distribution's `Name:` and `Version:` |
| `<name>.dist-info/direct_url.json` | installed from a local directory, a local file or a VCS: never triaged |
| `<site>/<name>.egg-info/installed-files.txt` | no digest: each file listed, if the same layer wrote it |
| RECORD rows `__pycache__/x.pyc,,` (bytecode pip compiled at install) | no digest: if the same layer wrote it |

A RECORD path may climb out of `<site>` (scripts in `<prefix>/bin`), never above the prefix
(`<site>/../../..`); absolute paths and paths that climb further are not evidence.
"""
from __future__ import annotations

import csv
import json
import posixpath
import re
from typing import Optional

from scanner.models import PackageDb
from scanner.packages.records import Writer, joined

NAMES = ("RECORD", "METADATA", "PKG-INFO", "direct_url.json", "installed-files.txt")
_DIST = re.compile(r"^/.+/[^/]+\.(?:dist-info|egg-info)/[^/]+$")
_B64 = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")  # 32 bytes, urlsafe, no padding
_HEADER = re.compile(r"^(Name|Version):[ \t]*(.*?)[ \t]*$", re.M)
PREFIX_DEPTH = 3  # <prefix>/lib/pythonX.Y/site-packages: what a RECORD path may climb to


def is_python(path: str, base: str) -> bool:
    if not _DIST.match(path):
        return False
    folder = posixpath.basename(posixpath.dirname(path))
    if folder.endswith(".dist-info"):
        return base in ("RECORD", "METADATA", "direct_url.json")
    return base in ("PKG-INFO", "installed-files.txt")


def dist_name(dist: str) -> tuple[str, str]:
    """(name, version) from a `name-version[-pyX.Y].dist-info` or `.egg-info` directory's name."""
    stem = posixpath.basename(dist).rsplit(".", 1)[0]
    name, _, rest = stem.partition("-")
    return name, rest.split("-", 1)[0]


def read_python(path: str, data: bytes) -> Optional[PackageDb]:
    dist = posixpath.dirname(path)
    base = posixpath.basename(path)
    out = Writer()
    text = data.decode("utf-8", "replace")
    if base in ("METADATA", "PKG-INFO"):
        head = text.split("\n\n", 1)[0]
        fields = {k: v for k, v in _HEADER.findall(head)}
        if not fields.get("Name"):
            return None
        out.package(fields["Name"], fields.get("Version", ""), dist)
    elif base == "direct_url.json":
        out.package("", "", dist, local=_local(text))  # the name: METADATA, else the directory (`index`)
    elif base == "RECORD":
        out.package("", "", dist)
        _record(text, posixpath.dirname(dist), out)
    else:  # installed-files.txt, relative to the egg-info directory
        out.package("", "", dist)
        prefix = _prefix(posixpath.dirname(dist))
        for line in text.splitlines():
            file = joined(dist, line.strip())
            if file is not None and file.startswith(prefix):
                out.file(file)
    return PackageDb(path, "pip", out.text())


def _local(text: str) -> bool:
    """PEP 610: `dir_info` (a local directory), `vcs_info` (git...), or any `file:` URL. A
    direct_url.json that cannot be read counts as local too: it says the install was not from an index."""
    try:
        doc = json.loads(text)
    except ValueError:
        return True
    if not isinstance(doc, dict):
        return True
    url = doc.get("url")
    return "dir_info" in doc or "vcs_info" in doc or not isinstance(url, str) or url.startswith("file:")


def _prefix(site: str) -> str:
    """`<site>/../../..` (`/usr/local` for `/usr/local/lib/python3.11/site-packages`), with a final `/`."""
    for _ in range(PREFIX_DEPTH):
        site = posixpath.dirname(site)
    return site.rstrip("/") + "/"


def _record(text: str, site: str, out: Writer) -> None:
    """`path,sha256=<urlsafe base64, no padding>,size` rows. A row without a digest is no evidence,
    but for the bytecode pip compiled at install time (`__pycache__/*.pyc,,`): that one is layer
    evidence (`file:`), the same layer as the RECORD."""
    prefix = _prefix(site)
    for line in text.splitlines():
        if '"' in line:  # a quoted path (it holds a comma or a quote): the csv module reads it
            try:
                row = next(csv.reader([line]), [])
            except csv.Error:  # a NUL, an overlong field: that row is no evidence, the others still are
                continue
        else:
            row = line.rsplit(",", 2)
        if len(row) < 2:
            continue
        file = joined(site, row[0])
        if file is None or not file.startswith(prefix):
            continue
        digest = row[1]
        if not digest:
            if file.endswith(".pyc") and "/__pycache__/" in file:
                out.file(file)
        elif digest.startswith("sha256=") and len(digest) == 50 and _B64.match(digest, 7):
            out.digest("sha256b64", digest[7:], file)  # compared as it is written (`index`): no decoding
