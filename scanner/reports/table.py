"""The terminal table: one block per image, worst first, and what was not scanned.

It fits the terminal (`fit.Terminal`): the layer and location columns are cut in the middle,
and below `NARROW` columns (or where one line leaves them less than `ROOMY`) each finding takes
two lines. Findings that fail the gate are marked
`!`. Every string from the image goes through `escape`; colour only when the terminal allows it.
"""
from __future__ import annotations

import re
import textwrap
from typing import Callable, Optional, Sequence

import click

from scanner.models import Finding, ImageResult, ScanResult, Severity
from scanner.redact import escape
from scanner.reports.fit import Terminal, cells, end, middle, pad, share
from scanner.reports.grouping import GroupBy, SecretGroup, group_by_secret
from scanner.reports.interface import Report
from scanner.triage import top_packages

ACCEPTED = {"inherited": "inherited from the base image (not gating)",
            "baseline": "accepted by the baseline", "allowlist": "allowlisted"}
COLORS = {Severity.CRITICAL: "red", Severity.HIGH: "magenta", Severity.MEDIUM: "yellow", Severity.LOW: "cyan"}
HEADERS = ("SEVERITY", "RULE", "STATUS", "LAYER", "LOCATION", "SECRET")
MARK = "!"  # the finding fails the gate
NARROW = 100  # below this many columns, two lines per finding
# the fewest cells a column is cut to, and where it is cut
MINIMUM = {"!": 1, "SEVERITY": 8, "RULE": 14, "STATUS": 9, "LAYER": 12, "LOCATION": 16, "SECRET": 15,
           "IMAGE": 16}
# which columns give up cells first: the layer, the location (both cut in the middle) and the
# secret, widest first; then the rule, the status; never the mark and the severity
RANK = {"LAYER": 0, "LOCATION": 0, "IMAGE": 0, "SECRET": 0, "RULE": 2, "STATUS": 3, "!": 9, "SEVERITY": 9}
# one line per finding only when the layer, location and secret columns keep this many cells;
# cells are taken from those columns down to these first
ROOMY = {"LAYER": 20, "LOCATION": 20, "SECRET": 20}
CUT_MIDDLE = frozenset({"LAYER", "LOCATION", "IMAGE"})
SPACES = re.compile(r"[ \t\n\r\f\v]+")
TRIAGED = "triaged (vendor package files, known-public keys; not gating)"


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


def _row(f: Finding, reveal: bool) -> dict[str, str]:
    secret = f.hit.secret.value if reveal and f.hit.secret.value is not None else f.hit.secret.redacted
    verified = f" [{f.verification.status}]" if f.verification is not None else ""  # --verify
    cells_ = {"!": MARK if f.gating else "", "SEVERITY": f.hit.severity.value, "RULE": f.hit.rule_id,
              "STATUS": _status(f) + verified, "LAYER": _layer(f), "LOCATION": _location(f), "SECRET": secret}
    return {k: one_line(v) for k, v in cells_.items()}


def one_line(text: str) -> str:
    """A cell: runs of ASCII white space (a multi-line RUN) as one space, the rest escaped."""
    return escape(SPACES.sub(" ", text).strip())


def _sort_key(f: Finding) -> tuple:
    """Priority first (severity, confidence and status: scanner/triage.py), then severity."""
    return (f.priority or 0, -f.hit.severity.rank, f.layer.index if f.layer else -1, f.hit.path, f.hit.line or 0)


class Painter:
    """Styles text only when the terminal takes colour."""

    def __init__(self, term: Terminal) -> None:
        self.term = term

    def __call__(self, text: str, **style: object) -> str:
        return click.style(text, **style) if self.term.color else text  # type: ignore[arg-type]

    def severity(self, text: str, severity: Severity) -> str:
        return self(text, fg=COLORS[severity], bold=severity is Severity.CRITICAL)

    def prose(self, text: str, indent: str = "", **style: object) -> list[str]:
        """A sentence, wrapped to the terminal."""
        width = self.term.width
        lines = textwrap.wrap(text, width, subsequent_indent=indent + "  ") if width else [text]
        return [self(line, **style) for line in lines or [""]]

    def item(self, text: str) -> str:
        """One line about one thing (a path and a reason): cut in the middle to fit."""
        return middle(text, self.term.width) if self.term.width else text


