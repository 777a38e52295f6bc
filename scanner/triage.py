"""Triage, confidence and priority: how much each finding is worth acting on. Runs after the overlay.

Triage is by provenance, never by path (a path allowlist would hide a real key dropped under
`/usr/lib/python3`):

- `vendor`: the finding's file is byte-identical to what a distro package shipped, as the image's
  own package databases record it (dpkg md5sums and conffiles, apk, rpm: `scanner.packagedb`).
  Keys generated at install time (SSH host keys, the ssl-cert snakeoil key) are in no package:
  they stay real findings.
  Python bytecode compiled at install time (`__pycache__/x.cpython-311.pyc`) is in no package either;
  a secret in it that the vendor source file next to it also holds is `vendor` too.
- `known-public`: the secret itself is published (documentation example keys, test keys shipped
  inside libraries), listed by sha256 in `scanner/data/known-public.tsv`.

Triaged findings stay in every report, counted apart, and do not fail the gate by default.

Confidence (how sure the finding is a usable secret): `high` for a token whose format carries a
checksum or structure a validator checked, or a distinctive prefix; `medium` for a value found by
its context (a `PASSWORD=` assignment, a credential file's field); `low` for high-entropy strings
and for triaged findings.

Priority 1 (act first) to 5: severity (critical 1 ... low 4), one step down for a secret that
only a deleted or overwritten layer still holds, one step down for low confidence (never past 4),
and 5 for triaged findings. So a live ENV or a present file ranks above the same secret in a
deleted layer, which ranks above an unmodified vendor file.
"""
from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Optional, Sequence

from scanner.detectors.entropy import CONFIDENCE as ENTROPY_CONFIDENCE
from scanner.detectors.files import CONFIDENCE as FILE_CONFIDENCE
from scanner.detectors.rules import Rule, RuleSet
from scanner.detectors.signature import context_only
from scanner.models import (Confidence, DetectorKind, FileMeta, Finding, LayerScan, LocationKind, Severity,
                            Status)
from scanner.packagedb import canonical, entries

VENDOR = "vendor"
KNOWN_PUBLIC = "known-public"
KNOWN_PUBLIC_FILE = Path(__file__).with_name("data") / "known-public.tsv"
_BASE = {Severity.CRITICAL: 1, Severity.HIGH: 2, Severity.MEDIUM: 3, Severity.LOW: 4}
_REMOVED = (Status.DELETED, Status.OVERWRITTEN)


@lru_cache(maxsize=4)
def load_known_public(path: Path = KNOWN_PUBLIC_FILE) -> frozenset[str]:
    """sha256 hex digests from `<sha256><TAB><what it is>` lines (# comments)."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        digest = line.split("\t", 1)[0].strip().lower()
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            out.add(digest)
    return frozenset(out)


def rule_confidence(rule: Rule) -> Confidence:
    """high: a validator checked it, or it carries its provider's prefix; medium: found by context."""
    return Confidence.MEDIUM if context_only(rule) else Confidence.HIGH


def priority(severity: Severity, status: Status, confidence: Confidence, triaged: Optional[str]) -> int:
    if triaged:
        return 5
    level = _BASE[severity] + (status in _REMOVED) + (confidence is Confidence.LOW)
    return min(level, 4)


_PYC = re.compile(r"^(?P<dir>.*?)/(?:__pycache__/)?(?P<name>[^/]+?)(?:\.[a-z]+-\d+)?(?:\.opt-\d)?\.pyc$")


def compiled_from(path: str) -> Optional[str]:
    """The source a .pyc was compiled from (`a/__pycache__/b.cpython-311.pyc` -> `a/b.py`)."""
    m = _PYC.match(path)
    return f"{m.group('dir')}/{m.group('name')}.py" if m else None


class VendorIndex:
    """Every (path, digest) any package database of any layer records: a file that was replaced
    by a package upgrade is still what a package shipped."""

    def __init__(self, scans: Iterable[LayerScan]) -> None:
        self._digests: dict[str, set[str]] = {}
        for scan in scans:
            for db in scan.packages:
                for path, digest in entries(db):
                    self._digests.setdefault(path, set()).add(digest)

    def __bool__(self) -> bool:
        return bool(self._digests)

    def shipped(self, path: str, meta: Optional[FileMeta]) -> bool:
        """Whether the file at `path` with these hashes is byte-identical to a packaged file."""
        if meta is None:
            return False
        mine = {f"md5:{meta.md5}", f"sha1:{meta.sha1}", f"sha256:{meta.sha256}"}
        return bool(self._digests.get(canonical(path), set()) & mine)


class Triage:
    def __init__(self, rules: RuleSet, known_public: Optional[frozenset[str]] = None) -> None:
        self.known_public = load_known_public() if known_public is None else known_public
        self._confidence = {r.id: rule_confidence(r) for r in rules.rules}
        self._confidence.update(ENTROPY_CONFIDENCE)
        self._confidence.update(FILE_CONFIDENCE)

    def label(self, f: Finding, vendor: VendorIndex) -> Optional[str]:
        h = f.hit
        if h.secret.sha256 in self.known_public:
            return KNOWN_PUBLIC
        if h.kind is LocationKind.FILE and vendor and vendor.shipped(h.path, h.file):
            return VENDOR
        return None

    def confidence(self, f: Finding, triaged: Optional[str]) -> Confidence:
        if triaged:
            return Confidence.LOW
        if f.hit.detector is DetectorKind.CONFIG:
            return Confidence.MEDIUM
        return self._confidence.get(f.hit.rule_id, Confidence.MEDIUM)

    def apply(self, findings: Sequence[Finding], scans: Sequence[LayerScan]) -> list[Finding]:
        vendor = VendorIndex(scans)
        labels = [self.label(f, vendor) or f.triage for f in findings]
        shipped = {(f.hit.path, f.hit.secret.sha256) for f, label in zip(findings, labels) if label == VENDOR}
        out = []
        for f, triaged in zip(findings, labels):
            source = compiled_from(f.hit.path) if triaged is None and shipped else None
            if source is not None and (source, f.hit.secret.sha256) in shipped:
                triaged = VENDOR
            conf = self.confidence(f, triaged)
            out.append(replace(f, triage=triaged, confidence=conf,
                               priority=priority(f.hit.severity, f.status, conf, triaged)))
        return out
