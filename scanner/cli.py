"""The command line: `layerscan IMAGE...` is short for `layerscan scan IMAGE...`.

Commands build options, call the pipeline, render, and return an exit code. One handler turns
errors into one line on stderr.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Optional

import click

from scanner import __version__
from scanner.attach import attach_scanned, attach_to
from scanner.baseline import write_baseline
from scanner.detectors.rules import load_rules
from scanner.errors import ExitCode, LayerscanError
from scanner.gate import BaseImage, Verdict, mark, suppress, verdict
from scanner.cache import NullCache
from scanner.detectors.known import KnownSecretDetector, parse_secrets
from scanner.detectors.signature import SignatureDetector
from scanner.fleet import Fleet, list_references, parse_target
from scanner.limits import Deadline
from scanner.models import ScanResult
from scanner.plugin import docker_plugin
from scanner.progress import TqdmProgress
from scanner.options import (ATTACH_OPTION, Built, baseline, build, image_refs, policy, report_options, scan_options,
                             verify_options)
from scanner.pipeline import Scanner
from scanner.push import EnginePusher, Target, push_target
from scanner.redact import escape
from scanner.reports import Format, GroupBy, ReportError, report_for
from scanner.reports.fit import Terminal
from scanner.reports.table import summary_line
from scanner.sources.reference import parse_reference
from scanner.sources.registry import endpoint_for


class DefaultGroup(click.Group):
    """A group whose first argument, when it is not a command, is an image for `scan`."""

    default_command = "scan"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="layerscan")
def cli() -> None:
    """Find secrets baked into container images: every layer (deleted and overwritten files
    too), the image config and the build history.

    \b
    layerscan IMAGE...          scan (short for `layerscan scan IMAGE...`)
    layerscan find --secrets FILE IMAGE...
                                where do these leaked values appear?
    layerscan push IMAGE        gate an image of the local engine, then push it
    layerscan baseline IMAGE... -o FILE
                                accept the current findings
    layerscan registry HOST[/REPO_PREFIX]
                                every image of a registry, each unique layer once
    layerscan rules             list the detection rules
    layerscan docker-plugin install
                                `docker layerscan IMAGE...` (a Docker CLI plugin)
    layerscan verify --list-endpoints
                                the hosts `scan --verify` may contact
    """


def _scanner(built: Built) -> Scanner:
    return Scanner(built.rules, built.options, TqdmProgress() if built.show_progress else None, built.cache,
                   verify=built.verify)


@cli.command(short_help="Scan images (the default command).")
@click.argument("images", nargs=-1, metavar="IMAGE...")
@report_options
@scan_options
@verify_options
@ATTACH_OPTION
def scan(images: tuple[str, ...], **opts: Any) -> int:
    """Scan IMAGE... (a `docker save` tarball, an OCI layout or oci-archive; see README)."""
    built = build(opts)
    result = _scan_and_report(built, image_refs(images, opts), opts)
    code = _gate(result, opts).code
    if opts["attach"] and code is ExitCode.CLEAN:
        for ref, attached in attach_scanned(result, built.options.registry, opts["fmt"]):
            click.echo(f"layerscan: report attached to {ref}: {attached}", err=True)
    return code


def _scan_and_report(built: Built, refs: tuple[str, ...], opts: dict[str, Any]) -> ScanResult:
    """Scan; mark what the baseline, the allowlist and the base image accept; report."""
    scanner = _scanner(built)
    result = scanner.scan(refs)
    base = scanner.inherited_from(opts["base_image"]) if opts["base_image"] else BaseImage()
    result = _report(suppress(result, baseline(opts), click.get_current_context().meta.get("allowlist"), base), opts)
    if built.verify is not None:
        click.echo(verified_summary(result), err=True)
    return result


def _report(result: ScanResult, opts: dict[str, Any]) -> ScanResult:
    """Mark the findings that gate and write the report; when it went to a file, its summary
    and where it went on stderr."""
    result = mark(result, policy(opts))
    _render(result, opts)
    if opts["output"]:
        click.echo(summary_line(result), err=True)
        click.echo(f"wrote {opts['output']}", err=True)
    return result


def _gate(result: ScanResult, opts: dict[str, Any]) -> Verdict:
    """What the gate decided, said on stderr as the scan's last line (the exit status's reason)."""
    decided = verdict(result, policy(opts))
    if decided.incomplete:  # exit 2 says why on stderr, like every error
        click.echo(f"layerscan: error: {decided.skipped} item(s) not scanned and --fail-on-incomplete "
                   "is set (see the report's not-scanned list)", err=True)
    click.echo(decided.line(), err=True)
    return decided


def _render(result: ScanResult, opts: dict[str, Any]) -> None:
    terminal = Terminal.detect(bool(opts["output"]), opts.get("wide", False))
    _write(report_for(Format(opts["fmt"]), GroupBy(opts["group_by"]), terminal).render(result), opts["output"])


@cli.command("push", short_help="Scan a local engine's image; push it if the gate passes.")
@click.argument("image", metavar="IMAGE")
@report_options
@scan_options
@verify_options
@ATTACH_OPTION
def push(image: str, **opts: Any) -> int:
    """Scan IMAGE (NAME[:TAG]) in the local Docker engine and push it, only if the gate passes:
    the same policy, baseline and settings as `scan`. Exit 1 and nothing pushed otherwise."""
    built = build(opts)
    target = push_target(image)
    pusher = EnginePusher(built.options.registry)
    scanned_id = pusher.image_id(target)
    result = _scan_and_report(built, (target.spec,), opts)
    decided = _gate(result, opts)
    if decided.code is not ExitCode.CLEAN:
        _blocked(target, decided)
        return decided.code
    digest = pusher.push(target, scanned_id)
    click.echo(f"layerscan push: pushed {target.name}" + (f" ({digest})" if digest else ""), err=True)
    if opts["attach"] and digest:
        attached = attach_to(target.name, digest, result.images[0], built.options.registry, opts["fmt"])
        click.echo(f"layerscan push: report attached to {target.name}: {attached}", err=True)
    return ExitCode.CLEAN


push.params = [p for p in push.params if p.name != "images_from"]  # one image: the one pushed


def _blocked(target: Target, decided: Verdict) -> None:
    click.echo(f"layerscan push: {target.name} not pushed: the gate failed on", err=True)
    for line in decided.reasons():
        click.echo(f"  {line}", err=True)


# `find` reports every sighting: no gate, no cache (it would hold what was found), never --reveal
FIND_DROPS = ("reveal", "fail_on", "status", "fail_on_incomplete", "fail_on_triaged", "baseline", "base_image",
              "cache_dir", "cache_url", "no_cache", "cache_max_size")


@cli.command("find", short_help="Where do these leaked secrets appear? (values never shown)")
@click.argument("images", nargs=-1, metavar="IMAGE...")
@click.option("--secrets", "secrets_file", required=True, type=click.File("rb"), metavar="FILE",
              help="Leaked values, one a line (byte for byte), or sha256:<hex> lines; - for stdin.")
@report_options
@scan_options
def find(images: tuple[str, ...], secrets_file: Any, **opts: Any) -> int:
    """Where do known leaked secrets appear in IMAGE...? Every layer (deleted files too), nested
    archives, config and history; raw, base64- and URL-encoded. The values are never shown."""
    images_from = opts.get("images_from")
    if secrets_file.name == "<stdin>" and (opts.get("password_stdin") or getattr(images_from, "name", "") == "<stdin>"):
        raise click.UsageError("--secrets - cannot share standard input with --password-stdin or --images-from -")
    secrets = parse_secrets(secrets_file.read(), f"--secrets {secrets_file.name}")
    built = build({**opts, "no_cache": True, "cache_dir": None, "reveal": False})
    known = KnownSecretDetector(secrets, SignatureDetector(built.rules))
    progress = TqdmProgress() if built.show_progress else None
    result = Scanner(built.rules, built.options, progress, NullCache(), known=known).scan(image_refs(images, opts))
    _render(result, opts)
    if opts["output"]:
        click.echo(f"wrote {opts['output']}", err=True)
    click.echo(_find_summary(result, known), err=True)
    return ExitCode.FINDINGS if result.findings else ExitCode.CLEAN


find.params = [p for p in find.params if p.name not in FIND_DROPS]


def _find_summary(result: ScanResult, known: KnownSecretDetector) -> str:
    seen = {f.hit.secret.sha256 for f in result.findings}
    missing = [str(s.line) for s in known.secrets if s.sha256 not in seen]
    text = f"layerscan find: {len(known.secrets) - len(missing)} of {len(known.secrets)} secret(s) seen"
    text += f", {len(result.findings)} sighting(s) in {len(result.images)} image(s)"
    return text + (f"; not seen: line {', '.join(missing)}" if missing else "")


@cli.command("registry", short_help="Scan every image of a registry, each unique layer once.")
@click.argument("target", required=False, metavar="HOST[/REPO_PREFIX]")
@click.option("--summary", "summary_file", type=click.Path(dir_okay=False, writable=True),
              help="Also write the fleet summary (images, layers, bytes, secrets and their images) as JSON.")
@click.option("--dask", "dask_address", is_flag=False, flag_value="local", metavar="[SCHEDULER]",
              help="Scan layers on the Dask cluster at SCHEDULER (tcp://HOST:PORT); alone: a local Dask "
                   "cluster of --workers workers [default: this machine's worker processes].")
@report_options
@scan_options
def registry_cmd(target: Optional[str], summary_file: Optional[str], dask_address: Optional[str],
                 **opts: Any) -> int:
    """Scan every tag of every repository of a registry (under REPO_PREFIX), or the references of
    --images-from: each unique layer once, every image reported as usual, then a fleet summary."""
    built = build(opts)
    refs = fleet_refs(target, built, opts)
    scanner = Scanner(built.rules, built.options, None, built.cache)
    runner = Fleet(scanner, TqdmProgress(fleet=True) if built.show_progress else None)
    with _layer_executor(dask_address, built.options.workers) as executor:
        scanner.layers.executor = executor
        scanned = runner.scan(refs)
    result = suppress(scanned, baseline(opts), click.get_current_context().meta.get("allowlist"),
                      scanner.inherited_from(opts["base_image"]) if opts["base_image"] else BaseImage())
    result = _report(result, opts)
    summary = runner.summary(result)
    if summary_file:
        _write(json.dumps(summary.as_dict(), indent=2) + "\n", summary_file)
    # a registry's image names are the registry's: escaped like everything from images
    click.echo("\n".join(escape(line) for line in summary.text().splitlines()), err=True)
    return _gate(result, opts).code


def _layer_executor(address: Optional[str], workers: Optional[int]) -> Any:
    """--dask: a Dask cluster (local with --workers N when no address is given); else no executor."""
    if address is None:
        return contextlib.nullcontext(None)
    from scanner.dask_runner import DaskLayerExecutor

    return DaskLayerExecutor(None if address == "local" else address, workers)


def fleet_refs(target: Optional[str], built: Built, opts: dict[str, Any]) -> tuple[str, ...]:
    """The registry's references (catalog, then tags), then those of --images-from."""
    listed: tuple[str, ...] = ()
    if target:
        where = parse_target(target)
        probe_ref = parse_reference(f"{where.host}/{where.prefix or 'x'}")
        listed = tuple(list_references(where, endpoint_for(probe_ref, built.options.registry),
                                       deadline=Deadline.start(opts.get("timeout"))))
        if not listed and opts.get("images_from") is None:
            raise LayerscanError(f"{target}: the registry lists no image there")
    return image_refs(listed, opts)


