"""Registry credentials and the token dance of the distribution spec.

Where credentials come from, first match wins: `--username` with `--password-stdin`, then
`~/.docker/config.json` (`auths`, `credsStore`, `credHelpers`) read by the docker SDK's own
credential support. Credentials are secrets too: their repr hides them, and no message, log or
cache entry ever holds them.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Optional

import requests
from requests.utils import parse_dict_header

from scanner.sources.interface import SourceError
from scanner.sources.reference import DOCKER_HUB

TOKEN_TIMEOUT = (10, 60)


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity token (a refresh token from `docker login`)."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    source: str = "--username"  # where they came from, for messages: never the values
    authorization: str = field(default="", repr=False)  # an Authorization header sent as is (`serve`: its client's)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def resolve_credentials(domain: str, username: Optional[str] = None, password: Optional[str] = None,
                        config_path: Optional[str] = None) -> Optional[Credentials]:
    """Explicit credentials, else the Docker config's for `domain`, else None (anonymous)."""
    if username is not None or password is not None:
        if not username or password is None:
            raise SourceError("--username needs --password-stdin (and the other way round)")
        return Credentials(username, password)
    return docker_config_credentials(domain, config_path)


def docker_config_credentials(domain: str, config_path: Optional[str] = None) -> Optional[Credentials]:
    import docker.auth
    import docker.errors

    try:
        config = docker.auth.load_config(config_path)
        entry = config.resolve_authconfig(None if domain == DOCKER_HUB else domain)
    except docker.errors.DockerException:
        raise SourceError(f"{domain}: the Docker credential helper failed (see `docker login {domain}`)") from None
    except (OSError, ValueError):
        return None
    return _from_entry(entry, domain) if entry else None


def _from_entry(entry: dict[str, Any], domain: str) -> Optional[Credentials]:
    get = lambda *keys: next((entry[k] for k in keys if isinstance(entry.get(k), str) and entry[k]), "")
    token = get("IdentityToken", "identitytoken")
    user, password = get("Username", "username"), get("Password", "password")
    if token:
        return Credentials(user, "", token, source="docker config")
    if user and password:
        return Credentials(user, password, source="docker config")
    return None


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer", lower case
    params: dict


def parse_challenge(header: str) -> Optional[Challenge]:
    """`Bearer realm="https://auth/token",service="reg",scope="repository:x:pull"` -> Challenge."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    try:
        params = parse_dict_header(rest) if rest else {}
    except ValueError:
        params = {}
    return Challenge(scheme.lower(), {k.lower(): v for k, v in params.items() if v is not None})


def fetch_token(session: requests.Session, challenge: Challenge, scope: str,
                credentials: Optional[Credentials], verify: Any, where: str) -> str:
    """A bearer token from the challenge's realm, for `scope` (anonymous without credentials)."""
    realm = challenge.params.get("realm")
    if not realm or not realm.startswith(("https://", "http://")):
        raise SourceError(f"{where}: the registry asks for a token but names no token server")
    query = {"scope": challenge.params.get("scope") or scope}
    if challenge.params.get("service"):
        query["service"] = challenge.params["service"]
    try:
        if credentials is not None and credentials.identity_token:
            form = dict(query, grant_type="refresh_token", refresh_token=credentials.identity_token,
                        client_id="layerscan")
            resp = session.post(realm, data=form, verify=verify, timeout=TOKEN_TIMEOUT)
        else:
            headers = {"Authorization": credentials.basic()} if credentials is not None else {}
            resp = session.get(realm, params=query, headers=headers, verify=verify, timeout=TOKEN_TIMEOUT)
    except requests.RequestException as exc:
        raise SourceError(f"{where}: cannot reach the token server ({exc.__class__.__name__})") from None
    if resp.status_code in (401, 403):
        raise SourceError(f"{where}: the token server refused the credentials from {credentials.source}"
                          if credentials is not None else f"{where}: the token server refused anonymous access")
    if resp.status_code != 200:
        raise SourceError(f"{where}: the token server answered HTTP {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError:
        raise SourceError(f"{where}: the token server did not answer JSON") from None
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise SourceError(f"{where}: the token server's answer holds no token")
    return token
