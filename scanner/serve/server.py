"""Build the proxy from the command's options and run it until SIGINT/SIGTERM."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from scanner.attach import Subject, attach_report
from scanner.errors import ExitCode
from scanner.models import ScanResult
from scanner.reports import Format, report_for
from scanner.serve.check import Checker, Decision, Push
from scanner.serve.command import cache_factory, configure, listen_of, log_line, serve_policy, upstream_of
from scanner.serve.layercache import InFlight, ServeCache
from scanner.serve.metrics import Metrics
from scanner.serve.proxy import Proxy


def build_proxy(opts: dict[str, Any]) -> Proxy:
    built, default, creds = configure(opts)
    registry = built.options.registry
    upstream = upstream_of(opts["upstream"], registry.ca_file, registry.insecure)
    metrics = Metrics()
    make_cache = cache_factory(opts)
    options = built.options if opts["workers"] else _one_worker(built.options)
    from click import get_current_context

    allowlist = get_current_context().meta.get("allowlist")
    inflight = InFlight(wait=opts["scan_timeout"])
    checker = Checker(built.rules, options, upstream.endpoint, lambda: ServeCache(make_cache(), metrics, inflight),
                      allowlist, creds)
    attach = _attacher(checker, opts["attach_format"]) if opts["attach"] else None
    return Proxy(upstream.url, checker, serve_policy(opts, default), metrics, scan_timeout=opts["scan_timeout"],
                 scans=opts["scans"], ssl=upstream.ssl, attach=attach, log=log_line)


def _one_worker(options: Any) -> Any:
    """Each scan on its own thread, no worker processes (forking a threaded server is a risk);
    --workers N asks for them."""
    from dataclasses import replace

    return replace(options, workers=1)


def _attacher(checker: Checker, fmt: str) -> Any:
    def attach(push: Push, decision: Decision) -> str:
        assert decision.result is not None
        client = checker.client(push)
        try:
            return str(attach_report(client, subject_of_push(push), render(decision.result, fmt), fmt))
        finally:
            client.close()

    return attach


def render(result: ScanResult, fmt: str) -> bytes:
    return report_for(Format(fmt)).render(result).encode()


def subject_of_push(push: Push) -> Subject:
    try:
        media = json.loads(push.body).get("mediaType") or push.media_type
    except (ValueError, AttributeError):
        media = push.media_type
    return Subject(push.digest, media, len(push.body))


def run(opts: dict[str, Any]) -> int:
    host, port = listen_of(opts["listen"])
    proxy = build_proxy(opts)
    log_line({"event": "start", "listen": f"{host}:{port}", "upstream": proxy.upstream})
    web.run_app(proxy.app(), host=host, port=port, print=None, access_log=None, handle_signals=True)
    log_line({"event": "stop"})
    return ExitCode.CLEAN
