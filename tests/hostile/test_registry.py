"""A hostile registry (or token server), served in-process by the fake of
tests/unit/sources/test_registry_http.py: nothing it sends can hang the scan past its deadlines,
fill memory, or get the user's credentials off the registry's origin."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scanner.errors import LayerscanError
from scanner.limits import Deadline, LimitError
from scanner.sources import bounded
from scanner.sources.auth import Credentials
from scanner.sources.interface import SourceError
from scanner.sources.reference import Reference
from scanner.sources.registry import RegistrySource
from scanner.sources.registry_http import Endpoint
from tests import imagekit as ik
from tests.unit.sources.test_registry_http import FAST, digest, fake, leaky, push  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20


def source(fake, deadline=Deadline(), creds=None, trusted=()) -> RegistrySource:
    endpoint = Endpoint(fake.host, "http", True, creds, FAST, trusted_realms=trusted)
    return RegistrySource(Reference(fake.host, "team/app", "1"), "app", endpoint=endpoint, deadline=deadline)


def within(seconds: float, fn):
    """fn() in a thread; fails (instead of hanging the suite) if it takes over `seconds`."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in box:
        raise box["error"]
    return box.get("value"), time.monotonic() - start


def endless(fake, status: int, content_type: str = "application/json"):
    """An answer whose body never ends (Content-Length of 1 GiB); counts what was sent."""
    fake.sent = 0

    def handler(request) -> None:
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(1 << 30))
        request.end_headers()
        chunk = b"[" * (64 << 10)
        try:
            while fake.sent < (1 << 30):
                request.wfile.write(chunk)
                fake.sent += len(chunk)
        except OSError:
            pass
        request.close_connection = True

    return handler


def dripping(fake, every: float, total: int = 4096):
    """A 200 answer that sends one byte every `every` seconds."""
    def handler(request) -> None:
        request.send_response(200)
        request.send_header("Content-Type", ik.OCI_MANIFEST)
        request.send_header("Content-Length", str(total))
        request.end_headers()
        try:
            for _ in range(total):
                request.wfile.write(b" ")
                request.wfile.flush()
                time.sleep(every)
        except OSError:
            pass
        request.close_connection = True

    return handler


# --- oversize answers -----------------------------------------------------------------------------


def test_an_endless_manifest_is_cut_at_the_spec_limit(fake):
    fake.routes["/v2/team/app/manifests/"] = endless(fake, 200, ik.OCI_MANIFEST)
    with pytest.raises(SourceError) as err:
        within(30, lambda: list(source(fake).images()))
    assert str(err.value) == f"{fake.host}/team/app:1: {fake.host} sent over 4 MiB; not read further"
    assert fake.sent < 16 * MiB


def test_an_endless_error_body_is_read_only_for_its_first_codes(fake):
    fake.routes["/v2/team/app/manifests/"] = endless(fake, 404)
    with pytest.raises(SourceError) as err:
        within(30, lambda: list(source(fake).images()))
    assert str(err.value) == f"{fake.host}/team/app:1: no such image or tag at {fake.host}"
    assert fake.sent < 16 * MiB


def test_an_endless_token_answer(fake):
    push(fake, leaky())
    fake.auth = "bearer"
    fake.routes["/token"] = endless(fake, 200)
    with pytest.raises(SourceError) as err:
        within(30, lambda: list(source(fake).images()))
    assert str(err.value) == f"the token server's answer: {fake.host} sent over 1 MiB; not read further"
    assert fake.sent < 16 * MiB


def test_an_endless_referrers_list(fake, content):
    push(fake, leaky())
    fake.routes["/v2/team/app/referrers/"] = endless(fake, 200)
    with pytest.raises(SourceError, match="sent over 4 MiB; not read further"):
        within(30, lambda: list(source(fake).images()))
    assert fake.sent < 16 * MiB


# --- time -----------------------------------------------------------------------------------------


def test_a_dripping_manifest_ends_at_the_runs_deadline(fake):
    fake.routes["/v2/team/app/manifests/"] = dripping(fake, 0.2)
    with pytest.raises(LimitError) as err:
        _, took = within(20, lambda: list(source(fake, Deadline.start(1.5)).images()))
    assert str(err.value) == (f"incomplete scan: the --timeout of 1.5 s ran out while {fake.host} sent "
                              f"{fake.host}/team/app:1; nothing reported")


