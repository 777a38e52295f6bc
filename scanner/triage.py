"""Triage, confidence and priority: how much each finding is worth acting on. Runs after the overlay.

Triage is by provenance, never by path (a path allowlist would hide a real key dropped under
`/usr/lib/python3`). The evidence is the image's own (`scanner.packages.index`):

- `vendor`: the finding's file is byte-identical to what a distro package shipped, as the image's
  own package databases record it (dpkg md5sums and conffiles, apk, rpm).
  Keys generated at install time (SSH host keys, the ssl-cert snakeoil key) are in no package:
  they stay real findings.
- `package`: the file is what a language package installed: byte-identical to its digest (pip
  RECORD, Maven `.sha1`, Gradle's cache, Cargo checksums), or, where the package manager keeps no
  digest (npm, egg-info, Composer, gems, Go modules), written by the same layer as the package's
  manifest and by no later one. Never `package`: a package installed from a local path or a VCS
  (the image author's own code), a package the user names private (`private-packages`), and a
  token in a live format: one whose checksum or structure a validator proved (GitHub/npm CRC32,
  age, PyPI macaroons) or a private key that parses. A public registry takes uploads from anyone,
  and such a token in a published package is a leak of its own (the registries scan for exactly
  that): it stays a real finding, with the package named, unless its hash is known-public.
  Distro packages are built by the distribution from reviewed sources: `vendor` has no such exception.
- Python bytecode compiled at install time (`__pycache__/x.cpython-311.pyc`) is in no package's
  digests; a secret in it that the triaged source file next to it also holds is triaged the same.
- `known-public`: the secret itself is published (documentation example keys, test keys shipped
  inside libraries), listed by sha256 in `scanner/data/known-public.tsv`.

Every finding whose file some evidence ties to a package names it (`package`), triaged or not.
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
from fnmatch import fnmatchcase
from typing import Callable, Iterable, Optional, Sequence

from scanner.detectors.entropy import CONFIDENCE as ENTROPY_CONFIDENCE
from scanner.detectors.files import CONFIDENCE as FILE_CONFIDENCE
from scanner.detectors.rules import Rule, RuleSet
from scanner.detectors.signature import context_only
from scanner.models import Confidence, DetectorKind, Finding, LayerScan, PackageRef, Severity, Status
from scanner.packages.index import PackageIndex

VENDOR = "vendor"
PACKAGE = "package"
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


# validators that prove a token was issued in its live format (a checksum, a key that parses)
LIVE_VALIDATORS = frozenset({"base62-crc32", "age-secret-key", "pypi-macaroon", "pem-private-key",
                             "base64-pem-private-key", "pgp-private-key", "putty-private-key"})
LIVE_FILE_RULES = frozenset({"der-private-key"})  # keystores are not here: their keys need a password


def _pattern_key(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text.lower())


def private_matcher(patterns: Sequence[str]) -> Callable[[PackageRef], bool]:
    """Whether a package is one the user named private: a glob on its name (`acme-*`, `@acme/*`,
    `com.acme:*`), case-insensitive; PyPI names compared normalised (`Acme_Utils` is `acme-utils`)."""
    plain = [p.lower() for p in patterns]
    pypi = [_pattern_key(p) for p in patterns]

    def private(ref: PackageRef) -> bool:
        if ref.ecosystem == "pypi":
            return any(fnmatchcase(_pattern_key(ref.name), p) for p in pypi)
        return any(fnmatchcase(ref.name.lower(), p) for p in plain)
    return private


def top_packages(findings: Iterable[Finding], n: int = 3) -> list[tuple[PackageRef, int]]:
    """The packages that hold most triaged (vendor, package) findings, with their counts."""
    counts: dict[PackageRef, int] = {}
    for f in findings:
        if f.package is not None and f.triage in (VENDOR, PACKAGE) and f.suppressed is None:
            counts[f.package] = counts.get(f.package, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].name, kv[0].version or ""))[:n]


class Triage:
    def __init__(self, rules: RuleSet, known_public: Optional[frozenset[str]] = None,
                 private_packages: Sequence[str] = ()) -> None:
        self.known_public = load_known_public() if known_public is None else known_public
        self._confidence = {r.id: rule_confidence(r) for r in rules.rules}
        self._confidence.update(ENTROPY_CONFIDENCE)
        self._confidence.update(FILE_CONFIDENCE)
        self._live = {r.id for r in rules.rules if r.validator in LIVE_VALIDATORS} | LIVE_FILE_RULES
        self.private = private_matcher(private_packages)

    def decide(self, f: Finding, index: PackageIndex) -> tuple[Optional[str], Optional[PackageRef]]:
        """(triage label, package) of one finding, by its own evidence."""
        match = index.lookup(f) if index else None
        package = match.package if match is not None else None
        if f.hit.secret.sha256 in self.known_public:
            return KNOWN_PUBLIC, package
        if match is None or self.private(match.package):
            return f.triage, package
        if match.distro:
            return VENDOR, package
        if match.local or f.hit.rule_id in self._live:
            return f.triage, package
        return PACKAGE, package

    def confidence(self, f: Finding, triaged: Optional[str]) -> Confidence:
        if triaged:
            return Confidence.LOW
        if f.hit.detector is DetectorKind.CONFIG:
            return Confidence.MEDIUM
        return self._confidence.get(f.hit.rule_id, Confidence.MEDIUM)

    def apply(self, findings: Sequence[Finding], scans: Sequence[LayerScan]) -> list[Finding]:
        index = PackageIndex(scans)
        decided = [self.decide(f, index) for f in findings]
        shipped = {(f.hit.path, f.hit.secret.sha256): d for f, d in zip(findings, decided) if d[0] in (VENDOR, PACKAGE)}
        out = []
        for f, (triaged, package) in zip(findings, decided):
            source = compiled_from(f.hit.path) if triaged is None and package is None and shipped else None
            if source is not None:
                triaged, package = shipped.get((source, f.hit.secret.sha256), (None, None))
            conf = self.confidence(f, triaged)
            out.append(replace(f, triage=triaged, confidence=conf, package=package,
                               priority=priority(f.hit.severity, f.status, conf, triaged)))
        return out
