"""Baselines: the fingerprints of accepted findings, so that only new ones gate.

A fingerprint is built from the rule, the location, the secret's hash and its occurrence number,
never a layer digest (see pipeline._fingerprinted): it survives a rebuild of the same Dockerfile.
The file holds fingerprints, rule ids and locations: never a secret, nor its hash.
"""
from __future__ import annotations

import json
from typing import Any

from scanner import __version__
from scanner.errors import LayerscanError
from scanner.models import ScanResult

SCHEMA = "layerscan-baseline/v1"


class BaselineError(LayerscanError):
    """A baseline file that cannot be read or written."""


def baseline_document(result: ScanResult) -> dict[str, Any]:
    entries = {}
    for f in result.findings:
        entries[f.fingerprint] = {"fingerprint": f.fingerprint, "rule_id": f.hit.rule_id,
                                  "location": f.hit.path + (f"!{f.hit.inner_path}" if f.hit.inner_path else ""),
                                  "status": f.status.value, "image": f.image}
    return {"schema": SCHEMA, "tool": {"name": "layerscan", "version": __version__},
            "findings": sorted(entries.values(), key=lambda e: (e["image"], e["location"], e["rule_id"]))}


def write_baseline(result: ScanResult, path: str) -> int:
    doc = baseline_document(result)
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    except OSError as exc:
        raise BaselineError(f"cannot write baseline {path}: {exc.strerror}") from None
    return len(doc["findings"])


def load_baseline(path: str) -> frozenset[str]:
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {path}: {exc.strerror}") from None
    except ValueError:
        raise BaselineError(f"baseline {path}: not valid JSON") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("findings"), list):
        raise BaselineError(f"baseline {path}: not a {SCHEMA} file (write one with `layerscan baseline`)")
    fps = [e.get("fingerprint") for e in doc["findings"] if isinstance(e, dict)]
    if not all(isinstance(fp, str) and fp for fp in fps):
        raise BaselineError(f"baseline {path}: every entry needs a fingerprint")
    return frozenset(fps)
