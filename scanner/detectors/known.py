"""The known-secret detector: where does a value that has leaked appear, whatever a rule thinks of it.

`layerscan find --secrets FILE` reads leaked values (one a line) or their hashes (`sha256:<hex>`)
and runs this detector through the same walk as every scan: every file of every layer, inside
nested archives, UTF-16 text and binaries, and the config and history.

- A value is searched byte for byte, and in the forms it takes when encoded: base64 (standard and
  URL-safe alphabets, at each of the 3 alignments a value can have inside a longer base64 text:
  only the characters that depend on the value alone are searched) and URL-encoded (every byte
  but `A-Za-z0-9-._~` as `%XX`, upper or lower case hex, also with `+` for a space or `/` kept).
- A hash-only entry matches a candidate secret whose sha256 equals it: what a rule finds, and every
  whole token of 8 to 256 bytes (a run between whitespace, quotes, brackets, `,` and `;`, and the
  part of such a run after its first `=` or `:`).

Every sighting is a Match whose `secret` is the given value (or the candidate whose hash matched),
so the finding's `secret.sha256` is the hash of what the user gave. The values never leave: the
report names them by their line in the file (`label`), and `scrub` replaces every form of them in
text that is shown (history lines, paths).
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional, Sequence
from urllib.parse import quote, quote_plus

from scanner.detectors.interface import Detector, DetectorError, Match
from scanner.models import DetectorKind, Severity

RULE = "known-secret"
RULE_BASE64 = "known-secret-base64"
RULE_URL = "known-secret-urlencoded"
TITLES = {RULE: "Known leaked secret", RULE_BASE64: "Known leaked secret, base64-encoded",
          RULE_URL: "Known leaked secret, URL-encoded"}
RULES = frozenset(TITLES)
MIN_VALUE = 8  # shorter values would match by chance (and their base64 forms even more so)
MAX_VALUE = 4096  # its longest form must fit in the content scanner's chunk overlap (16 KiB)
MAX_TOKEN = 256
_HASH_LINE = re.compile(rb"^sha256:([0-9a-fA-F]{64})$")
_TOKEN = re.compile(rb"[^\s\"'`,;()\[\]{}<>]{%d,}" % MIN_VALUE)


class KnownSecretsError(DetectorError):
    """The secrets file cannot be used. Messages name lines, never their content."""


@dataclass(frozen=True)
class KnownSecret:
    line: int  # 1-based line of the secrets file
    sha256: str  # hex: of the value, or as given for a hash-only entry
    value: Optional[bytes] = field(default=None, repr=False, compare=False)  # None: hash only

    @property
    def label(self) -> str:
        """How reports name it: never any of its characters."""
        return f"[known secret, line {self.line}]"


def parse_secrets(data: bytes, source: str = "secrets file") -> tuple[KnownSecret, ...]:
    """One value a line, taken byte for byte (only the line ending is removed); `sha256:<hex>`
    lines are hashes. Empty lines are skipped; there are no comments (a value may start with #)."""
    out: dict[str, KnownSecret] = {}
    for number, line in enumerate(data.split(b"\n"), 1):
        line = line[:-1] if line.endswith(b"\r") else line
        if not line:
            continue
        m = _HASH_LINE.match(line)
        if m:
            secret = KnownSecret(number, m.group(1).decode().lower())
        elif len(line) < MIN_VALUE:
            raise KnownSecretsError(f"{source}, line {number}: a value must be at least {MIN_VALUE} bytes long")
        elif len(line) > MAX_VALUE:
            raise KnownSecretsError(f"{source}, line {number}: a value must be at most {MAX_VALUE} bytes long")
        else:
            secret = KnownSecret(number, hashlib.sha256(line).hexdigest(), line)
        out.setdefault(secret.sha256, secret)  # the same secret twice: its first line names it
    if not out:
        raise KnownSecretsError(f"{source}: no secret in it (one value a line, or sha256:<hex>)")
    return tuple(out.values())


@dataclass(frozen=True)
class Form:
    """One byte string to search for, and the given value a sighting of it stands for."""

    needle: bytes = field(repr=False)
    rule_id: str
    secret: KnownSecret


def base64_forms(value: bytes) -> list[bytes]:
    """The base64 characters that only `value` decides, at each of the 3 alignments it can have
    inside a longer base64 text, in both alphabets."""
    out: list[bytes] = []
    for k in range(3):
        start, end = -(-8 * k // 6), 8 * (k + len(value)) // 6
        std = base64.b64encode(b"\0" * k + value + b"\0\0")[start:end]
        for text in (std, std.translate(bytes.maketrans(b"+/", b"-_"))):
            if text not in out:
                out.append(text)
    return out


def url_forms(value: bytes) -> list[bytes]:
    """The usual percent-encodings of `value`, the ones that differ from it."""
    upper = [quote(value, safe="").encode(), quote_plus(value, safe="").encode(), quote(value, safe="/").encode()]
    lower = [re.sub(rb"%[0-9A-F]{2}", lambda m: m.group().lower(), u) for u in upper]
    out: list[bytes] = []
    for text in upper + lower:
        if text != value and text not in out:
            out.append(text)
    return out


def _cuts(token: bytes) -> list[int]:
    """Where the candidates in a token start: the whole token, after its first `=`, its first `:`."""
    cuts = [0] if len(token) <= MAX_TOKEN else []
    for sep in (b"=", b":"):
        cut = token.find(sep) + 1
        if cut > 0 and MIN_VALUE <= len(token) - cut <= MAX_TOKEN and cut not in cuts:
            cuts.append(cut)
    return cuts


def forms_of(secret: KnownSecret) -> list[Form]:
    if secret.value is None:
        return []
    forms = [Form(secret.value, RULE, secret)]
    forms += [Form(b, RULE_BASE64, secret) for b in base64_forms(secret.value)]
    forms += [Form(u, RULE_URL, secret) for u in url_forms(secret.value)]
    return forms


class KnownSecretDetector(Detector):
    """Finds the given secrets; `candidates` (the rule set's detector) feeds hash-only entries."""

    def __init__(self, secrets: Sequence[KnownSecret], candidates: Optional[Detector] = None) -> None:
        self.secrets = tuple(secrets)
        self.by_hash = {s.sha256: s for s in self.secrets}
        self.hash_only = {s.sha256: s for s in self.secrets if s.value is None}
        forms = [f for s in self.secrets for f in forms_of(s)]
        # longest first: where one value is the start of another, the longer one is reported
        self.forms = sorted(forms, key=lambda f: len(f.needle), reverse=True)
        self.candidates = candidates if self.hash_only else None

    @property
    def digest(self) -> str:
        """Names this detector's configuration (hashes only), for anything keyed by what ran."""
        return hashlib.sha256(" ".join(sorted(self.by_hash)).encode()).hexdigest()

    def scan(self, buf: bytes, path: Optional[str] = None) -> Iterator[Match]:
        for form in self.forms:
            at = buf.find(form.needle)
            while at >= 0:
                yield self._match(form.rule_id, form.secret, at, at + len(form.needle))
                at = buf.find(form.needle, at + 1)
        if self.hash_only:
            yield from self._by_hash(buf, path)

    def _by_hash(self, buf: bytes, path: Optional[str]) -> Iterator[Match]:
        seen: set[int] = set()
        for start, end, candidate in self._candidates(buf, path):
            known = self.hash_only.get(hashlib.sha256(candidate).hexdigest())
            if known is not None and start not in seen:
                seen.add(start)
                yield self._match(RULE, known, start, end, candidate)

    def _candidates(self, buf: bytes, path: Optional[str]) -> Iterator[tuple[int, int, bytes]]:
        """What a rule finds, then the tokens: each distinct token is hashed once (in C: findall
        and a set), and only a token that matched is looked for again, for its offsets."""
        if self.candidates is not None:
            for m in self.candidates.scan(buf, path):
                yield m.start, m.end, m.secret
        matched: dict[bytes, list[int]] = {}
        for token in set(_TOKEN.findall(buf)):
            for cut in _cuts(token):
                if hashlib.sha256(token[cut:]).hexdigest() in self.hash_only:
                    matched.setdefault(token, []).append(cut)
        if matched:
            for m in _TOKEN.finditer(buf):
                for cut in matched.get(m.group(), ()):
                    yield m.start() + cut, m.end(), m.group()[cut:]

    def _match(self, rule_id: str, secret: KnownSecret, start: int, end: int,
               found: Optional[bytes] = None) -> Match:
        raw = found if found is not None else secret.value
        return Match(rule_id, DetectorKind.SIGNATURE, Severity.CRITICAL, TITLES[rule_id], start, end, raw or b"")

    def is_known(self, sha256: str) -> bool:
        return sha256 in self.by_hash

    def label(self, sha256: str) -> str:
        return self.by_hash[sha256].label

    def scrub(self, text: Optional[str], found: Iterable[tuple[str, str]] = ()) -> Optional[str]:
        """`text` with every form of every given value, and every `found` (value, sha256) of a
        known secret (a hash-only entry's value, as a rule found it), replaced by the label."""
        if not text:
            return text
        for form in self.forms:
            needle = form.needle.decode("utf-8", "surrogateescape")
            if needle in text:
                text = text.replace(needle, form.secret.label)
        for value, sha in sorted(set(found), key=lambda vs: len(vs[0]), reverse=True):
            if value and sha in self.by_hash and value in text:
                text = text.replace(value, self.by_hash[sha].label)
        return text
