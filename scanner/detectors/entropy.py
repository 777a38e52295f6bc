"""Generic secrets without a vendor prefix: keyword and entropy detection on candidate lines.

Built on detect-secrets' plugin classes, instantiated here and called directly (never its
process-wide settings, `scan_line` or `default_settings`): `KeywordDetector` finds values assigned
to secret-named variables, with the regexes detect-secrets picks by file type;
`Base64HighEntropyString` and `HexHighEntropyString` measure values that a secret-named variable
holds; its heuristic filters drop templates, indirect references, UUIDs, ids and sequences.

Cheap before expensive: the signature detector's one Hyperscan pass (prefilter mode) also finds
where a secret-ish name is assigned a value (`SHAPE`); only the lines around those places are
decoded and analysed. Without Hyperscan, the same shape is searched with `re` over the buffer:
same findings, slower.

What the signature rules report is left to them: a value a rule matches on the same line is
not reported again (one secret, one finding).
"""
from __future__ import annotations

import posixpath
import re
from functools import lru_cache
from typing import Iterator, Optional

from detect_secrets.filters.heuristic import (
    is_indirect_reference,
    is_likely_id_string,
    is_lock_file,
    is_not_alphanumeric_string,
    is_potential_uuid,
    is_sequential_string,
    is_templated_secret,
)
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString
from detect_secrets.plugins.keyword import (
    CONFIG_DENYLIST_REGEX_TO_GROUP,
    DENYLIST,
    QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    REGEX_BY_FILETYPE,
    KeywordDetector,
)
from detect_secrets.util.filetype import determine_file_type

from scanner.detectors.assignments import QUOTED, QUOTED_SHAPE, SHAPE, assigned, left_name, locate
from scanner.detectors.config import SECRET_NAME as CONFIG_SECRET_NAME
from scanner.detectors.interface import Detector, Match
from scanner.detectors.prefilter import make_rule_prefilter
from scanner.detectors.heuristics import (encodes_placeholder, is_documentation, is_placeholder, looks_like_hash,
                                         looks_like_identifier, looks_like_text, looks_typed, shannon_entropy)
from scanner.detectors.signature import context_only
from scanner.models import Confidence, DetectorKind, Severity

KEYWORD_RULE = ("keyword-secret", "Secret assigned to a secret-named variable")
ENTROPY_RULE = ("high-entropy-secret", "High-entropy string assigned to a secret-named variable")
CONFIDENCE = {KEYWORD_RULE[0]: Confidence.MEDIUM, ENTROPY_RULE[0]: Confidence.LOW}

_KEYWORD_NAME = re.compile("(?i)(?:" + "|".join(DENYLIST) + ")")  # detect-secrets' own list
# names that say "secret" but hold something else: pagination and request tokens, ids, file names
_NOT_SECRET_NAME = re.compile(
    r"(?i)(?:next|page|pagination|continuation|starting|change|lock|sequence|client|request|idempotency|sync|"
    r"csrf|xsrf|verification|confirmation|lifecycle|copy|work|import|export|update|policy|backward|forward|"
    r"marker|cursor|max|min)[_.-]?tokens?$"
    r"|(?:[_.-]?ids?|arn|name|type|file|path|dir|url|uri|len|length|size|count|ttl|expiry|expires|expiration|"
    r"blob|ciphertext|version|format|algorithm|field|header|prefix|label|description|enabled|required|error|exception|"
    r"manager|store|provider|method|mode|rotation|location|hint|policy|question|reset|changed)$|::|:.*:")  # ARNs
LINE = 512  # bytes looked at on each side of a candidate place, within its line
MIN_KEYWORD, MIN_ENTROPY = 8, 20  # shortest value reported by keyword, by entropy alone
# files of checksums and pinned hashes: high entropy everywhere, secrets nowhere
_CHECKSUM_FILES = re.compile(r"(?:^|/)(?:go\.sum|RECORD|[A-Z0-9]+SUMS|[^/]+\.(?:md5sums|sum|lock)|"
                             r"pnpm-lock\.yaml|npm-shrinkwrap\.json|yarn\.lock|\.?package-lock\.json)$")
