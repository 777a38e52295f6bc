"""Signature rules: data in `signatures/*.yaml`, loaded and checked once, compiled for bytes."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Optional

import yaml

from scanner.detectors.interface import DetectorError
from scanner.detectors.validators import VALIDATORS
from scanner.models import Severity

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FIELDS = {"id", "title", "service", "severity", "keywords", "regex", "entropy", "validator", "allowlist",
           "examples", "description", "references", "prefilter"}
_PLACEMENTS = ("regex", "keywords")


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    keywords: tuple[bytes, ...]  # lower-case; the rule runs only on buffers holding one of them
    pattern: re.Pattern  # bytes pattern with a named group `secret`
    entropy: float = 0.0  # minimum Shannon entropy (bits per char) of the secret
    validator: Optional[str] = None
    allow_patterns: tuple[re.Pattern, ...] = ()
    stopwords: tuple[bytes, ...] = ()
    positives: tuple[str, ...] = field(default=(), compare=False)
    negatives: tuple[str, ...] = field(default=(), compare=False)
    source: str = ""
    service: Optional[str] = None  # the provider whose credential this is ("Postman"); None: generic
    by_keywords: bool = False  # `prefilter: keywords`: placed by its keywords, not by its regex

    @property
    def family(self) -> str:
        """The family of credentials: the rule file's name (`payments.yaml` -> `payments`)."""
        return self.source.rsplit("/", 1)[-1].removesuffix(".yaml") or "extra"


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    digest: str  # sha256 over the rule files' bytes: part of every cache key

    def __len__(self) -> int:
        return len(self.rules)

    def without(self, disabled: Iterable[str]) -> "RuleSet":
        gone = set(disabled)
        unknown = gone - {r.id for r in self.rules}
        if unknown:
            raise DetectorError(f"unknown rule id(s): {', '.join(sorted(unknown))}")
        kept = tuple(r for r in self.rules if r.id not in gone)
        digest = hashlib.sha256((self.digest + "|-" + ",".join(sorted(gone))).encode()).hexdigest()
        return RuleSet(kept, digest)


def builtin_rule_files() -> list[Path]:
    """The rule files of the code that runs: in a source checkout the `signatures/` beside this
    package (also when another checkout is installed: its rules would silently be the ones tested),
    else the installed `scanner.signatures`."""
    beside = Path(__file__).resolve().parents[2] / "signatures"
    if (beside / "__init__.py").is_file():
        root = beside
    else:
        try:
            root = Path(str(resources.files("scanner.signatures")))
        except ModuleNotFoundError:
            return []
    return sorted(p for p in root.iterdir() if p.name.endswith(".yaml"))


def load_rules(extra: Iterable[str | Path] = ()) -> RuleSet:
    """Load the built-in rules plus any extra files or directories of `*.yaml` rules."""
    files = builtin_rule_files()
    for item in extra:
        p = Path(item)
        if p.is_dir():
            files.extend(sorted(p.glob("*.yaml")))
        elif p.is_file():
            files.append(p)
        else:
            raise DetectorError(f"rule path not found: {p}")
    if not files:
        raise DetectorError("no rule files found (is the package installed with its signatures?)")
    return load_rule_files(files)


def load_rule_files(files: Iterable[Path]) -> RuleSet:
    rules: list[Rule] = []
    seen: dict[str, str] = {}
    h = hashlib.sha256()
    for path in files:
        data = path.read_bytes()
        h.update(path.name.encode() + b"\0" + data + b"\0")
        for rule in parse_rule_file(data, path.name):
            if rule.id in seen:
                raise DetectorError(f"{path.name}: rule id {rule.id!r} already defined in {seen[rule.id]}")
            seen[rule.id] = path.name
            rules.append(rule)
    return RuleSet(tuple(rules), h.hexdigest())


def parse_rule_file(data: bytes, name: str) -> list[Rule]:
    try:
        doc = yaml.load(data, Loader=_LOADER)  # libyaml when built in: 10x faster start-up
    except yaml.YAMLError as exc:
        raise DetectorError(f"{name}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rules"), list):
        raise DetectorError(f"{name}: expected a mapping with a 'rules' list")
    return [_parse_rule(entry, name) for entry in doc["rules"]]


def _parse_rule(entry: object, name: str) -> Rule:
    if not isinstance(entry, dict):
        raise DetectorError(f"{name}: every rule must be a mapping")
    rid = str(entry.get("id", ""))
    where = f"{name}: rule {rid or '?'}"
    if not _ID.match(rid):
        raise DetectorError(f"{where}: id must be lower-case letters, digits and dashes")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise DetectorError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for required in ("title", "severity", "regex"):
        if not entry.get(required):
            raise DetectorError(f"{where}: missing {required}")
    placement = entry.get("prefilter", "regex")
    if placement not in _PLACEMENTS:
        raise DetectorError(f"{where}: prefilter must be 'regex' or 'keywords'")
    if placement == "keywords" and not entry.get("keywords"):
        raise DetectorError(f"{where}: prefilter: keywords needs keywords")
    service = entry.get("service")
    if service is not None and (not isinstance(service, str) or not service.strip()):
        raise DetectorError(f"{where}: service must be a non-empty string (the provider's name)")
    try:
        severity = Severity(entry["severity"])
    except ValueError:
        raise DetectorError(f"{where}: severity must be one of critical, high, medium, low") from None
    pattern = _compile(entry["regex"], where)
    if "secret" not in pattern.groupindex:
        raise DetectorError(f"{where}: regex needs a named group (?P<secret>...)")
    validator = entry.get("validator")
    if validator is not None and validator not in VALIDATORS:
        raise DetectorError(f"{where}: unknown validator {validator!r}")
    allow = _mapping(entry.get("allowlist"), {"regexes", "stopwords"}, f"{where}: allowlist")
    examples = _mapping(entry.get("examples"), {"positive", "negative"}, f"{where}: examples")
    return Rule(
        id=rid,
        title=str(entry["title"]),
        severity=severity,
        keywords=_lower(_strings(entry.get("keywords"), f"{where}: keywords")),
        pattern=pattern,
        entropy=_entropy(entry.get("entropy"), where),
        validator=validator,
        allow_patterns=tuple(_compile(r, where)
                             for r in _strings(allow.get("regexes"), f"{where}: allowlist.regexes")),
        stopwords=_lower(_strings(allow.get("stopwords"), f"{where}: allowlist.stopwords")),
        positives=_strings(examples.get("positive"), f"{where}: examples.positive"),
        negatives=_strings(examples.get("negative"), f"{where}: examples.negative"),
        source=name,
        service=service,
        by_keywords=placement == "keywords",
    )


def _mapping(value: object, keys: set[str], where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise DetectorError(f"{where} must be a mapping")
    unknown = set(value) - keys
    if unknown:
        raise DetectorError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    return value


def _lower(words: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(w.lower().encode() for w in words)


def _entropy(value: object, where: str) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        raise DetectorError(f"{where}: entropy must be a number (bits per character)") from None


def _strings(value: object, where: str) -> tuple[str, ...]:
    """A list of strings; a bare string would otherwise be iterated character by character."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise DetectorError(f"{where} must be a list of non-empty strings")
    return tuple(value)


def _compile(regex: object, where: str) -> re.Pattern:
    try:
        return re.compile(str(regex).encode())
    except re.error as exc:
        raise DetectorError(f"{where}: bad regex ({exc})") from None
