"""The command line: `layerscan IMAGE...` is short for `layerscan scan IMAGE...`.

Commands build options, call the pipeline, render, and return an exit code. One handler turns
errors into one line on stderr.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from scanner import __version__
from scanner.baseline import write_baseline
from scanner.detectors.rules import load_rules
from scanner.errors import ExitCode, LayerscanError
from scanner.gate import BaseImage, decide, suppress
from scanner.options import Built, baseline, build, policy, report_options, scan_options
from scanner.pipeline import Scanner
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


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerscan")
def cli() -> None:
    """Find secrets baked into container images: every layer (deleted and overwritten files
    too), the image config and the build history.

    \b
    layerscan IMAGE...          scan (short for `layerscan scan IMAGE...`)
    layerscan rules             list the detection rules
    """


def _scanner(built: Built) -> Scanner:
    return Scanner(built.rules, built.options, TqdmProgress() if built.show_progress else None, built.cache)


@cli.command()
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@report_options
@scan_options
def scan(images: tuple[str, ...], **opts: Any) -> int:
    """Scan IMAGE... (a `docker save` tarball, an OCI layout or oci-archive; see README)."""
    built = build(opts)
    scanner = _scanner(built)
    result = scanner.scan(images)
    base = scanner.inherited_from(opts["base_image"]) if opts["base_image"] else BaseImage()
    result = suppress(result, baseline(opts), click.get_current_context().meta.get("allowlist"), base)
    _write(report_for(Format(opts["fmt"])).render(result), opts["output"])
    return decide(result, policy(opts))


@cli.command("baseline")
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Baseline file to write (fingerprints only, never secrets).")
@scan_options
def write_baseline_cmd(images: tuple[str, ...], output: str, **opts: Any) -> int:
    """Accept the current findings of IMAGE...: write their fingerprints to a baseline file."""
    result = _scanner(build(opts)).scan(images)
    count = write_baseline(result, output)
    click.echo(f"wrote {count} fingerprint(s) to {output}", err=True)
    return ExitCode.CLEAN


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
