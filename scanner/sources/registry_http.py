"""The HTTP side of the distribution spec: one repository's manifests and blobs, with auth,
verified TLS and retries (blob reads: `registry_blob`). Small on purpose: `requests` and urllib3's
`Retry` do the transport; what is here is the spec's token dance and the error messages.

Everything a worker process needs to open a blob is in a picklable `BlobOrigin`; each process
makes its own connections and tokens from it.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import re
import ssl
from dataclasses import dataclass, field
from typing import Any, Optional

import requests
import urllib3
from requests.adapters import HTTPAdapter

from scanner import __version__
from scanner.errors import LayerscanError
from scanner.limits import NO_DEADLINE, Deadline
from scanner.sources import bounded
from scanner.sources.auth import Credentials, fetch_token, parse_challenge
from scanner.sources.bounded import MAX_ERROR, MAX_MANIFEST, Watchdog, read_body, timeouts, watched
from scanner.sources.interface import SourceError
from scanner.sources.remote import RetryPolicy

_DROPS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, requests.RequestException)


@dataclass(frozen=True)
class Endpoint:
    """How to reach one registry: where, over what, trusting what, as whom."""

    host: str  # "127.0.0.1:5000", "registry-1.docker.io"
    scheme: str = "https"
    verify: Any = True  # True, False (--insecure-registry), or a CA bundle path
    credentials: Optional[Credentials] = field(default=None, repr=False, compare=False)
    retry: RetryPolicy = RetryPolicy()
    trusted_realms: tuple[str, ...] = ()  # token-server hosts allowed beyond the rule (--insecure-registry)


@dataclass(frozen=True)
class BlobOrigin:
    """The picklable part of a registry blob: a worker process opens the blob from this."""

    endpoint: Endpoint
    repository: str
    deadline: Deadline = field(default=NO_DEADLINE, compare=False)  # the run's --timeout, where it reads


def session_for(policy: RetryPolicy, deadline: Deadline = NO_DEADLINE,
                watchdog: Optional[Watchdog] = None) -> requests.Session:
    # unverified TLS happens only for an --insecure-registry host: the user asked, no warning per request
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy.urllib3(deadline))
    if watchdog is not None:
        watched(adapter, watchdog)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"layerscan/{__version__}"
    session.headers["Accept-Encoding"] = "identity"  # sizes are capped as sent: no compressed bombs
    session.trust_env = False  # no proxy/netrc surprises: the endpoint says everything
    return session


def transport_error(exc: BaseException, host: str) -> SourceError:
    """One line for a request that got no answer: refused, TLS, timeout, too many retries."""
    text = str(exc)
    cert = re.search(r"certificate verify failed: ([^(']+)", text)
    if cert:
        return SourceError(f"{host}: TLS certificate not trusted ({cert.group(1).strip()}): "
                           f"pass --ca-file FILE or --insecure-registry {host}")
    if isinstance(exc, requests.exceptions.SSLError):
        return SourceError(f"{host}: TLS handshake failed (does it speak plain HTTP? then --insecure-registry {host})")
    if isinstance(exc, requests.exceptions.RetryError):
        status = re.search(r"too many (\d+) error", text)
        return SourceError(f"{host}: the registry kept failing (HTTP {status.group(1) if status else '5xx'})")
    if isinstance(exc, requests.exceptions.Timeout):
        return SourceError(f"{host}: the registry did not answer in time")
    errno = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    reason = errno.group(1).strip() if errno else exc.__class__.__name__
    return SourceError(f"cannot reach registry {host} ({reason})")


def _cert_failure(exc: BaseException) -> bool:
    return "certificate verify failed" in str(exc) or isinstance(exc, ssl.SSLCertVerificationError)


def probe(host: str, verify: Any, insecure: bool, loopback: bool, policy: RetryPolicy,
          deadline: Deadline = NO_DEADLINE) -> Endpoint:
    """Which scheme and trust reach `host`: verified HTTPS; with --insecure-registry, unverified
    HTTPS or plain HTTP; plain HTTP also on a loopback address that does not speak TLS at all."""
    session = session_for(policy, deadline)
    ask = lambda url, trust: session.get(url, verify=trust, timeout=timeouts(deadline), stream=True).close()
    try:
        try:
            ask(f"https://{host}/v2/", verify)
            return Endpoint(host, "https", verify, retry=policy)
        except requests.exceptions.SSLError as exc:
            if _cert_failure(exc):
                if not insecure:
                    raise transport_error(exc, host) from None
                ask(f"https://{host}/v2/", False)
                return Endpoint(host, "https", False, retry=policy)
            if not (insecure or loopback):
                raise transport_error(exc, host) from None
        except requests.exceptions.ConnectionError as exc:
            if not (insecure or loopback) or "Connection refused" in str(exc):
                raise transport_error(exc, host) from None
        ask(f"http://{host}/v2/", True)
        return Endpoint(host, "http", True, retry=policy)
    except requests.RequestException as exc:
        raise transport_error(exc, host) from None
    finally:
        session.close()


def _registry_errors(resp: requests.Response, deadline: Deadline, host: str) -> set[str]:
    """The distribution error codes of an error answer, from at most its first `MAX_ERROR` bytes."""
    try:
        doc = json.loads(read_body(resp, MAX_ERROR, "an error answer", deadline, host, truncate=True))
    except (ValueError, RecursionError, *_DROPS):
        return set()
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return {e.get("code") for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()


class RegistryClient:
    """GETs against one repository of one registry, logged in as the endpoint says."""

    def __init__(self, endpoint: Endpoint, repository: str, deadline: Deadline = NO_DEADLINE) -> None:
        self.endpoint, self.repository, self.deadline = endpoint, repository, deadline
        self.where = f"{endpoint.host}/{repository}"
        self.watchdog = Watchdog()
        self.session = session_for(endpoint.retry, deadline, self.watchdog)
        creds = endpoint.credentials
        self._authorization: Optional[str] = (creds.authorization or None) if creds is not None else None

    def close(self) -> None:
        self.watchdog.disarm()
        self.session.close()

    def url(self, path: str) -> str:
        return f"{self.endpoint.scheme}://{self.endpoint.host}/v2/{self.repository}/{path}"

    def get(self, path: str, headers: Optional[dict] = None, whole: bool = True) -> requests.Response:
        return self.request("GET", path, headers, whole=whole)

    def request(self, method: str, path: str, headers: Optional[dict] = None, data: Optional[bytes] = None,
                whole: bool = True) -> requests.Response:
        """Any method (`scanner.attach` writes too); `path` under the repository, or a full URL
        (an upload's Location). A 401 is answered with the token the challenge's scope names.
        A streamed answer: its body is read by the caller (`read_body`, bounded) or closed. The
        watchdog ends it at its deadline: `bounded.REQUEST_SECONDS` or the run's, whichever is
        first; a blob (`whole=False`) has only the run's once its headers are in."""
        self.watchdog.arm(self.deadline.cap(bounded.REQUEST_SECONDS))
        resp = self._send(method, path, headers, data)
        if resp.status_code == 401:
            sent = self._authorization
            self._authenticate(resp)
            resp.close()
            if self._authorization != sent:
                resp = self._send(method, path, headers, data)
            if resp.status_code == 401:
                resp.close()
                raise self._denied()
        if not whole:
            self.watchdog.disarm()
            if self.deadline.set:
                self.watchdog.arm(self.deadline.left() or 0.0)
        return resp

    def _send(self, method: str, path: str, headers: Optional[dict], data: Optional[bytes]) -> requests.Response:
        all_headers = dict(headers or {})
        if self._authorization:
            all_headers["Authorization"] = self._authorization
        self.deadline.check(f"before asking {self.endpoint.host} for {path}")
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        try:
            return self.session.request(method, url, headers=all_headers, data=data, stream=True,
                                        verify=self.endpoint.verify, timeout=timeouts(self.deadline),
                                        allow_redirects=method == "GET")
        except requests.RequestException as exc:
            raise self.stopped(path) or transport_error(exc, self.endpoint.host) from None

    def stopped(self, what: str) -> Optional[LayerscanError]:
        """Why the watchdog ended a request, if it did: the run's deadline, or the request's own."""
        if not self.watchdog.fired:
            return None
        if self.deadline.set and not self.deadline.left():
            return self.deadline.error(f"while {self.endpoint.host} sent {what}")
        return SourceError(f"{what}: {self.endpoint.host} took over {bounded.REQUEST_SECONDS:g} s to answer; gave up")

    def scope(self) -> str:
        return f"repository:{self.repository}:pull"

    def _authenticate(self, resp: requests.Response) -> None:
        challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        creds = self.endpoint.credentials
        if challenge is not None and challenge.scheme == "bearer":
            token = fetch_token(self.session, challenge, self.scope(), self.endpoint, self.deadline)
            self._authorization = "Bearer " + token
        elif challenge is not None and challenge.scheme == "basic" and creds is not None and creds.password:
            self._authorization = creds.basic()

    def _denied(self) -> SourceError:
        creds, host = self.endpoint.credentials, self.endpoint.host
        if creds is None:
            return SourceError(f"{self.where}: authentication required: use --username with --password-stdin, "
                               f"or `docker login {host}`")
        return SourceError(f"{self.where}: authentication failed with the credentials from {creds.source} "
                           "(wrong username or password, or no access to this repository)")

    def document(self, path: str, accept: str, what: str,
                 cap: int = MAX_MANIFEST) -> tuple[bytes, requests.structures.CaseInsensitiveDict]:
        """A small JSON document (manifest, index, config), read whole within `cap` bytes and the
        deadlines; a dropped connection is retried."""
        for attempt in range(self.endpoint.retry.attempts):
            resp = self.get(path, {"Accept": accept})
            try:
                if resp.status_code != 200:
                    raise self.status_error(resp, what)
                return read_body(resp, cap, what, self.deadline, self.endpoint.host), resp.headers
            except _DROPS as exc:
                stopped = self.stopped(what)
                if stopped is not None:
                    raise stopped from None
                if attempt + 1 == self.endpoint.retry.attempts:
                    raise SourceError(f"{what}: connection to {self.endpoint.host} dropped "
                                      f"({exc.__class__.__name__})") from None
                self.endpoint.retry.pause(attempt, self.deadline, f"{what} from {self.endpoint.host}")
            finally:
                resp.close()
        raise AssertionError("unreachable")

    def status_error(self, resp: requests.Response, what: str) -> SourceError:
        codes = _registry_errors(resp, self.deadline, self.endpoint.host)
        if resp.status_code == 404 or codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"}:
            if "NAME_UNKNOWN" in codes:
                return SourceError(f"{what}: no such repository at {self.endpoint.host}")
            if "BLOB_UNKNOWN" in codes or "/blobs/" in resp.url:
                return SourceError(f"{what}: blob missing from {self.where}")
            return SourceError(f"{what}: no such image or tag at {self.endpoint.host}")
        if resp.status_code == 403 or "DENIED" in codes:
            return SourceError(f"{what}: access denied by {self.endpoint.host}")
        return SourceError(f"{what}: {self.endpoint.host} answered HTTP {resp.status_code}")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