def test_a_dripping_manifest_ends_at_the_requests_deadline(fake, monkeypatch):
    """Without --timeout, one request still ends: its deadline counts the whole answer, not each read."""
    monkeypatch.setattr(bounded, "REQUEST_SECONDS", 1.0)
    fake.routes["/v2/team/app/manifests/"] = dripping(fake, 0.2)
    start = time.monotonic()
    with pytest.raises(SourceError) as err:
        within(20, lambda: list(source(fake).images()))
    assert str(err.value) == f"{fake.host}/team/app:1: {fake.host} took over 1 s to answer; gave up"
    assert time.monotonic() - start < 5


def test_a_huge_retry_after_is_capped(fake, content, monkeypatch):
    monkeypatch.setattr(bounded, "MAX_RETRY_AFTER", 0.3)
    push(fake, leaky())
    fake.fail, fake.retry_after = [503], "999999"
    images, took = within(20, lambda: list(source(fake).images()))
    assert [i.ref for i in images] == ["app"] and took < 10


def test_a_retry_after_past_the_deadline_ends_the_scan_at_once(fake):
    push(fake, leaky())
    fake.fail, fake.retry_after = [503], "999999"
    with pytest.raises(LimitError) as err:
        _, took = within(20, lambda: list(source(fake, Deadline.start(5.0)).images()))
    assert str(err.value) == ("incomplete scan: the --timeout of 5 s ran out waiting for the registry to be "
                              "ready again (Retry-After); nothing reported")


def test_the_cli_ends_a_dripping_registry_at_its_timeout(fake, tmp_path, unit_rules_path):
    fake.routes["/v2/team/app/manifests/"] = dripping(fake, 0.5)
    env = {k: v for k, v in os.environ.items() if k != "LAYERSCAN_DEBUG"}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(REPO))
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "scanner", f"docker://{fake.host}/team/app:1", "--timeout", "4",
                           "--rules", str(unit_rules_path), "--no-cache"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (f"layerscan: error: incomplete scan: the --timeout of 4 s ran out while "
                                            f"{fake.host} sent {fake.host}/team/app:1; nothing reported")
    assert took < 4 + 6  # the interpreter's start, the rules, and one read of the socket


def dripping_headers(every: float):
    """A status line, then one header byte every `every` seconds: no read of the socket waits long."""
    def handler(request) -> None:
        try:
            request.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for byte in b"X-Slow: " + b"x" * 4000:
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
                time.sleep(every)
        except OSError:
            pass
        request.close_connection = True

    return handler


def test_dripping_headers_end_at_the_runs_deadline(fake):
    fake.routes["/v2/team/app/manifests/"] = dripping_headers(0.1)
    with pytest.raises(LimitError) as err:
        _, took = within(20, lambda: list(source(fake, Deadline.start(1.5)).images()))
    assert str(err.value) == (f"incomplete scan: the --timeout of 1.5 s ran out while {fake.host} sent "
                              f"{fake.host}/team/app:1; nothing reported")


def test_dripping_headers_end_at_the_requests_deadline(fake, monkeypatch):
    monkeypatch.setattr(bounded, "REQUEST_SECONDS", 1.0)
    fake.routes["/v2/team/app/manifests/"] = dripping_headers(0.1)
    start = time.monotonic()
    with pytest.raises(SourceError) as err:
        within(20, lambda: list(source(fake).images()))
    assert str(err.value) == f"{fake.host}/team/app:1: {fake.host} took over 1 s to answer; gave up"
    assert time.monotonic() - start < 5


def test_a_dripping_blob_ends_at_the_runs_deadline(fake, content):
    from scanner.layers.walk import scan_layer

    img = push(fake, leaky())
    blob = fake.blobs[img.layers[0].digest]

    def drip(request) -> None:
        request.send_response(200)
        request.send_header("Content-Length", str(len(blob)))
        request.end_headers()
        try:
            for i in range(len(blob)):
                request.wfile.write(blob[i:i + 1])
                request.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass
        request.close_connection = True

    fake.routes[f"/v2/team/app/blobs/{img.layers[0].digest}"] = drip
    image, = list(source(fake, Deadline.start(2.0)).images())
    with pytest.raises(LimitError, match=r"the --timeout of 2 s ran out"):
        within(20, lambda: scan_layer(image.layers[0], content))


# --- credentials stay with the registry's origin ------------------------------------------------------


def basic(password: str = "right") -> str:
    return "Basic " + base64.b64encode(f"u:{password}".encode()).decode()


def test_a_realm_on_another_host_gets_no_credentials(fake, capsys):
    push(fake, leaky())
    fake.auth = "bearer"
    port = fake.host.rsplit(":", 1)[1]
    fake.realm = f"http://localhost:{port}/token"  # another host name for the same server
    list(source(fake, creds=Credentials("u", "right")).images())  # this fake hands anonymous tokens out
    sent = [auth for path, _, auth in fake.log if path.startswith("/token")]
    assert sent == [None]
    assert f"its token server http://localhost:{port} is not on the registry's origin" in capsys.readouterr().err


