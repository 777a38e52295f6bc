"""Credential files, recognised by their path and their shape even where no rule matches the value.

| file | what is reported |
|---|---|
| `.npmrc`, `.yarnrc(.yml)` | `_authToken`, `_auth`, `_password`, `npmAuthToken`, `npmAuthIdent` values |
| `.pypirc` | `password` of every index |
| `.docker/config.json`, `containers/auth.json` | `auth` (base64 `user:password`, decoded, checked), `identitytoken` |
| `.git-credentials` | the password of each `scheme://user:password@host` line |
| `.aws/credentials`, `.aws/config` | `aws_secret_access_key`, `aws_session_token` |
| kubeconfig (`.kube/config`, `*kubeconfig*`, `/etc/kubernetes/*.conf`) | `token`, `password`, `client-key-data`... |
| `.netrc`, `_netrc` | `password` of each machine |
| `.pgpass` | the password field of each `host:port:db:user:password` line |
| `/etc/shadow`, `/etc/gshadow` (and their `-` backups) | entries holding a real crypt hash (not `*`, `!`, `x`) |
| any path | JKS/JCEKS keystores with a key entry, PKCS#12 with a key bag (magic bytes); DER keys `*.key`/`*.der` |
| `*.yaml`, `*.yml`, `*.json` with `kind: Secret` | every value under `data:` (decoded) and `stringData:` (`manifests.py`) |
| `*.sql`, `*.psql`, `*.dump` (also gzipped) | credential columns of `COPY` rows and `INSERT` values (`sqldump.py`) |

A PEM private key (SSH host and user keys, TLS keys) is found by the signature rules wherever it
sits; the value a rule reports is not reported again here (one secret, one finding).
"""
from __future__ import annotations

import json
import posixpath
import re
from typing import Callable, Iterator, Optional

from scanner.detectors.interface import Detector, Match
from scanner.detectors.keyblocks import b64decode
from scanner.detectors.heuristics import is_placeholder
from scanner.detectors import manifests, sqldump
from scanner.models import Confidence, DetectorKind, Severity

MAX_FILE = 1 << 20  # credential files are small; a larger file at such a path is not parsed

# rule id -> (severity, title)
RULES = {
    "npmrc-credential": (Severity.HIGH, "Registry credential in an npm/yarn config file"),
    "pypirc-password": (Severity.HIGH, "Package index password in .pypirc"),
    "docker-config-credential": (Severity.CRITICAL, "Registry credential in a Docker/Podman auth file"),
    "git-credentials-password": (Severity.HIGH, "Password in a git credential store"),
    "aws-credentials-file": (Severity.CRITICAL, "AWS secret in an AWS CLI credentials file"),
    "kubeconfig-credential": (Severity.HIGH, "Cluster credential in a kubeconfig"),
    "netrc-credential": (Severity.HIGH, "Password in a .netrc file"),
    "pgpass-password": (Severity.HIGH, "Password in a PostgreSQL .pgpass file"),
    "shadow-password-hash": (Severity.MEDIUM, "Password hash in /etc/shadow"),
    "java-keystore": (Severity.HIGH, "Java keystore holding a private or secret key"),
    "pkcs12-keystore": (Severity.HIGH, "PKCS#12 keystore holding a private key"),
    "der-private-key": (Severity.CRITICAL, "Private key in DER form"),
    manifests.RULE: (Severity.HIGH, "Value of a Kubernetes Secret"),
    sqldump.PLAIN: (Severity.HIGH, "Credential column in a SQL dump"),
    sqldump.HASHED: (Severity.LOW, "Password hash in a SQL dump"),
}
CONFIDENCE = {rule: Confidence.HIGH for rule in RULES}
CONFIDENCE.update({"shadow-password-hash": Confidence.MEDIUM, sqldump.HASHED: Confidence.MEDIUM, "java-keystore": Confidence.MEDIUM,
                   "pkcs12-keystore": Confidence.MEDIUM})

Found = Iterator[tuple[str, int, int]]  # (rule id, start, end) of each secret in the buffer

