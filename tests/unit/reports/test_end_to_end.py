"""Reports of real scans (imagekit images through the pipeline): the contract, and no raw secret."""
from __future__ import annotations

import hashlib
import json

import click
import pytest

from scanner.pipeline import ScanOptions, Scanner
from scanner.redact import redact
from scanner.reports.json import JsonReport
from scanner.reports.table import TableReport
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import write_image
from tests.unit.reports.test_json import check_contract
from tests.unit.test_pipeline import ADD_LINE, BUILD_ARG_SCRUBBED, leaky_spec

CATALOGUE = {name: value for name, value in vars(sc).items() if name.isupper() and isinstance(value, str)
             and name != "BASE62"}
BUILD_ARGS = [  # (build arg, catalogue value): each name says "secret", so the config detector scrubs it
    ("AWS_SECRET_ACCESS_KEY", sc.AWS_SECRET_KEY), ("GH_OAUTH_TOKEN", sc.GITHUB_OAUTH),
    ("GH_FINE_TOKEN", sc.GITHUB_FINE_GRAINED), ("GITLAB_TOKEN", sc.GITLAB_PAT),
    ("SLACK_TOKEN", sc.SLACK_BOT_TOKEN), ("SLACK_WEBHOOK_SECRET", sc.SLACK_WEBHOOK),
    ("STRIPE_API_KEY", sc.STRIPE_LIVE_KEY), ("GOOGLE_API_KEY", sc.GOOGLE_API_KEY), ("NPM_TOKEN", sc.NPM_TOKEN),
    ("PYPI_TOKEN", sc.PYPI_TOKEN), ("JWT_SECRET", sc.JWT), ("REPO_CREDENTIAL", sc.URL_CREDENTIAL),
    ("GITHUB_TOKEN", sc.GITHUB_PAT),
]


def needles() -> list[str]:
    """Every catalogue value, and each line of the PEM keys on its own."""
    out = list(CATALOGUE.values())
    for pem in (sc.RSA_PRIVATE_KEY, sc.OPENSSH_PRIVATE_KEY):
        out += [line for line in pem.splitlines() if len(line) >= 16 and not line.startswith("-----")]
    return out


def everything_spec() -> ik.ImageSpec:
    all_values = "\n".join(f"{k}={v}" for k, v in CATALOGUE.items()).encode()
    build_args = " ".join(f"{k}={v}" for k, v in BUILD_ARGS)
    return ik.ImageSpec([
        ik.LayerSpec(ADD_LINE, [ik.dir("/app"), ik.file("/app/all-secrets.txt", all_values),
                                ik.file("/root/.ssh/id_ed25519", sc.OPENSSH_PRIVATE_KEY.encode(), mode=0o600),
                                ik.file("/app/key.pem", sc.RSA_PRIVATE_KEY.encode())]),
        *[ik.EmptyLayer(f"ARG {k}") for k, _ in BUILD_ARGS],
        ik.LayerSpec(f"|{len(BUILD_ARGS)} {build_args} /bin/sh -c make install",
                     [ik.file("/usr/local/bin/app", b"\x7fELF\x00" + sc.AWS_KEY_ID.encode())]),
        ik.EmptyLayer(f"ENV DB_PASSWORD={sc.DB_PASSWORD} SECRET_KEY={sc.DJANGO_SECRET_KEY}"),
        ik.LayerSpec("RUN /bin/sh -c rm /app/all-secrets.txt /app/key.pem",
                     [ik.whiteout("/app/all-secrets.txt"), ik.whiteout("/app/key.pem")]),
    ], tags=["unit/everything:1"], env=[f"DB_PASSWORD={sc.DB_PASSWORD}", f"SECRET_KEY={sc.DJANGO_SECRET_KEY}"],
        labels={"ci.token": sc.GITHUB_PAT}, cmd=["/usr/local/bin/app", f"--api-key={sc.STRIPE_LIVE_KEY}"])


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    path, archive = write_image(tmp_path_factory.mktemp("everything"), everything_spec(), "oci-archive", "gzip")
    return path, archive


def outputs(rules, path, reveal: bool) -> tuple[str, str]:
    result = Scanner(rules, ScanOptions(reveal=reveal)).scan([str(path)])
    return JsonReport().render(result), TableReport().render(result)


def test_no_catalogue_value_in_any_output_without_reveal(unit_rules, everything):
    path, _ = everything
    json_text, table_text = outputs(unit_rules, path, reveal=False)
    doc = json.loads(json_text)
    assert len(doc["findings"]) >= 20  # the scan did find them
    created_by = [layer["created_by"] for layer in doc["images"][0]["layers"]]
    assert created_by[1].startswith(f"|{len(BUILD_ARGS)} AWS_SECRET_ACCESS_KEY={redact(sc.AWS_SECRET_KEY)} ")
    for text in (json_text, table_text, click.unstyle(table_text)):
        leaked = [n for n in needles() if n in text]
        assert leaked == []