# values that are code or configuration, not data
_NOT_DATA = [re.compile(p) for p in (
    r"^(?:[a-z_][a-z0-9_]*|[A-Z][A-Z0-9_]*|[A-Za-z][a-z0-9]+(?:[A-Z][a-z0-9]+)*)"  # settings.DB_PASSWORD
    r"(?:\.(?:[a-z_][a-z0-9_]*|[A-Z][A-Z0-9_]*|[A-Za-z][a-z0-9]+(?:[A-Z][a-z0-9]+)*))+$",
    r"^[A-Za-z_$][\w$.:]*[\[(]",  # os.environ["X"], get_secret(, decode$1(
    r"^[a-z_]+$", r"^_?[A-Za-z][a-z]+(?:[A-Z][a-z]+)*$", r"^[a-z][a-z0-9]*(?:[_-][a-z0-9]+)+$",
    r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$",
    r"^(?:~|\.{1,2})?/", r"^[A-Za-z][A-Za-z0-9+.-]*://", r"^\$[A-Za-z_{(]", r"^%[A-Za-z_]\w*%$",
    r"^[&*@][A-Za-z_][\w./-]*$", r"^\d+$", r"\{\{|\}\}|\$\{",
    r"^arn:", r"^[a-z_][a-z0-9_.]*:[A-Za-z_]\w*$", r"\s", r"\\[nrt0u]",  # ARNs, module:attr, text, escapes
    r"^:[A-Za-z_]",  # `RsaPrivateKey::dUnknown`: a scope, not a value
    r"^\.{1,2}[a-z_][a-z0-9_-]*(?:\.[a-z_][a-z0-9_-]*)*$",  # relative module, event namespace
    r"^[A-Za-z_][A-Za-z0-9_]*=$", r"^:[a-z]+:", r"^:[A-Z0-9_]+[:)\]]", r"^:[A-Z_]+$", r"[^\x21-\x7e]", r"^[A-Z]+$",
    r"^[A-Za-z_][A-Za-z0-9_.]*[)\]}]", r"^[A-Za-z]+(?:-[A-Za-z]+){2,}$", r"^[A-Za-z]+[:./-][A-Za-z]+$",
    r"\\[wdsWDS./-]|\[[A-Za-z0-9]-[A-Za-z0-9]|\\\\", r"&[a-z_]{2,}=", r"\|", r"^[\[(]",  # regexes, queries, types
    r"\)[?*+]|\.[*+]|\[[^\]]+\][*+?{]|\(\?[:!=<]", r"^[a-z0-9_.-]+(?:/[a-z0-9_.-]+)*/$",  # regexes; a path prefix
    r"^[a-z][a-z0-9_./-]*!?\*$|^\*[a-z]", r"^[a-z0-9-]+(?:/[a-z0-9-]+)+$",  # globs and relative paths
)]
_CONFIG_LIKE = {"", ".env", ".sh", ".bash", ".zsh", ".rc", ".txt", ".service", ".envrc", ".secrets",
                ".credentials", ".config", ".list", ".dockerfile", ".tfvars", ".hcl"}


@lru_cache(maxsize=4096)  # asked for every buffer of a file
def _not_for_secrets(path: str) -> bool:
    """Documentation, lock files and checksum lists: examples and hashes, not secrets."""
    return bool(_CHECKSUM_FILES.search(path) or is_lock_file(path) or is_documentation(path))


def _groups(path: str) -> dict:
    """The KeywordDetector regexes detect-secrets uses for this kind of file; config-style (quotes
    optional) for .env files, shell, Dockerfiles and files without an extension."""
    name = posixpath.basename(path)
    return _groups_for(posixpath.splitext(name)[1], name.startswith((".env", "Dockerfile")) or name.endswith(".env"))


@lru_cache(maxsize=1024)
def _groups_for(ext: str, env_like: bool) -> dict:
    groups = REGEX_BY_FILETYPE.get(determine_file_type("file" + ext))  # it reads the extension only
    if groups is not None:
        return groups
    if ext.lower() in _CONFIG_LIKE or env_like:
        return CONFIG_DENYLIST_REGEX_TO_GROUP
    return QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP


