"""The layer cache key: what makes a layer's result, hashed.

A layer's scan is a pure function of its bytes (the diff_id), the rules (the rule set's digest:
built-in and extra rule files, rules turned off), the limits, and the code that reads layers and
finds secrets. That code is hashed too (`code_digest`: the source of the detectors, the walk and
the archive readers, the package databases, the rule files and the data files they read), once per
process, so that an upgrade, or a local change, never serves a result the running code would not
make. No hand-bumped version string to forget.
"""
from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Iterable

import scanner
from scanner import __version__
from scanner.limits import Limits

FORMAT = 4  # of the entries (scanner/cache.py); 4: checked field by field on the way in, maybe sealed

# parts of the package (folders or files, relative to it) that a layer's result depends on
RESULT_CODE = ("detectors", "layers", "data", "packagedb.py", "packages", "pathevents.py", "redact.py", "inflate.py",
               "limits.py", "models.py", "cache.py", "cachekey.py", "sources/blobs.py")


def cache_key(diff_id: str, rules_digest: str, limits: Limits) -> str:
    material = json.dumps([FORMAT, __version__, code_digest(), diff_id, rules_digest, limits.key()], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """`source_digest` of the installed package and its built-in rule files (a few ms, once per process)."""
    from scanner.detectors.rules import builtin_rule_files

    return source_digest(Path(scanner.__file__).resolve().parent, builtin_rule_files())


def source_digest(package: Path, rule_files: Iterable[Path]) -> str:
    """sha256 over the `RESULT_CODE` files of `package` (every file of a folder but compiled
    bytecode) and the given rule files, each named by its place."""
    h = hashlib.sha256()
    for name, path in sorted(_files(package)) + sorted((f"rules/{p.name}", p) for p in rule_files):
        data = path.read_bytes()
        h.update(f"{name}\0{len(data)}\0".encode() + data)
    return h.hexdigest()


def _files(package: Path) -> list[tuple[str, Path]]:
    out = []
    for part in RESULT_CODE:
        path = package / part
        found = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
        out += [(p.relative_to(package).as_posix(), p) for p in found
                if "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".pyo"))]
    return out