def test_every_finding_revealed_with_reveal(unit_rules, everything):
    path, _ = everything
    json_text, table_text = outputs(unit_rules, path, reveal=True)
    doc = json.loads(json_text)
    check_contract(doc, reveal=True)
    for f in doc["findings"]:
        assert hashlib.sha256(f["secret"]["value"].encode()).hexdigest() == f["secret"]["sha256"]
    revealed = {f["secret"]["value"] for f in doc["findings"]}
    for _, value in BUILD_ARGS:
        assert value in revealed
    assert {sc.AWS_KEY_ID, sc.DB_PASSWORD, sc.DJANGO_SECRET_KEY, sc.RSA_PRIVATE_KEY.strip(),
            sc.OPENSSH_PRIVATE_KEY.strip()} <= revealed
    assert sc.NPM_TOKEN in click.unstyle(table_text)
    # reveal shows values in `secret.value` only: the build history stays scrubbed
    assert all(sc.NPM_TOKEN not in (layer["created_by"] or "") for layer in doc["images"][0]["layers"])


def test_json_contract_field_by_field(unit_rules, tmp_path):
    path, archive = write_image(tmp_path, leaky_spec(), "oci-archive", "gzip")
    result = Scanner(unit_rules).scan([str(path)])
    doc = json.loads(JsonReport().render(result))
    check_contract(doc)
    built = archive.images[0]
    assert doc["images"][0]["ref"] == str(path)
    assert doc["images"][0]["source"] == "oci-archive"
    assert doc["images"][0]["digest"] == built.manifest_digest
    assert doc["images"][0]["skipped"] == [
        {"layer": 1, "path": "/app/dangling", "reason": "hardlink to /app/nowhere, which this layer does not hold"}]
    assert [layer["digest"] for layer in doc["images"][0]["layers"]] == [b.digest for b in built.layers]
    assert [layer["diff_id"] for layer in doc["images"][0]["layers"]] == [b.diff_id for b in built.layers]
    assert [layer["bytes"] for layer in doc["images"][0]["layers"]] == [len(b.tar) for b in built.layers]
    deleted = doc["findings"][1]
    file_meta = deleted.pop("file")
    assert file_meta["sha256"] == hashlib.sha256(file_meta_content(archive, "/app/deleted.env")).hexdigest()
    assert (file_meta["mode"], file_meta["uid"], file_meta["gid"]) == ("0644", 0, 0)
    assert deleted == {
        "fingerprint": result.findings[1].fingerprint,
        "rule_id": "unit-github-pat", "detector": "signature", "severity": "high", "title": "GitHub token (unit)",
        "image": str(path),
        "image_digest": built.manifest_digest,
        "layer": {"index": 0, "digest": built.layers[0].digest, "diff_id": built.layers[0].diff_id,
                  "created_by": ADD_LINE, "created": "2024-01-01T00:00:00Z"},
        "history": {"index": 0, "created": "2024-01-01T00:00:00Z", "created_by": ADD_LINE},
        "location": {"kind": "file", "path": "/app/deleted.env", "line": 1, "inner_path": None},
        "status": "deleted",
        "removed_in": {"index": 1, "created_by": BUILD_ARG_SCRUBBED, "digest": built.layers[1].digest,
                       "created": "2024-01-01T00:02:00Z"},
        "secret": {"sha256": hashlib.sha256(sc.GITHUB_PAT.encode()).hexdigest(), "redacted": redact(sc.GITHUB_PAT)},
        "triage": None, "package": None,
        "suppressed": None,
        "confidence": "high", "priority": 3, "gating": None, "verification": None,
    }
    history = doc["findings"][7]
    assert (history["status"], history["location"], history["layer"]["index"], history["detector"]) == (
        "history", {"kind": "history", "path": "history[2]", "line": None, "inner_path": None}, 1, "config")
    env = doc["findings"][5]
    assert (env["status"], env["layer"], env["removed_in"], env["location"]["kind"]) == ("config", None, None, "env")
    assert doc["summary"] == {
        "findings": 9, "by_severity": {"critical": 3, "high": 6},
        "by_status": {"present": 1, "deleted": 3, "overwritten": 1, "config": 2, "history": 2}, "skipped": 1, "suppressed": {}, "triaged": {}}


def file_meta_content(archive, path: str) -> bytes:
    """The bytes the image's first layer holds at `path`."""
    import io
    import tarfile
    with tarfile.open(fileobj=io.BytesIO(archive.images[0].layers[0].tar)) as tf:
        return tf.extractfile(path.lstrip("/")).read()
