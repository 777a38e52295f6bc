"""`--format json` is a contract (DESIGN.md): every key, every enum value, no raw secret."""
from __future__ import annotations

import json

from scanner import __version__
from scanner.reports import REPORTS, Format, report_for
from scanner.reports.json import JsonReport, to_document
from tests import secrets_catalog as sc
from tests.unit.reports.conftest import L0, L1, sha

TOP = {"schema", "tool", "images", "findings", "summary"}
TOOL = {"name", "version"}
IMAGE = {"ref", "source", "digest", "layers", "skipped"}
LAYER = {"index", "digest", "diff_id", "created_by", "files", "bytes"}
SKIPPED = {"layer", "path", "reason"}
FINDING = {"fingerprint", "rule_id", "detector", "severity", "title", "image", "layer", "location", "status",
           "removed_in", "secret", "triage"}
FINDING_LAYER = {"index", "digest", "created_by"}
LOCATION = {"kind", "path", "line", "inner_path"}
REMOVED = {"index", "created_by"}
SECRET = {"sha256", "redacted"}
SUMMARY = {"findings", "by_severity", "by_status"}

SOURCES = {"docker-archive", "oci-layout", "oci-archive", "daemon", "registry"}
DETECTORS = {"signature", "entropy", "keyword", "file", "config"}
SEVERITIES = {"critical", "high", "medium", "low"}
KINDS = {"file", "env", "label", "cmd", "entrypoint", "healthcheck", "history"}
STATUSES = {"present", "deleted", "overwritten", "config", "history"}


def check_contract(doc: dict, reveal: bool = False) -> None:
    """Every key of the contract present with the right type; extra keys allowed (added fields)."""
    assert TOP <= set(doc)
    assert doc["schema"] == "layerscan/v1"
    assert TOOL <= set(doc["tool"]) and doc["tool"]["name"] == "layerscan"
    assert doc["tool"]["version"] == __version__
    for image in doc["images"]:
        assert IMAGE <= set(image)
        assert isinstance(image["ref"], str) and image["source"] in SOURCES
        assert image["digest"] is None or image["digest"].startswith("sha256:")
        for layer in image["layers"]:
            assert LAYER <= set(layer)
            assert isinstance(layer["index"], int) and isinstance(layer["files"], int)
            assert isinstance(layer["bytes"], int)
            assert layer["created_by"] is None or isinstance(layer["created_by"], str)
        for skipped in image["skipped"]:
            assert SKIPPED <= set(skipped) and isinstance(skipped["reason"], str) and skipped["reason"]
    for f in doc["findings"]:
        assert FINDING <= set(f), FINDING - set(f)
        assert isinstance(f["fingerprint"], str) and f["fingerprint"]
        assert f["detector"] in DETECTORS and f["severity"] in SEVERITIES and f["status"] in STATUSES
        assert isinstance(f["rule_id"], str) and isinstance(f["title"], str) and isinstance(f["image"], str)
        assert f["layer"] is None or FINDING_LAYER <= set(f["layer"])
        assert LOCATION <= set(f["location"]) and f["location"]["kind"] in KINDS
        line = f["location"]["line"]
        assert line is None or (isinstance(line, int) and line >= 1)
        if f["location"]["kind"] == "file":
            assert f["location"]["path"].startswith("/")
        assert f["removed_in"] is None or REMOVED <= set(f["removed_in"])
        assert (f["removed_in"] is not None) == (f["status"] in ("deleted", "overwritten"))
        assert SECRET <= set(f["secret"]) and len(f["secret"]["sha256"]) == 64
        assert ("value" in f["secret"]) == reveal
        assert f["triage"] in (None, "vendor", "package", "known-public")
        assert f["package"] is None or (set(f["package"]) == {"ecosystem", "name", "version"}
                                        and isinstance(f["package"]["name"], str))
    assert SUMMARY <= set(doc["summary"])
    assert doc["summary"]["findings"] == len(doc["findings"])


