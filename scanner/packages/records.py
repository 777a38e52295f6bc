"""The records a `PackageDb` holds, one a line (see `scanner.models.PackageDb`): written by the
readers of each ecosystem, read by triage. Everything here came from an image: names are
cleaned of control characters and bounded, paths normalised and refused if they climb out."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Optional

PATH_MAX = 4096  # Linux's: a longer path a manifest lists is no file of the image
MAX_NAME = 214  # npm's bound on a package name; plenty for every ecosystem's names and versions
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")  # C0, C1, bidi overrides


def clean(text: object) -> str:
    """A name or version from an image, safe in a record line and a terminal: control characters
    out, at most MAX_NAME characters; "" for anything that is not a string."""
    if not isinstance(text, str):
        return ""
    return _UNSAFE.sub("", text).strip()[:MAX_NAME]


def joined(base: str, relative: str) -> Optional[str]:
    """`relative` (a path a manifest lists) under the absolute directory `base`, normalised;
    None when it is absolute, holds control characters or climbs above the image root."""
    if not relative or len(relative) > PATH_MAX or relative[0] == "/" or not relative.isprintable() \
            or "\\" in relative:
        return None  # isprintable: no control character (C0, C1), no bidi override
    if "/." not in relative and relative[0] != "." and "//" not in relative and relative[-1] != "/":
        return base.rstrip("/") + "/" + relative  # nothing to resolve (nearly every path a manifest lists)
    parts = [p for p in base.split("/") if p]
    for part in relative.split("/"):
        if part == "..":
            if not parts:
                return None  # normpath would stop at the root; a manifest that tries is no evidence
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/" + "/".join(parts)


@dataclass(frozen=True)
class Package:
    """The package a record line belongs to."""

    manager: str
    name: str
    version: str
    key: str  # joins records of one package across evidence files (a dist-info dir, a package dir)
    local: bool = False  # installed from a local path or a VCS: the image author's own code


@dataclass(frozen=True)
class Evidence:
    """One record: `kind` "digest" (value "algo:hex"), "tree" (a directory) or "file"."""

    package: Package
    kind: str
    path: str
    value: str = ""


class Writer:
    """Builds the `files` text of a PackageDb."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def package(self, name: object, version: object = "", key: str = "", local: bool = False) -> None:
        """`key` is a path (never cut short: it joins records), the others names from the image."""
        key = _UNSAFE.sub("", key)
        self._lines.append("\t".join(["@", clean(name), clean(version), key] + (["local"] if local else [])))

    def digest(self, algo: str, value: str, path: str) -> None:
        if "\n" not in path:
            self._lines.append(f"{algo}:{value} {path}")

    def tree(self, directory: str) -> None:
        if "\n" not in directory:
            self._lines.append(f"tree: {directory}")

    def file(self, path: str) -> None:
        if "\n" not in path:
            self._lines.append(f"file: {path}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n" if self._lines else ""


def records(manager: str, files: str) -> Iterator[Evidence]:
    """The evidence lines of a PackageDb's `files`, each with the package it belongs to."""
    package = Package(manager, "", "", "")
    for line in files.splitlines():
        if line.startswith("@\t"):
            parts = line.split("\t")
            name, version, key = (parts[1:4] + ["", "", ""])[:3]
            package = Package(manager, name, version, key, "local" in parts[4:])
            continue
        head, _, path = line.partition(" ")
        if not path:
            continue
        if head == "tree:":
            yield Evidence(package, "tree", path)
        elif head == "file:":
            yield Evidence(package, "file", path)
        elif ":" in head:
            yield Evidence(package, "digest", path, head)


def headers(manager: str, files: str) -> Iterator[Package]:
    """Every package a PackageDb names (with or without evidence lines after it)."""
    for line in files.splitlines():
        if line.startswith("@\t"):
            parts = line.split("\t")
            name, version, key = (parts[1:4] + ["", "", ""])[:3]
            yield Package(manager, name, version, key, "local" in parts[4:])