class EntropyDetector(Detector):
    """Keyword and high-entropy values on candidate lines; `signature` (optional) has precedence."""

    def __init__(self, signature: Optional[Detector] = None) -> None:
        self.signature = signature
        # values with a provider's prefix are that rule's to judge (a `ghp_` with a bad checksum is no token)
        rules = getattr(signature, "rules", None)
        keywords = {k for r in (rules.rules if rules else ()) if not context_only(r) for k in r.keywords}
        self._prefixes = tuple(sorted({k.decode("latin-1") for k in keywords
                                       if len(k) >= 4 or (len(k) == 3 and not k.isalpha())} | {"eyj"}))
        self.keyword = KeywordDetector()
        self.base64 = Base64HighEntropyString(limit=4.5)
        self.hex = HexHighEntropyString(limit=3.0)
        # the shape rides along the signature detector's pass over the same buffer
        self._pass = signature if hasattr(signature, "prescan") else make_rule_prefilter([], [], [])
        self._shape_id = self._pass.add_shape(SHAPE)
        self._quoted_id = self._pass.add_shape(QUOTED_SHAPE)

    def gate(self):
        """The signature detector's pass, which finds the shape for this one too (no shape, no
        finding); a pass of its own is not shared: no gate then."""
        return self._pass if self._pass is self.signature else None

    def may_hold_utf16(self, buf: bytes) -> bool:
        return False  # the UTF-16 strings of binaries are left to the signature rules

    def _shapes(self, buf: bytes) -> dict[int, list[int]]:
        found = self._pass.prescan(buf) if self._pass is self.signature else self._pass.scan(buf)
        return found.shapes

    def _shape_ends(self, buf: bytes) -> list[int]:
        return self._shapes(buf).get(self._shape_id, [])

    def candidates(self, buf: bytes, binary: bool = False,
                   ends: Optional[list[int]] = None) -> list[tuple[int, int]]:
        """(start, end) of each line (at most LINE bytes each side) where the shape was seen (at
        `ends`, when the caller has them). In binary content only a string delimited by NUL or a
        newline on both sides counts (a C string); Go's string tables, one run of text without
        delimiters, do not."""
        ends = self._shape_ends(buf) if ends is None else ends
        spans: list[tuple[int, int]] = []
        for end in sorted(ends):
            if spans and end <= spans[-1][1]:
                continue
            lo = max(0, end - LINE)
            start = max(buf.rfind(b"\n", lo, end), buf.rfind(b"\0", lo, end) if binary else -1)
            stop = buf.find(b"\n", end, end + LINE)
            if binary:
                nul = buf.find(b"\0", end, end + LINE)
                stop = nul if stop < 0 or 0 <= nul < stop else stop
                if start < 0 or stop < 0:
                    continue
            spans.append((start + 1 if start >= 0 else lo, stop if stop >= 0 else min(len(buf), end + LINE)))
        return spans

    def scan(self, buf: bytes, path: Optional[str] = None) -> Iterator[Match]:
        # nothing shaped like an assignment (most buffers); documentation and lockfiles hold
        # examples and checksums
        shapes = self._shapes(buf)
        ends = shapes.get(self._shape_id)
        if not ends or (path is not None and _not_for_secrets(path)):
            return iter(())
        # a config value (no path): the config detector checks the names it knows (`*_PASSWORD`)
        config, binary = path is None, b"\0" in buf
        # config values and a binary's C strings read like config files (`NAME=value`)
        groups = CONFIG_DENYLIST_REGEX_TO_GROUP if config or binary else _groups(path)
        quoted = groups is not CONFIG_DENYLIST_REGEX_TO_GROUP  # source code: only quoted values are data
        found: list[Match] = []
        needs_quote = groups is QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
        if needs_quote and self._quoted_id not in shapes:
            return iter(())  # no line can pass the test below (a test log: 100,000 `PASS: gdb.base/…` lines)
        for start, end in self.candidates(buf, binary, ends):
            line = buf[start:end]
            if needs_quote and not QUOTED.search(line.lower()):
                continue  # in this type of file only a quoted value is data: none is assigned here
            taken = None  # what the rules report on the line: worked out only for a value to report
            for at, value, rule in self._values(line.decode("latin-1"), groups, config, quoted):
                lo, hi = start + at, start + at + len(value)
                if taken is None:
                    taken = self._taken(line)
                if not any(a < hi - start and lo - start < b for a, b in taken):
                    secret = value.encode("latin-1")
                    found.append(Match(rule[0], DetectorKind.KEYWORD if rule is KEYWORD_RULE else DetectorKind.ENTROPY,
                                       Severity.MEDIUM, rule[1], lo, hi, secret))
        return iter(found)

    def _taken(self, line: bytes) -> list[tuple[int, int]]:
        if self.signature is None:
            return []
        return [(m.start, m.end) for m in self.signature.scan(line)]

    def _values(self, line: str, groups: dict, config: bool,
                quoted: bool) -> Iterator[tuple[int, str, tuple[str, str]]]:
        """(offset in line, value, rule) of each secret assigned on the line: what detect-secrets'
        KeywordDetector finds, then values of keyword names it passes over (a value starting with a
        symbol) and high-entropy values of the other secret-ish names."""
        seen: set[int] = set()
        for value in self.keyword.analyze_string(line, denylist_regex_to_group=_lowered(groups)):
            at, value = locate(line, value)
            if at >= 0 and at not in seen and self._keep(value, line, at, MIN_KEYWORD, config):
                seen.add(at)
                yield at, value, KEYWORD_RULE
        for at, value in assigned(line):
            if at in seen or (quoted and line[at - 1:at] not in ("'", '"', "`")):
                continue
            name = left_name(line, at)
            if name is None:
                continue
            if _KEYWORD_NAME.search(name) and self._keep(value, line, at, MIN_KEYWORD, config):
                seen.add(at)
                yield at, value, KEYWORD_RULE
            elif len(value) >= MIN_ENTROPY and self._high_entropy(value) \
                    and self._keep(value, line, at, MIN_ENTROPY, config):
                seen.add(at)
                yield at, value, ENTROPY_RULE

    def _high_entropy(self, value: str) -> bool:
        for plugin in (self.hex, self.base64):
            if all(c in plugin.charset for c in value):
                return plugin.calculate_shannon_entropy(value) > plugin.entropy_limit
        return False

    def _keep(self, value: str, line: str, at: int, shortest: int, config: bool = False) -> bool:
        if len(value) < shortest:
            return False
        name = left_name(line, at)
        if name is None or _NOT_SECRET_NAME.search(name):
            return False
        if value.lower().startswith(self._prefixes):
            return False
        if config and CONFIG_SECRET_NAME.search(name):
            return False  # the config detector's own name check reports it
        raw = value.encode("latin-1")
        if is_placeholder(raw) or looks_like_hash(raw) or encodes_placeholder(raw) or looks_typed(raw) \
                or looks_like_text(raw) or looks_like_identifier(raw) \
                or any(p.search(value) for p in _NOT_DATA):
            return False
        if (is_templated_secret(value) or is_sequential_string(value) or is_potential_uuid(value)
                or is_not_alphanumeric_string(value) or is_likely_id_string(value, line)
                or is_indirect_reference(line[at - 80 if at > 80 else 0:at + len(value) + 80])):
            return False
        return shannon_entropy(raw) >= 2.5


class _LoweredRegex:
    """One of detect-secrets' case-insensitive keyword regexes, run case-sensitively on the
    lower-cased line: the same matches on the latin-1 text it is given (its patterns hold no
    capital letters), several times faster. Groups are read from the line itself."""

    def __init__(self, regex: re.Pattern) -> None:
        self.regex = re.compile(regex.pattern, regex.flags & ~re.IGNORECASE)

    def search(self, line: str) -> Optional["_Groups"]:
        m = self.regex.search(line.lower())
        return None if m is None else _Groups(line, m)


class _Groups:
    def __init__(self, line: str, m: re.Match) -> None:
        self.line, self.m = line, m

    def group(self, n: int) -> str:
        return self.line[self.m.start(n):self.m.end(n)]


_LOWERED: dict[int, dict] = {}


def _lowered(groups: dict) -> dict:
    """`groups` (regex -> group number, in order) with its case-insensitive regexes lowered."""
    fast = _LOWERED.get(id(groups))
    if fast is None:
        fast = _LOWERED[id(groups)] = {
            (_LoweredRegex(r) if r.flags & re.IGNORECASE and not re.search(r"(?<!\\)[A-Z]", r.pattern) else r): g
            for r, g in groups.items()}
    return fast
