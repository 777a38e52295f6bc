"""`--format sarif`: valid SARIF 2.1.0 (checked against the official schema, kept in
`tests/data/`), one result per finding with its rule, a
location in the image and its layer, the fingerprint, and suppressions for accepted findings.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from scanner import __version__
from scanner.cli import main
from scanner.models import DetectorKind, Finding, Hit, ImageResult, ScanResult, Secret, Severity, SourceKind, Status
from scanner.reports.sarif import SarifReport, to_sarif
from tests import secrets_catalog as sc
from tests.unit.conftest import write_image
from tests.unit.reports.conftest import L0, build_result
from tests.unit.test_gate import GATE_RULES_YAML, bomb_spec, status_spec

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = REPO_ROOT / "tests" / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def validator():
    """The official SARIF 2.1.0 schema (OASIS, errata 01), kept in the repository under tests/data."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def errors(validator, doc) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def suppressed_result() -> ScanResult:
    result = build_result(reveal=False)
    image = result.images[0]
    reasons = ["baseline", None, "allowlist", "inherited"]
    findings = tuple(replace(f, suppressed=r) for f, r in zip(image.findings, reasons))
    return replace(result, images=(replace(image, findings=findings),) + result.images[1:])


# --- the schema ---------------------------------------------------------------------------------


def test_the_schema_is_the_official_one(validator):
    assert validator.schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    assert validator.schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"


@pytest.mark.parametrize("make", [lambda: build_result(reveal=False), lambda: build_result(reveal=True),
                                  suppressed_result, lambda: ScanResult(())])
def test_valid_against_the_schema(validator, make):
    doc = json.loads(SarifReport().render(make()))
    assert errors(validator, doc) == []


def test_the_validation_can_fail(validator):
    doc = to_sarif(suppressed_result())
    doc["runs"][0]["results"][0]["suppressions"][0]["kind"] = "accepted"
    doc["runs"][0]["results"][1]["level"] = "critical"
    del doc["runs"][0]["tool"]["driver"]["name"]
    assert sorted(errors(validator, doc)) == [
        "runs/0/results/0/suppressions/0/kind: 'accepted' is not one of ['inSource', 'external']",
        "runs/0/results/1/level: 'critical' is not one of ['none', 'note', 'warning', 'error']",
        "runs/0/tool/driver: 'name' is a required property",
    ]


def test_a_real_scan_is_valid(validator, tmp_path, capsys):
    rules = tmp_path / "gate.yaml"
    rules.write_text(GATE_RULES_YAML)
    status, _ = write_image(tmp_path, status_spec(), "oci-archive", "gzip", name="status")
    bomb, _ = write_image(tmp_path, bomb_spec(), "docker-oci", "none", name="bomb")
    with pytest.raises(SystemExit) as exit_:
        main([str(status), str(bomb), "--rules", str(rules), "--no-cache", "--no-progress", "-f", "sarif"])
    out, _ = capsys.readouterr()
    doc = json.loads(out)
    assert exit_.value.code == 1
    assert errors(validator, doc) == []
    run = doc["runs"][0]
    assert len(run["results"]) == 5
    assert [n["message"]["text"].split(": ")[1] for n in run["invocations"][0]["toolExecutionNotifications"]] == [
        "/srv/bomb.zip"]
    assert run["properties"]["images"] == [str(status), str(bomb)]


# --- the content ----------------------------------------------------------------------------------


def test_one_result_per_finding_with_its_rule(result):
    run = to_sarif(result)["runs"][0]
    assert [(r["ruleId"], r["level"]) for r in run["results"]] == [
        ("github-pat", "error"), ("aws-access-key-id", "error"), ("secret-named-variable", "warning"),
        ("secret-named-variable", "note")]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == ["github-pat", "aws-access-key-id", "secret-named-variable"]
    assert [rules[r["ruleIndex"]]["id"] for r in run["results"]] == [r["ruleId"] for r in run["results"]]
    assert rules[0]["name"] == "GithubPat"
    assert rules[0]["shortDescription"] == {"text": "GitHub personal access token"}
    assert rules[0]["defaultConfiguration"] == {"level": "error"}
    assert rules[0]["properties"] == {"security-severity": "8.0", "tags": ["security", "secret", "signature"]}
    assert rules[1]["properties"]["security-severity"] == "9.5"
    assert run["tool"]["driver"]["name"] == "layerscan" and run["tool"]["driver"]["version"] == __version__