def grid(names: Sequence[str], rows: Sequence[dict[str, str]], width: Optional[int]) -> list[list[str]]:
    """The header and each row as cells cut to widths that fit `width` (None: as they are)."""
    natural = [max([cells(n)] + [cells(r[n]) for r in rows]) for n in names]
    if width is None:
        widths = natural
    else:  # first down to roomy widths, rank by rank; then to the minimum
        budget, rank = width - 2 * (len(names) - 1), [RANK.get(n, 0) for n in names]
        roomy = share(natural, [max(MINIMUM.get(n, 8), ROOMY.get(n, 0)) for n in names], budget, rank)
        widths = share(roomy, [MINIMUM.get(n, 8) for n in names], budget, rank)
    out = []
    for row in [{n: n if n != MARK else "" for n in names}, *rows]:
        out.append([(middle if n in CUT_MIDDLE else end)(row[n], w) for n, w in zip(names, widths)])
    return [[pad(c, w) for c, w in zip(line, widths)] for line in out]


def _join(line: list[str], styled: Optional[Callable[[str], str]] = None, at: int = -1) -> str:
    if styled is not None:
        line = [styled(c) if i == at else c for i, c in enumerate(line)]
    return "  ".join(line).rstrip()


def _one_line_fits(names: list[str], rows: list[dict[str, str]], width: int) -> bool:
    """Whether one line per finding leaves the layer, location and secret columns room enough."""
    natural = [max([cells(n)] + [cells(r[n]) for r in rows]) for n in names]
    return sum(min(w, ROOMY.get(n, w)) for n, w in zip(names, natural)) + 2 * (len(names) - 1) <= width


def render_rows(findings: list[Finding], reveal: bool, paint: Painter, indent: str = "",
                marks: bool = False, extra: Callable[[Finding], str] = lambda f: "") -> list[str]:
    """The findings' rows under a header (one line each, or two on a narrow terminal)."""
    rows = [_row(f, reveal) for f in findings]
    for row, f in zip(rows, findings):
        row["STATUS"] += escape(extra(f))
    lead = ["!"] if marks else []
    width = None if paint.term.width is None else paint.term.width - len(indent)
    def styler(f: Finding) -> Callable[[str], str]:
        return lambda c: paint.severity(c, f.hit.severity)
    names = lead + list(HEADERS)
    if width is None or width >= NARROW and _one_line_fits(names, rows, width):
        table = grid(names, rows, width)
        at = names.index("SEVERITY")
        return [indent + _join(table[0])] + [indent + _join(line, styler(f), at) for line, f in zip(table[1:], findings)]
    top, bottom = lead + ["SEVERITY", "RULE", "STATUS", "SECRET"], ["LOCATION", "LAYER"]
    upper, lower = grid(top, rows, width), grid(bottom, rows, width - 4)
    at = top.index("SEVERITY")
    lines = [indent + _join(upper[0]), indent + "    " + _join(lower[0])]
    for f, a, b in zip(findings, upper[1:], lower[1:]):
        lines += [indent + _join(a, styler(f), at), indent + "    " + _join(b)]
    return lines


def render_image(image: ImageResult, reveal: bool, show_triaged: bool = False,
                 paint: Painter = Painter(Terminal()), marks: bool = False) -> list[str]:
    active = sorted((f for f in image.findings if f.suppressed is None), key=_sort_key)
    findings = [f for f in active if not f.triage]
    triaged = [f for f in active if f.triage]
    accepted = sorted((f for f in image.findings if f.suppressed is not None), key=_sort_key)
    head = f"{escape(image.ref)} ({image.source.value}, {len(image.layers)} layers"
    head += f", {image.digest[:19]}" if image.digest else ""
    lines = [paint(paint.item(head + ")"), bold=True)]
    if findings:
        lines += render_rows(findings, reveal, paint, marks=marks)
    else:
        lines.append("no secrets found" if not accepted and not triaged else "no new secrets found")
    lines += render_triaged(triaged, reveal, show_triaged, paint, marks)
    for reason in ("inherited", "baseline", "allowlist"):
        these = [f for f in accepted if f.suppressed == reason]
        if these:
            lines += paint.prose(f"{ACCEPTED[reason]}: {len(these)} finding(s)", fg="cyan")
            lines += render_rows(these, reveal, paint, "  ", marks)[1:]
    if image.skipped:
        lines += paint.prose(f"not scanned: {len(image.skipped)} item(s)", fg="yellow")
        lines += [paint.item(f"  {_skip(s)}") for s in image.skipped]
    return lines


def _skip(s) -> str:  # type: ignore[no-untyped-def]
    where = f"layer {s.layer} " if s.layer is not None else ""
    return f"{where}{escape(s.path)}: {escape(s.reason)}"


