"""`--format sarif`: SARIF 2.1.0, one result per finding, for code-scanning dashboards."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from scanner import __version__
from scanner.reports.json import verification_dict
from scanner.models import Finding, ImageResult, ScanResult, Severity
from scanner.redact import escape
from scanner.reports.interface import Report

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {Severity.CRITICAL: "error", Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note"}
SECURITY_SEVERITY = {Severity.CRITICAL: "9.5", Severity.HIGH: "8.0", Severity.MEDIUM: "5.5", Severity.LOW: "3.0"}
ROOT = "IMAGEROOT"
SUPPRESSION = {"baseline": "accepted in the baseline file", "allowlist": "allowlisted in .layerscan.yaml",
               "inherited": "inherited from the base image (--base-image)"}


def _rules(findings: tuple[Finding, ...]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for f in findings:
        h = f.hit
        if h.rule_id in index:
            continue
        index[h.rule_id] = len(rules)
        rules.append({
            "id": h.rule_id,
            "name": "".join(w.capitalize() for w in h.rule_id.split("-")),
            "shortDescription": {"text": h.title},
            "fullDescription": {"text": f"{h.title} baked into a container image ({h.detector.value} detector)."},
            "defaultConfiguration": {"level": LEVEL[h.severity]},
            "help": {"text": "Revoke the secret, then rebuild the image without it: deleting it in a later "
                             "layer does not remove it from the image."},
            "properties": {"security-severity": SECURITY_SEVERITY[h.severity],
                           "tags": ["security", "secret", h.detector.value]},
        })
    return rules, index


def _location(f: Finding) -> dict[str, Any]:
    """Every result has a physical location (code-scanning dashboards drop results without one):
    a file's path in the image filesystem, else the image itself; the layer in the logical one."""
    h = f.hit
    layer = f"layer {f.layer.index}" if f.layer else "config"
    logical = [{"name": escape(h.path), "fullyQualifiedName": escape(f"{f.image}#{layer}:{h.path}"
                + (f"!{h.inner_path}" if h.inner_path else "")), "kind": h.kind.value}]
    physical: dict[str, Any] = {"artifactLocation": _artifact(h.path, f.image)}
    if not h.path.startswith("/"):
        physical["artifactLocation"]["description"] = {"text": escape(f"the image's {h.kind.value}: {h.path}")}
    elif h.line:
        physical["region"] = {"startLine": h.line}
    return {"logicalLocations": logical, "physicalLocation": physical}


def _artifact(path: str, image: str) -> dict[str, Any]:
    if path.startswith("/"):
        return {"uri": _uri(path.lstrip("/")), "uriBaseId": ROOT}
    return {"uri": _uri(image)}


def _uri(text: str) -> str:
    """A relative URI reference: percent-encoded, no ':' that could read as a scheme."""
    return quote(text, safe="/!$&'()*+,;=@~")


def _invocation(images: tuple[ImageResult, ...]) -> dict[str, Any]:
    """What was not scanned, as notifications: silence must never read as clean."""
    notes = [{"level": "warning",
              "message": {"text": escape(f"not scanned: {s.path}: {s.reason}"
                                 + (f" (layer {s.layer})" if s.layer is not None else ""))},
              "locations": [{"physicalLocation": {"artifactLocation": _artifact(s.path, i.ref)},
                             "logicalLocations": [{"fullyQualifiedName": escape(f"{i.ref}#layer {s.layer}:{s.path}")}]}],
              "properties": {"image": i.ref, "layerIndex": s.layer}}
             for i in images for s in i.skipped]
    return {"executionSuccessful": True, "toolExecutionNotifications": notes}


def _message(f: Finding) -> str:
    h = f.hit
    where = h.path + (f"!{h.inner_path}" if h.inner_path else "") + (f":{h.line}" if h.line else "")
    text = f"{h.title} ({h.secret.redacted}) in {where}, {f.status.value}"
    if f.layer is not None:
        text += f", layer {f.layer.index}"
        if f.layer.created_by:
            text += f" ({' '.join(f.layer.created_by.split())[:160]})"
    if f.removed_in is not None:
        text += f"; removed in layer {f.removed_in.index}, still readable in the image"
    return escape(text + ".")


def _level(f: Finding) -> str:
    """By severity; once a gate has decided, `error` is what fails it and nothing else is."""
    if f.gating is None:
        return LEVEL[f.hit.severity]
    if f.gating:
        return "error"
    return "warning" if LEVEL[f.hit.severity] == "error" else LEVEL[f.hit.severity]


def _result(f: Finding, reveal: bool, index: dict[str, int]) -> dict[str, Any]:
    props: dict[str, Any] = {"image": f.image, "status": f.status.value, "severity": f.hit.severity.value,
                             "secretSha256": f.hit.secret.sha256, "redacted": f.hit.secret.redacted}
    if f.layer is not None:
        props.update({"layerIndex": f.layer.index, "layerDigest": f.layer.digest})
    if f.removed_in is not None:
        props["removedInLayer"] = f.removed_in.index
    if reveal and f.hit.secret.value is not None:
        props["value"] = f.hit.secret.value
    if f.triage:
        props["triage"] = f.triage
    if f.package is not None:
        props["package"] = {"ecosystem": f.package.ecosystem, "name": f.package.name, "version": f.package.version}
    if f.gating is not None:
        props["gating"] = f.gating
    if f.verification is not None:  # --verify
        props["verification"] = verification_dict(f.verification)
    result: dict[str, Any] = {
        "ruleId": f.hit.rule_id,
        "ruleIndex": index[f.hit.rule_id],
        "level": _level(f),
        "message": {"text": _message(f)},
        "locations": [_location(f)],
        "partialFingerprints": {"layerscanFingerprint/v1": f.fingerprint},
        "properties": props,
    }
    if f.suppressed is not None:
        result["suppressions"] = [{"kind": "external", "justification": SUPPRESSION[f.suppressed]}]
    return result


def to_sarif(result: ScanResult) -> dict[str, Any]:
    findings = result.findings
    rules, index = _rules(findings)
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "layerscan", "version": __version__, "semanticVersion": __version__,
                                "rules": rules}},
            "originalUriBaseIds": {ROOT: {"uri": "file:///",
                                          "description": {"text": "The root of the image's filesystem."}}},
            "results": [_result(f, result.reveal, index) for f in findings],
            "invocations": [_invocation(result.images)],
            "properties": {"images": [i.ref for i in result.images]},
        }],
    }


class SarifReport(Report):
    def render(self, result: ScanResult) -> str:
        return json.dumps(to_sarif(result), indent=2) + "\n"
