"""`--format html`: one self-contained page for an incident responder.

Everything is inline (CSS, a little JS, no fonts or images) and a Content-Security-Policy allows
nothing else: opening the report fetches nothing. The image controls paths, history lines and
labels, so every text goes through `html.escape`, and the CSP only runs the report's own script
(by hash): even an escaping bug could not run an injected one.

Per image: a timeline of its history (each step's instruction, layer size, and the secrets it
added or removed), the config findings, what was not scanned. Then every secret once with its
sightings (grouped by sha256, across images), and every finding, filterable by severity, status
and text. Secrets are redacted unless the result was made with --reveal.
"""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape
from typing import Iterable, Optional

from scanner import __version__
from scanner import redact
from scanner.models import Finding, HistoryEntry, ImageResult, LayerInfo, ScanResult, Severity, Status
from scanner.reports.grouping import group_by_secret
from scanner.reports.interface import Report

CSS = """
:root{--bg:#f6f7f9;--card:#fff;--ink:#1d2433;--mute:#667085;--line:#e3e6eb;--critical:#b42318;--high:#c4320a;
--medium:#b54708;--low:#026aa2;--ok:#067647}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--ink);
background:var(--bg)}header,main{max-width:1200px;margin:0 auto;padding:16px 24px}h1{margin:8px 0 4px;font-size:22px}
h2{font-size:18px;margin:0 0 6px;overflow-wrap:anywhere}h3{font-size:15px;margin:18px 0 8px}
code,.mono{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;overflow-wrap:anywhere}
.muted{color:var(--mute)}.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 20px;
margin:0 0 18px}.chips{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0}.chip{border:1px solid var(--line);
border-radius:999px;padding:2px 10px;background:var(--card)}.sev{display:inline-block;min-width:64px;text-align:center;
border-radius:4px;padding:0 6px;color:#fff;font-size:12px;font-weight:600}.sev-critical{background:var(--critical)}
.sev-high{background:var(--high)}.sev-medium{background:var(--medium)}.sev-low{background:var(--low)}
.status{font-size:12px;border:1px solid var(--line);border-radius:4px;padding:0 6px;white-space:nowrap}
.st-present,.st-config,.st-history{border-color:var(--critical);color:var(--critical)}.st-deleted,.st-overwritten{
border-color:var(--medium);color:var(--medium)}.filters{position:sticky;top:0;z-index:2;display:flex;flex-wrap:wrap;
gap:6px 18px;align-items:center}.filters fieldset{border:0;padding:0;margin:0;display:flex;gap:10px;flex-wrap:wrap}
.filters legend{float:left;margin-right:8px;font-weight:600}.filters input[type=search]{padding:4px 8px;width:220px;
border:1px solid var(--line);border-radius:6px}ol.timeline{list-style:none;margin:0;padding:0 0 0 18px;
border-left:2px solid var(--line)}.step{position:relative;margin:0 0 10px;padding:6px 10px;border-radius:8px}
.step::before{content:"";position:absolute;left:-25px;top:11px;width:12px;height:12px;border-radius:50%;
background:var(--card);border:2px solid var(--mute)}.step.empty{padding:1px 10px;margin-bottom:4px}
.step.empty::before{width:8px;height:8px;left:-23px;top:7px}.step.adds{background:#fef3f2}.step.adds::before{
border-color:var(--critical);background:var(--critical)}.step.removes{background:#fffaeb}.step.removes::before{
border-color:var(--medium)}.step-head{display:flex;flex-wrap:wrap;gap:4px 12px;align-items:baseline}
.step-idx{font-weight:600;min-width:64px}.step.empty .step-idx{font-weight:400;color:var(--mute)}
.step.empty code{color:var(--mute)}.added,.removed{list-style:none;margin:4px 0 0;padding:0}
.added li::before{content:"+ added ";color:var(--critical);font-weight:600}.removed li::before{
content:"\\2212  removed ";color:var(--medium);font-weight:600}table{border-collapse:collapse;width:100%}
th,td{text-align:left;vertical-align:top;padding:6px 8px;border-bottom:1px solid var(--line)}
th{font-size:12px;color:var(--mute);font-weight:600}details summary{cursor:pointer;color:var(--mute)}
dl.prov{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0}dl.prov dt{color:var(--mute)}
dl.prov dd{margin:0}.secret{font-weight:600}.value{background:#fef3f2;padding:0 3px}[hidden]{display:none!important}
"""

