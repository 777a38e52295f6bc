"""`.layerscan.yaml`: project settings for the scan and baseline commands. Flags override it.

```yaml
fail-on: high                  # critical|high|medium|low|never
status: [present, config]      # statuses that gate (default: all)
fail-on-incomplete: true
fail-on-triaged: false         # vendor / known-public findings gate too
verify: true                   # ask providers whether found keys are live (README, --verify)
fail-on-verified: true         # with verify: keys the provider rejected do not gate
baseline: .layerscan-baseline.json
base-image: base.tar
rules: [ci/extra-rules.yaml]   # extra rule files or directories
disable-rules: [jwt]
private-packages: ["acme-*", "@acme/*", "com.acme:*"]  # own packages: never triaged `package`/`vendor`
allowlist:
  secrets: [<sha256 hex of an accepted secret>]
  rules: [generic-password]
  paths: ['^/usr/share/doc/']
limits: {max-depth: 2, max-file-size: 1G, max-archive-bytes: 1G, max-layer-bytes: 8G, max-ratio: 100, max-file-findings: 5000,
         max-image-bytes: 64G, max-image-files: 1000000, timeout: 600}
workers: 2
cache-dir: /var/cache/layerscan
cache-max-size: 4G             # entries the cache dir keeps (default 2G): the ones used longest ago go
serve: {on-timeout: deny, repositories: [...]}   # `layerscan serve` only: scanner/serve/policy.py
```
Paths in the file are relative to the file's directory.
"""
from __future__ import annotations

import os
import re
from typing import Any, Optional

import yaml

from scanner.errors import LayerscanError
from scanner.gate import Allowlist

FILENAME = ".layerscan.yaml"
LIMIT_KEYS = {"max-depth", "max-file-size", "max-archive-bytes", "max-layer-bytes", "max-ratio", "max-file-findings",
              "max-findings",              "max-image-bytes", "max-image-files", "timeout"}
SCALAR_KEYS = {"fail-on": "fail_on", "fail-on-incomplete": "fail_on_incomplete",
               "fail-on-triaged": "fail_on_triaged", "workers": "workers", "format": "fmt",
               "cache-max-size": "cache_max_size", "verify": "verify", "fail-on-verified": "fail_on_verified",
               "verify-rps": "verify_rps"}
PATH_KEYS = {"baseline": "baseline", "base-image": "base_image", "cache-dir": "cache_dir"}
LIST_KEYS = {"status": "status", "disable-rules": "disable_rule", "private-packages": "private_package"}
KNOWN = set(SCALAR_KEYS) | set(PATH_KEYS) | set(LIST_KEYS) | {"rules", "allowlist", "limits", "serve"}
# the file's key for each command parameter it sets, for error messages
KEY_OF = {param: key for keys in (SCALAR_KEYS, PATH_KEYS, LIST_KEYS) for key, param in keys.items()}
KEY_OF.update({"extra_rules": "rules", **{k.replace("-", "_"): f"limits.{k}" for k in LIMIT_KEYS}})


class SettingsError(LayerscanError):
    """A settings file that cannot be used."""


def find_settings(explicit: Optional[str]) -> Optional[str]:
    if explicit:
        if not os.path.isfile(explicit):
            raise SettingsError(f"config file not found: {explicit}")
        return explicit
    return FILENAME if os.path.isfile(FILENAME) else None


def load_settings(path: str) -> tuple[dict[str, Any], Allowlist]:
    """(defaults for the command's parameters, the allowlist) from a settings file."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError:
        raise SettingsError(f"{path}: not valid YAML") from None
    if not isinstance(doc, dict):
        raise SettingsError(f"{path}: expected a mapping of settings")
    unknown = set(doc) - KNOWN
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) {', '.join(sorted(map(str, unknown)))}")
    here = os.path.dirname(os.path.abspath(path))
    defaults: dict[str, Any] = {}
    for key, param in SCALAR_KEYS.items():
        if key in doc:
            defaults[param] = str(doc[key]) if key == "fail-on" else doc[key]
    for key, param in PATH_KEYS.items():
        if key in doc:
            defaults[param] = _path(doc[key], here, key, path)
    for key, param in LIST_KEYS.items():
        if key in doc:
            defaults[param] = tuple(_strings(doc[key], key, path))
    _check_patterns(defaults.get("private_package", ()), path)
    if "rules" in doc:
        defaults["extra_rules"] = tuple(_path(p, here, "rules", path) for p in _strings(doc["rules"], "rules", path))
    defaults.update(_limits(doc.get("limits"), path))
    return defaults, _allowlist(doc.get("allowlist"), path)


def _path(value: Any, here: str, key: str, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise SettingsError(f"{path}: {key} must be a path")
    return value if os.path.isabs(value) or ":" in value.split("/")[0] else os.path.join(here, value)


def _strings(value: Any, key: str, path: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{path}: {key} must be a list of strings")
    return value


def _check_patterns(patterns: tuple[str, ...], path: str) -> None:
    """private-packages: globs on package names (`acme-*`, `@acme/*`, `com.acme:*`)."""
    for p in patterns:
        if not p.strip() or p != p.strip() or any(ord(c) < 0x20 or c == "\x7f" for c in p):
            raise SettingsError(f"{path}: private-packages: {p!r} is not a package name pattern")
        if p.strip("*?") == "":
            raise SettingsError(f"{path}: private-packages: {p!r} would name every package private")


def _limits(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or set(value) - LIMIT_KEYS:
        raise SettingsError(f"{path}: limits takes {', '.join(sorted(LIMIT_KEYS))}")
    return {k.replace("-", "_"): v for k, v in value.items()}


def _allowlist(value: Any, path: str) -> Allowlist:
    if value is None:
        return Allowlist()
    if not isinstance(value, dict) or set(value) - {"secrets", "rules", "paths"}:
        raise SettingsError(f"{path}: allowlist takes secrets, rules and paths")
    secrets = _strings(value.get("secrets", []), "allowlist.secrets", path)
    if not all(re.fullmatch(r"[0-9a-f]{64}", s) for s in secrets):
        raise SettingsError(f"{path}: allowlist.secrets are sha256 hex digests (as in the JSON report)")
    try:
        paths = tuple(re.compile(p) for p in _strings(value.get("paths", []), "allowlist.paths", path))
    except re.error as exc:
        raise SettingsError(f"{path}: allowlist.paths: bad regex ({exc})") from None
    return Allowlist(frozenset(secrets), frozenset(_strings(value.get("rules", []), "allowlist.rules", path)),
                     paths)