_INI = re.compile(rb"(?m)^[ \t]*(?P<key>[^\s=:#;][^=:\n]*?)[ \t]*[=:][ \t]*(?P<value>[^\n]*?)[ \t]*\r?$")
_NPMRC = re.compile(rb"(?m)^[ \t]*(?P<key>[^\s=#;][^=\n]*?)[ \t]*=[ \t]*(?P<value>[^\n]*?)[ \t]*\r?$")  # keys hold `:`
_NPM_KEYS = re.compile(rb"(?:^|:)(?:_authToken|_auth|_password|npmAuthToken|npmAuthIdent)$")
_YAML_KV = re.compile(rb"(?m)^[ \t-]*(?P<key>[A-Za-z_-]+)[ \t]*:[ \t]*[\"']?(?P<value>[^\s\"'#]+)[\"']?[ \t]*$")
_KUBE_KEYS = {b"token", b"password", b"client-key-data", b"access-token", b"id-token", b"refresh-token",
              b"client-secret", b"idp-refresh-token"}
_GIT_CREDENTIAL = re.compile(rb"(?m)^[a-z][a-z0-9+.-]*://[^:/@\s]*:(?P<value>[^@\s]+)@[^\s]+$")
_NETRC_PASSWORD = re.compile(rb"(?:^|\s)password\s+(?P<value>\S+)")
_SHADOW = re.compile(rb"(?m)^[^:\n]+:(?P<value>!?(?:\$[0-9a-z]{1,3}\$[^:\n]{8,}|[./0-9A-Za-z]{13})):")


def _value(buf: bytes, m: re.Match, group: str = "value") -> Optional[tuple[int, int]]:
    """The span of a value, unquoted; None for placeholders and variable references."""
    start, end = m.span(group)
    while end > start and buf[end - 1:end] in (b'"', b"'") and buf[start:start + 1] == buf[end - 1:end]:
        start, end = start + 1, end - 1
    value = buf[start:end]
    if len(value) < 3 or value.startswith((b"$", b"%")) or is_placeholder(value):
        return None
    return start, end


def _values(rule: str, pattern: re.Pattern, buf: bytes, key: Optional[Callable[[bytes], bool]] = None) -> Found:
    """Each `value` that `pattern` finds (where its `key` group passes `key`, if given), unquoted;
    placeholders and variable references left out."""
    for m in pattern.finditer(buf):
        if key is None or key(m.group("key")):
            span = _value(buf, m)
            if span:
                yield rule, *span


def npmrc(buf: bytes) -> Found:
    yield from _values("npmrc-credential", _NPMRC, buf, lambda k: bool(_NPM_KEYS.search(k.strip())))
    yield from _values("npmrc-credential", _YAML_KV, buf,  # .yarnrc.yml
                       lambda k: k in (b"npmAuthToken", b"npmAuthIdent"))


def pypirc(buf: bytes) -> Found:
    return _values("pypirc-password", _INI, buf, lambda k: k.strip().lower() == b"password")


def aws_credentials(buf: bytes) -> Found:
    return _values("aws-credentials-file", _INI, buf,
                   lambda k: k.strip().lower() in (b"aws_secret_access_key", b"aws_session_token"))


