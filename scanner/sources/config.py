"""From a parsed image config and its layer blobs to the `Image` model every source returns."""
from __future__ import annotations

import re
from typing import Any, Optional

from scanner.models import Blob, Image, Layer, SourceKind
from scanner.sources.blobs import is_document
from scanner.sources.interface import SourceError
from scanner.sources.schema import CONFIG, check

_DIFF_ID = re.compile(r"^sha256:[0-9a-f]{64}$")


def layer_history(config: dict) -> list[tuple[int, dict]]:
    """(history index, entry) of each history entry that made a layer, in layer order."""
    history = config.get("history")
    if not isinstance(history, list):
        return []
    return [(i, h) for i, h in enumerate(history) if isinstance(h, dict) and not h.get("empty_layer")]


def build_image(ref: str, kind: SourceKind, digest: Optional[str], config: Any,
                blobs: list[tuple[Blob, str]], platform: Optional[str], where: str) -> Image:
    if not isinstance(config, dict):
        raise SourceError(f"{where}: image config is not a JSON object")
    if not isinstance(config.get("rootfs"), dict) or not isinstance(config["rootfs"].get("diff_ids"), list):
        raise SourceError(f"{where}: image config has no valid rootfs.diff_ids")
    check(config, CONFIG, f"{where}: config")
    diff_ids = config["rootfs"]["diff_ids"]
    if not all(_DIFF_ID.match(d) for d in diff_ids):
        raise SourceError(f"{where}: image config has no valid rootfs.diff_ids")
    if len(diff_ids) != len(blobs):
        raise SourceError(f"{where}: manifest lists {len(blobs)} layers, config has {len(diff_ids)} diff_ids")
    history = layer_history(config)
    layers = []
    for i, ((blob, media), diff_id) in enumerate(zip(blobs, diff_ids)):
        hidx, entry = history[i] if i < len(history) else (None, {})
        layers.append(Layer(
            index=i, blob=blob, diff_id=diff_id, media_type=media,
            created_by=_str(entry.get("created_by")), created=_str(entry.get("created")),
            history_index=hidx,
        ))
    if platform is None and config.get("os") and config.get("architecture"):  # strings: checked
        platform = f"{config['os']}/{config['architecture']}"
        if isinstance(config.get("variant"), str) and config["variant"]:
            platform += f"/{config['variant']}"
    return Image(ref=ref, source=kind, digest=digest, config=config, layers=tuple(layers), platform=platform)


def _str(value: Any) -> Optional[str]:
    if not isinstance(value, str):
        return None
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:  # a lone surrogate from JSON: spelt out, as the config scan does
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


PREDICATE_TYPE = "in-toto.io/predicate-type"
ATTESTATION = "unknown/unknown"


def build_artifact(ref: str, kind: SourceKind, digest: Optional[str], config: Any,
                   layers: list[tuple[Blob, dict]]) -> Image:
    """An attestation or other artifact (descriptors checked by the manifest's schema): its
    layers (in-toto JSON and the like) scanned as documents, each under its own blob digest."""
    out = []
    for i, (blob, desc) in enumerate(layers):
        annotations = desc.get("annotations") or {}
        media = desc.get("mediaType") or ""
        what = annotations.get(PREDICATE_TYPE) or media or "blob"
        out.append(Layer(index=i, blob=blob, diff_id=blob.digest if is_document(media) else None,
                         media_type=media, created_by=f"attestation: {what}"))
    return Image(ref=ref, source=kind, digest=digest, config=config if isinstance(config, dict) else {},
                 layers=tuple(out), platform=ATTESTATION)
