"""The scan options shared by `scan`, `baseline` (and later commands), and what they build:
rules, limits, cache, policy, suppressions. Values come from flags, then `.layerscan.yaml`, then
the defaults here.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Optional

import click

from scanner.baseline import load_baseline
from scanner.cache import DEFAULT_MAX_BYTES, LayerCache, NullCache, open_cache
from scanner.detectors.rules import RuleSet, load_rules
from scanner.gate import Allowlist, Policy
from scanner.limits import Limits
from scanner.models import Severity, Status
from scanner.pipeline import DETECTOR_RULES, ScanOptions
from scanner.reports import Format, GroupBy
from scanner.settings import KEY_OF, SettingsError, find_settings, load_settings
from scanner.sources.remote import RegistryOptions
from scanner.verify import build as verify_build


def plain(n: int) -> str:
    """A byte count as the help shows it: `256 GiB`, `2 GiB`, `512 bytes`."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


class Size(click.ParamType):
    """A byte count: `512`, `64K`, `100M`, `2G`, `2 GiB`."""

    name = "size"
    _units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

    def convert(self, value, param, ctx):  # type: ignore[no-untyped-def]
        if isinstance(value, int):
            return value
        text = str(value).strip().upper().removesuffix("B").removesuffix("I")
        unit = text[-1:] if text[-1:] in self._units else ""
        try:
            return int(float(text[: len(text) - len(unit)]) * self._units[unit])
        except ValueError:
            self.fail(f"{value!r} is not a size (e.g. 512, 64K, 100M, 2G)", param, ctx)


def _load_config(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    """Eager: `.layerscan.yaml` (or --config FILE) becomes the defaults of every other option."""
    path = find_settings(value)
    ctx.meta["allowlist"] = Allowlist()
    if path:
        defaults, allowlist = load_settings(path)
        _check_settings(ctx, path, defaults)
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
        ctx.meta["allowlist"] = allowlist
    return path


def _check_settings(ctx: click.Context, path: str, defaults: dict[str, Any]) -> None:
    """Each value from the file converted as its flag's would be: a bad one is an error naming the file."""
    params = {p.name: p for p in ctx.command.params}
    for name, value in defaults.items():
        if name not in params:  # a setting of another command (`baseline` has no --fail-on)
            continue
        try:
            params[name].type_cast_value(ctx, value)
        except (click.BadParameter, AttributeError, TypeError, ValueError) as exc:  # click's bool wants a str
            why = exc.message if isinstance(exc, click.BadParameter) else f"{value!r} is not valid here"
            raise SettingsError(f"{path}: {KEY_OF.get(name, name)}: {why}") from None


_D = Limits()
SEVERITIES = [s.value for s in Severity] + ["never"]

# Options of every command that scans. Add new scan options here.
SCAN_OPTIONS = [
    click.option("--images-from", type=click.File("r", encoding="utf-8"), metavar="FILE",
                 help="Also scan the image references in FILE (one a line, # comments; - for stdin)."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), is_eager=True, expose_value=True,
                 callback=_load_config, help="Settings file [default: ./.layerscan.yaml if present]."),
    click.option("--platform", help="os/arch[/variant] of a multi-platform image, or 'all'."),
    click.option("--rules", "extra_rules", multiple=True, type=click.Path(exists=True),
                 help="Extra rule file or directory of *.yaml rules (repeatable)."),
    click.option("--disable-rule", multiple=True, metavar="ID", help="Turn a rule off (repeatable)."),
    click.option("--private-package", multiple=True, metavar="GLOB",
                 help="A package of yours (name glob: acme-*, @acme/*): its files are never triaged (repeatable)."),
    click.option("--no-progress", is_flag=True, help="No progress bar."),
    click.option("--workers", type=click.IntRange(1, 256),
                 help="Worker processes for layers [default: one per core this process may use: its CPU affinity "
                      "and cgroup quota]."),
    click.option("--cache-dir", type=click.Path(file_okay=False), help="Layer cache directory [default: ~/.cache/layerscan]."),
    click.option("--cache-url", metavar="postgresql://...",
                 help="Layer cache on a PostgreSQL server, shared by many workers (instead of --cache-dir)."),
    click.option("--no-cache", is_flag=True, help="Neither read nor write the layer cache."),
    click.option("--cache-max-size", type=Size(), default=DEFAULT_MAX_BYTES,
                 help=f"Bytes of entries the --cache-dir cache keeps; past it, those used longest ago go. [default: {plain(DEFAULT_MAX_BYTES)}]"),
    click.option("--max-depth", type=click.IntRange(0, 32), default=_D.max_depth, show_default=True,
                 help="Nested archives: how deep to open."),
    click.option("--max-file-size", type=Size(), default=_D.max_file_size,
                 help=f"Bytes of one file that are scanned. [default: {plain(_D.max_file_size)}]"),
    click.option("--max-archive-bytes", type=Size(), default=_D.max_archive_bytes,
                 help=f"Bytes expanded from one nested archive. [default: {plain(_D.max_archive_bytes)}]"),
    click.option("--max-layer-bytes", type=Size(), default=_D.max_layer_bytes,
                 help=f"Bytes expanded from nested archives in one layer. [default: {plain(_D.max_layer_bytes)}]"),
    click.option("--max-ratio", type=click.IntRange(1), default=_D.max_ratio, show_default=True,
                 help="Expanded/compressed ratio that marks a decompression bomb."),
    click.option("--max-file-findings", type=click.IntRange(1), default=_D.max_file_findings, show_default=True,
                 help="Findings reported of one file; past it the rest of the file is not scanned."),
    click.option("--max-findings", type=click.IntRange(1), default=_D.max_findings, show_default=True,
                 help="Findings reported of one image; past it the rest are counted, listed as not reported."),
    click.option("--max-image-bytes", type=Size(), default=_D.max_image_bytes,
                 help=f"Uncompressed layer bytes of one image; over it the scan stops (exit 2). [default: {plain(_D.max_image_bytes)}]"),
    click.option("--max-image-files", type=click.IntRange(1), default=_D.max_image_files, show_default=True,
                 help="Tar entries (files, dirs, links) of one image; over it the scan stops (exit 2)."),
    click.option("--timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
                 help="Wall-clock bound of the whole scan; when it runs out the scan stops (exit 2)."),
    click.option("--insecure-registry", multiple=True, metavar="HOST[:PORT]",
                 help="Allow plain HTTP or an unverified TLS certificate for this registry (repeatable)."),
    click.option("--ca-file", type=click.Path(dir_okay=False), help="CA certificates to trust for registries' TLS."),
    click.option("--username", help="Registry user name (with --password-stdin) [default: ~/.docker/config.json]."),
    click.option("--password-stdin", is_flag=True, help="Read the registry password from standard input."),
]

