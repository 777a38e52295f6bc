"""The registry client against an in-process fake registry: what the real one will not do on
demand (429 and 5xx, connections cut mid-blob, Range ignored, bearer tokens, referrers)."""
from __future__ import annotations

import hashlib
import http.server
import json
import threading
from dataclasses import dataclass, field
from typing import Optional

import pytest

from scanner.layers.walk import scan_layer
from scanner.sources.auth import Credentials
from scanner.sources.blobs import read_blob
from scanner.sources.interface import SourceError
from scanner.sources.reference import Reference
from scanner.sources.registry import RegistrySource, registry_blob
from scanner.sources.registry_http import Endpoint, RegistryClient, probe
from scanner.sources.remote import RetryPolicy
from tests import imagekit as ik
from tests.secrets_catalog import AWS_KEY_ID, GITHUB_PAT

FAST = RetryPolicy(attempts=3, backoff=0.0)
IN_TOTO = "application/vnd.in-toto+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Fake:
    """What the fake registry holds and how it misbehaves."""

    blobs: dict = field(default_factory=dict)
    manifests: dict = field(default_factory=dict)  # ref -> (body, media type)
    referrers: dict = field(default_factory=dict)  # subject digest -> index body
    fail: list = field(default_factory=list)  # statuses for the next requests, in order
    cut_after: Optional[int] = None  # blob bodies end after this many bytes ...
    cuts: int = 0  # ... this many times
    honour_range: bool = True
    auth: Optional[str] = None  # None, "basic" or "bearer"
    password: str = "right"
    log: list = field(default_factory=list)
    retry_after: str = "0"  # the Retry-After of the `fail` answers
    realm: Optional[str] = None  # the Bearer realm (default: this server's /token)
    routes: dict = field(default_factory=dict)  # path prefix -> handler(request): misbehaviour on demand


def serve(fake: Fake):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            fake.log.append((self.path, self.headers.get("Range"), self.headers.get("Authorization")))
            route = next((fn for prefix, fn in fake.routes.items() if self.path.startswith(prefix)), None)
            if route is not None:
                return route(self)
            if self.path.startswith("/token"):
                return self._token()
            if fake.fail:
                status = fake.fail.pop(0)
                return self._send(status, b"{}", {"Retry-After": fake.retry_after})
            if fake.auth and not self._authorized():
                realm = fake.realm or f"http://{self.headers['Host']}/token"
                challenge = 'Basic realm="fake"' if fake.auth == "basic" else f'Bearer realm="{realm}",service="fake"'
                return self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
            parts = self.path.split("/")
            if self.path == "/v2/":
                return self._send(200, b"{}")
            kind, ref = parts[-2], parts[-1]
            if kind == "manifests" and ref in fake.manifests:
                body, media = fake.manifests[ref]
                return self._send(200, body, {"Content-Type": media, "Docker-Content-Digest": digest(body)})
            if kind == "blobs" and ref in fake.blobs:
                return self._blob(fake.blobs[ref])
            if kind == "referrers" and ref in fake.referrers:
                return self._send(200, fake.referrers[ref], {"Content-Type": ik.OCI_INDEX})
            self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')

        def _authorized(self) -> bool:
            import base64

            basic = "Basic " + base64.b64encode(f"u:{fake.password}".encode()).decode()
            return self.headers.get("Authorization") in (basic, "Bearer good-token")

        def _token(self) -> None:
            import base64

            sent = self.headers.get("Authorization")
            if sent and sent != "Basic " + base64.b64encode(f"u:{fake.password}".encode()).decode():
                return self._send(401, b"{}")
            self._send(200, json.dumps({"token": "good-token"}).encode())

        def _blob(self, data: bytes) -> None:
            start = 0
            rng = self.headers.get("Range")
            if rng and fake.honour_range:
                start = int(rng.split("=")[1].rstrip("-"))
            body = data[start:]
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if fake.cut_after is not None and fake.cuts > 0 and len(body) > fake.cut_after:
                fake.cuts -= 1
                self.wfile.write(body[:fake.cut_after])
                self.close_connection = True
                return
            self.wfile.write(body)

        def _send(self, status: int, body: bytes, headers: Optional[dict] = None) -> None:
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def fake():
    state = Fake()
    server = serve(state)
    state.host = f"127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def push(fake: Fake, spec: ik.ImageSpec, tag: str = "1") -> ik.BuiltImage:
    img = ik.build_image(spec)
    for layer in img.layers:
        fake.blobs[layer.digest] = layer.blob
    fake.blobs[img.config_digest] = img.config_bytes
    fake.manifests[tag] = fake.manifests[img.manifest_digest] = (img.manifest_bytes, ik.OCI_MANIFEST)
    return img


