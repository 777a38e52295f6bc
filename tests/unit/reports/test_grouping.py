"""`--group-by secret`: one secret, many sightings, in the model, the JSON and the table."""
from __future__ import annotations

import json
from dataclasses import replace

import click

from scanner.models import ScanResult, Severity, Status
from scanner.reports import Format, GroupBy, report_for
from scanner.reports.grouping import group_by_secret
from scanner.reports.json import JsonReport
from scanner.reports.table import TableReport
from tests import secrets_catalog as sc
from tests.unit.reports.conftest import build_result, sha
from tests.unit.reports.test_json import check_contract


def two_images(reveal: bool = False) -> ScanResult:
    """The known result, and a second image holding the same GitHub token in Env and in a file."""
    result = build_result(reveal)
    leaky = result.images[0]
    gh = leaky.findings[0]
    env = leaky.findings[2]
    other = replace(leaky, ref="other.tar", findings=(
        replace(gh, image="other.tar", status=Status.PRESENT, removed_in=None),
        replace(env, image="other.tar", hit=replace(env.hit, path="Env.GH_TOKEN", secret=gh.hit.secret,
                                                    severity=Severity.HIGH))))
    return ScanResult((leaky, other), reveal=reveal)


def test_groups_by_sha256_across_images_worst_first():
    groups = group_by_secret(two_images().findings)
    assert [(g.sha256, len(g.sightings), g.images) for g in groups] == [
        (sha(sc.AWS_KEY_ID), 1, ("leaky.tar",)),
        (sha(sc.GITHUB_PAT), 3, ("leaky.tar", "other.tar")),
        (sha(sc.DB_PASSWORD), 1, ("leaky.tar",)),
        (sha(sc.NPM_TOKEN), 1, ("leaky.tar",)),
    ]
    gh = groups[1]
    assert gh.severity is Severity.HIGH and gh.rule_ids == ("github-pat", "secret-named-variable")
    assert gh.redacted == "ghp_****...u2wr" and gh.value is None
    assert gh.visible  # present in other.tar
    assert gh.first_added.image == "leaky.tar"
    assert not groups[3].visible  # only in a history line


def test_more_sightings_first_on_equal_severity():
    result = two_images()
    only_high = [f for f in result.findings if f.hit.severity is Severity.HIGH]
    assert group_by_secret([])[:1] == []
    assert [len(g.sightings) for g in group_by_secret(only_high)] == [3]


def test_json_secrets_list_points_into_findings():
    result = two_images()
    doc = json.loads(JsonReport(GroupBy.SECRET).render(result))
    check_contract(doc)
    gh = next(s for s in doc["secrets"] if s["sha256"] == sha(sc.GITHUB_PAT))
    assert gh["redacted"] == "ghp_****...u2wr" and "value" not in gh
    assert (gh["rule_id"], gh["rule_ids"], gh["severity"], gh["images"]) == (
        "github-pat", ["github-pat", "secret-named-variable"], "high", ["leaky.tar", "other.tar"])
    for s in gh["sightings"]:
        f = doc["findings"][s["finding"]]
        assert (f["fingerprint"], f["image"], f["location"]["path"], f["status"]) == (
            s["fingerprint"], s["image"], s["path"], s["status"])
        assert f["secret"]["sha256"] == gh["sha256"]
    assert [(s["image"], s["layer"], s["path"], s["status"]) for s in gh["sightings"]] == [
        ("leaky.tar", 0, "/app/.env", "deleted"), ("other.tar", 0, "/app/.env", "present"),
        ("other.tar", None, "Env.GH_TOKEN", "config")]


def test_json_without_group_by_has_no_secrets_list():
    assert "secrets" not in json.loads(JsonReport().render(two_images()))


def test_json_reveal_puts_the_value_in_the_group():
    doc = json.loads(JsonReport(GroupBy.SECRET).render(two_images(reveal=True)))
    assert {s["sha256"]: s["value"] for s in doc["secrets"]}[sha(sc.GITHUB_PAT)] == sc.GITHUB_PAT


def test_table_grouped_view():
    text = click.unstyle(TableReport(GroupBy.SECRET).render(two_images()))
    assert sc.GITHUB_PAT not in text
    block = text.split("\n\n")[1].splitlines()
    assert block[0].startswith(f"SECRET ghp_****...u2wr  sha256:{sha(sc.GITHUB_PAT)[:16]}  high  "
                               "github-pat, secret-named-variable  3 sighting(s) in 2 image(s)")
    assert block[1].split() == ["IMAGE", "STATUS", "LAYER", "LOCATION"]
    assert [row.split()[:3] for row in block[2:]] == [
        ["leaky.tar", "deleted", "in"], ["other.tar", "present", "0:"], ["other.tar", "config", "config"]]
    assert "leaky.tar: not scanned: 1 item(s)" in text and "other.tar: not scanned: 1 item(s)" in text
    assert "4 distinct secret(s)" in text and text.rstrip().endswith("in 2 image(s); 2 item(s) not scanned")


def test_table_default_view_is_unchanged():
    assert TableReport().render(build_result(False)) == report_for(Format.TABLE).render(build_result(False))


def test_report_for_passes_group_by_to_the_formats_that_have_it():
    assert report_for(Format.JSON, GroupBy.SECRET).group_by is GroupBy.SECRET  # type: ignore[attr-defined]
    assert report_for(Format.TABLE, GroupBy.SECRET).group_by is GroupBy.SECRET  # type: ignore[attr-defined]
    for fmt in Format:
        assert isinstance(report_for(fmt, GroupBy.SECRET).render(two_images()), str)
