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
from scanner.cache import LayerCache, NullCache, SqliteLayerCache, default_cache_dir
from scanner.detectors.rules import RuleSet, load_rules
from scanner.gate import Allowlist, Policy
from scanner.limits import Limits
from scanner.models import Severity, Status
from scanner.pipeline import ScanOptions
from scanner.reports import Format
from scanner.settings import find_settings, load_settings


class Size(click.ParamType):
    """A byte count: `512`, `64K`, `100M`, `2G`."""

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
        ctx.default_map = {**(ctx.default_map or {}), **defaults}
        ctx.meta["allowlist"] = allowlist
    return path


_D = Limits()
SEVERITIES = [s.value for s in Severity] + ["never"]

# Options of every command that scans. Add new scan options here.
SCAN_OPTIONS = [
    click.option("--config", "config_file", type=click.Path(dir_okay=False), is_eager=True, expose_value=True,
                 callback=_load_config, help="Settings file [default: ./.layerscan.yaml if present]."),
    click.option("--platform", help="os/arch[/variant] of a multi-platform image, or 'all'."),
    click.option("--rules", "extra_rules", multiple=True, type=click.Path(exists=True),
                 help="Extra rule file or directory of *.yaml rules (repeatable)."),
    click.option("--disable-rule", multiple=True, metavar="ID", help="Turn a rule off (repeatable)."),
    click.option("--no-progress", is_flag=True, help="No progress bar."),
    click.option("--workers", type=click.IntRange(1, 256), help="Worker processes for layers [default: one per core]."),
    click.option("--cache-dir", type=click.Path(file_okay=False), help="Layer cache directory [default: ~/.cache/layerscan]."),
    click.option("--no-cache", is_flag=True, help="Neither read nor write the layer cache."),
    click.option("--max-depth", type=click.IntRange(0, 32), default=_D.max_depth, show_default=True,
                 help="Nested archives: how deep to open."),
    click.option("--max-file-size", type=Size(), default=_D.max_file_size, show_default="8G",
                 help="Bytes of one file that are scanned."),
    click.option("--max-archive-bytes", type=Size(), default=_D.max_archive_bytes, show_default="2G",
                 help="Bytes expanded from one nested archive."),
    click.option("--max-layer-bytes", type=Size(), default=_D.max_layer_bytes, show_default="64G",
                 help="Bytes expanded from nested archives in one layer."),
    click.option("--max-ratio", type=click.IntRange(1), default=_D.max_ratio, show_default=True,
                 help="Expanded/compressed ratio that marks a decompression bomb."),
]

# Options of commands that report and gate (`scan`).
REPORT_OPTIONS = [
    click.option("--format", "-f", "fmt", type=click.Choice([f.value for f in Format]), default="table",
                 show_default=True, help="Report format."),
    click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                 help="Write the report to FILE (only after a successful scan)."),
    click.option("--reveal", is_flag=True, help="Show raw secret values (never shown otherwise)."),
    click.option("--fail-on", type=click.Choice(SEVERITIES), default="low", show_default=True,
                 help="Lowest severity that fails the run (exit 1); 'never' only reports."),
    click.option("--status", multiple=True, type=click.Choice([s.value for s in Status]),
                 help="Statuses that fail the run (repeatable) [default: all: a deleted secret is still in the image]."),
    click.option("--fail-on-incomplete", is_flag=True,
                 help="Exit 2 when anything was not scanned (a limit, a corrupt member)."),
    click.option("--baseline", type=click.Path(dir_okay=False), help="Accept the findings listed in FILE."),
    click.option("--base-image", help="Report findings of this base image's layers as inherited (they do not fail)."),
]


def apply(options: list, func):  # type: ignore[no-untyped-def]
    for option in reversed(options):
        func = option(func)
    return func


def scan_options(func):  # type: ignore[no-untyped-def]
    return apply(SCAN_OPTIONS, func)


def report_options(func):  # type: ignore[no-untyped-def]
    return apply(REPORT_OPTIONS, func)


@dataclass(frozen=True)
class Built:
    rules: RuleSet
    options: ScanOptions
    cache: LayerCache
    show_progress: bool


def build(opts: dict[str, Any]) -> Built:
    rules = load_rules(opts["extra_rules"])
    if opts["disable_rule"]:
        rules = rules.without(opts["disable_rule"])
    limits = Limits(max_depth=opts["max_depth"], max_file_size=opts["max_file_size"],
                    max_archive_bytes=opts["max_archive_bytes"], max_layer_bytes=opts["max_layer_bytes"],
                    max_ratio=opts["max_ratio"])
    options = ScanOptions(reveal=opts.get("reveal", False), platform=opts["platform"], limits=limits,
                          workers=opts["workers"])
    cache = NullCache() if opts["no_cache"] else SqliteLayerCache(opts["cache_dir"] or default_cache_dir())
    return Built(rules, options, cache, not opts["no_progress"] and sys.stderr.isatty())


def policy(opts: dict[str, Any]) -> Policy:
    fail_on = None if opts["fail_on"] == "never" else Severity(opts["fail_on"])
    statuses = frozenset(Status(s) for s in opts["status"]) or frozenset(Status)
    return Policy(fail_on=fail_on, statuses=statuses, fail_on_incomplete=opts["fail_on_incomplete"])


def baseline(opts: dict[str, Any]) -> frozenset[str]:
    return load_baseline(opts["baseline"]) if opts.get("baseline") else frozenset()
