"""Secrets in the image config: Env, Labels, Cmd, Entrypoint, Healthcheck, User, OnBuild, WorkingDir,
Shell, StopSignal, the Volumes and ExposedPorts keys, an old config's container_config, and the
history (each entry's created_by, comment and author).

Each value is run through the same content detectors as files, plus a name check: a variable or
build arg whose name says it holds a secret (`DB_PASSWORD`, `NPM_TOKEN`) is reported when its
value looks like one, even where no vendor rule knows the format.
"""
from __future__ import annotations

import re
from typing import Any, Iterator, Optional

from scanner.detectors.interface import Match
from scanner.detectors.signature import is_placeholder, shannon_entropy
from scanner.detectors.content import ContentScanner, to_hit
from scanner.models import DetectorKind, Hit, LocationKind, Severity

SECRET_NAME = re.compile(
    r"(?i)(pass(word|wd|phrase)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|"
    r"credential|auth|pwd)(?![a-z])")
NOT_SECRET_NAME = re.compile(r"(?i)(_file|_path|_dir|_url|_host|_user(name)?|_id|_type|_len(gth)?|_ttl)$")
BUILD_ARGS = re.compile(r"^\|(\d+) (.*)$", re.S)
ASSIGN_LINE = re.compile(r"(?:^|#\(nop\)\s+|\s)(?:ENV|ARG)\s+(.+)$", re.S)
PAIR = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=(\"[^\"]*\"|'[^']*'|\S*)")
NAME_RULE = ("secret-named-variable", "Secret in a variable whose name says it is one")


def named_secret(name: str, value: str) -> Optional[Match]:
    """A NAME=value pair whose name marks a secret and whose value is not a placeholder."""
    value = value.strip().strip("'\"")
    raw = value.encode("utf-8", "surrogateescape")
    if len(value) < 8 or not SECRET_NAME.search(name) or NOT_SECRET_NAME.search(name):
        return None
    if is_placeholder(raw) or shannon_entropy(raw) < 2.5 or value.startswith(("/", "$")):
        return None
    return Match(NAME_RULE[0], DetectorKind.CONFIG, Severity.HIGH, NAME_RULE[1], 0, len(raw), raw)


class ConfigScanner:
    def __init__(self, content: ContentScanner) -> None:
        self.content = content

    def scan(self, config: dict) -> list[Hit]:
        hits: list[Hit] = []
        for kind, path, text, pairs in entries(config):
            pairs = [(_printable(n), _printable(v)) for n, v in pairs]
            hits.extend(self._scan_entry(kind, _printable(path), _printable(text), pairs))
        return hits

    def _scan_entry(self, kind: LocationKind, path: str, text: str,
                    pairs: list[tuple[str, str]]) -> list[Hit]:
        buf = text.encode("utf-8", "surrogateescape")
        matches = self.content.scan_buffer(buf, None)
        found = {m.secret for m in matches}
        for name, value in pairs:
            m = named_secret(name, value)
            if m is not None and not any(m.secret in s or s in m.secret for s in found):
                matches.append(m)
                found.add(m.secret)
        out, seen = [], set()
        for m in matches:
            if (m.rule_id, m.secret) not in seen:
                seen.add((m.rule_id, m.secret))
                hit = to_hit(m, path, None, -1, self.content.keep_values)
                out.append(_with_kind(hit, kind))
        return out


