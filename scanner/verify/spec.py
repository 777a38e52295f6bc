"""Verifiers as data: `signatures/verifiers/*.yaml` (format: signatures/README.md, "Verifiers").

    - id: github
      provider: github
      rules: [github-pat, github-fine-grained-pat]
      docs: https://docs.github.com/en/rest/users/users#get-the-authenticated-user
      request:
        method: GET
        url: https://api.github.com/user
        headers: {Authorization: 'Bearer {secret}', Accept: application/vnd.github+json}
        # or basic: ['{secret}', ''] / query: {key: '{secret}'} / body: '...'
      live: {status: [200], detail: '{login}'}
      invalid: {status: [401]}

Templates name `{secret}`, `{pair}` (the paired finding's value) and the groups of `derive`, a
regex the secret must match (`derive: '-(?P<dc>[a-z]+[0-9]+)$'` for `https://{dc}.api...`).
"""
from __future__ import annotations

import base64
import json
import os
import re
import urllib.parse
from typing import Any, Optional

import yaml

from scanner.verify.interface import INVALID, LIVE, UNKNOWN, Answer, Credential, Request, Verifier, VerifyError



def builtin_directory() -> str:
    """`signatures/verifiers/` beside the rules the code loads (scanner/detectors/rules.py)."""
    from scanner.detectors.rules import builtin_rule_files

    files = builtin_rule_files()
    if not files:
        raise VerifyError("no rule files found (is the package installed with its signatures?)")
    return os.path.join(os.path.dirname(str(files[0])), "verifiers")

_VAR = re.compile(r"\{([a-z_]+)\}")
_FIELD = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
KEYS = {"id", "provider", "rules", "pair", "docs", "kind", "request", "live", "invalid", "derive", "note",
        "canary_accounts", "examples"}