def docker_config(buf: bytes) -> Found:
    try:
        doc = json.loads(buf.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return
    auths = doc.get("auths") if isinstance(doc, dict) else None
    for entry in (auths.values() if isinstance(auths, dict) else ()):
        if not isinstance(entry, dict):
            continue
        for key in ("auth", "identitytoken", "registrytoken", "password"):
            value = entry.get(key)
            if not isinstance(value, str) or not value or (key == "auth" and not _basic_password(value)):
                continue
            raw = value.encode()
            at = buf.find(raw)
            if at >= 0 and not is_placeholder(raw):
                yield "docker-config-credential", at, at + len(raw)


def _basic_password(value: str) -> bool:
    """base64 of `user:password` with a non-empty password."""
    raw = b64decode(value.encode())
    text = raw.decode("utf-8", "replace") if raw else ""
    return bool(text.partition(":")[2])


def git_credentials(buf: bytes) -> Found:
    return _values("git-credentials-password", _GIT_CREDENTIAL, buf)


def kubeconfig(buf: bytes) -> Found:
    if not re.search(rb"(?m)^kind:[ \t]*Config\b", buf) and b"clusters:" not in buf:
        return
    yield from _values("kubeconfig-credential", _YAML_KV, buf, lambda k: k in _KUBE_KEYS)


def netrc(buf: bytes) -> Found:
    return _values("netrc-credential", _NETRC_PASSWORD, buf)


def pgpass(buf: bytes) -> Found:
    for line in re.finditer(rb"(?m)^(?!#)[^\n]+$", buf):
        fields = re.split(rb"(?<!\\):", line.group().rstrip(b"\r"))
        if len(fields) == 5 and fields[4]:
            end = line.end() - (line.group().endswith(b"\r"))
            start = end - len(fields[4])
            if not is_placeholder(fields[4]):
                yield "pgpass-password", start, end


def shadow(buf: bytes) -> Found:
    for m in _SHADOW.finditer(buf):
        yield "shadow-password-hash", *m.span("value")


# --- binary key stores -------------------------------------------------------------------------

_KEY_BAGS = (bytes.fromhex("2a864886f70d010c0a0101"), bytes.fromhex("2a864886f70d010c0a0102"))  # keyBag, shrouded
_PKCS12_DATA = bytes.fromhex("06092a864886f70d010701")


def _der_length(buf: bytes, at: int) -> Optional[tuple[int, int]]:
    """(length, offset of the content) of the DER element whose length byte is at `at`."""
    if at >= len(buf):
        return None
    first = buf[at]
    if first < 0x80:
        return first, at + 1
    n = first & 0x7F
    if not 1 <= n <= 4 or at + 1 + n > len(buf):
        return None
    return int.from_bytes(buf[at + 1:at + 1 + n], "big"), at + 1 + n


def java_keystore(buf: bytes) -> bool:
    """JKS (FEEDFEED) or JCEKS (CECECECE) with at least one private-key or secret-key entry."""
    if buf[:4] not in (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce") or len(buf) < 12:
        return False
    count, at = int.from_bytes(buf[8:12], "big"), 12
    for _ in range(min(count, 10_000)):
        tag = int.from_bytes(buf[at:at + 4], "big")
        if tag in (1, 3):  # private key entry, JCEKS secret key entry
            return True
        if tag != 2:
            return False
        at += 4
        at += 2 + int.from_bytes(buf[at:at + 2], "big") + 8  # alias, timestamp
        at += 2 + int.from_bytes(buf[at:at + 2], "big")  # certificate type
        at += 4 + int.from_bytes(buf[at:at + 4], "big")  # certificate
        if at > len(buf):
            return False
    return False


def pkcs12(buf: bytes) -> bool:
    """A PFX (version 3, pkcs7-data content) with a key bag visible in its authenticated safe."""
    outer = _der_length(buf, 1) if buf[:1] == b"\x30" else None
    if outer is None or buf[outer[1]:outer[1] + 4] != b"\x02\x01\x03\x30":
        return False
    head = buf[outer[1]:outer[1] + 64]
    return _PKCS12_DATA in head and any(bag in buf for bag in _KEY_BAGS)


def der_private_key(buf: bytes) -> bool:
    """A whole file that is one DER SEQUENCE starting like a PKCS#1, SEC1 or PKCS#8 private key."""
    outer = _der_length(buf, 1) if buf[:1] == b"\x30" else None
    if outer is None or outer[0] + outer[1] != len(buf) or outer[0] < 64:
        return False
    body = buf[outer[1]:outer[1] + 3]
    return body in (b"\x02\x01\x00", b"\x02\x01\x01")  # version 0 (RSA, PKCS#8) or 1 (EC)


# --- dispatch by path ----------------------------------------------------------------------------

_BY_NAME: dict[str, Callable[[bytes], Found]] = {
    ".npmrc": npmrc, "npmrc": npmrc, ".yarnrc": npmrc, ".yarnrc.yml": npmrc, ".pypirc": pypirc,
    ".git-credentials": git_credentials, ".netrc": netrc, "_netrc": netrc, ".pgpass": pgpass,
    "pgpass.conf": pgpass,
}


_NAMED_BY_PARENT = frozenset({"credentials", "config", "config.json"})


def parser_for(path: str) -> Optional[Callable[[bytes], Found]]:
    name = path[path.rfind("/") + 1:]  # posixpath.basename
    # every test of the parent directory goes with one of these names
    parent = posixpath.basename(posixpath.dirname(path)) if name in _NAMED_BY_PARENT or "shadow" in name else None
    if name in _BY_NAME:
        return _BY_NAME[name]
    if parent == ".aws" and name in ("credentials", "config"):
        return aws_credentials
    if (parent == ".docker" and name == "config.json") or (name == "auth.json" and "containers/" in path):
        return docker_config
    if parent == "git" and name == "credentials":
        return git_credentials
    if (parent == ".kube" and name == "config") or "kubeconfig" in name.lower() \
            or (path.startswith(("/etc/kubernetes/", "etc/kubernetes/")) and name.endswith(".conf")):
        return kubeconfig
    if parent == "etc" and re.fullmatch(r"g?shadow-?", name):
        return shadow
    return None


_BINARY = ((java_keystore, "java-keystore"), (pkcs12, "pkcs12-keystore"))
_STRUCTURED_ENDS = sqldump.EXT + manifests.EXT
_STORE_FIRST = (b"\xfe", b"\xce", b"\x30")  # the first byte of a JKS, a JCEKS, a DER SEQUENCE


class CredentialFileDetector(Detector):
    """Parses the files `parser_for` names; sniffs keystores anywhere. `signature` has precedence."""

    def __init__(self, signature: Optional[Detector] = None) -> None:
        self.signature = signature

    def may_hold_utf16(self, buf: bytes) -> bool:
        return False

    def scan(self, buf: bytes, path: Optional[str] = None) -> Iterator[Match]:
        if path is None or not buf:
            return iter(())
        structured = self._structured(buf, path)  # SQL dumps: every buffer of them, whatever its size
        if len(buf) > MAX_FILE:
            return iter(structured)
        found = list(self._binary(buf, path)) if buf[:1] in _STORE_FIRST else []
        parse = parser_for(path)
        if parse is None and not found:  # nearly every file
            return iter(structured)
        if parse is not None and not found:
            taken = self._taken(buf, path)
            found = [(rule, s, e) for rule, s, e in parse(buf)
                     if not any(a < e and s < b for a, b, _ in taken)]
        return iter([_match(rule, s, e, buf) for rule, s, e in found] + structured)

    def _taken(self, buf: bytes, path: str) -> list[tuple[int, int, str]]:
        return [(m.start, m.end, m.rule_id) for m in self.signature.scan(buf, path)] if self.signature else []

    def _structured(self, buf: bytes, path: str) -> list[Match]:
        """Values found by the structure of the file: Kubernetes Secrets (reported decoded) and
        credential columns of SQL dumps; what a provider rule reports in them is left to it."""
        if not path[-9:].lower().endswith(_STRUCTURED_ENDS):  # nearly every file
            return []
        if sqldump.may_hold_rows(path, buf):
            values = [(rule, s, e, buf[s:e]) for rule, s, e in sqldump.credential_values(buf)]
        elif len(buf) <= MAX_FILE and manifests.may_hold_secret(path, buf):
            values = [(manifests.RULE, s, e, v) for s, e, v in manifests.secret_values(buf)]
        else:
            return []
        if not values:
            return []
        taken = [(a, b) for a, b, rule in self._taken(buf, path) if not rule.startswith("generic-")]
        return [Match(rule, DetectorKind.FILE, *RULES[rule], s, e, v) for rule, s, e, v in values
                if not any(a < e and s < b for a, b in taken)]

    @staticmethod
    def _binary(buf: bytes, path: str) -> Found:
        if buf[:1] not in _STORE_FIRST:
            return
        for check, rule in _BINARY:
            if check(buf):
                yield rule, 0, len(buf)
                return
        if path.lower().endswith((".key", ".der")) and der_private_key(buf):
            yield "der-private-key", 0, len(buf)


def _match(rule: str, start: int, end: int, buf: bytes) -> Match:
    severity, title = RULES[rule]
    return Match(rule, DetectorKind.FILE, severity, title, start, end, buf[start:end])

