"""The proxy against a fake upstream (aiohttp both sides): streaming, `Location` rewriting, the
gate's answers, the upstream's 401 challenge passed on, an upstream that is down."""
from __future__ import annotations

import asyncio
import json
from typing import Optional

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from scanner.serve.check import Decision, Push
from scanner.serve.metrics import Metrics
from scanner.serve.policy import ServePolicy
from scanner.serve.proxy import Proxy, relative_location

MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {"digest": "sha256:" + "c" * 64, "size": 2}, "layers": []}).encode()


class Checker:
    def __init__(self, verdict: str) -> None:
        self.verdict, self.upstream_credentials, self.pushes = verdict, None, []

    def check(self, push: Push, gate, timeout: float) -> Decision:
        self.pushes.append(push)
        return Decision(self.verdict, "layerscan: 1 finding(s) at or above low: x in /y (layer 0, present)", 0.01)


class Upstream:
    def __init__(self, challenge: bool = False) -> None:
        self.challenge, self.received, self.manifests = challenge, 0, []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("PATCH", "/v2/{name:.+}/blobs/uploads/{id}", self.patch)
        app.router.add_get("/v2/{name:.+}/tags/list", self.tags)
        app.router.add_put("/v2/{name:.+}/manifests/{ref}", self.put)
        return app

    async def patch(self, request: web.Request) -> web.Response:
        async for chunk in request.content.iter_chunked(1 << 16):
            self.received += len(chunk)
        base = f"{request.scheme}://{request.host}"
        return web.Response(status=202, headers={"Location": f"{base}/v2/a/b/blobs/uploads/u2?_state=s"})

    async def tags(self, request: web.Request) -> web.Response:
        if self.challenge and "Authorization" not in request.headers:
            return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer realm="https://auth/token"'})
        return web.json_response({"tags": []})

    async def put(self, request: web.Request) -> web.Response:
        self.manifests.append((request.headers.get("Authorization"), await request.read()))
        return web.Response(status=201)


def run(upstream: Optional[Upstream], checker: Checker, scenario) -> None:
    async def main() -> None:
        server = None
        if upstream is not None:
            server = TestServer(upstream.app())
            await server.start_server()
            url = str(server.make_url("")).rstrip("/")
        else:
            url = "http://127.0.0.1:9"  # discard: nothing listens
        attached = []
        proxy = Proxy(url, checker, ServePolicy(), Metrics(), attach=lambda push, d: attached.append(push) or "r")
        async with TestClient(TestServer(proxy.app())) as client:
            await scenario(client, proxy, attached)
        if server is not None:
            await server.close()

    asyncio.run(main())


def test_locations_that_point_at_the_upstream_become_relative():
    assert relative_location("http://up:5000/v2/a/blobs/uploads/u?_state=x", "http://up:5000") == \
        "/v2/a/blobs/uploads/u?_state=x"
    assert relative_location("https://elsewhere/v2/a", "http://up:5000") == "https://elsewhere/v2/a"


def test_an_upload_streams_through_and_comes_back_to_the_proxy():
    upstream = Upstream()

    async def scenario(client, proxy, attached):
        async def body():
            for _ in range(64):
                yield b"x" * (1 << 16)

        resp = await client.patch("/v2/a/b/blobs/uploads/u1", data=body())
        assert resp.status == 202
        assert resp.headers["Location"] == "/v2/a/b/blobs/uploads/u2?_state=s"

    run(upstream, Checker("pass"), scenario)
    assert upstream.received == 64 << 16


def test_a_denied_manifest_never_reaches_the_upstream():
    upstream, checker = Upstream(), Checker("deny")

    async def scenario(client, proxy, attached):
        resp = await client.put("/v2/team/app/manifests/1", data=MANIFEST, headers={"Authorization": "Bearer t"})
        assert resp.status == 403
        [error] = (await resp.json())["errors"]
        assert error["code"] == "DENIED" and error["message"].startswith("layerscan: 1 finding(s)")
        assert attached == []

    run(upstream, checker, scenario)
    assert upstream.manifests == []
    [push] = checker.pushes
    assert (push.repository, push.reference, push.body, push.authorization) == ("team/app", "1", MANIFEST, "Bearer t")


def test_a_passed_manifest_goes_on_as_it_came_and_gets_its_report():
    upstream = Upstream()

    async def scenario(client, proxy, attached):
        resp = await client.put("/v2/team/app/manifests/1", data=MANIFEST, headers={"Authorization": "Bearer t"})
        assert resp.status == 201
        assert [p.name for p in attached] == ["team/app:1"]

    run(upstream, Checker("pass"), scenario)
    assert upstream.manifests == [("Bearer t", MANIFEST)]


def test_the_upstreams_challenge_reaches_the_client_before_any_scan():
    checker = Checker("pass")

    async def scenario(client, proxy, attached):
        resp = await client.put("/v2/team/app/manifests/1", data=MANIFEST)
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer realm=")

    run(Upstream(challenge=True), checker, scenario)
    assert checker.pushes == []


def test_an_upstream_that_is_down_is_a_503_with_an_oci_error():
    async def scenario(client, proxy, attached):
        resp = await client.get("/v2/")
        assert resp.status == 503 and resp.headers["Retry-After"]
        [error] = (await resp.json())["errors"]
        assert error["code"] == "UNAVAILABLE"
        assert (await client.get("/healthz")).status == 200
        assert b"layerscan_serve_upstream_errors_total 1.0" in (await (await client.get("/metrics")).read())

    run(None, Checker("pass"), scenario)
