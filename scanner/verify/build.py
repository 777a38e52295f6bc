"""The verify options (`--verify`, `--verify-endpoint`, ...) made into an Engine, and the hosts
`layerscan verify --list-endpoints` prints."""
from __future__ import annotations

import time
import urllib.parse
from typing import Any, Optional

import click

from scanner.cache import default_cache_dir
from scanner.verify.engine import Engine
from scanner.verify.interface import Verifier
from scanner.verify.spec import load_verifiers
from scanner.verify.store import VerifyStore
from scanner.verify.transport import Transport

OPTIONS = [
    click.option("--verify", is_flag=True,
                 help="Ask each provider whether the credentials found are live: one read-only call per secret to "
                      "its documented API (README, 'Verifying found keys') [default: off: nothing is sent]."),
    click.option("--verify-endpoint", multiple=True, metavar="PROVIDER=URL",
                 help="Call PROVIDER (github, gitlab, ...) at URL instead (GitHub Enterprise, GitLab self-managed); "
                      "the only way a private address is called (repeatable)."),
    click.option("--verify-rps", type=click.FloatRange(0.01), default=2.0, show_default=True,
                 help="Requests a second to one provider."),
    click.option("--verify-timeout", type=click.FloatRange(0.1), default=10.0, show_default=True,
                 help="Seconds for one call (bounded by --timeout too)."),
    click.option("--verify-ca-file", type=click.Path(exists=True, dir_okay=False),
                 help="CA certificates trusted for verification calls, beside the usual ones."),
    click.option("--fail-on-verified/--no-fail-on-verified", default=False,
                 help="With --verify: findings whose provider rejected the key (invalid) do not fail the run; "
                      "live, unknown, error and unverifiable ones still do."),
]


def endpoints(values: tuple[str, ...], known: list[Verifier]) -> dict[str, str]:
    names = {v.provider for v in known} | {v.id for v in known}
    out = {}
    for value in values:
        name, _, url = value.partition("=")
        parts = urllib.parse.urlsplit(url)
        if name not in names:
            raise click.BadParameter(f"{name!r} is no provider (see `layerscan verify --list-endpoints`)",
                                     param_hint="--verify-endpoint")
        if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
            raise click.BadParameter(f"{value}: the URL must be https://HOST[:PORT][/PATH]",
                                     param_hint="--verify-endpoint")
        out[name] = url
    return out


def engine_from(opts: dict[str, Any]) -> Optional[Engine]:
    """None without --verify (then nothing is ever sent)."""
    if not opts.get("verify"):
        if opts.get("fail_on_verified"):
            raise click.UsageError("--fail-on-verified needs --verify")
        if opts.get("verify_endpoint"):
            raise click.UsageError("--verify-endpoint needs --verify")
        return None
    verifiers = load_verifiers()
    store = VerifyStore(None if opts.get("no_cache") else (opts.get("cache_dir") or default_cache_dir()))
    timeout = opts.get("timeout")
    return Engine(verifiers, Transport(opts.get("verify_ca_file")), store,
                  endpoints(tuple(opts.get("verify_endpoint") or ()), verifiers), rps=opts.get("verify_rps") or 2.0,
                  timeout=opts.get("verify_timeout") or 10.0,
                  deadline=None if timeout is None else time.monotonic() + timeout)


def hosts(verifiers: list[Verifier]) -> list[str]:
    return sorted({h for v in verifiers for h in v.hosts()})