JS = """
(function () {
  'use strict';
  var form = document.getElementById('filters');
  if (!form) { return; }
  var items = Array.prototype.slice.call(document.querySelectorAll('[data-severity][data-status]'));
  var rows = items.filter(function (el) { return el.tagName === 'TR'; });
  var count = document.getElementById('shown');
  function checked(name) {
    var on = {};
    form.querySelectorAll('input[name="' + name + '"]').forEach(function (box) { on[box.value] = box.checked; });
    return on;
  }
  function apply() {
    var sev = checked('severity'), st = checked('status');
    var text = (form.querySelector('input[type=search]').value || '').toLowerCase();
    var shown = 0;
    items.forEach(function (el) {
      var ok = sev[el.dataset.severity] !== false && st[el.dataset.status] !== false &&
        (!text || el.textContent.toLowerCase().indexOf(text) >= 0);
      el.hidden = !ok;
      if (ok && el.tagName === 'TR') { shown += 1; }
    });
    if (count) { count.textContent = shown + ' of ' + rows.length + ' findings shown'; }
  }
  form.addEventListener('input', apply);
  form.addEventListener('change', apply);
  form.addEventListener('submit', function (ev) { ev.preventDefault(); });
  apply();
}());
"""


def e(text: object) -> str:
    """Every text of the page: terminal controls and bidi overrides spelt out, then HTML-escaped."""
    return escape(redact.escape(text), quote=True)


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


CSP = (f"default-src 'none'; style-src {_csp_hash(CSS)}; script-src {_csp_hash(JS)}; img-src 'none'; "
       "base-uri 'none'; form-action 'none'")


def human(n: Optional[int]) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def instruction(created_by: Optional[str]) -> str:
    return " ".join((created_by or "").replace("/bin/sh -c #(nop) ", "").split()) or "(no instruction recorded)"


LONG = 160  # characters of an instruction shown before "more"


def code(text: str) -> str:
    """`<code>` of an instruction or a path; a long one cut, the whole of it a click away."""
    if len(text) <= LONG:
        return f"<code>{e(text)}</code>"
    return (f'<details class="long"><summary><code>{e(text[:LONG])}…</code> '
            f'<span class="muted">({len(text)} characters)</span></summary><code>{e(text)}</code></details>')


def _secret(f: Finding, reveal: bool) -> str:
    s = f.hit.secret
    shown = f'<span class="secret mono">{e(s.redacted)}</span>'
    if reveal and s.value is not None:
        shown += f' <code class="value">{e(s.value)}</code>'
    return shown


def _where(f: Finding) -> str:
    h = f.hit
    return h.path + (f":{h.line}" if h.line else "") + (f"!{h.inner_path}" if h.inner_path else "")


def _attrs(f: Finding) -> str:
    return f'data-severity="{e(f.hit.severity.value)}" data-status="{e(f.status.value)}"'


def _status(f: Finding) -> str:
    text = f.status.value + (f" in layer {f.removed_in.index}" if f.removed_in else "")
    text += f" ({f.suppressed})" if f.suppressed else ""
    text += f" ({f.triage})" if f.triage else ""
    if f.package is not None:
        text += f" [{f.package.ecosystem} {f.package.name} {f.package.version or ''}]".replace(" ]", "]")
    v = f.verification  # --verify
    text += f"; key {v.status}" + (f": {v.detail}" if v.detail else "") if v is not None else ""
    return f'<span class="status st-{e(f.status.value)}">{e(text)}</span>'


def _sev(severity: Severity) -> str:
    return f'<span class="sev sev-{e(severity.value)}">{e(severity.value)}</span>'


@dataclass(frozen=True)
class Step:
    entry: Optional[HistoryEntry]
    layer: Optional[LayerInfo]


def steps(image: ImageResult) -> list[Step]:
    """The image's history in order, each entry with the layer it made; layers no entry names last."""
    layers = {layer.index: layer for layer in image.layers}
    out = [Step(h, layers.get(h.layer) if h.layer is not None else None) for h in image.history]
    named = {s.layer.index for s in out if s.layer is not None}
    return out + [Step(None, layer) for layer in image.layers if layer.index not in named]


def _added(step: Step, findings: Iterable[Finding]) -> list[Finding]:
    if step.layer is not None:
        return [f for f in findings if f.layer is not None and f.layer.index == step.layer.index]
    return [f for f in findings if f.layer is None and step.entry is not None and f.history is not None
            and f.history.index == step.entry.index]


