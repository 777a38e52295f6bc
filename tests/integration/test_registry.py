"""Pull-and-scan from real `docker-registry` instances, no daemon involved.

Images are made in pure Python (tests/imagekit.py) and pushed with skopeo, or uploaded by the
distribution API directly where skopeo cannot make them (an index carrying an attestation).
Every scan runs the real CLI in a subprocess with a TMPDIR of its own, which must be empty
afterwards: nothing of an image may be left on disk, whatever the outcome.
"""
from __future__ import annotations

import base64
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Optional

import pytest

from tests import imagekit as ik
from tests import secrets_catalog as catalog
from tests import services
from tests.gateline import gate_only
from tests.integration.runcli import REPO_ROOT, assert_one_line_error, cli, report, sha

pytestmark = pytest.mark.integration

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # bare names must not find an engine


# --- images ------------------------------------------------------------------------------


def leaky_spec(env_token: str = catalog.GITHUB_PAT, arch: str = "amd64", variant: Optional[str] = None,
               big: int = 5 << 20) -> ik.ImageSpec:
    """A `.env` written then deleted, an ENV token, and a big incompressible layer: the image is
    over the runner's pool threshold, so worker processes open registry blobs themselves."""
    noise = random.Random(7).randbytes(big)
    return ik.ImageSpec(steps=[
        ik.LayerSpec("ADD rootfs /", [ik.dir("etc"), ik.file("etc/os-release", b"ID=test\n"), ik.dir("bin"),
                                      ik.file("bin/blob", noise)]),
        ik.LayerSpec("RUN write .env", [ik.dir("app"), ik.file("app/.env", (
            f"AWS_ACCESS_KEY_ID={catalog.AWS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={catalog.AWS_SECRET_KEY}\n").encode())]),
        ik.LayerSpec("RUN rm /app/.env", [ik.whiteout("app/.env")]),
        ik.EmptyLayer(f"ENV TOKEN={env_token}"),
    ], env=[f"TOKEN={env_token}"], architecture=arch, variant=variant)


