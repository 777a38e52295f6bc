"""`layerscan serve` under load and faults: 8 concurrent pushes of images on one base (each layer
scanned once), a client that hangs up mid-upload, an upstream that goes away and comes back."""
from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import secrets_catalog as catalog
from tests.integration.test_serve import archive, manifest, serve_factory, skopeo_copy  # noqa: F401 - fixture
from tests.integration.test_fleet import postgres  # noqa: F401 - fixture
from tests.services import _which

pytestmark = pytest.mark.integration

PUSHES = 8


def test_concurrent_pushes_on_one_base_scan_each_layer_once(registry, serve_factory, tmp_path):
    serve = serve_factory(registry, "--scans", "4")
    names = [f"conc{i}" for i in range(PUSHES)]
    leaky = {"conc3", "conc6"}
    sources = {n: archive(tmp_path, n, *([("/app/.env", f"T={catalog.GITLAB_PAT}\n".encode())] if n in leaky else []))
               for n in names}
    with ThreadPoolExecutor(PUSHES) as pool:
        procs = dict(zip(names, pool.map(lambda n: skopeo_copy(sources[n], f"{serve.host}/load/{n}:1"), names)))
    for name, proc in procs.items():
        assert (proc.returncode == 0) == (name not in leaky), f"{name}: {proc.stderr}"
        assert manifest(registry, f"load/{name}", "1")[0] == (404 if name in leaky else 200)
    # one base layer shared by all, one layer of its own each, one secret layer shared by two
    assert serve.metric("layerscan_serve_layers_total", outcome="scanned") == 1 + PUSHES + 1
    assert serve.metric("layerscan_serve_layers_total", outcome="cached") == (PUSHES - 1) + (len(leaky) - 1)
    assert serve.metric("layerscan_serve_decisions_total", verdict="pass") == PUSHES - len(leaky)
    assert serve.metric("layerscan_serve_reports_attached_total", result="attached") == PUSHES - len(leaky)
    print(f"\npeak RSS of layerscan serve over {PUSHES} concurrent pushes: {serve.peak_rss_kib() / 1024:.0f} MiB")


def _http(host: str, request: bytes) -> bytes:
    with socket.create_connection(tuple(host.split(":")), timeout=10) as sock:  # type: ignore[arg-type]
        sock.sendall(request)
        return sock.recv(65536)


def test_a_client_that_hangs_up_mid_upload(registry, serve_factory, tmp_path):
    serve = serve_factory(registry)
    started = _http(serve.host, b"POST /v2/cut/blob/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert started.startswith(b"HTTP/1.1 202"), started[:200]
    location = next(line.split(b": ", 1)[1] for line in started.split(b"\r\n") if line.lower().startswith(b"location:"))
    assert location.startswith(b"/v2/cut/blob/blobs/uploads/"), location  # back through the proxy
    size, before = 64 << 20, serve.peak_rss_kib()
    with socket.create_connection(("127.0.0.1", serve.port), timeout=10) as sock:
        sock.sendall(b"PATCH " + location + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                     + f"Content-Length: {size}\r\n\r\n".encode())
        for _ in range(16):
            sock.sendall(os.urandom(1 << 20))
    deadline = time.monotonic() + 10
    while not serve.events("client-gone") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert serve.events("client-gone") and "Traceback" not in serve.log_text()
    assert serve.metric("layerscan_serve_upstream_errors_total") == 0  # the client went, not the upstream
    assert serve.get("/healthz")[0] == 200
    assert serve.peak_rss_kib() - before < 8 << 10, (before, serve.peak_rss_kib())  # 16 MiB went by, not held
    proc = skopeo_copy(archive(tmp_path, "after"), f"{serve.host}/cut/after:1")
    assert proc.returncode == 0, proc.stderr


def test_an_upstream_that_goes_away_and_comes_back(registry_factory, serve_factory, tmp_path):
    upstream = registry_factory()
    serve = serve_factory(upstream)
    os.kill(upstream._proc.pid, signal.SIGKILL)
    upstream._proc.wait()
    status, headers, body = serve.get("/v2/")
    assert status == 503 and headers.get("Retry-After")
    [error] = json.loads(body)["errors"]
    assert error["code"] == "UNAVAILABLE" and "upstream registry is unavailable" in error["message"]
    proc = skopeo_copy(archive(tmp_path, "away"), f"{serve.host}/away/img:1", "--retry-times", "0")
    assert proc.returncode != 0 and "503 (Service Unavailable)" in proc.stderr, proc.stderr
    assert serve.events("upstream-error")

    upstream._spawn(_which("docker-registry"))  # the same port, config and storage
    assert upstream._wait_ready(last_attempt=True)
    assert serve.get("/v2/")[0] == 200
    proc = skopeo_copy(archive(tmp_path, "back"), f"{serve.host}/away/back:1")
    assert proc.returncode == 0, proc.stderr
    assert manifest(upstream, "away/back", "1")[0] == 200


def test_two_serve_processes_share_the_postgresql_layer_cache(registry, serve_factory, postgres, tmp_path):
    first = serve_factory(registry, "--cache-url", postgres.dsn)
    second = serve_factory(registry, "--cache-url", postgres.dsn)
    assert skopeo_copy(archive(tmp_path, "pg1"), f"{first.host}/pg/one:1").returncode == 0
    assert first.metric("layerscan_serve_layers_total", outcome="scanned") == 2  # the base and its own
    assert skopeo_copy(archive(tmp_path, "pg2"), f"{second.host}/pg/two:1").returncode == 0
    assert second.metric("layerscan_serve_layers_total", outcome="scanned") == 1  # its own only
    assert second.metric("layerscan_serve_layers_total", outcome="cached") == 1  # the base, scanned by the first