def render_triaged(triaged: list[Finding], reveal: bool, show: bool, paint: Painter = Painter(Terminal()),
                   marks: bool = False) -> list[str]:
    """Vendor and known-public findings: a count by kind; the rows only with --show-triaged."""
    if not triaged:
        return []
    kinds: dict[str, int] = {}
    for f in triaged:
        kinds[f.triage or ""] = kinds.get(f.triage or "", 0) + 1
    count = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    lines = paint.prose(f"{TRIAGED}: {len(triaged)} finding(s) ({count})" + most_in(triaged)
                        + ("" if show else "; --show-triaged lists them"), fg="cyan")
    if show:
        lines += render_rows(triaged, reveal, paint, "  ", marks, extra=lambda f: f" ({f.triage})")[1:]
    return lines


def most_in(triaged: list[Finding]) -> str:
    """`; most in: botocore 1.34.1 (pypi, 120), ...`: the packages holding most triaged findings
    (`triage.top_packages`), names cleaned for the terminal."""
    top = top_packages(triaged)
    if not top:
        return ""
    return "; most in: " + ", ".join(middle(escape(f"{p.name} {p.version or ''}".strip()), 60)
                                     + f" ({p.ecosystem}, {n})" for p, n in top)


SIGHTING_HEADERS = ("IMAGE", "STATUS", "LAYER", "LOCATION")


def render_group(group: SecretGroup, reveal: bool, paint: Painter = Painter(Terminal())) -> list[str]:
    """`--group-by secret`: the secret once, then every place and image it was seen."""
    shown = one_line(group.value if reveal and group.value is not None else group.redacted)
    tail = escape(f"  {', '.join(group.rule_ids)}  {len(group.sightings)} sighting(s) in {len(group.images)} image(s)")
    sha = f"sha256:{group.sha256[:16]}"
    plain = f"SECRET {shown}  {sha}  {group.severity.value}{tail}"
    if paint.term.width is not None and cells(plain) > paint.term.width:
        lines = [paint(end(plain, paint.term.width), bold=True)]
    else:
        lines = [paint(f"SECRET {shown}", bold=True) + f"  {sha}  "
                 + paint.severity(group.severity.value, group.severity) + tail]
    rows = [{"IMAGE": f.image, "STATUS": _status(f) + (f" ({f.suppressed})" if f.suppressed else ""),
             "LAYER": _layer(f), "LOCATION": _location(f)}
            for f in sorted(group.sightings, key=lambda f: (f.image, f.layer.index if f.layer else 1 << 30))]
    rows = [{k: one_line(v) for k, v in r.items()} for r in rows]
    width = None if paint.term.width is None else paint.term.width - 2
    return lines + ["  " + _join(line) for line in grid(SIGHTING_HEADERS, rows, width)]


def render_skipped(image: ImageResult, paint: Painter = Painter(Terminal())) -> list[str]:
    lines = paint.prose(f"{escape(image.ref)}: not scanned: {len(image.skipped)} item(s)", fg="yellow")
    return lines + [paint.item(f"  {_skip(s)}") for s in image.skipped]


class TableReport(Report):
    def __init__(self, group_by: GroupBy = GroupBy.FINDING, terminal: Terminal = Terminal()) -> None:
        self.group_by = group_by
        self.paint = Painter(terminal)

    def _body(self, result: ScanResult) -> list[str]:
        lines: list[str] = []
        if self.group_by is not GroupBy.SECRET:
            marks = any(f.gating for f in result.findings)
            for image in result.images:
                lines += render_image(image, result.reveal, result.show_triaged, self.paint, marks) + [""]
            return lines
        groups = group_by_secret(result.findings)
        for group in groups:
            lines += render_group(group, result.reveal, self.paint) + [""]
        for image in result.images:
            lines += render_skipped(image, self.paint) + [""] if image.skipped else []
        lines.append(f"{len(groups)} distinct secret(s)")
        return lines

    def render(self, result: ScanResult) -> str:
        lines = self._body(result) + self.paint.prose(summary_line(result, self.group_by is not GroupBy.SECRET))
        return "\n".join(lines) + "\n"


def summary_line(result: ScanResult, marks: bool = False) -> str:
    """`8 finding(s): 6 critical, 2 high in 1 image(s); ...`: the table's last line, and what a
    scan written to a file (`-o`) says on stderr."""
    summary = result.summary()
    by_sev = ", ".join(f"{n} {s}" for s, n in sorted(
        summary["by_severity"].items(), key=lambda kv: -Severity(kv[0]).rank))
    accepted = sum(summary["suppressed"].values())
    gating = sum(1 for f in result.findings if f.gating)
    return (f"{summary['findings']} finding(s)" + (f": {by_sev}" if by_sev else "")
            + f" in {len(result.images)} image(s)"
            + (f"; {gating} marked {MARK} fail the gate" if marks and gating else "")
            + (f"; {accepted} accepted (baseline, allowlist or base image)" if accepted else "")
            + (f"; {summary['skipped']} item(s) not scanned" if summary["skipped"] else ""))