def _printable(text: str) -> str:
    """JSON allows lone surrogates (`"\\ud800"`); they cannot be encoded, hashed or printed: spell them out."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _with_kind(hit: Hit, kind: LocationKind) -> Hit:
    return Hit(hit.rule_id, hit.detector, hit.severity, hit.title, hit.path, None, hit.secret, None, -1, kind)


Entry = tuple[LocationKind, str, str, list[tuple[str, str]]]


def entries(config: dict) -> Iterator[Entry]:
    """(kind, location path, text to scan, NAME=value pairs) for every scannable config value."""
    cc = _dict(config.get("config"))
    yield from _run_config(cc, "")
    yield from _old_container_config(_dict(config.get("container_config")), cc)
    yield from _build_fields(cc)
    history = config.get("history")
    for i, h in enumerate(history if isinstance(history, list) else ()):
        h = _dict(h)
        text = h.get("created_by")
        if isinstance(text, str) and text:
            yield LocationKind.HISTORY, f"history[{i}]", text, history_pairs(text)
        for field in ("comment", "author"):
            if isinstance(h.get(field), str) and h[field]:
                yield LocationKind.HISTORY, f"history[{i}].{field}", h[field], PAIR.findall(h[field])


def _run_config(cc: dict, prefix: str) -> Iterator[Entry]:
    """Env, Labels, Cmd, Entrypoint: of the config, or (`prefix`) of an old config's container_config."""
    for item in _list(cc.get("Env")):
        if isinstance(item, str):
            name, _, value = item.partition("=")
            yield LocationKind.ENV, f"{prefix}Env.{name}", item, [(name, value)]
    for key, value in _dict(cc.get("Labels")).items():
        yield LocationKind.LABEL, f"{prefix}Labels.{key}", f"{key}={value}", [(str(key), str(value))]
    for field, kind in (("Cmd", LocationKind.CMD), ("Entrypoint", LocationKind.ENTRYPOINT)):
        if cc.get(field):
            yield kind, f"{prefix}{field}", _join(cc[field]), PAIR.findall(_join(cc[field]))


def _old_container_config(old: dict, cc: dict) -> Iterator[Entry]:
    """`container_config` (configs written by Docker before BuildKit: the container of the last
    build step): its values that differ from the config's own (those are reported there)."""
    same = {field: cc.get(field) for field in ("Env", "Labels", "Cmd", "Entrypoint")}
    env = set(v for v in _list(same["Env"]) if isinstance(v, str))
    labels = _dict(same["Labels"])
    trimmed = {"Env": [v for v in _list(old.get("Env")) if v not in env],
               "Labels": {k: v for k, v in _dict(old.get("Labels")).items() if labels.get(k) != v},
               **{f: old.get(f) for f in ("Cmd", "Entrypoint") if old.get(f) != same[f]}}
    yield from _run_config(trimmed, "container_config.")


def _build_fields(cc: dict) -> Iterator[Entry]:
    """Healthcheck, User, OnBuild, WorkingDir, Shell, StopSignal, and the Volumes and ExposedPorts keys."""
    hc = cc.get("Healthcheck")
    if isinstance(hc, dict) and hc.get("Test"):
        yield LocationKind.HEALTHCHECK, "Healthcheck", _join(hc["Test"]), PAIR.findall(_join(hc["Test"]))
    for i, line in enumerate(_list(cc.get("OnBuild"))):
        if isinstance(line, str) and line:
            yield LocationKind.ONBUILD, f"OnBuild[{i}]", line, history_pairs(line)
    for field, kind in (("User", LocationKind.USER), ("WorkingDir", LocationKind.WORKDIR),
                        ("StopSignal", LocationKind.STOPSIGNAL)):
        if isinstance(cc.get(field), str) and cc[field]:
            yield kind, field, cc[field], []
    if cc.get("Shell"):
        yield LocationKind.SHELL, "Shell", _join(cc["Shell"]), PAIR.findall(_join(cc["Shell"]))
    for field, kind in (("Volumes", LocationKind.VOLUME), ("ExposedPorts", LocationKind.EXPOSE)):
        for key in _dict(cc.get(field)):
            yield kind, f"{field}.{key}", key, PAIR.findall(key)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def history_pairs(created_by: str) -> list[tuple[str, str]]:
    """Build args (`|2 A=x B=y /bin/sh -c ...`) and ENV/ARG assignments of a history line."""
    pairs: list[tuple[str, str]] = []
    m = BUILD_ARGS.match(created_by)
    if m:
        pairs.extend(PAIR.findall(m.group(2))[: int(m.group(1))])
    a = ASSIGN_LINE.search(created_by)
    if a:
        pairs.extend(PAIR.findall(a.group(1)))
    return pairs or PAIR.findall(created_by)


def _join(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)
