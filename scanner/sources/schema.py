"""The JSON types of an image's documents (index, manifest, config, `docker save` manifest.json),
checked once where a source reads them, so that nothing after it meets a list where a string
belongs: a wrong type is one error line naming the field (`config.Env[2]: expected a string, got
a number`), never an internal error.

A dozen lines of checker instead of `jsonschema`: the checks are types and nothing else, the
message names the field the way a user reads it, and the sources stay free of another install
dependency (jsonschema stays a test one). Keys not listed are not checked (they are not read).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.sources.interface import SourceError

MAX_SIZE = (1 << 63) - 1  # a descriptor's size is an int64


@dataclass(frozen=True)
class Opt:
    """A key that may be missing, or null."""
    spec: Any


@dataclass(frozen=True)
class MapOf:
    """An object of any keys, each value `spec`."""
    spec: Any


@dataclass(frozen=True)
class Either:
    specs: tuple


SIZE = "size"  # an int within 0..int64
_NAMES = {str: "a string", int: "an integer", bool: "true or false", dict: "an object", SIZE: "a size (0 to 2^63-1)"}


def check(doc: Any, spec: Any, where: str, path: str = "") -> None:
    """Raise a SourceError naming the first field of `doc` whose type is not `spec`'s."""
    problem = _check(doc, spec, path)
    if problem is not None:
        raise SourceError(f"{where}: {problem}")


def _check(value: Any, spec: Any, path: str) -> Any:
    if isinstance(spec, Opt):
        return None if value is None else _check(value, spec.spec, path)
    if isinstance(spec, Either):
        if any(_check(value, s, path) is None for s in spec.specs):
            return None
        return _wrong(value, " or ".join(_name(s) for s in spec.specs), path)
    if isinstance(spec, list):
        if not isinstance(value, list):
            return _wrong(value, _name(spec), path)
        return next((p for i, item in enumerate(value) if (p := _check(item, spec[0], f"{path}[{i}]"))), None)
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            return _wrong(value, "an object", path)
        return next((p for k, v in value.items() if (p := _check(v, spec.spec, _key(path, k)))), None)
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return _wrong(value, "an object", path)
        for key, sub in spec.items():
            if key not in value and not isinstance(sub, Opt):
                return f"{_key(path, key)}: missing"
            problem = _check(value.get(key), sub, _key(path, key))
            if problem is not None:
                return problem
        return None
    if spec is SIZE:
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SIZE
    else:
        ok = isinstance(value, spec) and not (spec is int and isinstance(value, bool))
    return None if ok else _wrong(value, _name(spec), path)


def _key(path: str, key: str) -> str:
    shown = "".join(c if c.isprintable() and c.isascii() else "?" for c in str(key)[:60])  # image content
    return f"{path}.{shown}" if path else shown


def _name(spec: Any) -> str:
    if isinstance(spec, list):
        return f"a list of {_name(spec[0]).removeprefix('a ').removeprefix('an ')}s"
    if isinstance(spec, (dict, MapOf)):
        return "an object"
    if isinstance(spec, Opt):
        return _name(spec.spec)
    return _NAMES.get(spec, str(spec))


def _wrong(value: Any, expected: str, path: str) -> str:
    got = ("null" if value is None else "true or false" if isinstance(value, bool) else
           "a number" if isinstance(value, (int, float)) else "a string" if isinstance(value, str) else
           "a list" if isinstance(value, list) else "an object")
    if isinstance(value, int) and not isinstance(value, bool) and expected.startswith("a size"):
        got = "a number out of range"
    return f"{path or 'the document'}: expected {expected}, got {got}"


# --- the documents ---------------------------------------------------------------------------------

STRINGS = [str]
ANNOTATIONS = Opt(MapOf(str))
PLATFORM = {"os": str, "architecture": str, "variant": Opt(str), "os.version": Opt(str),
            "os.features": Opt(STRINGS), "features": Opt(STRINGS)}
DESCRIPTOR = {"mediaType": Opt(str), "digest": str, "size": Opt(SIZE), "annotations": ANNOTATIONS,
              "platform": Opt(PLATFORM), "artifactType": Opt(str), "urls": Opt(STRINGS)}
INDEX = {"mediaType": Opt(str), "manifests": [DESCRIPTOR], "annotations": ANNOTATIONS}
MANIFEST = {"mediaType": Opt(str), "config": DESCRIPTOR, "layers": [DESCRIPTOR], "annotations": ANNOTATIONS,
            "artifactType": Opt(str), "subject": Opt(DESCRIPTOR)}
COMMAND = Opt(Either((str, STRINGS)))  # Docker reads a lone string as a one-word command too
RUN_CONFIG = {
    "User": Opt(str), "Env": Opt(STRINGS), "Entrypoint": COMMAND, "Cmd": COMMAND, "Shell": COMMAND,
    "WorkingDir": Opt(str), "Labels": Opt(MapOf(str)), "StopSignal": Opt(str), "OnBuild": Opt(STRINGS),
    "ExposedPorts": Opt(MapOf(Opt(dict))), "Volumes": Opt(MapOf(Opt(dict))),
    "Healthcheck": Opt({"Test": COMMAND}),
}
HISTORY = {"created": Opt(str), "created_by": Opt(str), "author": Opt(str), "comment": Opt(str),
           "empty_layer": Opt(bool)}
CONFIG = {"architecture": Opt(str), "os": Opt(str), "variant": Opt(str), "created": Opt(str), "author": Opt(str),
          "config": Opt(RUN_CONFIG), "container_config": Opt(RUN_CONFIG),
          "rootfs": {"type": Opt(str), "diff_ids": STRINGS}, "history": Opt([HISTORY])}
ARCHIVE_MANIFEST = [{"Config": str, "RepoTags": Opt(STRINGS), "Layers": STRINGS}]  # `docker save`'s
