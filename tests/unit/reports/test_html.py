"""`--format html`: self-contained, everything escaped, redacted unless --reveal, a timeline per image.

The same page in a real browser: tests/integration/test_html_browser.py.
"""
from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace

from scanner.models import ImageResult, LayerInfo, Removal, ScanResult
from scanner.pipeline import Scanner
from scanner.reports import Format, report_for
from scanner.reports.html import CSP, HtmlReport, steps
from tests import secrets_catalog as sc
from tests.unit.conftest import write_image
from tests.unit.reports.conftest import build_result
from tests.unit.test_pipeline import BUILD_ARG_LINE, leaky_spec

SCRIPT = "<script>alert(document.domain)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def hostile() -> ScanResult:
    """The known result with markup wherever an image controls text: paths, history, refs, members."""
    result = build_result(False)
    image = result.images[0]
    layer0 = replace(image.layers[0], created_by=f"RUN echo {IMG} # {SCRIPT}")
    gh, jar, env, hist = image.findings
    gh = replace(gh, hit=replace(gh.hit, path=f"/app/{SCRIPT}.env"), layer=layer0,
                 removed_in=Removal(1, f"RUN rm '{SCRIPT}'"))
    jar = replace(jar, hit=replace(jar.hit, inner_path=f"BOOT-INF/{IMG}"), layer=layer0)
    image = replace(image, ref=f"evil{SCRIPT}.tar", layers=(layer0, image.layers[1]), findings=(gh, jar, env, hist))
    return ScanResult((image,) + result.images[1:])


def test_everything_is_escaped():
    html = HtmlReport().render(hostile())
    assert html.count("<script") == 1 and "<img" not in html and "onerror=alert(1)>" not in html
    assert "&lt;script&gt;alert(document.domain)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_self_contained_and_only_its_own_script_runs():
    html = HtmlReport().render(build_result(False))
    assert not re.search(r"\b(src|href)\s*=", html, re.I)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP.replace(chr(39), "&#x27;")}">' in html
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    for text, directive in ((script, "script-src"), (style, "style-src")):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{directive} 'sha256-{digest}'" in CSP
    assert "default-src 'none'" in CSP and "unsafe-inline" not in CSP
    assert not re.search(r"<[^>]*\s(style|on\w+)\s*=", html)  # no inline style or handler: the CSP forbids both


def test_redacted_unless_reveal():
    values = (sc.GITHUB_PAT, sc.AWS_KEY_ID, sc.DB_PASSWORD, sc.NPM_TOKEN)
    html = HtmlReport().render(build_result(False))
    assert not any(v in html for v in values)
    assert "ghp_****...u2wr" in html
    revealed = HtmlReport().render(build_result(True))
    assert all(v in revealed for v in values)
    assert "values revealed" in revealed


def test_filters_for_every_severity_and_status():
    html = HtmlReport().render(build_result(False))
    for name, value in [("severity", s) for s in ("critical", "high", "medium", "low")] + [
            ("status", s) for s in ("present", "deleted", "overwritten", "config", "history")]:
        assert f'name="{name}" value="{value}" checked' in html
    rows = re.findall(r'<tr data-severity="(\w+)" data-status="(\w+)">', html)
    assert rows == [("high", "deleted"), ("critical", "present"), ("medium", "config"), ("low", "history")]


def timeline(html: str) -> list[tuple[str, str, list[str], list[str]]]:
    """(classes, index, added rule ids, removed rule ids) of each step of the first image."""
    first = html.split('<ol class="timeline">', 1)[1].split("</ol>", 1)[0]
    out = []
    for item in re.findall(r'<li class="(step[^"]*)">(.*?)</li>(?=<li class="step|$)', first, re.S):
        classes, body = item
        index = re.search(r'<span class="step-idx">(.*?)</span>', body).group(1)
        added = re.findall(r"<b>([\w-]+)</b>", body.split('<ul class="removed">')[0])
        removed = re.findall(r"<b>([\w-]+)</b>", body.split('<ul class="removed">')[1]) if "removed" in body else []
        out.append((classes, index, added, removed))
    return out


def test_timeline_of_layers_when_there_is_no_history():
    html = HtmlReport().render(build_result(False))
    assert timeline(html) == [
        ("step adds", "layer 0", ["github-pat", "aws-access-key-id"], []),
        ("step adds removes", "layer 1", ["secret-named-variable"], ["github-pat"]),
    ]
    assert "<h3>Config</h3>" in html and "Env.DB_PASSWORD" in html  # a config finding no step set


def test_timeline_of_a_real_image_follows_its_history(unit_rules, tmp_path):
    path, archive = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip")
    result = Scanner(unit_rules).scan([str(path)])
    image = result.images[0]
    assert [(s.entry.index if s.entry else None, s.layer.index if s.layer else None) for s in steps(image)] == [
        (0, 0), (1, None), (2, 1), (3, 2), (4, None), (5, 3), (6, 4)]
    html = HtmlReport().render(result)
    assert timeline(html) == [
        ("step adds", "layer 0", ["unit-aws-key-id", "unit-github-pat", "unit-aws-key-id", "unit-private-key",
                                  "unit-github-pat"], []),
        ("step empty", "history[1]", [], []),
        ("step adds removes", "layer 1", ["secret-named-variable"], ["unit-github-pat"]),
        ("step removes", "layer 2", [], ["unit-aws-key-id"]),
        ("step empty adds", "history[4]", ["secret-named-variable", "secret-named-variable"], []),
        ("step removes", "layer 3", [], ["unit-private-key"]),
        ("step removes", "layer 4", [], ["unit-github-pat"]),
    ]
    assert sc.NPM_TOKEN not in html and sc.DB_PASSWORD not in html
    assert BUILD_ARG_LINE.split("=")[0] in html  # the build-arg step, its token redacted
    assert "<h3>Config</h3>" in html  # the label finding: no LABEL step in this history


def test_layers_no_history_entry_names_come_last():
    image = build_result(False).images[0]
    extra = LayerInfo(2, "sha256:" + "e" * 64, None, None)
    image = replace(image, layers=image.layers + (extra,))
    assert [s.layer.index for s in steps(image)] == [0, 1, 2]


def test_an_empty_result_renders():
    html = report_for(Format.HTML).render(ScanResult(()))
    assert html.startswith("<!doctype html>") and "0 finding(s)" in html


def test_a_clean_image_has_a_timeline_and_no_findings():
    clean = build_result(False).images[1]
    html = HtmlReport().render(ScanResult((clean,)))
    assert "clean.tar" in html and timeline(html) == [("step", "layer 0", [], [])]
    assert isinstance(clean, ImageResult)


def test_every_status_is_styled():
    from scanner.models import Status
    from scanner.reports.html import CSS

    for status in Status:
        assert f".st-{status.value}" in CSS


def test_a_long_instruction_is_cut_and_expands():
    from scanner.reports.html import LONG, code

    short = code("RUN make")
    assert short == "<code>RUN make</code>"
    long = code("RUN " + "x" * 400 + " <end>")
    assert long.startswith('<details class="long"><summary><code>RUN ') and "(410 characters)" in long
    assert long.count("&lt;end&gt;") == 1 and len(long.split("</summary>")[0]) < LONG + 120
