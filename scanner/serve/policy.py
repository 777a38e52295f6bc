"""What `layerscan serve` lets through: the gate policy of `.layerscan.yaml` (the same `fail-on`,
`status`, `baseline`, `allowlist` as `scan`, from the same options), and per repository, the
`serve:` section's rules. The first rule whose pattern matches the repository wins.

```yaml
fail-on: low
serve:
  on-timeout: deny               # deny|allow: a scan past --scan-timeout
  repositories:
    - match: sandbox/*           # fnmatch pattern on the repository name
      fail-on: never             # report (and attach), never deny
    - match: payments/*
      fail-on: medium
      status: [present, config]
      baseline: payments-baseline.json
      on-timeout: deny
```
Paths are relative to the settings file's directory.
"""
from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, replace
from typing import Any, Optional

import yaml

from scanner.baseline import load_baseline
from scanner.gate import Policy
from scanner.models import Severity, Status
from scanner.settings import SettingsError

ON_TIMEOUT = ("deny", "allow")
RULE_KEYS = {"match", "fail-on", "status", "baseline", "on-timeout", "fail-on-triaged"}


@dataclass(frozen=True)
class RepositoryPolicy:
    """How pushes to one repository are gated."""

    policy: Policy = Policy()
    baseline: frozenset[str] = frozenset()
    on_timeout: str = "deny"


@dataclass(frozen=True)
class Rule:
    pattern: str
    gate: RepositoryPolicy


@dataclass(frozen=True)
class ServePolicy:
    default: RepositoryPolicy = RepositoryPolicy()
    rules: tuple[Rule, ...] = ()

    def for_repository(self, repository: str) -> RepositoryPolicy:
        for rule in self.rules:
            if fnmatch.fnmatchcase(repository, rule.pattern):
                return rule.gate
        return self.default


def load_serve_policy(path: Optional[str], default: RepositoryPolicy) -> ServePolicy:
    """The `serve:` section of the settings file at `path` (none: `default` everywhere)."""
    section = _section(path) if path else None
    if section is None:
        return ServePolicy(default)
    where = f"{path}: serve"
    if not isinstance(section, dict) or set(section) - {"on-timeout", "repositories"}:
        raise SettingsError(f"{where} takes on-timeout and repositories")
    default = replace(default, on_timeout=_on_timeout(section.get("on-timeout", default.on_timeout), where))
    rules = section.get("repositories") or []
    if not isinstance(rules, list):
        raise SettingsError(f"{where}.repositories must be a list of rules")
    here = os.path.dirname(os.path.abspath(path or "."))
    return ServePolicy(default, tuple(_rule(r, default, here, f"{where}.repositories[{i}]")
                                      for i, r in enumerate(rules)))


def _section(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError):  # the settings loader said so already, had it been wrong
        raise SettingsError(f"cannot read {path}") from None
    return doc.get("serve") if isinstance(doc, dict) else None


def _on_timeout(value: Any, where: str) -> str:
    if value not in ON_TIMEOUT:
        raise SettingsError(f"{where}: on-timeout is deny or allow, not {value!r}")
    return str(value)


def _rule(value: Any, default: RepositoryPolicy, here: str, where: str) -> Rule:
    if not isinstance(value, dict) or not isinstance(value.get("match"), str) or set(value) - RULE_KEYS:
        raise SettingsError(f"{where}: a rule is a mapping with match: PATTERN and some of "
                            f"{', '.join(sorted(RULE_KEYS - {'match'}))}")
    policy = default.policy
    if "fail-on" in value:
        policy = replace(policy, fail_on=_severity(value["fail-on"], where))
    if "status" in value:
        names = value["status"] if isinstance(value["status"], list) else [value["status"]]
        try:
            policy = replace(policy, statuses=frozenset(Status(str(s)) for s in names))
        except ValueError:
            raise SettingsError(f"{where}: status takes {', '.join(s.value for s in Status)}") from None
    if "fail-on-triaged" in value:
        policy = replace(policy, fail_on_triaged=bool(value["fail-on-triaged"]))
    baseline = default.baseline
    if "baseline" in value:
        file = str(value["baseline"])
        baseline = load_baseline(file if os.path.isabs(file) else os.path.join(here, file))
    on_timeout = _on_timeout(value.get("on-timeout", default.on_timeout), where)
    return Rule(value["match"], RepositoryPolicy(policy, baseline, on_timeout))


def _severity(value: Any, where: str) -> Optional[Severity]:
    if str(value) == "never":
        return None
    try:
        return Severity(str(value))
    except ValueError:
        raise SettingsError(f"{where}: fail-on takes {', '.join(s.value for s in Severity)} or never") from None
