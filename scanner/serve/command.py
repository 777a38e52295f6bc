"""`layerscan serve --upstream URL --listen HOST:PORT`: the options, and the server they build.

The scan options are `scan`'s (rules, limits, cache, `.layerscan.yaml`), and so is the gate's
policy (`--fail-on`, `--status`, `--baseline`, the allowlist), with the settings file's `serve:`
section for per-repository rules. aiohttp is imported only when the server starts (the extra
`layerscan[serve]`).
"""
from __future__ import annotations

import json
import ssl
import sys
import time
from dataclasses import dataclass, replace
from typing import Any, Optional
from urllib.parse import urlsplit

import click

from scanner.cache import NullCache, open_cache
from scanner.errors import LayerscanError
from scanner.options import baseline, build, policy, report_options, scan_options
from scanner.serve.policy import ON_TIMEOUT, RepositoryPolicy, ServePolicy, load_serve_policy
from scanner.sources.auth import Credentials
from scanner.sources.registry_http import Endpoint

# scan options that make no sense for a server (what to scan and how to show it come with each push)
DROPS = ("images_from", "platform", "no_progress", "timeout", "username", "password_stdin", "fmt", "output",
         "reveal", "group_by", "show_triaged", "base_image")


class ServeError(LayerscanError):
    """The server cannot start as configured."""


@dataclass(frozen=True)
class Upstream:
    url: str  # scheme://host[:port], no path
    endpoint: Endpoint
    ssl: Any  # for aiohttp: True (system CAs), an SSLContext (--ca-file), or False (--insecure-registry)


def upstream_of(url: str, ca_file: Optional[str], insecure: tuple[str, ...]) -> Upstream:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ServeError(f"--upstream {url}: expected http(s)://HOST[:PORT]")
    host = parts.netloc
    unverified = parts.scheme == "https" and host in insecure
    verify: Any = False if unverified else (ca_file or True)
    context: Any = True
    if unverified:
        context = False
    elif ca_file:
        try:
            context = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ServeError(f"--ca-file {ca_file}: cannot be read ({exc.__class__.__name__})") from None
    return Upstream(f"{parts.scheme}://{host}", Endpoint(host, parts.scheme, verify), context)


def listen_of(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServeError(f"--listen {value}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def log_line(record: dict) -> None:
    """One JSON line on stderr per event: what a log collector reads."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(json.dumps({"time": stamp, **record}, ensure_ascii=True, separators=(",", ":")) + "\n")
    sys.stderr.flush()


@click.command("serve", short_help="A push gate in front of a registry (an OCI proxy).")
@click.option("--upstream", required=True, metavar="URL", help="The registry to gate: http(s)://HOST[:PORT].")
@click.option("--listen", default="127.0.0.1:5080", show_default=True, metavar="HOST:PORT",
              help="Where the proxy listens (put a TLS front such as nginx before it, or use a loopback address).")
@click.option("--scan-timeout", type=click.FloatRange(0, min_open=True), default=60.0, show_default=True,
              metavar="SECONDS", help="Bound of one manifest's scan (queueing included); then on-timeout decides.")
@click.option("--on-timeout", type=click.Choice(ON_TIMEOUT), default=None,
              help="A scan past --scan-timeout: deny the push or let it through [default: serve.on-timeout "
                   "of the settings, else deny].")
@click.option("--scans", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Manifests scanned at once; more wait (their wait counts against --scan-timeout).")
@click.option("--upstream-username", help="Read pushed blobs as this upstream user [default: with each client's "
                                          "own Authorization].")
@click.option("--upstream-password-stdin", is_flag=True, help="Read the --upstream-username password from stdin.")
@click.option("--attach/--no-attach", default=True, show_default=True,
              help="Attach the report of a passed image to it (OCI referrer, or the sha256-<digest> tag).")
@click.option("--attach-format", type=click.Choice(["json", "sarif"]), default="json", show_default=True)
@report_options
@scan_options
def serve(**opts: Any) -> int:
    """A push gate in front of a registry: every request passes through to --upstream, except a
    manifest PUT, which waits until its image is scanned; then it goes on, or is refused (403)
    with the blocking findings, redacted. See the README's "Gate at the registry"."""
    try:
        from scanner.serve.server import run
    except ImportError as exc:
        raise ServeError(f"serve needs aiohttp and prometheus-client: pip install 'layerscan[serve]' ({exc.name})") \
            from None
    return run(opts)


serve.params = [p for p in serve.params if p.name not in DROPS]


def configure(opts: dict[str, Any]) -> tuple[Any, RepositoryPolicy, Optional[Credentials]]:
    """(what `build` makes of the scan options, the default repository policy, upstream credentials)."""
    full = {**opts, "platform": None, "timeout": None, "no_progress": True}
    creds = None
    if opts["upstream_username"] or opts["upstream_password_stdin"]:
        password = sys.stdin.readline().rstrip("\r\n") if opts["upstream_password_stdin"] else ""
        if not opts["upstream_username"] or not password:
            raise click.UsageError("--upstream-username needs --upstream-password-stdin (and the other way round)")
        creds = Credentials(opts["upstream_username"], password, source="--upstream-username")
    built = build({**full, "no_cache": True})  # the cache is opened per scan thread (cache_factory)
    default = RepositoryPolicy(policy(opts), baseline(opts), opts["on_timeout"] or "deny")
    return built, default, creds


def cache_factory(opts: dict[str, Any]) -> Any:
    if opts["no_cache"]:
        return NullCache
    location, size = opts.get("cache_url") or opts["cache_dir"], opts.get("cache_max_size")
    return lambda: open_cache(location, size)


def serve_policy(opts: dict[str, Any], default: RepositoryPolicy) -> ServePolicy:
    found = load_serve_policy(opts.get("config_file"), default)
    if opts["on_timeout"]:  # the flag wins over the settings file's serve.on-timeout
        found = replace(found, default=replace(found.default, on_timeout=opts["on_timeout"]))
    return found
