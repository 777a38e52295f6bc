"""Kubernetes Secret manifests: every value under `data:` (base64, decoded) and `stringData:`
(plain), whatever key names it, in YAML (one or many documents, Helm-rendered output included)
and JSON files, a `kind: List` of items too.

PyYAML's C composer builds the node tree without constructing objects (no tags run, no aliases
expanded), bounded by the credential-file size (`files.MAX_FILE`). A value is reported at its key's
line, as decoded; certificates (public) and placeholders are left out. A file that is not valid
YAML (an unrendered Helm template) is not parsed.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Iterator, Optional

import yaml

from scanner.detectors.heuristics import is_placeholder

RULE = "kubernetes-secret"
EXT = (".yaml", ".yml", ".json")
_KIND = re.compile(rb"""(?m)^[ \t-]*["']?kind["']?[ \t]*:[ \t]*["']?Secret\b""")
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PUBLIC = (b"-----BEGIN CERTIFICATE-----",)

Value = tuple[int, int, bytes]  # (start of the key, end of the value) in the file, the secret


def may_hold_secret(path: str, buf: bytes) -> bool:
    return path.lower().endswith(EXT) and _KIND.search(buf) is not None


def secret_values(buf: bytes) -> Iterator[Value]:
    """Each value of every Secret in `buf`, with the span (byte offsets) from its key to its end."""
    try:
        text = buf.decode("utf-8")
        docs = list(yaml.compose_all(text, Loader=_LOADER))
    except (UnicodeDecodeError, yaml.YAMLError, RecursionError):
        return
    offsets = _ByteOffsets(text)
    for doc in docs:
        for secret in _secrets(doc):
            for field, decode in (("data", True), ("stringData", False)):
                for key, node in _pairs(_get(secret, field)):
                    value = _value(node, decode)
                    if value and not value.startswith(_PUBLIC) and not is_placeholder(value):
                        yield offsets(key.start_mark.index), offsets(node.end_mark.index), value


def _secrets(node) -> Iterator[yaml.MappingNode]:
    if not isinstance(node, yaml.MappingNode):
        return
    kind = _get(node, "kind")
    if isinstance(kind, yaml.ScalarNode) and kind.value == "Secret":
        yield node
    elif isinstance(kind, yaml.ScalarNode) and kind.value.endswith("List"):
        items = _get(node, "items")
        for item in items.value if isinstance(items, yaml.SequenceNode) else ():
            yield from _secrets(item)


def _get(node, key: str):
    for k, v in _items(node):
        if k == key:
            return v
    return None


def _items(node) -> Iterator[tuple[str, yaml.Node]]:
    for k, v in _pairs(node):
        yield k.value, v


def _pairs(node) -> Iterator[tuple[yaml.ScalarNode, yaml.Node]]:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                yield k, v


def _value(node, decode: bool) -> Optional[bytes]:
    if not isinstance(node, yaml.ScalarNode) or not node.value.strip():
        return None
    raw = node.value.encode("utf-8")
    if not decode:
        return raw
    try:
        return base64.b64decode(re.sub(rb"\s+", b"", raw), validate=True)
    except (binascii.Error, ValueError):
        return None


class _ByteOffsets:
    """Character index in the decoded text -> byte offset in the file (UTF-8)."""

    def __init__(self, text: str) -> None:
        self.text, self.ascii = text, text.isascii()

    def __call__(self, index: int) -> int:
        return index if self.ascii else len(self.text[:index].encode("utf-8"))