def leaky(size: int = 200_000) -> ik.ImageSpec:
    import random

    return ik.ImageSpec([ik.LayerSpec("ADD x", [ik.file("noise", random.Random(1).randbytes(size)),
                                                ik.file("app/.env", f"KEY={AWS_KEY_ID}\n".encode())])])


def client(fake: Fake, creds: Optional[Credentials] = None) -> RegistryClient:
    return RegistryClient(Endpoint(fake.host, "http", True, creds, FAST), "team/app")


def source(fake: Fake, creds: Optional[Credentials] = None, platform: Optional[str] = None) -> RegistrySource:
    endpoint = Endpoint(fake.host, "http", True, creds, FAST)
    return RegistrySource(Reference(fake.host, "team/app", "1"), "app", platform=platform, endpoint=endpoint)


def scan_all(src: RegistrySource, content) -> list:
    return [(image, [scan_layer(layer, content) for layer in image.layers]) for image in src.images()]


def secrets_of(scans) -> set[str]:
    return {h.secret.value for _, layer_scans in scans for s in layer_scans for h in s.hits}


def test_pull_scan_and_verify(fake, content):
    img = push(fake, leaky())
    (image, scans), = scan_all(source(fake), content)
    assert image.digest == img.manifest_digest and image.layers[0].blob.digest == img.layers[0].digest
    assert secrets_of([(image, scans)]) == {AWS_KEY_ID}


def test_429_and_5xx_are_retried(fake, content):
    push(fake, leaky())
    fake.fail = [503, 429]
    assert secrets_of(scan_all(source(fake), content)) == {AWS_KEY_ID}


def test_a_registry_that_keeps_failing(fake):
    push(fake, leaky())
    fake.fail = [503] * 10
    with pytest.raises(SourceError, match="answered HTTP 503"):
        list(source(fake).images())


@pytest.mark.parametrize("honour_range", [True, False])
def test_a_blob_cut_mid_way_is_resumed(fake, content, honour_range):
    img = push(fake, leaky())
    fake.cut_after, fake.cuts, fake.honour_range = 50_000, 2, honour_range
    assert secrets_of(scan_all(source(fake), content)) == {AWS_KEY_ID}
    ranges = [r for path, r, _ in fake.log if path.endswith(img.layers[0].digest)]
    assert ranges == [None, "bytes=50000-", "bytes=100000-" if honour_range else "bytes=50000-"]


def test_a_blob_cut_every_time_gives_up(fake, content):
    push(fake, leaky())
    fake.cut_after, fake.cuts = 50_000, 100
    with pytest.raises(SourceError, match="dropped mid-blob 3 times"):
        scan_all(source(fake), content)


def test_a_blob_that_is_not_what_its_digest_says(fake, content):
    img = push(fake, leaky())
    good = img.layers[0].blob
    fake.blobs[img.layers[0].digest] = good[:4] + bytes([good[4] ^ 0xFF]) + good[5:]  # gzip mtime: same tar
    with pytest.raises(SourceError, match="digest mismatch"):
        scan_all(source(fake), content)
    fake.blobs[img.layers[0].digest] = good[:-10]
    with pytest.raises(SourceError, match=f"the registry sent {len(good) - 10} bytes, the manifest says {len(good)}"):
        scan_all(source(fake), content)