# Options of commands that report and gate (`scan`).
REPORT_OPTIONS = [
    click.option("--format", "-f", "fmt", type=click.Choice([f.value for f in Format]), default="table",
                 show_default=True, help="Report format."),
    click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                 help="Write the report to FILE (only after a successful scan)."),
    click.option("--reveal", is_flag=True, help="Show raw secret values (never shown otherwise)."),
    click.option("--wide", is_flag=True,
                 help="Table: every column in full, one line per finding [default: fit the terminal's width]."),
    click.option("--group-by", type=click.Choice([g.value for g in GroupBy]), default=GroupBy.FINDING.value,
                 show_default=True, help="'secret': one entry per secret with all its sightings (table, JSON)."),
    click.option("--fail-on", type=click.Choice(SEVERITIES), default="low", show_default=True,
                 help="Lowest severity that fails the run (exit 1); 'never' only reports."),
    click.option("--status", multiple=True, type=click.Choice([s.value for s in Status]),
                 help="Statuses that fail the run (repeatable) [default: all: a deleted secret is still in the image]."),
    click.option("--fail-on-incomplete/--no-fail-on-incomplete", default=False,
                 help="Exit 2 when anything was not scanned (a limit, a corrupt member)."),
    click.option("--fail-on-triaged/--no-fail-on-triaged", default=False,
                 help="Triaged findings (vendor, known-public) fail the run too [default: listed, not gating]."),
    click.option("--show-triaged", is_flag=True,
                 help="List triaged findings (vendor files, known-public keys) in the table [default: a count]."),
    click.option("--baseline", type=click.Path(dir_okay=False), help="Accept the findings listed in FILE."),
    click.option("--base-image", help="Report findings of this base image's layers as inherited (they do not fail)."),
]