def test_document_of_a_known_result(result):
    doc = json.loads(JsonReport().render(result))
    check_contract(doc)
    assert doc["images"][0] == {
        "ref": "leaky.tar", "source": "oci-archive", "digest": "sha256:" + "9" * 64, "platform": "linux/amd64",
        "layers": [
            {"index": 0, "digest": L0.digest, "diff_id": L0.diff_id, "created_by": L0.created_by,
             "files": 12, "bytes": 40960, "created": None, "history_index": None, "blob_size": None,
             "media_type": ""},
            {"index": 1, "digest": L1.digest, "diff_id": L1.diff_id, "created_by": L1.created_by,
             "files": 1, "bytes": 2048, "created": None, "history_index": None, "blob_size": None,
             "media_type": ""},
        ],
        "skipped": [{"layer": 1, "path": "/app/huge.bin", "reason": "larger than 8 GiB"}],
        "history": [],
    }
    assert doc["images"][1]["digest"] is None and doc["images"][1]["skipped"] == []
    assert doc["findings"][0] == {
        "fingerprint": "f" * 32,
        "rule_id": "github-pat", "detector": "signature", "severity": "high",
        "title": "GitHub personal access token",
        "image": "leaky.tar",
        "image_digest": None,
        "layer": {"index": 0, "digest": L0.digest, "diff_id": L0.diff_id, "created_by": L0.created_by,
                  "created": None},
        "history": None,
        "location": {"kind": "file", "path": "/app/.env", "line": 3, "inner_path": None},
        "status": "deleted",
        "removed_in": {"index": 1, "created_by": L1.created_by, "digest": None, "created": None},
        "secret": {"sha256": sha(sc.GITHUB_PAT), "redacted": "ghp_****...u2wr"},
        "triage": None, "package": None,
        "file": None,
        "suppressed": None,
        "confidence": None, "priority": None, "gating": None, "verification": None,
    }
    assert doc["findings"][1]["location"] == {"kind": "file", "path": "/app/app.jar", "line": 7,
                                              "inner_path": "BOOT-INF/classes/app.properties"}
    assert doc["findings"][1]["triage"] == "known-public"
    assert doc["findings"][2]["layer"] is None
    assert doc["findings"][2]["location"] == {"kind": "env", "path": "Env.DB_PASSWORD", "line": None,
                                              "inner_path": None}
    assert doc["findings"][3]["location"]["path"] == "history[2]"
    assert doc["findings"][3]["layer"]["index"] == 1
    assert doc["summary"] == {"findings": 4, "by_severity": {"high": 1, "critical": 1, "medium": 1, "low": 1},
                              "by_status": {"deleted": 1, "present": 1, "config": 1, "history": 1},
                              "skipped": 1, "suppressed": {}, "triaged": {"known-public": 1}}


def test_no_values_without_reveal(result):
    text = JsonReport().render(result)
    for value in (sc.GITHUB_PAT, sc.AWS_KEY_ID, sc.DB_PASSWORD, sc.NPM_TOKEN):
        assert value not in text


def test_values_with_reveal(revealed):
    doc = json.loads(JsonReport().render(revealed))
    check_contract(doc, reveal=True)
    assert [f["secret"]["value"] for f in doc["findings"]] == [
        sc.GITHUB_PAT, sc.AWS_KEY_ID, sc.DB_PASSWORD, sc.NPM_TOKEN]


def test_values_need_both_reveal_and_a_kept_value(revealed, result):
    """A result that was not made with reveal carries no values; the flag alone shows nothing."""
    from scanner.models import ScanResult

    doc = to_document(ScanResult(result.images, reveal=True))
    assert all("value" not in f["secret"] for f in doc["findings"])


def test_render_is_json_with_a_final_newline(result):
    text = JsonReport().render(result)
    assert text.endswith("}\n")
    json.loads(text)


def test_every_format_has_a_report(result):
    assert set(REPORTS) == set(Format)
    for fmt in Format:
        assert isinstance(report_for(fmt).render(result), str)