def test_a_realm_the_user_allowed_gets_them(fake, content):
    push(fake, leaky())
    fake.auth = "bearer"
    port = fake.host.rsplit(":", 1)[1]
    fake.realm = f"http://localhost:{port}/token"
    images = list(source(fake, creds=Credentials("u", "right"), trusted=(f"localhost:{port}",)).images())
    assert [i.ref for i in images] == ["app"]
    assert [auth for path, _, auth in fake.log if path.startswith("/token")] == [basic()]


@pytest.mark.parametrize("where,realm,allowed", [
    (("reg.example", "https", True), "https://reg.example/token", True),
    (("reg.example", "https", True), "https://reg.example:443/token", True),
    (("reg.example", "https", True), "http://reg.example/token", False),  # TLS registry, plain-HTTP realm
    (("reg.example", "https", True), "https://evil.example/token", False),
    (("reg.example", "https", True), "https://reg.example.evil.example/token", False),
    (("reg.example", "https", True), "https://u@evil.example/token", False),
    (("registry-1.docker.io", "https", True), "https://auth.docker.io/token", True),  # the documented pair
    (("registry-1.docker.io", "https", True), "http://auth.docker.io/token", False),
    (("ghcr.io", "https", True), "https://auth.docker.io/token", False),
    (("127.0.0.1:5000", "http", True), "http://127.0.0.1:5000/token", True),  # plain HTTP both ways
    (("127.0.0.1:5000", "http", True), "http://127.0.0.1:5001/token", True),  # the same host, another port
    (("registry.gitlab.com", "https", True), "https://gitlab.com/jwt/auth", True),  # the other documented pair
    (("127.0.0.1:5000", "http", True), "http://localhost:5000/token", False),  # another name: another host
    (("reg.example", "https", False), "http://reg.example/token", True),  # --insecure-registry: unverified
])
def test_which_realms_get_credentials(where, realm, allowed):
    from scanner.sources.auth import realm_may_have_credentials

    host, scheme, verify = where
    assert realm_may_have_credentials(realm, Endpoint(host, scheme, verify)) is allowed


def test_a_plain_http_realm_of_a_tls_registry_gets_them_only_when_allowed():
    from scanner.sources.auth import realm_may_have_credentials

    endpoint = Endpoint("reg.example", "https", True, trusted_realms=("reg.example",))
    assert realm_may_have_credentials("http://reg.example/token", endpoint)


# --- nested indexes -------------------------------------------------------------------------------


def index_of(refs: list[dict]) -> bytes:
    return ik.canonical_json({"schemaVersion": 2, "mediaType": ik.OCI_INDEX, "manifests": refs})


def desc(media: str, data: bytes) -> dict:
    return {"mediaType": media, "digest": digest(data), "size": len(data)}


def test_a_nested_index_bomb_in_the_registry_is_read_once_per_index(fake, content):
    """40 references to the same index, 4 levels deep: 40^4 paths, 5 documents."""
    img = push(fake, leaky())
    level = index_of([desc(ik.OCI_MANIFEST, img.manifest_bytes)])
    for _ in range(4):
        fake.manifests[digest(level)] = (level, ik.OCI_INDEX)
        level = index_of([desc(ik.OCI_INDEX, level)] * 40)
    fake.manifests["1"] = (level, ik.OCI_INDEX)
    images, took = within(30, lambda: list(source(fake).images()))
    assert [i.ref for i in images] == ["app"]
    manifest_reads = [p for p, _, _ in fake.log if "/manifests/" in p]
    assert len(manifest_reads) == 6  # the tag, 4 indexes, the image


def test_a_fanning_index_in_the_registry_stops_at_the_budget(fake):
    img = push(fake, leaky())
    leaves = []
    for i in range(300):  # 300 distinct indexes, each a new digest
        leaf = index_of([dict(desc(ik.OCI_MANIFEST, img.manifest_bytes), annotations={"n": str(i)})])
        fake.manifests[digest(leaf)] = (leaf, ik.OCI_INDEX)
        leaves.append(desc(ik.OCI_INDEX, leaf))
    fake.manifests["1"] = (index_of(leaves), ik.OCI_INDEX)
    with pytest.raises(LayerscanError, match=r"over 256 manifests and indexes for one image; nothing reported"):
        within(30, lambda: list(source(fake).images()))
    assert len([p for p, _, _ in fake.log if "/manifests/" in p]) <= 257
