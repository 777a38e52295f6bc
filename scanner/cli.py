"""The command line: `layerscan IMAGE...` is short for `layerscan scan IMAGE...`.

Commands build options, call the pipeline, render, and return an exit code. One handler turns
errors into one line on stderr.
"""
from __future__ import annotations

import os
import sys
from typing import Optional

import click

from scanner import __version__
from scanner.cache import LayerCache, NullCache, SqliteLayerCache, default_cache_dir
from scanner.detectors.rules import RuleSet, load_rules
from scanner.errors import ExitCode, LayerscanError
from scanner.limits import Limits
from scanner.pipeline import ScanOptions, Scanner
from scanner.reports import Format, ReportError, report_for


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a command, is an image for `scan`."""

    default_command = "scan"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


class TqdmProgress:
    """Bytes over layers, on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self._bar = None

    def begin(self, label: str, total_bytes: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total_bytes, desc=label[-40:], unit="B", unit_scale=True,
                         unit_divisor=1024, leave=False, file=sys.stderr)

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.update(nbytes)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _rules(extra: tuple[str, ...], disabled: tuple[str, ...]) -> RuleSet:
    rules = load_rules(extra)
    return rules.without(disabled) if disabled else rules


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerscan")
def cli() -> None:
    """Find secrets baked into container images: every layer (deleted and overwritten files
    too), the image config and the build history.

    \b
    layerscan IMAGE...          scan (short for `layerscan scan IMAGE...`)
    layerscan rules             list the detection rules
    """


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


def _limits(depth: int, file_size: int, archive: int, layer: int, ratio: int) -> Limits:
    return Limits(max_depth=depth, max_file_size=file_size, max_archive_bytes=archive,
                  max_layer_bytes=layer, max_ratio=ratio)


def _cache(no_cache: bool, cache_dir: Optional[str]) -> LayerCache:
    return NullCache() if no_cache else SqliteLayerCache(cache_dir or default_cache_dir())


_DEFAULTS = Limits()
SCAN_OPTIONS = [
    click.option("--format", "-f", "fmt", type=click.Choice([f.value for f in Format]), default="table",
                 show_default=True, help="Report format."),
    click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True),
                 help="Write the report to FILE (only after a successful scan)."),
    click.option("--reveal", is_flag=True, help="Show raw secret values (never shown otherwise)."),
    click.option("--no-progress", is_flag=True, help="No progress bar."),
    click.option("--platform", help="os/arch[/variant] of a multi-platform image, or 'all'."),
    click.option("--rules", "extra_rules", multiple=True, type=click.Path(exists=True),
                 help="Extra rule file or directory of *.yaml rules (repeatable)."),
    click.option("--disable-rule", multiple=True, metavar="ID", help="Turn a rule off (repeatable)."),
    click.option("--workers", type=click.IntRange(1, 256), help="Worker processes for layers [default: one per core]."),
    click.option("--cache-dir", type=click.Path(file_okay=False), help="Layer cache directory [default: ~/.cache/layerscan]."),
    click.option("--no-cache", is_flag=True, help="Neither read nor write the layer cache."),
    click.option("--max-depth", type=click.IntRange(0, 32), default=_DEFAULTS.max_depth, show_default=True,
                 help="Nested archives: how deep to open."),
    click.option("--max-file-size", type=Size(), default=_DEFAULTS.max_file_size, show_default="8G",
                 help="Bytes of one file that are scanned."),
    click.option("--max-archive-bytes", type=Size(), default=_DEFAULTS.max_archive_bytes, show_default="2G",
                 help="Bytes expanded from one nested archive."),
    click.option("--max-layer-bytes", type=Size(), default=_DEFAULTS.max_layer_bytes, show_default="64G",
                 help="Bytes expanded from nested archives in one layer."),
    click.option("--max-ratio", type=click.IntRange(1), default=_DEFAULTS.max_ratio, show_default=True,
                 help="Expanded/compressed ratio that marks a decompression bomb."),
]


def scan_options(func):  # type: ignore[no-untyped-def]
    for option in reversed(SCAN_OPTIONS):
        func = option(func)
    return func


@cli.command()
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@scan_options
def scan(images: tuple[str, ...], fmt: str, output: Optional[str], reveal: bool, no_progress: bool,
         platform: Optional[str], extra_rules: tuple[str, ...], disable_rule: tuple[str, ...],
         workers: Optional[int], cache_dir: Optional[str], no_cache: bool, max_depth: int,
         max_file_size: int, max_archive_bytes: int, max_layer_bytes: int, max_ratio: int) -> int:
    """Scan IMAGE... (a `docker save` tarball, an OCI layout or oci-archive; see README)."""
    progress = TqdmProgress() if not no_progress and sys.stderr.isatty() else None
    limits = _limits(max_depth, max_file_size, max_archive_bytes, max_layer_bytes, max_ratio)
    options = ScanOptions(reveal=reveal, platform=platform, limits=limits, workers=workers)
    scanner = Scanner(_rules(extra_rules, disable_rule), options, progress, _cache(no_cache, cache_dir))
    result = scanner.scan(images)
    _write(report_for(Format(fmt)).render(result), output)
    return ExitCode.FINDINGS if result.findings else ExitCode.CLEAN


def _write(text: str, output: Optional[str]) -> None:
    if not output:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise ReportError(f"cannot write {output}: {exc.strerror}") from None


@cli.command("rules")
@click.option("--rules", "extra_rules", multiple=True, type=click.Path(exists=True),
              help="Extra rule file or directory (repeatable).")
def list_rules(extra_rules: tuple[str, ...]) -> int:
    """List the loaded detection rules."""
    rules = load_rules(extra_rules)
    for r in rules.rules:
        click.echo(f"{r.id:40} {r.severity.value:8} {r.title}  [{r.source}]")
    click.echo(f"{len(rules)} rules, rule set {rules.digest[:12]}")
    return ExitCode.CLEAN


def main(argv: Optional[list[str]] = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="layerscan", standalone_mode=False)
    except LayerscanError as exc:
        click.echo(f"layerscan: error: {exc}", err=True)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `layerscan`: help, but never "clean"
        click.echo(exc.format_message(), err=True)
        code = ExitCode.ERROR
    except click.ClickException as exc:  # usage errors too: one line, with where to look
        hint = " (see `layerscan --help`)" if isinstance(exc, click.UsageError) else ""
        click.echo(f"layerscan: error: {exc.format_message()}{hint}", err=True)
        code = ExitCode.ERROR
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("layerscan: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except Exception as exc:  # a bug: one line, no traceback unless asked for
        if os.environ.get("LAYERSCAN_DEBUG"):
            raise
        click.echo(f"layerscan: internal error: {exc.__class__.__name__}: {str(exc)[:200]} "
                   "(set LAYERSCAN_DEBUG=1 for a traceback)", err=True)
        code = ExitCode.ERROR
    sys.exit(int(code or 0))