def render_step(step: Step, image: ImageResult) -> str:
    added = _added(step, image.findings)
    removed = [f for f in image.findings if step.layer is not None and f.removed_in is not None
               and f.removed_in.index == step.layer.index]
    created_by = step.layer.created_by if step.layer is not None else step.entry.created_by if step.entry else None
    classes = ["step"] + (["empty"] if step.layer is None else []) + (["adds"] if added else []) + (
        ["removes"] if removed else [])
    idx = f"layer {step.layer.index}" if step.layer is not None else f"history[{step.entry.index}]" if step.entry else ""
    head = [f'<span class="step-idx">{e(idx)}</span>', code(instruction(created_by))]
    if step.layer is not None:
        head.append(f'<span class="muted">{e(human(step.layer.bytes))}, {step.layer.files} file(s)</span>')
    created = step.entry.created if step.entry is not None else step.layer.created if step.layer else None
    if created:
        head.append(f'<span class="muted mono">{e(created)}</span>')
    out = [f'<li class="{" ".join(classes)}"><div class="step-head">{"".join(head)}</div>']
    if step.layer is not None:
        out.append(f'<div class="muted mono">{e(step.layer.digest)}</div>')
    if added:
        out.append('<ul class="added">' + "".join(
            f'<li {_attrs(f)}>{_sev(f.hit.severity)} <b>{e(f.hit.rule_id)}</b> <code>{e(_where(f))}</code> '
            f'{_secret(f, False)} {_status(f)}</li>' for f in added) + "</ul>")
    if removed:
        out.append('<ul class="removed">' + "".join(
            f'<li {_attrs(f)}>{_sev(f.hit.severity)} <b>{e(f.hit.rule_id)}</b> <code>{e(_where(f))}</code> '
            f'{_secret(f, False)} <span class="muted">added in layer {f.layer.index if f.layer else "?"}: '
            f'still in the image</span></li>' for f in removed) + "</ul>")
    return "".join(out) + "</li>"


def render_image(image: ImageResult, n: int) -> str:
    facts = [("source", image.source.value), ("digest", image.digest or "none"), ("platform", image.platform or "?"),
             ("layers", str(len(image.layers))), ("findings", str(len(image.findings)))]
    out = [f'<section class="card image" id="image-{n}"><h2>{e(image.ref)}</h2><div class="chips">']
    out += [f'<span class="chip">{e(k)}: <span class="mono">{e(v)}</span></span>' for k, v in facts]
    out.append('</div><h3>Timeline</h3><ol class="timeline">')
    out += [render_step(s, image) for s in steps(image)]
    out.append("</ol>")
    loose = [f for f in image.findings if f.layer is None and f.history is None]
    if loose:
        out.append("<h3>Config</h3><ul>" + "".join(
            f'<li {_attrs(f)}>{_sev(f.hit.severity)} <b>{e(f.hit.rule_id)}</b> <code>{e(f.hit.path)}</code> '
            f'{_secret(f, False)}</li>' for f in loose) + "</ul>")
    if image.skipped:
        out.append(f"<h3>Not scanned ({len(image.skipped)})</h3><ul>" + "".join(
            f'<li><code>{e(s.path)}</code>{e(f" (layer {s.layer})" if s.layer is not None else "")}: {e(s.reason)}</li>'
            for s in image.skipped) + "</ul>")
    return "".join(out) + "</section>"


def render_secrets(result: ScanResult) -> str:
    groups = group_by_secret(result.findings)
    out = [f'<section class="card" id="secrets"><h2>Secrets ({len(groups)})</h2>'
           '<p class="muted">Each distinct secret once (by sha256), with every place it was seen.</p><table>'
           "<tr><th>severity</th><th>secret</th><th>rules</th><th>sightings</th></tr>"]
    for g in groups:
        shown = e(g.redacted) + (f' <code class="value">{e(g.value)}</code>' if result.reveal and g.value else "")
        seen = "".join(f"<li>{e(f.image)}: {e('layer ' + str(f.layer.index) if f.layer else 'config')} "
                       f"<code>{e(_where(f))}</code> {_status(f)}</li>" for f in g.sightings)
        out.append(f'<tr><td>{_sev(g.severity)}</td><td><span class="secret mono">{shown}</span><br>'
                   f'<span class="muted mono">sha256:{e(g.sha256[:16])}…</span></td><td>{e(", ".join(g.rule_ids))}</td>'
                   f'<td>{len(g.sightings)} in {len(g.images)} image(s)<ul>{seen}</ul></td></tr>')
    return "".join(out) + "</table></section>"


