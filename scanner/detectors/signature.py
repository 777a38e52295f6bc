"""The signature detector: keyword prefilter, regex, entropy floor, validator, allowlists."""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator, Optional, Sequence

try:
    from re import _parser as _sre_parse  # Python 3.11+
except ImportError:  # pragma: no cover - Python 3.10
    import sre_parse as _sre_parse  # type: ignore[no-redef]

from scanner.detectors.heuristics import (  # noqa: F401 - is_placeholder, shannon_entropy: public here too
    QUOTES,
    encodes_placeholder,
    in_type_name,
    is_documentation,
    is_example_credential,
    is_placeholder,
    is_source_code,
    looks_like_hash,
    looks_like_identifier,
    looks_like_text,
    looks_typed,
    shannon_entropy,
)
from scanner.detectors.interface import Detector, Match
from scanner.detectors.keywords import make_prefilter
from scanner.detectors.prefilter import Prescan, make_rule_prefilter
from scanner.detectors.rules import Rule, RuleSet
from scanner.detectors.validators import VALIDATORS
from scanner.models import DetectorKind

_PREFIXED = re.compile(rb"\(\?P<secret>(?:\(\?:)?[A-Za-z0-9_.-]{3}")


@lru_cache(maxsize=None)
def prefixed(rule: Rule) -> bool:
    """Whether the rule's regex starts at its secret with a literal prefix (`(?P<secret>ghp_`)."""
    return bool(_PREFIXED.match(rule.pattern.pattern))


@lru_cache(maxsize=None)
def context_only(rule: Rule) -> bool:
    """A rule that knows a secret by its context alone (`PASSWORD=`, `datadog_api_key:`): no literal
    prefix in the secret, no validator. Such rules skip documentation files and typed examples."""
    return rule.validator is None and not prefixed(rule)


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
    """Rules run only where one prefilter pass placed them (`RulePrefilter`), in windows there."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self._span = [match_width(r.pattern) + CONTEXT for r in rules.rules]
        self._rank = {r.id: (int(r.service is not None), int(r.service is not None and not prefixed(r)))
                      for r in rules.rules}
        self.prefilter = make_rule_prefilter([r.pattern.pattern for r in rules.rules],
                                             [r.keywords for r in rules.rules], self._span,
                                             [r.positives for r in rules.rules],
                                             [r.by_keywords for r in rules.rules])
        self._unfiltered: Optional[list[int]] = None
        self._last: tuple[Optional[bytes], Optional[Prescan]] = (None, None)
        # rules without keywords stay out of binaries' UTF-16 strings: they would force the
        # costly extraction on every binary
        keywords = sorted({k for r in rules.rules for k in r.keywords})
        self._prefilter16 = make_prefilter([k.decode("latin-1").encode("utf-16-le") for k in keywords])

    def prepare(self) -> None:
        self._whole()

    def add_shape(self, pattern: bytes) -> int:
        """Another detector's candidate shape, found in the same pass (`prescan(buf).shapes[id]`)."""
        self._unfiltered = None
        return self.prefilter.add_shape(pattern)

    def prescan(self, buf: bytes) -> Prescan:
        """The one prefilter pass over `buf`; the detectors that share it ask for the same buffer."""
        last, found = self._last
        if last is not buf or found is None:
            found = self.prefilter.scan(buf)
            self._last = (buf, found)
        return found

    def gate(self) -> Optional["SignatureDetector"]:
        """This detector's own pass, when every rule runs only where it places them (a rule it
        cannot place runs over every buffer: no gate then)."""
        return None if self._whole() else self

    def may_hold_utf16(self, buf: bytes) -> bool:
        return bool(self._prefilter16.find(buf))

    def may_hold_framed(self, buf: bytes) -> bool:
        """A rule with a literal prefix (a provider token) runs somewhere in `buf`: its boundaries
        and checksum are what marshal framing breaks."""
        return any(not context_only(self.rules.rules[ri]) for ri in self.windows(buf))

    def windows(self, buf: bytes) -> dict[int, list[tuple[int, int]]]:
        """Per rule index, the merged byte ranges of `buf` where it runs: around the places the
        prefilter saw it (or its keywords), and only where one of its keywords is in the range."""
        out = {}
        for ri, spans in self.prescan(buf).rules.items():
            keywords = self.prefilter.keywords[ri]
            if keywords:
                spans = [(lo, hi) for lo, hi in spans if _has_keyword(buf, lo, hi, keywords)]
            if spans:
                out[ri] = spans
        return out

    def _whole(self) -> list[int]:
        if self._unfiltered is None:
            self._unfiltered = self.prefilter.unfiltered()
        return self._unfiltered

    def candidate_rules(self, buf: bytes) -> list[Rule]:
        placed = self.windows(buf)
        return [self.rules.rules[ri] for ri in sorted(set(self._whole()) | set(placed))]

    def scan(self, buf: bytes, path: Optional[str] = None) -> Iterator[Match]:
        placed, whole = self.windows(buf), self._whole()
        if not placed and not whole:  # no rule can match anywhere in buf (most buffers)
            return iter(())
        found: list[Match] = []
        skip = context_only if is_documentation(path) else _never  # docs: examples, not secrets
        code = is_source_code(path)
        rules = self.rules.rules
        for ri in whole:
            keywords = self.prefilter.keywords[ri]
            if not skip(rules[ri]) and (not keywords or _has_keyword(buf, 0, len(buf), keywords)):
                self._run(rules[ri], buf, 0, len(buf), found, code)
        for ri, spans in placed.items():
            if skip(rules[ri]):
                continue
            for start, end in spans:
                self._run(rules[ri], buf, start, end, found, code)
        return most_severe_per_span(found, self._rank)

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
            if "user" in rule.pattern.groupindex and is_example_credential(m.group("user") or b"", secret):
                continue  # `scott:tiger@`, `postgres:postgres@`: a documentation pair
            if secret and accept(rule, secret):
                found.append(Match(rule.id, DetectorKind.SIGNATURE, rule.severity, rule.title,
                                   m.start("secret"), m.end("secret"), secret))


