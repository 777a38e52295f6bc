"""Registry credentials and the token dance of the distribution spec.

Where credentials come from, first match wins: `--username` with `--password-stdin`, then
`~/.docker/config.json` (`auths`, `credsStore`, `credHelpers`) read by the docker SDK's own
credential support. Credentials are secrets too: their repr hides them, and no message, log or
cache entry ever holds them.
"""
from __future__ import annotations

import base64
import json
import shutil
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Optional

import requests
from requests.utils import parse_dict_header

from scanner.limits import NO_DEADLINE, Deadline
from scanner.sources.bounded import MAX_TOKEN, read_body, timeouts
from scanner.sources.interface import SourceError, warn
from scanner.sources.reference import DOCKER_HUB


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
    """The Docker config's credentials for `domain`. A credential helper (`credsStore`,
    `credHelpers`) that is not installed is named in one warning and the registry is asked
    anonymously (a registry that needs no credentials still works); one that fails is an error."""
    import docker.auth
    import docker.errors

    try:
        config = docker.auth.load_config(config_path)
        registry = None if domain == DOCKER_HUB else domain
        helper = config.get_credential_store(registry) if (config.creds_store or config.cred_helpers) else None
        if isinstance(helper, str) and shutil.which(f"docker-credential-{helper}") is None:
            warn(f"{domain}: docker-credential-{helper} not found (the credential helper the Docker config names): "
                 "asking the registry without credentials")
            config = docker.auth.AuthConfig({"auths": config.get("auths", {})})
        entry = config.resolve_authconfig(registry)
    except docker.errors.DockerException:  # installed, and failed: as `docker pull` does, stop
        raise SourceError(f"{domain}: the Docker credential helper failed (see `docker login {domain}`)") from None
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    return _from_entry(entry, domain) if isinstance(entry, dict) else None


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


# Token servers on another host than their registry that get its credentials without being named
# by --insecure-registry: Docker Hub's (https://distribution.github.io/distribution/spec/auth/token/)
# and GitLab.com's (https://docs.gitlab.com/ee/administration/packages/container_registry.html).
KNOWN_REALMS = {"registry-1.docker.io": ("auth.docker.io",), "registry.gitlab.com": ("gitlab.com",)}


def realm_may_have_credentials(realm: str, endpoint: Any) -> bool:
    """The credentials of a registry go to its token server only on the registry's own host
    (any port: the same name, the same certificate) or one of `KNOWN_REALMS`, and not over plain
    HTTP when the registry was reached over verified TLS; a realm host the user named with
    --insecure-registry (`endpoint.trusted_realms`, HOST or HOST:PORT) is trusted as given."""
    url = urllib.parse.urlsplit(realm)
    netloc = url.netloc.rpartition("@")[2].lower()
    name = (url.hostname or "").lower()
    if netloc in endpoint.trusted_realms or name in endpoint.trusted_realms:
        return True
    registry = (urllib.parse.urlsplit(f"//{endpoint.host}").hostname or "").lower()
    same = name == registry or name in KNOWN_REALMS.get(registry, ())
    verified = endpoint.scheme == "https" and endpoint.verify is not False
    return same and not (verified and url.scheme != "https")


def fetch_token(session: requests.Session, challenge: Challenge, scope: str, endpoint: Any,
                deadline: Deadline = NO_DEADLINE) -> str:
    """A bearer token from the challenge's realm, for `scope`: with the endpoint's credentials
    where `realm_may_have_credentials`, else anonymous (and one warning when there were some)."""
    where = endpoint.host
    realm = challenge.params.get("realm")
    if not realm or not realm.startswith(("https://", "http://")):
        raise SourceError(f"{where}: the registry asks for a token but names no token server")
    credentials = endpoint.credentials
    if credentials is not None and not realm_may_have_credentials(realm, endpoint):
        warn(f"{where}: its token server {_origin(realm)} is not on the registry's origin: asked without "
             f"the credentials from {credentials.source} (allow it with --insecure-registry "
             f"{urllib.parse.urlsplit(realm).netloc.rpartition('@')[2]})")
        credentials = None
    query = {"scope": challenge.params.get("scope") or scope}
    if challenge.params.get("service"):
        query["service"] = challenge.params["service"]
    resp = _ask(session, realm, query, credentials, endpoint.verify, deadline, where)
    if resp.status_code in (401, 403):
        resp.close()
        raise SourceError(f"{where}: the token server refused the credentials from {credentials.source}"
                          if credentials is not None else f"{where}: the token server refused anonymous access")
    if resp.status_code != 200:
        resp.close()
        raise SourceError(f"{where}: the token server answered HTTP {resp.status_code}")
    try:
        doc = json.loads(read_body(resp, MAX_TOKEN, "the token server's answer", deadline, where))
    except ValueError:
        raise SourceError(f"{where}: the token server did not answer JSON") from None
    token = (doc.get("token") or doc.get("access_token")) if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise SourceError(f"{where}: the token server's answer holds no token")
    return token


def _ask(session: requests.Session, realm: str, query: dict, credentials: Optional[Credentials], verify: Any,
         deadline: Deadline, where: str) -> requests.Response:
    deadline.check(f"before asking the token server of {where}")
    try:
        if credentials is not None and credentials.identity_token:
            form = dict(query, grant_type="refresh_token", refresh_token=credentials.identity_token,
                        client_id="layerscan")
            return session.post(realm, data=form, verify=verify, timeout=timeouts(deadline), stream=True)
        headers = {"Authorization": credentials.basic()} if credentials is not None else {}
        return session.get(realm, params=query, headers=headers, verify=verify, timeout=timeouts(deadline),
                           stream=True)
    except requests.RequestException as exc:
        raise SourceError(f"{where}: cannot reach the token server ({exc.__class__.__name__})") from None


def _origin(realm: str) -> str:
    url = urllib.parse.urlsplit(realm)
    return f"{url.scheme}://{url.netloc.rpartition('@')[2]}"
