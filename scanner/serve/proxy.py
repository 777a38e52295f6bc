"""The reverse proxy: every request of the distribution API goes to the upstream as it came
(the client's `Authorization` too) and its answer comes back as it went, streamed both ways in
chunks (bounded memory, nothing on disk), except a manifest `PUT`: that one waits for the gate.

An upload's `Location` that points at the upstream is made relative, so the client's next
request comes back through the proxy, whatever name (or TLS front) it reached the proxy by.
"""
from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from scanner.serve.check import Checker, Decision, Push, by_severity, timed_out
from scanner.serve.metrics import Metrics
from scanner.serve.policy import ServePolicy

CHUNK = 1 << 16
MAX_MANIFEST = 4 << 20  # the distribution spec's own limit
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
       "transfer-encoding", "upgrade", "host"}
UPSTREAM_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
GRACE = 5.0  # seconds past --scan-timeout before a scan thread that does not stop is given up on


def oci_error(status: int, code: str, message: str, headers: Optional[dict] = None) -> web.Response:
    body = json.dumps({"errors": [{"code": code, "message": message}]})
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


def relative_location(value: str, upstream: str) -> str:
    """`http://upstream:5000/v2/x/blobs/uploads/u?_state=..` -> `/v2/x/blobs/uploads/u?_state=..`."""
    if not value.startswith(upstream + "/"):
        return value
    parts = urlsplit(value)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Proxy:
    def __init__(self, upstream: str, checker: Checker, policy: ServePolicy, metrics: Metrics, *,
                 scan_timeout: float = 60.0, scans: int = 2, ssl: Any = None,
                 attach: Optional[Callable[[Push, Decision], str]] = None,
                 log: Callable[[dict], None] = lambda record: None) -> None:
        self.upstream = upstream.rstrip("/")
        self.checker, self.policy, self.metrics = checker, policy, metrics
        self.scan_timeout, self.ssl, self.attach, self.log = scan_timeout, ssl, attach, log
        self.scans = ThreadPoolExecutor(scans, thread_name_prefix="layerscan-scan")
        self.session: Optional[aiohttp.ClientSession] = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_MANIFEST)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        app.router.add_put(r"/v2/{name:.+}/manifests/{reference:[^/]+}", self.put_manifest)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app: web.Application) -> None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
        self.session = aiohttp.ClientSession(
            timeout=timeout, auto_decompress=False, connector=aiohttp.TCPConnector(ssl=self.ssl, limit=256),
            skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"))

    async def _close(self, app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()
        self.scans.shutdown(wait=False, cancel_futures=True)

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def metrics_page(self, request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": self.metrics.content_type})

    # --- streaming -------------------------------------------------------------------------

    async def forward(self, request: web.Request, body: Optional[bytes] = None) -> web.StreamResponse:
        data: Any = body if body is not None else (request.content if request.body_exists else None)
        try:
            async with self._upstream(request, data) as up:
                return await self._relay(request, up)
        except UPSTREAM_ERRORS as exc:
            return self._unreachable(request, exc)

    def _upstream(self, request: web.Request, data: Any) -> Any:
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP]
        if body_known := isinstance(data, bytes):
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        url = URL(self.upstream + request.raw_path, encoded=True)
        assert self.session is not None, "the proxy's app was not started"
        streamed = data is not None and not body_known and "Content-Length" not in request.headers
        return self.session.request(request.method, url, headers=headers, data=data, allow_redirects=False,
                                    chunked=True if streamed else None)

    async def _relay(self, request: web.Request, up: aiohttp.ClientResponse) -> web.StreamResponse:
        resp = web.StreamResponse(status=up.status, reason=up.reason)
        for key, value in up.headers.items():
            if key.lower() in HOP or key.lower() == "content-length":
                continue
            resp.headers.add(key, relative_location(value, self.upstream) if key.lower() == "location" else value)
        if "Content-Length" in up.headers:
            resp.content_length = int(up.headers["Content-Length"])
        await resp.prepare(request)
        try:
            if request.method != "HEAD":
                async for chunk in up.content.iter_chunked(CHUNK):
                    await resp.write(chunk)
            await resp.write_eof()
        except UPSTREAM_ERRORS as exc:  # begun, so no error answer: the connection is cut, never a short "whole" body
            self._unreachable(request, exc)
            if request.transport is not None:
                request.transport.close()
        return resp

    def _unreachable(self, request: web.Request, exc: BaseException) -> web.Response:
        if request.transport is None or request.transport.is_closing():  # the client went: nothing to answer
            self.log({"event": "client-gone", "method": request.method, "path": request.path})
            return web.Response(status=400)
        self.metrics.upstream_errors.inc()
        refused = isinstance(exc, (aiohttp.ClientConnectorError, ConnectionRefusedError))
        self.log({"event": "upstream-error", "method": request.method, "path": request.path,
                  "error": exc.__class__.__name__})
        status, what = (503, "unavailable") if refused else (502, "failed mid-request")
        return oci_error(status, "UNAVAILABLE", f"layerscan: the upstream registry is {what}; try again",
                         {"Retry-After": "5"} if refused else None)

    # --- the gate --------------------------------------------------------------------------

    async def put_manifest(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return oci_error(413, "MANIFEST_INVALID", "layerscan: a manifest is at most 4 MiB")
        push = Push(request.match_info["name"], request.match_info["reference"], body,
                    request.headers.get("Content-Type", ""), request.headers.get("Authorization", ""))
        challenge = await self._challenge(request, push)
        if challenge is not None:
            return challenge
        decision = await self._decide(push)
        self._record(push, decision)
        if not decision.allowed:
            return oci_error(403, "DENIED", decision.message)
        try:
            async with self._upstream(request, body) as up:
                answer = await up.read()
                if up.status == 201 and decision.verdict == "pass" and self.attach is not None:
                    await self._attach(push, decision)
                headers = {k: relative_location(v, self.upstream) if k.lower() == "location" else v
                           for k, v in up.headers.items() if k.lower() not in HOP | {"content-length"}}
                return web.Response(status=up.status, body=answer, headers=headers)
        except UPSTREAM_ERRORS as exc:
            return self._unreachable(request, exc)

    async def _challenge(self, request: web.Request, push: Push) -> Optional[web.StreamResponse]:
        """Without its own upstream account the proxy reads with the client's token: a client
        the upstream does not let read gets the upstream's 401 (its challenge), logs in, retries."""
        if self.checker.upstream_credentials is not None:
            return None
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization", "user-agent")}
        url = URL(f"{self.upstream}/v2/{push.repository}/tags/list?n=1", encoded=False)
        try:
            async with self.session.get(url, headers=headers, allow_redirects=False) as up:
                if up.status != 401:
                    return None
                return await self._relay(request, up)
        except UPSTREAM_ERRORS as exc:
            return self._unreachable(request, exc)

    async def _decide(self, push: Push) -> Decision:
        gate = self.policy.for_repository(push.repository)
        deadline = time.monotonic() + self.scan_timeout
        loop = asyncio.get_running_loop()

        def run() -> Decision:  # on a scan thread; the time queued for one counts too
            left = deadline - time.monotonic()
            return self.checker.check(push, gate, left) if left > 0 else timed_out(push, gate, self.scan_timeout)

        began = time.monotonic()
        with self.metrics.scan_seconds.time():
            try:
                return await asyncio.wait_for(loop.run_in_executor(self.scans, run), self.scan_timeout + GRACE)
            except asyncio.TimeoutError:
                return timed_out(push, gate, time.monotonic() - began)

    async def _attach(self, push: Push, decision: Decision) -> None:
        loop = asyncio.get_running_loop()
        try:
            where = await loop.run_in_executor(self.scans, self.attach, push, decision)
            self.metrics.attached.labels("attached").inc()
            self.log({"event": "attached", "image": push.name, "digest": push.digest, "report": where})
        except Exception as exc:  # noqa: BLE001 - the image passed: a report that did not attach is logged
            self.metrics.attached.labels("failed").inc()
            self.log({"event": "attach-failed", "image": push.name, "digest": push.digest,
                      "error": f"{exc.__class__.__name__}: {str(exc)[:200]}"})

    def _record(self, push: Push, decision: Decision) -> None:
        self.metrics.decisions.labels(decision.verdict).inc()
        self.log({"event": "decision", "image": push.name, "digest": push.digest, "verdict": decision.verdict,
                  "findings": by_severity(decision.result), "seconds": round(decision.seconds, 3),
                  "message": decision.message})