# `scan --attach`, `push --attach`: the report pushed beside the image it is about (scanner/attach.py)
ATTACH_OPTION = click.option(
    "--attach", is_flag=True,
    help="When the gate passes, attach the report (SARIF with --format sarif, else JSON) to the registry image "
         "as an OCI 1.1 referrer (or its sha256-<digest> tag where the registry has no referrers API).")


def apply(options: list, func):  # type: ignore[no-untyped-def]
    for option in reversed(options):
        func = option(func)
    return func


def scan_options(func):  # type: ignore[no-untyped-def]
    return apply(SCAN_OPTIONS, func)


def report_options(func):  # type: ignore[no-untyped-def]
    return apply(REPORT_OPTIONS, func)


def verify_options(func):  # type: ignore[no-untyped-def]
    """--verify and its settings (scanner/verify/build.py)."""
    return apply(verify_build.OPTIONS, func)


def image_refs(given: tuple[str, ...], opts: dict[str, Any]) -> tuple[str, ...]:
    """IMAGE arguments, then the references of --images-from (blank lines and # comments skipped)."""
    listed: list[str] = []
    if opts.get("images_from") is not None:
        for line in opts["images_from"].read().splitlines():
            ref = line.split(" #", 1)[0].strip()
            if ref and not ref.startswith("#"):
                listed.append(ref)
    out = tuple(dict.fromkeys([*given, *listed]))
    if not out:
        raise click.UsageError("no image given: name IMAGE... or --images-from FILE")
    return out


@dataclass(frozen=True)
class Built:
    rules: RuleSet
    options: ScanOptions
    cache: LayerCache
    show_progress: bool
    verify: Any = None  # --verify: the Engine that asks providers (scanner/verify/engine.py)


def build(opts: dict[str, Any]) -> Built:
    rules = load_rules(opts["extra_rules"])
    disabled = set(opts["disable_rule"] or ())
    if disabled - DETECTOR_RULES:  # the entropy and credential-file detectors' rules are turned off in the pipeline
        rules = rules.without(disabled - DETECTOR_RULES)
    limits = Limits(max_depth=opts["max_depth"], max_file_size=opts["max_file_size"],
                    max_archive_bytes=opts["max_archive_bytes"], max_layer_bytes=opts["max_layer_bytes"],
                    max_ratio=opts["max_ratio"], max_file_findings=opts["max_file_findings"],
                    max_findings=opts.get("max_findings", _D.max_findings),
                    max_image_bytes=opts["max_image_bytes"],
                    max_image_files=opts["max_image_files"])
    options = ScanOptions(reveal=opts.get("reveal", False), platform=opts["platform"], limits=limits,
                          workers=opts["workers"], registry=_registry(opts), timeout=opts["timeout"],
                          show_triaged=opts.get("show_triaged", False),
                          disabled=frozenset(disabled & DETECTOR_RULES),
                          private_packages=tuple(opts.get("private_package") or ()))
    cache = NullCache() if opts["no_cache"] else open_cache(opts.get("cache_url") or opts["cache_dir"],
                                                            opts.get("cache_max_size"))
    return Built(rules, options, cache, not opts["no_progress"] and sys.stderr.isatty(),
                 verify_build.engine_from(opts))


def _registry(opts: dict[str, Any]) -> RegistryOptions:
    password = None
    if opts.get("password_stdin"):
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: nothing on standard input")
    return RegistryOptions(insecure=tuple(opts.get("insecure_registry") or ()), ca_file=opts.get("ca_file"),
                           username=opts.get("username"), password=password)


def policy(opts: dict[str, Any]) -> Policy:
    fail_on = None if opts["fail_on"] == "never" else Severity(opts["fail_on"])
    statuses = frozenset(Status(s) for s in opts["status"]) or frozenset(Status)
    return Policy(fail_on=fail_on, statuses=statuses, fail_on_incomplete=opts["fail_on_incomplete"],
                  fail_on_triaged=opts["fail_on_triaged"], fail_on_verified=bool(opts.get("fail_on_verified")))


def baseline(opts: dict[str, Any]) -> frozenset[str]:
    return load_baseline(opts["baseline"]) if opts.get("baseline") else frozenset()
