"""`--format json`: the layerscan/v1 contract of docs/report.md. Change it only by adding fields."""
from __future__ import annotations

import json
from typing import Any, Optional

from scanner import __version__
from scanner.models import Finding, HistoryEntry, ImageResult, LayerInfo, ScanResult, Verification
from scanner.reports.grouping import GroupBy, group_by_secret
from scanner.reports.interface import Report

SCHEMA = "layerscan/v1"


def layer_dict(layer: LayerInfo) -> dict[str, Any]:
    return {"index": layer.index, "digest": layer.digest, "diff_id": layer.diff_id,
            "created_by": layer.created_by, "files": layer.files, "bytes": layer.bytes,
            "created": layer.created, "history_index": layer.history_index, "blob_size": layer.blob_size,
            "media_type": layer.media_type}


def history_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {"index": entry.index, "created": entry.created, "created_by": entry.created_by,
            "empty_layer": entry.empty_layer, "layer": entry.layer}


def image_dict(image: ImageResult) -> dict[str, Any]:
    return {
        "ref": image.ref, "source": image.source.value, "digest": image.digest,
        "platform": image.platform,
        "layers": [layer_dict(layer) for layer in image.layers],
        "skipped": [{"layer": s.layer, "path": s.path, "reason": s.reason} for s in image.skipped],
        "history": [history_dict(h) for h in image.history],
    }


def finding_dict(f: Finding, reveal: bool) -> dict[str, Any]:
    h = f.hit
    secret: dict[str, Any] = {"sha256": h.secret.sha256, "redacted": h.secret.redacted}
    if reveal and h.secret.value is not None:
        secret["value"] = h.secret.value
    layer: Optional[dict[str, Any]] = None
    if f.layer is not None:
        layer = {"index": f.layer.index, "digest": f.layer.digest, "diff_id": f.layer.diff_id,
                 "created_by": f.layer.created_by, "created": f.layer.created}
    return {
        "fingerprint": f.fingerprint,
        "rule_id": h.rule_id,
        "detector": h.detector.value,
        "severity": h.severity.value,
        "title": h.title,
        "image": f.image,
        "image_digest": f.image_digest,
        "layer": layer,
        "history": None if f.history is None else
        {"index": f.history.index, "created": f.history.created, "created_by": f.history.created_by},
        "location": {"kind": h.kind.value, "path": h.path, "line": h.line, "inner_path": h.inner_path},
        "file": None if h.file is None else {
            "mode": f"{h.file.mode:04o}", "uid": h.file.uid, "gid": h.file.gid, "owner": h.file.uname,
            "group": h.file.gname, "size": h.file.size, "mtime": h.file.mtime, "sha256": h.file.sha256},
        "status": f.status.value,
        "removed_in": None if f.removed_in is None else
        {"index": f.removed_in.index, "created_by": f.removed_in.created_by, "digest": f.removed_in.digest,
         "created": f.removed_in.created},
        "secret": secret,
        "triage": f.triage,
        "package": None if f.package is None else
        {"ecosystem": f.package.ecosystem, "name": f.package.name, "version": f.package.version},
        "suppressed": f.suppressed,
        "confidence": None if f.confidence is None else f.confidence.value,
        "priority": f.priority,
        "gating": f.gating,
        "verification": None if f.verification is None else verification_dict(f.verification),
    }


def verification_dict(v: Verification) -> dict[str, Any]:
    """--verify: what the provider said (scanner/verify/); `canary` only when it is one."""
    out: dict[str, Any] = {"status": v.status, "endpoint": v.endpoint, "detail": v.detail, "checked_at": v.checked_at}
    if v.canary:
        out["canary"] = True
    return out


def secrets_list(result: ScanResult) -> list[dict[str, Any]]:
    """`--group-by secret`: one entry per secret; each sighting points into `findings` by index."""
    index = {id(f): i for i, f in enumerate(result.findings)}
    out = []
    for g in group_by_secret(result.findings):
        entry: dict[str, Any] = {"sha256": g.sha256, "redacted": g.redacted}
        if result.reveal and g.value is not None:
            entry["value"] = g.value
        entry.update({
            "rule_id": g.rule_ids[0], "rule_ids": list(g.rule_ids), "severity": g.severity.value,
            "images": list(g.images),
            "sightings": [{"finding": index[id(f)], "fingerprint": f.fingerprint, "image": f.image,
                           "layer": None if f.layer is None else f.layer.index, "path": f.hit.path,
                           "inner_path": f.hit.inner_path, "status": f.status.value} for f in g.sightings],
        })
        out.append(entry)
    return out


def to_document(result: ScanResult, group_by: GroupBy = GroupBy.FINDING) -> dict[str, Any]:
    doc = {
        "schema": SCHEMA,
        "tool": {"name": "layerscan", "version": __version__},
        "images": [image_dict(i) for i in result.images],
        "findings": [finding_dict(f, result.reveal) for f in result.findings],
        "summary": result.summary(),
    }
    if group_by is GroupBy.SECRET:
        doc["secrets"] = secrets_list(result)
    return doc


class JsonReport(Report):
    def __init__(self, group_by: GroupBy = GroupBy.FINDING) -> None:
        self.group_by = group_by

    def render(self, result: ScanResult) -> str:
        return json.dumps(to_document(result, self.group_by), indent=2) + "\n"