@pytest.fixture(scope="module")
def leaky_archive(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("leaky") / "leaky.tar"
    ik.write_docker_archive_legacy(leaky_spec(), path, compression="gzip")
    return path


@pytest.fixture(scope="module")
def archive_fingerprints(leaky_archive) -> set[str]:
    proc = cli("--format", "json", leaky_archive)
    assert proc.returncode == 1, proc.stderr
    return {f["fingerprint"] for f in json.loads(proc.stdout)["findings"]}


@pytest.fixture(scope="module")
def anon_ref(registry, leaky_archive) -> str:
    return registry.push(f"docker-archive:{leaky_archive}", "leaky/app:1")


# --- running the CLI ---------------------------------------------------------------------


def secrets_found(doc: dict) -> set[str]:
    return {f["secret"]["sha256"] for f in doc["findings"]}


# --- anonymous ---------------------------------------------------------------------------


def test_anonymous_pull_finds_what_the_archive_holds(registry, anon_ref, archive_fingerprints):
    doc = report(cli("--format", "json", "--workers", "2", f"docker://{anon_ref}"))
    image = doc["images"][0]
    _, headers, _ = registry.request("/v2/leaky/app/manifests/1",
                                     headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    assert (image["ref"], image["source"]) == (f"docker://{anon_ref}", "registry")
    assert image["digest"] == headers["Docker-Content-Digest"]
    assert image["platform"] == "linux/amd64"
    assert {f["fingerprint"] for f in doc["findings"]} == archive_fingerprints
    deleted = [f for f in doc["findings"] if f["secret"]["sha256"] == sha(catalog.AWS_KEY_ID)]
    assert deleted and all(f["status"] == "deleted" and f["removed_in"]["index"] == 2 for f in deleted)


def test_a_bare_name_with_no_engine_is_pulled_from_its_registry(anon_ref, archive_fingerprints):
    doc = report(cli("--format", "json", anon_ref, env=NO_ENGINE))
    assert doc["images"][0]["ref"] == anon_ref
    assert {f["fingerprint"] for f in doc["findings"]} == archive_fingerprints


def test_a_cached_layer_is_still_downloaded_and_verified(registry, anon_ref, tmp_path):
    first = cli("--format", "json", "--cache-dir", tmp_path, f"docker://{anon_ref}")
    second = cli("--format", "json", "--cache-dir", tmp_path, f"docker://{anon_ref}")
    assert report(first)["findings"] == report(second)["findings"]


# --- htpasswd + TLS ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def private(registry_factory, leaky_archive):
    reg = registry_factory(auth=True, tls=True)
    return reg, reg.push(f"docker-archive:{leaky_archive}", "private/app:1")


def test_basic_auth_over_tls_with_the_test_ca(private, archive_fingerprints):
    reg, ref = private
    proc = cli("--format", "json", "--workers", "2", "--ca-file", reg.ca_cert, "--username", reg.username,
               "--password-stdin", f"docker://{ref}", stdin=reg.password + "\n")
    assert {f["fingerprint"] for f in report(proc)["findings"]} == archive_fingerprints
    assert reg.password not in proc.stdout + proc.stderr


def test_a_self_signed_certificate_is_refused_without_ca_or_insecure(private):
    reg, ref = private
    proc = cli("--username", reg.username, "--password-stdin", f"docker://{ref}", stdin=reg.password)
    assert_one_line_error(proc, reg.host, "TLS certificate not trusted", f"--insecure-registry {reg.host}")


def test_insecure_registry_accepts_the_self_signed_certificate(private):
    reg, ref = private
    proc = cli("--format", "json", "--workers", "2", "--insecure-registry", reg.host, "--username", reg.username,
               "--password-stdin", f"docker://{ref}", stdin=reg.password)
    assert sha(catalog.AWS_KEY_ID) in secrets_found(report(proc))
    assert gate_only(proc.stderr) == "FAIL"  # no warning per unverified request: the flag asked for it


def test_wrong_password_is_one_line_without_the_password(private):
    reg, ref = private
    proc = cli("--ca-file", reg.ca_cert, "--username", reg.username, "--password-stdin", f"docker://{ref}",
               stdin="not-" + reg.password)
    line = assert_one_line_error(proc, "authentication failed")
    assert reg.password not in line


def test_no_credentials_asks_for_them(private):
    reg, ref = private
    assert_one_line_error(cli("--ca-file", reg.ca_cert, f"docker://{ref}", env={"DOCKER_CONFIG": "/nonexistent"}),
                          "authentication required", "--password-stdin")


def test_credentials_from_docker_config(private, tmp_path):
    reg, ref = private
    auth = base64.b64encode(reg.credentials.encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": auth}}}))
    proc = cli("--format", "json", "--ca-file", reg.ca_cert, f"docker://{ref}", env={"DOCKER_CONFIG": str(tmp_path)})
    assert sha(catalog.AWS_KEY_ID) in secrets_found(report(proc))
    assert reg.password not in proc.stdout + proc.stderr


# --- bearer tokens -----------------------------------------------------------------------


class TokenServer:
    """The token server of the distribution auth spec: RS256 JWTs with an x5c chain, signed by
    openssl. Anonymous callers get pull on `public/*`; USER:PASSWORD gets what it asks for."""

    ISSUER, SERVICE = "layerscan-test-issuer", "layerscan-test"

    def __init__(self, root: Path, password: str) -> None:
        self.root, self.user, self.password = root, "tokenuser", password
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=layerscan token signer", "-keyout", str(root / "token.key"),
                        "-out", str(root / "token.crt")], check=True, capture_output=True)
        der = subprocess.run(["openssl", "x509", "-in", str(root / "token.crt"), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.x5c = base64.b64encode(der).decode()
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                status, body = server.answer(self.path, self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def answer(self, path: str, authorization: Optional[str]) -> tuple[int, bytes]:
        query = urllib.parse.parse_qs(urllib.parse.urlparse(path).query)
        user = None
        if authorization:
            expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            if authorization != expected:
                return 401, b'{"details":"bad credentials"}'
            user = self.user
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            granted = actions.split(",") if user else (["pull"] if name.startswith("public/") else [])
            access.append({"type": kind, "name": name, "actions": granted})
        return 200, json.dumps({"token": self.jwt(user or "", access)}).encode()

    def jwt(self, subject: str, access: list) -> str:
        enc = lambda obj: base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
        now = int(time.time())
        claims = {"iss": self.ISSUER, "sub": subject, "aud": self.SERVICE, "exp": now + 300, "nbf": now - 60,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = enc({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}) + "." + enc(claims)
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.root / "token.key")],
                             input=signing_input.encode(), check=True, capture_output=True).stdout
        return signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


class TokenRegistry(services.Registry):
    """docker-registry with token auth, trusting the TokenServer's signing certificate."""

    def __init__(self, tokens: TokenServer) -> None:
        super().__init__()
        self.tokens = tokens

    def _config(self) -> dict:
        config = super()._config()
        config["auth"] = {"token": {"realm": self.tokens.realm, "service": TokenServer.SERVICE,
                                    "issuer": TokenServer.ISSUER,
                                    "rootcertbundle": str(self.tokens.root / "token.crt")}}
        return config

    def skopeo_dest_args(self) -> list[str]:
        return ["--dest-tls-verify=false", f"--dest-creds={self.tokens.user}:{self.tokens.password}"]


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory, leaky_archive):
    tokens = TokenServer(tmp_path_factory.mktemp("tokens"), password="tok-" + uuid.uuid4().hex[:10])
    reg = services.require(TokenRegistry(tokens).start)
    try:
        refs = {name: reg.push(f"docker-archive:{leaky_archive}", f"{name}/app:1") for name in ("public", "team")}
        yield reg, tokens, refs
    finally:
        reg.stop()
        tokens.stop()


def test_bearer_token_anonymous_pull(token_registry):
    reg, tokens, refs = token_registry
    proc = cli("--format", "json", "--workers", "2", f"docker://{refs['public']}")
    assert sha(catalog.AWS_KEY_ID) in secrets_found(report(proc))
    assert any("scope=repository%3Apublic%2Fapp%3Apull" in p for p in tokens.requests)


def test_bearer_token_with_credentials(token_registry):
    reg, tokens, refs = token_registry
    proc = cli("--format", "json", "--workers", "2", "--username", tokens.user, "--password-stdin",
               f"docker://{refs['team']}", stdin=tokens.password)
    assert sha(catalog.AWS_KEY_ID) in secrets_found(report(proc))
    assert tokens.password not in proc.stdout + proc.stderr


def test_bearer_token_private_repository_without_credentials(token_registry):
    reg, tokens, refs = token_registry
    assert_one_line_error(cli(f"docker://{refs['team']}", env={"DOCKER_CONFIG": "/nonexistent"}),
                          "authentication required")


def test_bearer_token_wrong_password(token_registry):
    reg, tokens, refs = token_registry
    proc = cli("--username", tokens.user, "--password-stdin", f"docker://{refs['team']}", stdin="wrong")
    assert_one_line_error(proc, "token server refused the credentials")


# --- multi-platform index with an attestation --------------------------------------------

IN_TOTO = "application/vnd.in-toto+json"


def upload(reg: services.Registry, repo: str, blobs: list[bytes], manifests: list[tuple[str, bytes, str]]) -> None:
    """Blobs, then manifests (reference, body, media type), straight through the distribution API."""
    for data in blobs:
        with urllib.request.urlopen(urllib.request.Request(f"{reg.url}/v2/{repo}/blobs/uploads/", data=b"",
                                                           method="POST")) as resp:
            location = urllib.parse.urljoin(reg.url, resp.headers["Location"])
        sep = "&" if "?" in location else "?"
        urllib.request.urlopen(urllib.request.Request(  # not urllib's default form type: Go would parse it
            f"{location}{sep}digest={ik.sha256(data)}", data=data, method="PUT",
            headers={"Content-Type": "application/octet-stream"})).close()
    for ref, body, media in manifests:
        urllib.request.urlopen(urllib.request.Request(f"{reg.url}/v2/{repo}/manifests/{ref}", data=body,
                                                      method="PUT", headers={"Content-Type": media})).close()


def provenance_attestation(subject: ik.BuiltImage) -> tuple[list[bytes], bytes]:
    """BuildKit-style provenance: an in-toto statement that records a build arg's value."""
    statement = ik.canonical_json({
        "_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "pkg:docker/app", "digest": {"sha256": subject.manifest_digest.split(":")[1]}}],
        "predicate": {"invocation": {"parameters": {"args": {"build-arg:NPM_TOKEN": catalog.NPM_TOKEN}}}}})
    config = ik.canonical_json({"architecture": "unknown", "os": "unknown", "config": {},
                                "rootfs": {"type": "layers", "diff_ids": [ik.sha256(statement)]}})
    manifest = ik.canonical_json({
        "schemaVersion": 2, "mediaType": ik.OCI_MANIFEST, "config": ik.descriptor(ik.OCI_CONFIG, config),
        "layers": [ik.descriptor(IN_TOTO, statement,
                                 annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})]})
    return [statement, config], manifest