def _provenance(f: Finding) -> str:
    rows: list[tuple[str, Optional[str]]] = [("image digest", f.image_digest), ("fingerprint", f.fingerprint),
                                             ("secret sha256", f.hit.secret.sha256)]
    if f.layer is not None:
        rows += [("layer digest", f.layer.digest), ("layer diff_id", f.layer.diff_id),
                 ("layer created", f.layer.created)]
    if f.history is not None:
        rows += [(f"history[{f.history.index}]", f.history.created_by), ("step created", f.history.created)]
    if f.hit.file is not None:
        m = f.hit.file
        owner = f"{m.uname or m.uid}:{m.gname or m.gid}"
        rows += [("file", f"mode {m.mode:04o}, owner {owner}, {m.size} bytes, mtime {m.mtime:g}"),
                 ("file sha256", m.sha256)]
    if f.removed_in is not None:
        rows += [("removed by", f"layer {f.removed_in.index}: {instruction(f.removed_in.created_by)}"),
                 ("removing layer", f.removed_in.digest)]
    body = "".join(f"<dt>{e(k)}</dt><dd class=\"mono\">{e(v)}</dd>" for k, v in rows if v is not None)
    return f'<details><summary>provenance</summary><dl class="prov">{body}</dl></details>'


def render_findings(result: ScanResult) -> str:
    out = ['<section class="card" id="findings"><h2>Findings</h2><table><tr><th>severity</th><th>rule</th>'
           "<th>status</th><th>image</th><th>layer</th><th>location</th><th>secret</th><th></th></tr>"]
    for f in result.findings:
        layer = f"{f.layer.index}: {instruction(f.layer.created_by)}" if f.layer else "config"
        out.append(f'<tr {_attrs(f)}><td>{_sev(f.hit.severity)}</td><td>{e(f.hit.rule_id)}<br>'
                   f'<span class="muted">{e(f.hit.title)}</span></td><td>{_status(f)}</td><td>{e(f.image)}</td>'
                   f'<td>{code(layer)}</td><td>{code(_where(f))}</td>'
                   f"<td>{_secret(f, result.reveal)}</td><td>{_provenance(f)}</td></tr>")
    return "".join(out) + "</table></section>"


def render_filters() -> str:
    boxes = lambda name, values: "".join(  # noqa: E731
        f'<label><input type="checkbox" name="{name}" value="{e(v)}" checked> {e(v)}</label>' for v in values)
    return ('<form class="card filters" id="filters"><fieldset><legend>severity</legend>'
            f'{boxes("severity", [s.value for s in Severity])}</fieldset><fieldset><legend>status</legend>'
            f'{boxes("status", [s.value for s in Status])}</fieldset>'
            '<input type="search" placeholder="filter by text (path, rule, image)" aria-label="text filter">'
            '<span id="shown" class="muted"></span></form>')


def render_header(result: ScanResult) -> str:
    summary = result.summary()
    chips = [f'<span class="chip">{_sev(Severity(s))} {n}</span>' for s, n in sorted(
        summary["by_severity"].items(), key=lambda kv: -Severity(kv[0]).rank)]
    chips += [f'<span class="chip">{e(s)}: {n}</span>' for s, n in summary["by_status"].items()]
    secrets = len({f.hit.secret.sha256 for f in result.findings})
    return (f"<header><h1>layerscan report</h1><p class=\"muted\">layerscan {e(__version__)} · "
            f"{len(result.images)} image(s) · {summary['findings']} finding(s) · {secrets} distinct secret(s)"
            f"{' · values revealed' if result.reveal else ''}</p><div class=\"chips\">{''.join(chips)}</div></header>")


class HtmlReport(Report):
    def render(self, result: ScanResult) -> str:
        body = [render_header(result), "<main>", render_filters()]
        body += [render_image(image, n) for n, image in enumerate(result.images)]
        body += [render_secrets(result), render_findings(result), "</main>"]
        return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                f'<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">'
                '<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>layerscan report</title><style>{CSS}</style></head><body>"
                + "\n".join(body) + f"<script>{JS}</script></body></html>\n")
