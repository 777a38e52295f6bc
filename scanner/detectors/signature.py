"""The signature detector: keyword prefilter, regex, entropy floor, validator, allowlists."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator, Optional

try:
    from re import _parser as _sre_parse  # Python 3.11+
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]

from scanner.detectors.heuristics import (  # noqa: F401 - is_placeholder, shannon_entropy: public here too
    QUOTES,
    in_type_name,
    is_documentation,
    is_placeholder,
    is_source_code,
    looks_like_identifier,
    looks_like_text,
    looks_typed,
    shannon_entropy,
)
from scanner.detectors.interface import Detector, Match
from scanner.detectors.prefilter import make_prefilter, shape_filters
from scanner.detectors.rules import Rule, RuleSet
from scanner.detectors.validators import VALIDATORS
from scanner.models import DetectorKind

_PREFIXED = re.compile(rb"\(\?P<secret>(?:\(\?:)?[A-Za-z0-9_.-]{3}")


@lru_cache(maxsize=None)
def context_only(rule: Rule) -> bool:
    """A rule that knows a secret by its context alone (`PASSWORD=`, `datadog_api_key:`): no literal
    prefix in the secret, no validator. Such rules skip documentation files and typed examples."""
    return rule.validator is None and not _PREFIXED.match(rule.pattern.pattern)


MAX_SPAN = 16 << 10  # the widest window around a keyword (a PEM private key block after its BEGIN line)
UNBOUNDED_SPAN = 1 << 10  # the window of a rule whose regex has an unbounded repeat
CONTEXT = 256  # a keyword outside the match (context, `demo_ <token>`) may stand this far from it


def match_width(pattern: re.Pattern) -> int:
    """The longest text `pattern` can match (MAX_SPAN when unbounded): a keyword anywhere in a
    match lies within this many bytes of both of its ends, so that is the window a rule needs."""
    try:
        _, most = _sre_parse.parse(pattern.pattern, pattern.flags).getwidth()
    except Exception:  # a construct the parser cannot size: the widest window is always right
        return MAX_SPAN
    if most >= _sre_parse.MAXREPEAT:  # `[a-z_.-]*?` between two words of a variable name
        return UNBOUNDED_SPAN
    return min(most, MAX_SPAN)


class SignatureDetector(Detector):
    """Rules run only where the prefilter saw one of their keywords, in windows around it."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        unkeyed = [r for r in rules.rules if not r.keywords]
        shapes = shape_filters([r.pattern.pattern for r in unkeyed])
        self._shaped = [(unkeyed[i], f, match_width(unkeyed[i].pattern) + CONTEXT) for i, f in shapes.items()]
        self._always = [r for i, r in enumerate(unkeyed) if i not in shapes]
        keywords = sorted({k for r in rules.rules for k in r.keywords})
        self._keyword_rules: list[list[int]] = [[] for _ in keywords]
        index = {k: i for i, k in enumerate(keywords)}
        for ri, rule in enumerate(rules.rules):
            for k in rule.keywords:
                self._keyword_rules[index[k]].append(ri)
        self._keyword_len = [len(k) for k in keywords]
        self._span = [match_width(r.pattern) + CONTEXT for r in rules.rules]
        self.prefilter = make_prefilter(keywords)
        # rules without keywords stay out of binaries' UTF-16 strings: they would force the
        # costly extraction on every binary
        self._prefilter16 = make_prefilter([k.decode("latin-1").encode("utf-16-le") for k in keywords])

    def may_hold_utf16(self, buf: bytes) -> bool:
        return bool(self._prefilter16.find(buf))

    def windows(self, buf: bytes) -> dict[int, list[tuple[int, int]]]:
        """Per rule index, the merged byte ranges of `buf` around its keywords."""
        runs: dict[int, list[tuple[int, int]]] = {}
        for kid, clusters in self.prefilter.find_runs(buf).items():
            klen = self._keyword_len[kid]
            spans = [(first - klen, last - klen) for first, last in clusters]
            for ri in self._keyword_rules[kid]:
                runs.setdefault(ri, []).extend(spans)
        size = len(buf)
        return {ri: _merge_runs(sorted(spans), self._span[ri], size) for ri, spans in runs.items()}

    def candidate_rules(self, buf: bytes) -> list[Rule]:
        shaped = [rule for rule, shape, _ in self._shaped if shape.find(buf)]
        return self._always + shaped + [self.rules.rules[ri] for ri in sorted(self.windows(buf))]

    def scan(self, buf: bytes, path: Optional[str] = None) -> Iterator[Match]:
        found: list[Match] = []
        skip = context_only if is_documentation(path) else _never  # docs: examples, not secrets
        code = is_source_code(path)
        for rule in self._always:
            if not skip(rule):
                self._run(rule, buf, 0, len(buf), found, code)
        for rule, shape, width in self._shaped:
            if skip(rule):
                continue
            for ends in shape.find(buf).values():
                for start, end in _merge([e - width for e in ends], width, len(buf)):
                    self._run(rule, buf, start, end, found, code)
        for ri, spans in self.windows(buf).items():
            if skip(self.rules.rules[ri]):
                continue
            for start, end in spans:
                self._run(self.rules.rules[ri], buf, start, end, found, code)
        return most_severe_per_span(found)

    @staticmethod
    def _run(rule: Rule, buf: bytes, start: int, end: int, found: list[Match], code: bool = False) -> None:
        for m in rule.pattern.finditer(buf, start, end):
            if m.end() == end and end < len(buf):  # cut by the window: match again on the whole buffer
                m = rule.pattern.match(buf, m.start())
                if m is None:
                    continue
            secret = m.group("secret")
            if context_only(rule) and in_type_name(buf, m.start()):
                continue
            if code and rule.id.startswith("generic-") and buf[m.start("secret") - 1:m.start("secret")] not in QUOTES:
                continue  # `password: str`, `token = make_token()` in source code: a quoted value only
            if secret and accept(rule, secret):
                found.append(Match(rule.id, DetectorKind.SIGNATURE, rule.severity, rule.title,
                                   m.start("secret"), m.end("secret"), secret))


def _never(rule: Rule) -> bool:
    return False


def _merge(keyword_starts: list[int], width: int, size: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for at in keyword_starts:
        lo, hi = max(0, at - width), min(size, at + width)
        if spans and lo <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], hi))
        else:
            spans.append((lo, hi))
    return spans


def _merge_runs(runs: list[tuple[int, int]], width: int, size: int) -> list[tuple[int, int]]:
    """Windows around clusters of keyword starts: [first - width, last + width], merged."""
    spans: list[list[int]] = []
    for first, last in runs:
        lo, hi = first - width, last + width
        if spans and lo <= spans[-1][1]:
            if hi > spans[-1][1]:
                spans[-1][1] = hi
        else:
            spans.append([lo, hi])
    return [(lo if lo > 0 else 0, hi if hi < size else size) for lo, hi in spans]


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
    if is_placeholder(secret) or (context_only(rule) and (looks_typed(secret) or looks_like_text(secret)
                                                          or looks_like_identifier(secret))):
        return False
    return rule.validator is None or VALIDATORS[rule.validator](secret)