def test_a_manifest_that_is_not_what_its_digest_says(fake):
    img = push(fake, leaky())
    fake.manifests[img.manifest_digest] = (img.manifest_bytes + b" ", ik.OCI_MANIFEST)
    src = RegistrySource(Reference(fake.host, "team/app", None, img.manifest_digest), "app",
                         endpoint=Endpoint(fake.host, "http", True, None, FAST))
    with pytest.raises(SourceError, match="manifest digest mismatch"):
        list(src.images())


def test_basic_auth(fake, content):
    push(fake, leaky())
    fake.auth = "basic"
    assert secrets_of(scan_all(source(fake, Credentials("u", "right")), content)) == {AWS_KEY_ID}
    with pytest.raises(SourceError, match="authentication failed with the credentials from --username"):
        list(source(fake, Credentials("u", "wrong")).images())
    with pytest.raises(SourceError, match="authentication required"):
        list(source(fake).images())


def test_bearer_token_from_the_challenge(fake, content):
    push(fake, leaky())
    fake.auth = "bearer"
    assert secrets_of(scan_all(source(fake, Credentials("u", "right")), content)) == {AWS_KEY_ID}
    token_calls = [p for p, _, _ in fake.log if p.startswith("/token")]
    assert token_calls and "scope=repository%3Ateam%2Fapp%3Apull" in token_calls[0]
    with pytest.raises(SourceError, match="token server refused the credentials"):
        list(source(fake, Credentials("u", "wrong")).images())


def test_unknown_tag(fake):
    with pytest.raises(SourceError, match="no such image or tag"):
        list(source(fake).images())


def test_referrers_are_scanned(fake, content):
    img = push(fake, leaky())
    statement = json.dumps({"predicate": {"buildArgs": {"GITHUB_TOKEN": GITHUB_PAT}}}).encode()
    fake.blobs[digest(statement)] = statement
    fake.blobs[digest(b"{}")] = b"{}"
    artifact = json.dumps({"schemaVersion": 2, "mediaType": ik.OCI_MANIFEST, "artifactType": IN_TOTO,
                           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"),
                                      "size": 2},
                           "layers": [{"mediaType": IN_TOTO, "digest": digest(statement),
                                       "size": len(statement)}]}).encode()
    fake.manifests[digest(artifact)] = (artifact, ik.OCI_MANIFEST)
    fake.referrers[img.manifest_digest] = json.dumps({"schemaVersion": 2, "mediaType": ik.OCI_INDEX, "manifests": [
        {"mediaType": ik.OCI_MANIFEST, "digest": digest(artifact), "size": len(artifact),
         "artifactType": IN_TOTO}]}).encode()
    scans = scan_all(source(fake), content)
    assert [image.ref for image, _ in scans] == ["app", f"app [referrer {IN_TOTO}]"]
    assert secrets_of(scans[1:]) == {GITHUB_PAT}


def test_probe_falls_back_to_http_only_where_allowed(fake):
    assert probe(fake.host, True, insecure=False, loopback=True, policy=FAST).scheme == "http"
    assert probe(fake.host, True, insecure=True, loopback=False, policy=FAST).scheme == "http"
    with pytest.raises(SourceError, match="TLS handshake failed"):
        probe(fake.host, True, insecure=False, loopback=False, policy=FAST)


def test_registry_blob_descriptors_are_checked(fake):
    with pytest.raises(SourceError, match="bad blob descriptor"):
        registry_blob(client(fake), {"digest": "sha256:" + "0" * 64}, "where")
    with pytest.raises(SourceError, match="unsupported digest algorithm"):
        registry_blob(client(fake), {"digest": "sha512:" + "0" * 128, "size": 1}, "where")


def test_a_missing_blob(fake):
    blob = registry_blob(client(fake), {"digest": "sha256:" + "0" * 64, "size": 3}, "where")
    with pytest.raises(SourceError, match="blob missing"):
        read_blob(blob, "config")