def _fill(template: str, values: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        if m.group(1) not in values:
            raise VerifyError(f"template names {{{m.group(1)}}}, which this verifier does not have")
        return values[m.group(1)]
    return _VAR.sub(one, template)


def _lookup(doc: Any, answer: Answer, path: str) -> str:
    """A dotted JSON path (`user.login`, `scopes.0`), or `header.NAME`, of the answer."""
    if path.startswith("header."):
        return answer.headers.get(path[len("header."):].lower(), "")
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return ""
    if isinstance(doc, bool):
        return json.dumps(doc)
    if isinstance(doc, list):
        return ",".join(str(x) for x in doc[:10] if not isinstance(x, (dict, list)))
    return "" if doc is None or isinstance(doc, dict) else str(doc)


class Condition:
    """`{status: [200], json: {ok: true}, detail: '{user} on {team}'}`: does an answer match?"""

    def __init__(self, data: dict, where: str) -> None:
        if not isinstance(data, dict) or not set(data) <= {"status", "json", "detail"}:
            raise VerifyError(f"{where}: a condition has status, json and detail only")
        self.status = frozenset(int(s) for s in data.get("status") or ())
        self.json = dict(data.get("json") or {})
        self.detail = str(data.get("detail") or "")
        if not self.status:
            raise VerifyError(f"{where}: a condition needs status codes")

    def matches(self, answer: Answer, doc: Any) -> bool:
        if answer.status not in self.status:
            return False
        for path, want in self.json.items():
            got = _lookup(doc, answer, path)
            wants = want if isinstance(want, list) else [want]
            if got not in {json.dumps(w) if isinstance(w, bool) else str(w) for w in wants}:
                return False
        return True

    def describe(self, answer: Answer, doc: Any) -> str:
        return _FIELD.sub(lambda m: _lookup(doc, answer, m.group(1)), self.detail).strip(" @/:")


def _conditions(data: Any, where: str) -> list[Condition]:
    items = data if isinstance(data, list) else [data] if data else []
    return [Condition(c, where) for c in items]


class HttpVerifier(Verifier):
    def __init__(self, data: dict, where: str) -> None:
        self.where = f"{where}: {data.get('id')}"
        self.id, self.provider = str(data["id"]), str(data.get("provider") or data["id"])
        self.rules = tuple(data["rules"])
        self.pair = data.get("pair")
        self.docs = str(data.get("docs") or "")
        req = data.get("request") or {}
        self.method = str(req.get("method", "GET")).upper()
        self.url = str(req["url"])
        if not self.url.startswith("https://"):
            raise VerifyError(f"{self.where}: the url must be https://")
        if self.method not in ("GET", "POST", "HEAD"):
            raise VerifyError(f"{self.where}: method {self.method} is not a read-only call")
        self.headers = {str(k): str(v) for k, v in (req.get("headers") or {}).items()}
        self.basic = req.get("basic")
        self.query = {str(k): str(v) for k, v in (req.get("query") or {}).items()}
        self.body = req.get("body")
        self.derive = re.compile(data["derive"]) if data.get("derive") else None
        self.live = _conditions(data.get("live"), self.where)
        self.invalid = _conditions(data.get("invalid"), self.where)
        if not self.live or not self.invalid:
            raise VerifyError(f"{self.where}: needs live and invalid conditions")

    def hosts(self) -> list[str]:
        host = urllib.parse.urlsplit(_VAR.sub("*", self.url)).hostname or ""
        return [host]

    def _values(self, credential: Credential) -> dict[str, str]:
        values = {"secret": credential.secret}
        if self.pair is not None:
            values["pair"] = credential.partner or ""
        if self.derive is not None:
            m = self.derive.search(credential.secret)
            if m is None:
                raise VerifyError("the key does not say which host serves it")
            values.update({k: v for k, v in m.groupdict().items() if v})
        return values

    def request(self, credential: Credential, base: Optional[str]) -> Request:
        values = self._values(credential)
        url = _rebase(_fill(self.url, values), base)
        headers = {k: _fill(v, values) for k, v in self.headers.items()}
        if self.basic is not None:
            user, password = (_fill(str(x), values) for x in self.basic)
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if self.query:
            query = urllib.parse.urlencode({k: _fill(v, values) for k, v in self.query.items()})
            url += ("&" if "?" in url else "?") + query
        body = None if self.body is None else _fill(str(self.body), values).encode()
        secrets = tuple(v for k, v in values.items() if k in ("secret", "pair") and v)
        return Request(self.method, url, headers, body, secrets)

    def judge(self, answer: Answer) -> tuple[str, str]:
        try:
            doc = json.loads(answer.body.decode("utf-8", "replace")) if answer.body else None
        except ValueError:
            doc = None
        for status, conditions in ((INVALID, self.invalid), (LIVE, self.live)):  # the specific first
            for c in conditions:
                if c.matches(answer, doc):
                    return status, c.describe(answer, doc)
        if 300 <= answer.status < 400:
            return UNKNOWN, f"HTTP {answer.status}: redirect not followed"
        return UNKNOWN, f"HTTP {answer.status}"


def _rebase(url: str, base: Optional[str]) -> str:
    """--verify-endpoint: its scheme://host[:port][/prefix] in place of the documented one's."""
    if not base:
        return url
    parts = urllib.parse.urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    return base.rstrip("/") + tail


def load_verifiers(directory: Optional[str] = None) -> list[Verifier]:
    from scanner.verify.aws import AwsVerifier

    directory = directory or builtin_directory()
    out: list[Verifier] = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".yaml"):
            continue
        path = os.path.join(directory, name)
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise VerifyError(f"{path}: cannot be read: {str(exc).splitlines()[0]}") from None
        for data in doc.get("verifiers") or ():
            where = f"{name}: {data.get('id') if isinstance(data, dict) else data!r}"
            if not isinstance(data, dict) or not set(data) <= KEYS or not data.get("id") or not data.get("rules"):
                raise VerifyError(f"{where}: a verifier has id, rules and {sorted(KEYS - {'id', 'rules'})}")
            try:
                out.append(AwsVerifier(data) if data.get("kind") == "aws-sigv4" else HttpVerifier(data, name))
            except (KeyError, TypeError, ValueError, re.error) as exc:
                raise VerifyError(f"{where}: {exc.__class__.__name__}: {exc}") from None
    seen: set[str] = set()
    for v in out:
        if v.id in seen:
            raise VerifyError(f"verifier {v.id} is defined twice")
        seen.add(v.id)
    return out