@pytest.fixture(scope="module")
def multi_ref(registry) -> str:
    amd = ik.build_image(leaky_spec(catalog.GITHUB_PAT, "amd64", big=64 << 10))
    arm = ik.build_image(leaky_spec(catalog.SLACK_BOT_TOKEN, "arm64", "v8", big=64 << 10))
    att_blobs, att_manifest = provenance_attestation(amd)
    index = ik.canonical_json({"schemaVersion": 2, "mediaType": ik.OCI_INDEX, "manifests": [
        ik.descriptor(ik.OCI_MANIFEST, amd.manifest_bytes, platform=amd.spec.platform),
        ik.descriptor(ik.OCI_MANIFEST, arm.manifest_bytes, platform=arm.spec.platform),
        ik.descriptor(ik.OCI_MANIFEST, att_manifest, platform={"architecture": "unknown", "os": "unknown"},
                      annotations={"vnd.docker.reference.digest": amd.manifest_digest,
                                   "vnd.docker.reference.type": "attestation-manifest"})]})
    blobs = [layer.blob for img in (amd, arm) for layer in img.layers] + [amd.config_bytes, arm.config_bytes] + att_blobs
    upload(registry, "multi/app", blobs, [
        (amd.manifest_digest, amd.manifest_bytes, ik.OCI_MANIFEST), (arm.manifest_digest, arm.manifest_bytes, ik.OCI_MANIFEST),
        (ik.sha256(att_manifest), att_manifest, ik.OCI_MANIFEST), ("1", index, ik.OCI_INDEX)])
    return f"{registry.host}/multi/app:1"


