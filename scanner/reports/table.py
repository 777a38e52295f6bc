"""The terminal table: one block per image, worst first, and what was not scanned."""
from __future__ import annotations

import click

from scanner.models import Finding, ImageResult, ScanResult, Severity
from scanner.reports.grouping import GroupBy, SecretGroup, group_by_secret
from scanner.reports.interface import Report

ACCEPTED = {"inherited": "inherited from the base image (not gating)",
            "baseline": "accepted by the baseline", "allowlist": "allowlisted"}
COLORS = {Severity.CRITICAL: "red", Severity.HIGH: "magenta", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}
HEADERS = ("SEVERITY", "RULE", "STATUS", "LAYER", "LOCATION", "SECRET")
MAX_COL = {"LAYER": 48, "LOCATION": 56, "RULE": 28}
TRIAGED = "triaged (vendor package files, known-public keys; not gating)"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _layer(f: Finding) -> str:
    if f.layer is None:
        return "config"
    created = (f.layer.created_by or "").replace("/bin/sh -c ", "").replace("#(nop) ", "").strip()
    return f"{f.layer.index}: {created}" if created else str(f.layer.index)


def _status(f: Finding) -> str:
    if f.removed_in is not None:
        return f"{f.status.value} in {f.removed_in.index}"
    return f.status.value


def _location(f: Finding) -> str:
    h = f.hit
    loc = h.path + (f":{h.line}" if h.line else "")
    return loc + (f"!{h.inner_path}" if h.inner_path else "")


def _row(f: Finding, reveal: bool) -> list[str]:
    secret = f.hit.secret.value if reveal and f.hit.secret.value is not None else f.hit.secret.redacted
    verified = f" [{f.verification.status}]" if f.verification is not None else ""  # --verify
    return [f.hit.severity.value, f.hit.rule_id, _status(f) + verified, _layer(f), _location(f),
            " ".join(secret.split())]


def _sort_key(f: Finding) -> tuple:
    """Priority first (severity, confidence and status: scanner/triage.py), then severity."""
    return (f.priority or 0, -f.hit.severity.rank, f.layer.index if f.layer else -1, f.hit.path, f.hit.line or 0)


def render_rows(rows: list[list[str]], severities: list[Severity]) -> list[str]:
    widths = [len(h) for h in HEADERS]
    for row in rows:
        for i, cell in enumerate(row):
            cell = _short(cell, MAX_COL.get(HEADERS[i], 10_000))
            row[i] = cell
            widths[i] = max(widths[i], len(cell))
    lines = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths)).rstrip()]
    for row, sev in zip(rows, severities):
        cells = [c.ljust(w) for c, w in zip(row, widths)]
        cells[0] = click.style(cells[0], fg=COLORS[sev], bold=sev is Severity.CRITICAL)
        lines.append("  ".join(cells).rstrip())
    return lines


def render_image(image: ImageResult, reveal: bool, show_triaged: bool = False) -> list[str]:
    active = sorted((f for f in image.findings if f.suppressed is None), key=_sort_key)
    findings = [f for f in active if not f.triage]
    triaged = [f for f in active if f.triage]
    accepted = sorted((f for f in image.findings if f.suppressed is not None), key=_sort_key)
    head = f"{image.ref} ({image.source.value}, {len(image.layers)} layers"
    head += f", {image.digest[:19]}" if image.digest else ""
    lines = [click.style(head + ")", bold=True)]
    if findings:
        lines += render_rows([_row(f, reveal) for f in findings], [f.hit.severity for f in findings])
    else:
        lines.append("no secrets found" if not accepted and not triaged else "no new secrets found")
    lines += render_triaged(triaged, reveal, show_triaged)
    for reason in ("inherited", "baseline", "allowlist"):
        these = [f for f in accepted if f.suppressed == reason]
        if these:
            lines.append(click.style(f"{ACCEPTED[reason]}: {len(these)} finding(s)", fg="cyan"))
            lines += ["  " + line for line in render_rows([_row(f, reveal) for f in these],
                                                           [f.hit.severity for f in these])[1:]]
    if image.skipped:
        lines.append(click.style(f"not scanned: {len(image.skipped)} item(s)", fg="yellow"))
        for s in image.skipped:
            where = f"layer {s.layer} " if s.layer is not None else ""
            lines.append(f"  {where}{s.path}: {s.reason}")
    return lines


