"""`--format json`: the layerscan/v1 contract of DESIGN.md. Change it only by adding fields."""
from __future__ import annotations

import json
from typing import Any, Optional

from scanner import __version__
from scanner.models import Finding, ImageResult, LayerInfo, ScanResult
from scanner.reports.interface import Report

SCHEMA = "layerscan/v1"


def layer_dict(layer: LayerInfo) -> dict[str, Any]:
    return {"index": layer.index, "digest": layer.digest, "diff_id": layer.diff_id,
            "created_by": layer.created_by, "files": layer.files, "bytes": layer.bytes}


def image_dict(image: ImageResult) -> dict[str, Any]:
    return {
        "ref": image.ref, "source": image.source.value, "digest": image.digest,
        "platform": image.platform,
        "layers": [layer_dict(layer) for layer in image.layers],
        "skipped": [{"layer": s.layer, "path": s.path, "reason": s.reason} for s in image.skipped],
    }


def finding_dict(f: Finding, reveal: bool) -> dict[str, Any]:
    h = f.hit
    secret: dict[str, Any] = {"sha256": h.secret.sha256, "redacted": h.secret.redacted}
    if reveal and h.secret.value is not None:
        secret["value"] = h.secret.value
    layer: Optional[dict[str, Any]] = None
    if f.layer is not None:
        layer = {"index": f.layer.index, "digest": f.layer.digest, "diff_id": f.layer.diff_id,
                 "created_by": f.layer.created_by}
    return {
        "fingerprint": f.fingerprint,
        "rule_id": h.rule_id,
        "detector": h.detector.value,
        "severity": h.severity.value,
        "title": h.title,
        "image": f.image,
        "layer": layer,
        "location": {"kind": h.kind.value, "path": h.path, "line": h.line, "inner_path": h.inner_path},
        "file": None if h.file is None else {
            "mode": f"{h.file.mode:04o}", "uid": h.file.uid, "gid": h.file.gid, "owner": h.file.uname,
            "group": h.file.gname, "size": h.file.size, "mtime": h.file.mtime, "sha256": h.file.sha256},
        "status": f.status.value,
        "removed_in": None if f.removed_in is None else
        {"index": f.removed_in.index, "created_by": f.removed_in.created_by},
        "secret": secret,
        "triage": f.triage,
    }


def to_document(result: ScanResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tool": {"name": "layerscan", "version": __version__},
        "images": [image_dict(i) for i in result.images],
        "findings": [finding_dict(f, result.reveal) for f in result.findings],
        "summary": result.summary(),
    }


class JsonReport(Report):
    def render(self, result: ScanResult) -> str:
        return json.dumps(to_document(result), indent=2) + "\n"
