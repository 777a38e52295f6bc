"""The terminal table: one block per image, worst first, and what was not scanned."""
from __future__ import annotations

import click

from scanner.models import Finding, ImageResult, ScanResult, Severity
from scanner.reports.interface import Report

ACCEPTED = {"inherited": "inherited from the base image (not gating)",
            "baseline": "accepted by the baseline", "allowlist": "allowlisted"}
COLORS = {Severity.CRITICAL: "red", Severity.HIGH: "magenta", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}
HEADERS = ("SEVERITY", "RULE", "STATUS", "LAYER", "LOCATION", "SECRET")
MAX_COL = {"LAYER": 48, "LOCATION": 56, "RULE": 28}


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
    return [f.hit.severity.value, f.hit.rule_id, _status(f), _layer(f), _location(f),
            " ".join(secret.split())]


def _sort_key(f: Finding) -> tuple:
    return (-f.hit.severity.rank, f.layer.index if f.layer else -1, f.hit.path, f.hit.line or 0)


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


def render_image(image: ImageResult, reveal: bool) -> list[str]:
    findings = sorted((f for f in image.findings if f.suppressed is None), key=_sort_key)
    accepted = sorted((f for f in image.findings if f.suppressed is not None), key=_sort_key)
    head = f"{image.ref} ({image.source.value}, {len(image.layers)} layers"
    head += f", {image.digest[:19]}" if image.digest else ""
    lines = [click.style(head + ")", bold=True)]
    if findings:
        lines += render_rows([_row(f, reveal) for f in findings], [f.hit.severity for f in findings])
    else:
        lines.append("no secrets found" if not accepted else "no new secrets found")
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


class TableReport(Report):
    def render(self, result: ScanResult) -> str:
        lines: list[str] = []
        for image in result.images:
            lines += render_image(image, result.reveal) + [""]
        summary = result.summary()
        by_sev = ", ".join(f"{n} {s}" for s, n in sorted(
            summary["by_severity"].items(), key=lambda kv: -Severity(kv[0]).rank))
        accepted = sum(summary["suppressed"].values())
        lines.append(f"{summary['findings']} finding(s)" + (f": {by_sev}" if by_sev else "")
                     + f" in {len(result.images)} image(s)"
                     + (f"; {accepted} accepted (baseline, allowlist or base image)" if accepted else "")
                     + (f"; {summary['skipped']} item(s) not scanned" if summary["skipped"] else ""))
        return "\n".join(lines) + "\n"