def render_triaged(triaged: list[Finding], reveal: bool, show: bool) -> list[str]:
    """Vendor and known-public findings: a count by kind; the rows only with --show-triaged."""
    if not triaged:
        return []
    kinds: dict[str, int] = {}
    for f in triaged:
        kinds[f.triage or ""] = kinds.get(f.triage or "", 0) + 1
    count = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    lines = [click.style(f"{TRIAGED}: {len(triaged)} finding(s) ({count})"
                         + ("" if show else "; --show-triaged lists them"), fg="cyan")]
    if show:
        rows = [_row(f, reveal) for f in triaged]
        for row, f in zip(rows, triaged):
            row[2] += f" ({f.triage})"
        lines += ["  " + line for line in render_rows(rows, [f.hit.severity for f in triaged])[1:]]
    return lines


SIGHTING_HEADERS = ("IMAGE", "STATUS", "LAYER", "LOCATION")
MAX_SIGHTING_COL = (40, 20, 48, 56)


def render_group(group: SecretGroup, reveal: bool) -> list[str]:
    """`--group-by secret`: the secret once, then every place and image it was seen."""
    shown = group.value if reveal and group.value is not None else group.redacted
    head = (click.style(f"SECRET {' '.join(shown.split())}", bold=True) + f"  sha256:{group.sha256[:16]}  "
            + click.style(group.severity.value, fg=COLORS[group.severity], bold=group.severity is Severity.CRITICAL)
            + f"  {', '.join(group.rule_ids)}  {len(group.sightings)} sighting(s) in {len(group.images)} image(s)")
    rows = [[f.image, _status(f) + (f" ({f.suppressed})" if f.suppressed else ""), _layer(f), _location(f)]
            for f in sorted(group.sightings, key=lambda f: (f.image, f.layer.index if f.layer else 1 << 30))]
    rows = [[_short(c, w) for c, w in zip(row, MAX_SIGHTING_COL)] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(SIGHTING_HEADERS)]
    lines = [head]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
              for row in [list(SIGHTING_HEADERS)] + rows]
    return lines


def render_skipped(image: ImageResult) -> list[str]:
    lines = [click.style(f"{image.ref}: not scanned: {len(image.skipped)} item(s)", fg="yellow")]
    for s in image.skipped:
        where = f"layer {s.layer} " if s.layer is not None else ""
        lines.append(f"  {where}{s.path}: {s.reason}")
    return lines


class TableReport(Report):
    def __init__(self, group_by: GroupBy = GroupBy.FINDING) -> None:
        self.group_by = group_by

    def _body(self, result: ScanResult) -> list[str]:
        lines: list[str] = []
        if self.group_by is not GroupBy.SECRET:
            for image in result.images:
                lines += render_image(image, result.reveal, result.show_triaged) + [""]
            return lines
        groups = group_by_secret(result.findings)
        for group in groups:
            lines += render_group(group, result.reveal) + [""]
        for image in result.images:
            lines += render_skipped(image) + [""] if image.skipped else []
        lines.append(f"{len(groups)} distinct secret(s)")
        return lines

    def render(self, result: ScanResult) -> str:
        lines = self._body(result)
        summary = result.summary()
        by_sev = ", ".join(f"{n} {s}" for s, n in sorted(
            summary["by_severity"].items(), key=lambda kv: -Severity(kv[0]).rank))
        accepted = sum(summary["suppressed"].values())
        lines.append(f"{summary['findings']} finding(s)" + (f": {by_sev}" if by_sev else "")
                     + f" in {len(result.images)} image(s)"
                     + (f"; {accepted} accepted (baseline, allowlist or base image)" if accepted else "")
                     + (f"; {summary['skipped']} item(s) not scanned" if summary["skipped"] else ""))
        return "\n".join(lines) + "\n"