def test_a_file_location_points_at_the_path_in_the_image_and_the_layer(result):
    gh, jar, env, hist = to_sarif(result)["runs"][0]["results"]
    assert gh["locations"] == [{
        "logicalLocations": [{"name": "/app/.env", "fullyQualifiedName": "leaky.tar#layer 0:/app/.env", "kind": "file"}],
        "physicalLocation": {"artifactLocation": {"uri": "app/.env", "uriBaseId": "IMAGEROOT"},
                             "region": {"startLine": 3}},
    }]
    assert (gh["properties"]["layerIndex"], gh["properties"]["layerDigest"], gh["properties"]["removedInLayer"]) == (
        0, L0.digest, 1)
    assert gh["properties"]["status"] == "deleted"
    assert gh["message"]["text"].endswith("; removed in layer 1, still readable in the image.")
    assert jar["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "leaky.tar#layer 0:/app/app.jar!BOOT-INF/classes/app.properties")
    assert jar["locations"][0]["physicalLocation"]["artifactLocation"] == {"uri": "app/app.jar",
                                                                           "uriBaseId": "IMAGEROOT"}


def test_a_config_location_points_at_the_image(result):
    _, _, env, hist = to_sarif(result)["runs"][0]["results"]
    assert env["locations"] == [{
        "logicalLocations": [{"name": "Env.DB_PASSWORD", "fullyQualifiedName": "leaky.tar#config:Env.DB_PASSWORD",
                              "kind": "env"}],
        "physicalLocation": {"artifactLocation": {"uri": "leaky.tar",
                                                  "description": {"text": "the image's env: Env.DB_PASSWORD"}}},
    }]
    assert "layerIndex" not in env["properties"]
    assert hist["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "leaky.tar#layer 1:history[2]"


def test_uris_are_encoded():
    hit = Hit("r", DetectorKind.SIGNATURE, Severity.LOW, "T", "/srv/my app/c:d%.txt", None, Secret("0" * 64, "x"))
    f = Finding("a" * 32, hit, "docker-daemon:reg:5000/app:1", Status.PRESENT, L0)
    cfg = replace(f, hit=replace(hit, path="Env.K"), layer=None)
    doc = to_sarif(ScanResult((ImageResult(f.image, SourceKind.DAEMON, None, (L0,), (f, cfg), ()),)))
    uris = [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in doc["runs"][0]["results"]]
    assert uris == ["srv/my%20app/c%3Ad%25.txt", "docker-daemon%3Areg%3A5000/app%3A1"]


def test_fingerprints_in_partial_fingerprints(result):
    results = to_sarif(result)["runs"][0]["results"]
    assert [r["partialFingerprints"] for r in results] == [
        {"layerscanFingerprint/v1": c * 32} for c in "fedc"]


def test_suppressed_findings_carry_suppressions():
    results = to_sarif(suppressed_result())["runs"][0]["results"]
    assert [r.get("suppressions") for r in results] == [
        [{"kind": "external", "justification": "accepted in the baseline file"}],
        None,
        [{"kind": "external", "justification": "allowlisted in .layerscan.yaml"}],
        [{"kind": "external", "justification": "inherited from the base image (--base-image)"}],
    ]


def test_skipped_items_are_notifications(result):
    [invocation] = to_sarif(result)["runs"][0]["invocations"]
    assert invocation == {"executionSuccessful": True, "toolExecutionNotifications": [{
        "level": "warning",
        "message": {"text": "not scanned: /app/huge.bin: larger than 8 GiB (layer 1)"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app/huge.bin", "uriBaseId": "IMAGEROOT"}},
                       "logicalLocations": [{"fullyQualifiedName": "leaky.tar#layer 1:/app/huge.bin"}]}],
        "properties": {"image": "leaky.tar", "layerIndex": 1},
    }]}


def test_no_raw_secret_without_reveal(result, revealed):
    text = SarifReport().render(result)
    for value in (sc.GITHUB_PAT, sc.AWS_KEY_ID, sc.DB_PASSWORD, sc.NPM_TOKEN):
        assert value not in text
    shown = [r["properties"].get("value") for r in to_sarif(revealed)["runs"][0]["results"]]
    assert shown == [sc.GITHUB_PAT, sc.AWS_KEY_ID, sc.DB_PASSWORD, sc.NPM_TOKEN]