@cli.command("baseline", short_help="Accept the current findings: write their fingerprints to a file.")
@click.argument("images", nargs=-1, metavar="IMAGE...")
@click.option("--output", "-o", required=True, type=click.Path(dir_okay=False),
              help="Baseline file to write (fingerprints only, never secrets).")
@scan_options
def write_baseline_cmd(images: tuple[str, ...], output: str, **opts: Any) -> int:
    """Accept the current findings of IMAGE...: write their fingerprints to a baseline file."""
    result = _scanner(build(opts)).scan(image_refs(images, opts))
    count = write_baseline(result, output)
    click.echo(f"wrote {count} fingerprint(s) to {output}", err=True)
    return ExitCode.CLEAN


# `layerscan verify`: what --verify may contact (scanner/verify/)
@cli.command("verify", short_help="What --verify may contact (--list-endpoints).")
@click.option("--list-endpoints", is_flag=True, help="Print every host --verify may contact, one a line.")
def verify_cmd(list_endpoints: bool) -> int:
    """What `--verify` does: `--list-endpoints` prints the hosts it may call (for egress allow-lists)."""
    from scanner.verify.build import hosts
    from scanner.verify.spec import load_verifiers

    if not list_endpoints:
        raise click.UsageError("say what to show: --list-endpoints")
    for host in hosts(load_verifiers()):
        click.echo(host)
    return ExitCode.CLEAN


