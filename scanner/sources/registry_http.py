"""The HTTP side of the distribution spec: one repository's manifests and blobs, with auth,
verified TLS, retries and resumable blob reads. Small on purpose: `requests` and urllib3's
`Retry` do the transport; what is here is the spec's token dance and the error messages.

Everything a worker process needs to open a blob is in a picklable `BlobOrigin`; each process
makes its own connections and tokens from it.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import re
import ssl
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

import requests
import urllib3
from requests.adapters import HTTPAdapter

from scanner import __version__
from scanner.models import Blob
from scanner.sources.auth import Credentials, fetch_token, parse_challenge
from scanner.sources.interface import SourceError
from scanner.sources.remote import RetryPolicy

TIMEOUT = (10, 60)  # connect, read (seconds)
MAX_MANIFEST = 4 << 20  # the distribution spec's own limit
_DROPS = (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, requests.RequestException)


@dataclass(frozen=True)
class Endpoint:
    """How to reach one registry: where, over what, trusting what, as whom."""

    host: str  # "127.0.0.1:5000", "registry-1.docker.io"
    scheme: str = "https"
    verify: Any = True  # True, False (--insecure-registry), or a CA bundle path
    credentials: Optional[Credentials] = field(default=None, repr=False, compare=False)
    retry: RetryPolicy = RetryPolicy()


@dataclass(frozen=True)
class BlobOrigin:
    """The picklable part of a registry blob: a worker process opens the blob from this."""

    endpoint: Endpoint
    repository: str


def session_for(policy: RetryPolicy) -> requests.Session:
    # unverified TLS happens only for an --insecure-registry host: the user asked, no warning per request
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy.urllib3())
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = f"layerscan/{__version__}"
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


def probe(host: str, verify: Any, insecure: bool, loopback: bool, policy: RetryPolicy) -> Endpoint:
    """Which scheme and trust reach `host`: verified HTTPS; with --insecure-registry, unverified
    HTTPS or plain HTTP; plain HTTP also on a loopback address that does not speak TLS at all."""
    session = session_for(policy)
    try:
        try:
            session.get(f"https://{host}/v2/", verify=verify, timeout=TIMEOUT).close()
            return Endpoint(host, "https", verify, retry=policy)
        except requests.exceptions.SSLError as exc:
            if _cert_failure(exc):
                if not insecure:
                    raise transport_error(exc, host) from None
                session.get(f"https://{host}/v2/", verify=False, timeout=TIMEOUT).close()
                return Endpoint(host, "https", False, retry=policy)
            if not (insecure or loopback):
                raise transport_error(exc, host) from None
        except requests.exceptions.ConnectionError as exc:
            if not (insecure or loopback) or "Connection refused" in str(exc):
                raise transport_error(exc, host) from None
        session.get(f"http://{host}/v2/", timeout=TIMEOUT).close()
        return Endpoint(host, "http", True, retry=policy)
    except requests.RequestException as exc:
        raise transport_error(exc, host) from None
    finally:
        session.close()


def _registry_errors(resp: requests.Response) -> set[str]:
    try:
        doc = resp.json()
    except ValueError:
        return set()
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return {e.get("code") for e in errors if isinstance(e, dict)} if isinstance(errors, list) else set()


class RegistryClient:
    """GETs against one repository of one registry, logged in as the endpoint says."""

    def __init__(self, endpoint: Endpoint, repository: str) -> None:
        self.endpoint, self.repository = endpoint, repository
        self.where = f"{endpoint.host}/{repository}"
        self.session = session_for(endpoint.retry)
        creds = endpoint.credentials
        self._authorization: Optional[str] = (creds.authorization or None) if creds is not None else None

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return f"{self.endpoint.scheme}://{self.endpoint.host}/v2/{self.repository}/{path}"

    def get(self, path: str, headers: Optional[dict] = None, stream: bool = False) -> requests.Response:
        return self.request("GET", path, headers, stream=stream)

    def request(self, method: str, path: str, headers: Optional[dict] = None, data: Optional[bytes] = None,
                stream: bool = False) -> requests.Response:
        """Any method (`scanner.attach` writes too); `path` under the repository, or a full URL
        (an upload's Location). A 401 is answered with the token the challenge's scope names."""
        resp = self._send(method, path, headers, data, stream)
        if resp.status_code == 401:
            sent = self._authorization
            self._authenticate(resp)
            resp.close()
            if self._authorization != sent:
                resp = self._send(method, path, headers, data, stream)
            if resp.status_code == 401:
                resp.close()
                raise self._denied()
        return resp

    def _send(self, method: str, path: str, headers: Optional[dict], data: Optional[bytes],
              stream: bool) -> requests.Response:
        all_headers = dict(headers or {})
        if self._authorization:
            all_headers["Authorization"] = self._authorization
        url = path if path.startswith(("http://", "https://")) else self.url(path)
        try:
            return self.session.request(method, url, headers=all_headers, data=data, stream=stream,
                                        verify=self.endpoint.verify, timeout=TIMEOUT, allow_redirects=method == "GET")
        except requests.RequestException as exc:
            raise transport_error(exc, self.endpoint.host) from None

    def _authenticate(self, resp: requests.Response) -> None:
        challenge = parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        creds = self.endpoint.credentials
        if challenge is not None and challenge.scheme == "bearer":
            token = fetch_token(self.session, challenge, f"repository:{self.repository}:pull", creds,
                                self.endpoint.verify, self.endpoint.host)
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

    def document(self, path: str, accept: str, what: str) -> tuple[bytes, requests.structures.CaseInsensitiveDict]:
        """A small JSON document (manifest, index), read whole; a dropped connection is retried."""
        for attempt in range(self.endpoint.retry.attempts):
            resp = self.get(path, {"Accept": accept}, stream=True)
            try:
                if resp.status_code != 200:
                    raise self.status_error(resp, what)
                body = _read_capped(resp, MAX_MANIFEST, what)
                return body, resp.headers
            except _DROPS as exc:
                if attempt + 1 == self.endpoint.retry.attempts:
                    raise SourceError(f"{what}: connection to {self.endpoint.host} dropped "
                                      f"({exc.__class__.__name__})") from None
                self.endpoint.retry.pause(attempt)
            finally:
                resp.close()
        raise AssertionError("unreachable")

    def status_error(self, resp: requests.Response, what: str) -> SourceError:
        codes = _registry_errors(resp)
        if resp.status_code == 404 or codes & {"MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"}:
            if "NAME_UNKNOWN" in codes:
                return SourceError(f"{what}: no such repository at {self.endpoint.host}")
            if "BLOB_UNKNOWN" in codes or "/blobs/" in resp.url:
                return SourceError(f"{what}: blob missing from {self.where}")
            return SourceError(f"{what}: no such image or tag at {self.endpoint.host}")
        if resp.status_code == 403 or "DENIED" in codes:
            return SourceError(f"{what}: access denied by {self.endpoint.host}")
        return SourceError(f"{what}: {self.endpoint.host} answered HTTP {resp.status_code}")


def _read_capped(resp: requests.Response, cap: int, what: str) -> bytes:
    chunks, total = [], 0
    for chunk in resp.iter_content(1 << 16):
        total += len(chunk)
        if total > cap:
            raise SourceError(f"{what}: larger than {cap >> 20} MiB: not a manifest")
        chunks.append(chunk)
    return b"".join(chunks)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class RemoteReader(io.RawIOBase):
    """A blob's bytes from the registry. A connection dropped mid-blob is reopened with a
    `Range` request from where it stopped (or re-read and skipped, if the registry ignores
    Range), up to the retry policy's attempts; the caller hashes what it gets."""

    def __init__(self, client: RegistryClient, digest: str, size: int, what: str) -> None:
        self.client, self.digest, self.size, self.what = client, digest, size, what
        self.offset = 0
        self._resp: Optional[requests.Response] = None
        self._skip = 0
        self._connections = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while self.offset < self.size:
            if self._resp is None:
                self._open()
            want = min(self._skip or len(buffer), 1 << 20)
            try:
                data = self._resp.raw.read(want, decode_content=False)
            except _DROPS as exc:
                self._dropped(exc.__class__.__name__)
                continue
            if not data:  # the response ended as it said it would: the blob is short, not cut
                self._close_response()
                raise SourceError(f"{self.what}: the registry sent {self.offset} bytes, the manifest says {self.size}")
            if self._skip:  # the registry ignored Range: drop what was already read
                self._skip -= len(data)
                continue
            n = len(data)
            buffer[:n] = data
            self.offset += n
            return n
        return 0

    def _open(self) -> None:
        self._connections += 1
        headers = {"Range": f"bytes={self.offset}-"} if self.offset else {}
        resp = self.client.get(f"blobs/{self.digest}", headers, stream=True)
        if resp.status_code == 206 and self.offset:
            start = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not start or int(start.group(1)) != self.offset:
                resp.close()
                raise SourceError(f"{self.what}: the registry resumed the blob at the wrong offset")
            self._skip = 0
        elif resp.status_code == 200:
            self._skip = self.offset
        else:
            error = self.client.status_error(resp, self.what)
            resp.close()
            raise error
        self._resp = resp

    def _dropped(self, reason: str) -> None:
        self._close_response()
        policy = self.client.endpoint.retry
        if self._connections >= policy.attempts:
            raise SourceError(f"{self.what}: connection to {self.client.endpoint.host} dropped mid-blob "
                              f"{self._connections} times ({reason}); gave up at byte {self.offset} of {self.size}")
        policy.pause(self._connections - 1)

    def _close_response(self) -> None:
        if self._resp is not None:
            self._resp.close()
            self._resp = None

    def close(self) -> None:
        self._close_response()
        super().close()


@contextlib.contextmanager
def open_remote(blob: Blob, what: str) -> Iterator[RemoteReader]:
    """A registry blob as a stream: the caller (`blobs.open_blob`) checks length and digest."""
    origin: BlobOrigin = blob.origin
    if not isinstance(origin, BlobOrigin) or blob.digest is None:
        raise SourceError(f"{what}: a registry blob without its registry or digest")
    client = RegistryClient(origin.endpoint, origin.repository)
    reader = RemoteReader(client, blob.digest, blob.size, what)
    try:
        yield reader
    finally:
        reader.close()
        client.close()
