"""The signature detector: keyword prefilter, regex, entropy floor, validator, allowlists."""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterator, Optional

from detect_secrets.filters.heuristic import (
    is_indirect_reference,
    is_sequential_string,
    is_templated_secret,
)

from scanner.detectors.interface import Detector, Match
from scanner.detectors.rules import Rule, RuleSet
from scanner.detectors.validators import VALIDATORS
from scanner.models import DetectorKind

# Values that stand in for a secret in templates and docs. Whole-value matches, lower-case.
_PLACEHOLDERS = {
    b"changeme", b"change-me", b"change_me", b"password", b"secret", b"example", b"redacted",
    b"your-key-here", b"your_key_here", b"yourkeyhere", b"your-token-here", b"your_token_here",
    b"none", b"null", b"true", b"false", b"undefined", b"todo", b"fixme", b"dummy", b"test",
}


def shannon_entropy(data: bytes) -> float:
    if not data:
        return 0.0
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def is_placeholder(secret: bytes) -> bool:
    """Templated, indirect or obviously fake values (`${X}`, `{{ x }}`, `<token>`, `xxxx`, `changeme`)."""
    low = secret.lower().strip(b"'\"")
    if low in _PLACEHOLDERS or len(set(low)) <= 2:
        return True
    if low.startswith((b"${", b"$(", b"{{", b"<", b"%(", b"#{")) or low.endswith((b"}}", b">")):
        return True
    if b"xxxx" in low or b"****" in low or b"...." in low:
        return True
    text = secret.decode("latin-1")
    return is_templated_secret(text) or is_indirect_reference(text) or is_sequential_string(text)


class SignatureDetector(Detector):
    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._keyed = [r for r in rules.rules if r.keywords]
        self._always = [r for r in rules.rules if not r.keywords]

    def candidate_rules(self, buf: bytes) -> list[Rule]:
        low = buf.lower()
        return self._always + [r for r in self._keyed if any(k in low for k in r.keywords)]

    def scan(self, buf: bytes, path: Optional[str] = None) -> Iterator[Match]:
        found = []
        for rule in self.candidate_rules(buf):
            for m in rule.pattern.finditer(buf):
                secret = m.group("secret")
                if secret and accept(rule, secret):
                    found.append(Match(rule.id, DetectorKind.SIGNATURE, rule.severity, rule.title,
                                       m.start("secret"), m.end("secret"), secret))
        return most_severe_per_span(found)


def most_severe_per_span(matches: list[Match]) -> Iterator[Match]:
    """One secret, one finding: where several rules report the same bytes (a provider rule and a
    generic `*_API_KEY=` rule), keep only the most severe of them (all of them on a tie)."""
    best: dict[tuple[int, int], int] = {}
    for m in matches:
        best[m.start, m.end] = max(best.get((m.start, m.end), 0), m.severity.rank)
    return (m for m in matches if m.severity.rank == best[m.start, m.end])


def accept(rule: Rule, secret: bytes) -> bool:
    """The checks after the regex, cheapest first."""
    if rule.entropy and shannon_entropy(secret) < rule.entropy:
        return False
    low = secret.lower()
    if any(s in low for s in rule.stopwords):
        return False
    if any(p.search(secret) for p in rule.allow_patterns):
        return False
    if is_placeholder(secret):
        return False
    return rule.validator is None or VALIDATORS[rule.validator](secret)