def by_image(doc: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {image["ref"]: set() for image in doc["images"]}
    for f in doc["findings"]:
        out[f["image"]].add(f["secret"]["sha256"])
    return out


def test_platform_amd64_and_its_provenance_attestation(multi_ref):
    doc = report(cli("--format", "json", "--platform", "linux/amd64", f"docker://{multi_ref}"))
    ref, attestation = f"docker://{multi_ref}", f"docker://{multi_ref} [attestation of linux/amd64]"
    assert [(i["ref"], i["platform"]) for i in doc["images"]] == [(ref, "linux/amd64"), (attestation, "unknown/unknown")]
    found = by_image(doc)
    assert sha(catalog.GITHUB_PAT) in found[ref] and sha(catalog.SLACK_BOT_TOKEN) not in found[ref]
    assert sha(catalog.NPM_TOKEN) in found[attestation]
    npm = next(f for f in doc["findings"] if f["image"] == attestation)
    assert npm["location"]["path"].startswith("/attestation.") and npm["status"] == "present"
    assert "slsa.dev/provenance" in npm["layer"]["created_by"]


def test_platform_arm64_matches_its_variant_and_has_no_attestation(multi_ref):
    doc = report(cli("--format", "json", "--platform", "linux/arm64", f"docker://{multi_ref}"))
    assert [(i["ref"], i["platform"]) for i in doc["images"]] == [(f"docker://{multi_ref}", "linux/arm64/v8")]
    assert sha(catalog.SLACK_BOT_TOKEN) in secrets_found(doc) and sha(catalog.GITHUB_PAT) not in secrets_found(doc)


def test_platform_all_names_each_platform(multi_ref):
    doc = report(cli("--format", "json", "--platform", "all", f"docker://{multi_ref}"))
    found = by_image(doc)
    assert set(found) == {f"docker://{multi_ref} [linux/amd64]", f"docker://{multi_ref} [linux/arm64/v8]",
                          f"docker://{multi_ref} [attestation of linux/amd64]"}
    assert sha(catalog.SLACK_BOT_TOKEN) in found[f"docker://{multi_ref} [linux/arm64/v8]"]
    assert sha(catalog.GITHUB_PAT) in found[f"docker://{multi_ref} [linux/amd64]"]
    assert {i["platform"] for i in doc["images"]} == {"linux/amd64", "linux/arm64/v8", "unknown/unknown"}


def test_a_platform_the_index_lacks(multi_ref):
    assert_one_line_error(cli("--platform", "linux/s390x", f"docker://{multi_ref}"),
                          "no image for platform linux/s390x", "linux/amd64", "linux/arm64/v8")


# --- zstd, tampering, errors -------------------------------------------------------------


def test_zstd_layers_pushed_with_skopeo(registry_factory, leaky_archive, archive_fingerprints):
    reg = registry_factory()
    ref = reg.push(f"docker-archive:{leaky_archive}", "zstd/app:1", "--format", "oci", "--dest-compress-format", "zstd")
    _, _, body = reg.request("/v2/zstd/app/manifests/1", headers={"Accept": ik.OCI_MANIFEST})
    assert {layer["mediaType"] for layer in json.loads(body)["layers"]} == {ik.OCI_LAYER + "+zstd"}
    doc = report(cli("--format", "json", "--workers", "2", f"docker://{ref}"))
    assert {f["fingerprint"] for f in doc["findings"]} == archive_fingerprints


def test_a_blob_tampered_in_the_registry_storage_is_refused(registry_factory, leaky_archive, archive_fingerprints):
    reg = registry_factory()
    ref = reg.push(f"docker-archive:{leaky_archive}", "tampered/app:1")
    _, _, body = reg.request("/v2/tampered/app/manifests/1",
                             headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    layer = max(json.loads(body)["layers"], key=lambda d: d["size"])
    hexd = layer["digest"].split(":")[1]
    data = reg.storage_dir / "docker/registry/v2/blobs/sha256" / hexd[:2] / hexd / "data"
    raw = bytearray(data.read_bytes())
    raw[4] ^= 0xFF  # the gzip header's mtime: the same tar inside, other bytes: only the digest can tell
    data.write_bytes(bytes(raw))
    # its scan is in the layer cache already (archive_fingerprints): a cached layer is still verified
    assert_one_line_error(cli(f"docker://{ref}"), "digest mismatch", layer["digest"][:16])
    assert_one_line_error(cli("--no-cache", "--workers", "2", f"docker://{ref}"), "digest mismatch")
    raw[len(raw) // 2] ^= 0xFF  # and in the middle: the gzip stream itself breaks first
    data.write_bytes(bytes(raw))
    assert_one_line_error(cli("--no-cache", f"docker://{ref}"), "corrupt compressed stream")


@pytest.mark.parametrize("name, fragment", [
    ("nope/app:1", "no such image or tag"),
    ("leaky/app:no-such-tag", "no such image or tag"),
])
def test_unknown_image_or_tag(registry, anon_ref, name, fragment):
    assert_one_line_error(cli(f"docker://{registry.host}/{name}"), fragment, name)


def test_unreachable_registry():
    host = f"127.0.0.1:{services.free_port()}"
    assert_one_line_error(cli(f"docker://{host}/app:1"), f"cannot reach registry {host}", "refused")
    assert_one_line_error(cli(f"{host}/app:1", env=NO_ENGINE), f"cannot reach registry {host}")


# --- a connection dropped mid-blob -------------------------------------------------------


class DropProxy:
    """A TCP proxy to the registry that cuts blob responses after `after` bytes: `drops` times
    (None: every time). One request per connection (it asks for `Connection: close`)."""

    def __init__(self, upstream: str, after: int, drops: Optional[int], stall: bool = False) -> None:
        self.upstream, self.after, self.drops, self.stall = upstream, after, drops, stall
        self.requests: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def stop(self) -> None:
        self.stopped = True
        self.sock.close()

    def _serve(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), daemon=True).start()

    def _take_drop(self) -> bool:
        with self.lock:
            if self.drops is None:
                return True
            if self.drops > 0:
                self.drops -= 1
                return True
            return False

    def _relay(self, conn: socket.socket) -> None:
        host, port = self.upstream.split(":")
        with conn, socket.create_connection((host, int(port))) as up:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk or not head and not chunk[:1].isalpha():  # a TLS hello: no HTTP here
                    return
                head += chunk
            self.requests.append(head.decode("latin-1"))
            lines = [l for l in head.split(b"\r\n\r\n")[0].split(b"\r\n") if not l.lower().startswith(b"connection:")]
            up.sendall(b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n")
            blob, sent = b"/blobs/" in head.split(b"\r\n", 1)[0], 0
            while data := up.recv(65536):
                if blob and sent + len(data) > self.after and self._take_drop():
                    conn.sendall(data[: self.after - sent])  # and hang up mid-blob, or hang
                    while self.stall and not self.stopped:
                        time.sleep(0.05)
                    return
                conn.sendall(data)
                sent += len(data)


def test_a_dropped_connection_is_resumed(registry, anon_ref, archive_fingerprints):
    proxy = DropProxy(registry.host, after=256 << 10, drops=1)
    try:
        doc = report(cli("--format", "json", "--no-cache", f"docker://{proxy.host}/leaky/app:1"))
    finally:
        proxy.stop()
    assert {f["fingerprint"] for f in doc["findings"]} == archive_fingerprints
    assert any("\r\nRange: bytes=" in r for r in proxy.requests), "the blob was not resumed with a Range request"


def test_a_connection_dropped_every_time_is_one_line(registry, anon_ref):
    proxy = DropProxy(registry.host, after=256 << 10, drops=None)
    try:
        proc = cli("--no-cache", f"docker://{proxy.host}/leaky/app:1")
    finally:
        proxy.stop()
    assert_one_line_error(proc, "dropped mid-blob", proxy.host)


def test_ctrl_c_mid_blob_leaves_nothing_behind(registry, anon_ref):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) while blobs hang mid-way."""
    proxy = DropProxy(registry.host, after=256 << 10, drops=None, stall=True)
    tmp = Path(tempfile.mkdtemp(prefix="ls-tmp-"))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "scanner", "--no-progress", "--no-cache", "--workers", "2",
                                 f"docker://{proxy.host}/leaky/app:1"], cwd=REPO_ROOT, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                env={**os.environ, "TMPDIR": str(tmp)})
        deadline = time.monotonic() + 30
        while sum("/blobs/" in r for r in proxy.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == ["layerscan: interrupted"], err
        assert list(tmp.iterdir()) == []
    finally:
        proxy.stop()
        shutil.rmtree(tmp, ignore_errors=True)