def _never(rule: Rule) -> bool:
    return False


def _has_keyword(buf: bytes, lo: int, hi: int, keywords: Sequence[bytes]) -> bool:
    """A rule's keyword (lower-case: the prefilter's) in buf[lo:hi], in any case."""
    low = buf[lo:hi].lower()
    return any(k in low for k in keywords)


def most_severe_per_span(matches: list[Match], rank: Optional[dict[str, tuple[int, int]]] = None
                         ) -> Iterator[Match]:
    """One secret, one finding: where several rules report the same bytes, keep the best of them
    (all of them on a tie). A rule that names the provider beats a generic `*_API_KEY=` rule whatever
    their severities (it says which service the key opens, and how bad that is); then the more
    severe; then a provider rule that read the provider's name beside the secret beats one that
    only knows the token's shape (`PAYSTACK_SECRET_KEY=sk_live_...` is Paystack's, not Stripe's).
    `rank` maps a rule id to (names a provider, named in the context); without it, severity alone."""
    rank = rank or {}
    def key(m: Match) -> tuple[int, int, int]:
        service, context = rank.get(m.rule_id, (0, 0))
        return service, m.severity.rank, context
    best: dict[tuple[int, int], tuple[int, int, int]] = {}
    for m in matches:
        span = m.start, m.end
        best[span] = max(best.get(span, (0, 0, 0)), key(m))
    return (m for m in matches if key(m) == best[m.start, m.end])


def reports_hashes(rule: Rule) -> bool:
    """A rule about stored password hashes (`password-hash`, `sql-password-hash`): its id says so.
    Every other rule takes a `$6$...` or bcrypt value for what it is, a hash and not the password."""
    return rule.id.endswith("-hash")


def accept(rule: Rule, secret: bytes) -> bool:
    """The checks after the regex, cheapest first."""
    if rule.entropy and shannon_entropy(secret) < rule.entropy:
        return False
    low = secret.lower()
    if any(s in low for s in rule.stopwords):
        return False
    if any(p.search(secret) for p in rule.allow_patterns):
        return False
    if looks_like_hash(secret) and not reports_hashes(rule):
        return False
    if is_placeholder(secret) or (context_only(rule) and (looks_typed(secret) or looks_like_text(secret)
                                                          or looks_like_identifier(secret)
                                                          or encodes_placeholder(secret))):
        return False
    return rule.validator is None or VALIDATORS[rule.validator](secret)
