"""What `--verify` adds to each report: JSON `verification`, SARIF result properties, HTML and
the table's status column."""
from __future__ import annotations

import json
from dataclasses import replace

from scanner.models import ImageResult, ScanResult, SourceKind, Verification
from scanner.reports.html import HtmlReport
from scanner.reports.json import JsonReport
from scanner.reports.sarif import SarifReport
from scanner.reports.table import TableReport
from tests.unit.reports.test_sarif import errors, validator  # noqa: F401 (a fixture)
from tests.unit.verify.helpers import finding

V = Verification("live", "api.github.com", "octocat repo", "2026-12-08T05:00:00Z")


def result(v=V) -> ScanResult:
    f = replace(finding("github-pat", "ghp_x"), fingerprint="f" * 32, verification=v)
    f = replace(f, hit=replace(f.hit, secret=replace(f.hit.secret, value=None)))
    return ScanResult((ImageResult("img", SourceKind.DOCKER_ARCHIVE, None, (), (f,), ()),))


def test_json_verification() -> None:
    (f,) = json.loads(JsonReport().render(result()))["findings"]
    assert f["verification"] == {"status": "live", "endpoint": "api.github.com", "detail": "octocat repo",
                                 "checked_at": "2026-12-08T05:00:00Z"}
    canary = replace(V, status="unknown", canary=True)
    assert json.loads(JsonReport().render(result(canary)))["findings"][0]["verification"]["canary"] is True


def test_sarif_properties_and_schema(validator) -> None:  # noqa: F811
    doc = json.loads(SarifReport().render(result()))
    assert doc["runs"][0]["results"][0]["properties"]["verification"]["status"] == "live"
    assert errors(validator, doc) == []


def test_html_and_table_show_it() -> None:
    assert "key live: octocat repo" in HtmlReport().render(result())
    assert "[live]" in TableReport().render(result())