def verified_summary(result: ScanResult) -> str:
    counts: dict[str, int] = {}
    for f in result.findings:
        if f.verification is not None:
            counts[f.verification.status] = counts.get(f.verification.status, 0) + 1
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no finding has a verifier"
    return f"layerscan: --verify: {text}"


# `layerscan serve`: the push gate in front of a registry (scanner/serve/; aiohttp only when it runs)
from scanner.serve.command import serve as serve_cmd  # noqa: E402

cli.add_command(serve_cmd)


def _write(text: str, output: Optional[str]) -> None:
    if not output:
        click.echo(text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise ReportError(f"cannot write {output}: {exc.strerror}") from None


@cli.command("rules", short_help="List the detection rules.")
@click.option("--rules", "extra_rules", multiple=True, type=click.Path(exists=True),
              help="Extra rule file or directory (repeatable).")
def list_rules(extra_rules: tuple[str, ...]) -> int:
    """List the loaded detection rules."""
    rules = load_rules(extra_rules)
    families: dict[str, list] = {}
    for r in rules.rules:
        families.setdefault(r.family, []).append(r)
    for family, members in sorted(families.items()):
        services = {r.service for r in members if r.service}
        click.echo(f"{family} ({len(members)} rules, {len(services)} services)")
        for r in members:
            click.echo(f"  {r.id:40} {r.severity.value:8} {r.title}")
    built_in = built_in_detector_rules()
    click.echo(f"detectors ({len(built_in)} rules)")
    for rule_id, severity, title, detector in built_in:
        click.echo(f"  {rule_id:40} {severity:8} {title}  [{detector} detector]")
    services = {r.service for r in rules.rules if r.service}
    click.echo(f"{len(rules)} signature rules for {len(services)} services in {len(families)} families "
               f"(rule set {rules.digest[:12]}) and {len(built_in)} detector rules")
    return ExitCode.CLEAN


def built_in_detector_rules() -> list[tuple[str, str, str, str]]:
    """The rules of the code detectors (keyword/entropy, credential files, config names)."""
    from scanner.detectors import config, entropy, files

    out = [(rid, sev.value, title, "file") for rid, (sev, title) in files.RULES.items()]
    out += [(entropy.KEYWORD_RULE[0], "medium", entropy.KEYWORD_RULE[1], "keyword"),
            (entropy.ENTROPY_RULE[0], "medium", entropy.ENTROPY_RULE[1], "entropy"),
            (config.NAME_RULE[0], "high", config.NAME_RULE[1], "config")]
    return out


cli.add_command(docker_plugin)


def main(argv: Optional[list[str]] = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="layerscan", standalone_mode=False)
    except LayerscanError as exc:
        click.echo(f"layerscan: error: {escape(exc)}", err=True)
        code = exc.exit_code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:  # bare `layerscan`: help, but never "clean"
        click.echo(exc.format_message(), err=True)
        code = ExitCode.ERROR
    except click.ClickException as exc:  # usage errors too: one line, with where to look
        hint = " (see `layerscan --help`)" if isinstance(exc, click.UsageError) else ""
        click.echo(f"layerscan: error: {escape(exc.format_message())}{hint}", err=True)
        code = ExitCode.ERROR
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("layerscan: interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except Exception as exc:  # a bug: one line, no traceback unless asked for
        if os.environ.get("LAYERSCAN_DEBUG"):
            raise
        click.echo(f"layerscan: internal error: {exc.__class__.__name__}: {escape(str(exc)[:200])} "
                   "(set LAYERSCAN_DEBUG=1 for a traceback)", err=True)
        code = ExitCode.ERROR
    sys.exit(int(code or 0))
