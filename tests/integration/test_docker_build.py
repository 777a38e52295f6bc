"""End-to-end acceptance of the spine: a real image built by a real engine, scanned by the real CLI.

The image leaks in every way the design names: a build arg in a file and in history, a `.env`
deleted by a later layer, an ENV in the config. The JSON report (DESIGN.md contract) must find
each with its provenance, exit 1, and never print a raw secret.
"""
from __future__ import annotations

import hashlib
import json

import pytest

from tests import secrets_catalog as catalog

pytestmark = pytest.mark.integration

DOCKERFILE = f"""\
FROM layerscan-test/busybox:1
ARG NPM_TOKEN
RUN echo "//registry.npmjs.org/:_authToken=${{NPM_TOKEN}}" > /root/.npmrc && echo built
RUN mkdir -p /app && printf 'AWS_ACCESS_KEY_ID=%s\\nAWS_SECRET_ACCESS_KEY=%s\\n' {catalog.AWS_KEY_ID} {catalog.AWS_SECRET_KEY} > /app/.env
RUN rm /app/.env
ENV GITHUB_TOKEN={catalog.GITHUB_PAT}
"""
RAW_SECRETS = {
    "NPM_TOKEN": catalog.NPM_TOKEN,
    "AWS_KEY_ID": catalog.AWS_KEY_ID,
    "AWS_SECRET_KEY": catalog.AWS_SECRET_KEY,
    "GITHUB_PAT": catalog.GITHUB_PAT,
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def findings_of(report: dict, secret: str) -> list[dict]:
    return [f for f in report["findings"] if f["secret"]["sha256"] == sha256(secret)]


def assert_no_raw_secret(*outputs: str) -> None:
    for name, value in RAW_SECRETS.items():
        for output in outputs:
            assert value not in output, f"raw {name} printed"


@pytest.fixture(scope="module")
def leaky_image(build_image):
    return build_image(DOCKERFILE, tag="layerscan-test/leaky:1", buildargs={"NPM_TOKEN": catalog.NPM_TOKEN})


@pytest.fixture(scope="module")
def leaky_archive(leaky_image, save_image, tmp_path_factory):
    return save_image(leaky_image, tmp_path_factory.mktemp("leaky") / "leaky.tar")


@pytest.fixture(scope="module")
def json_scan(leaky_archive, run_cli):
    proc = run_cli("--format", "json", "--no-progress", leaky_archive)
    return proc


@pytest.fixture(scope="module")
def report(json_scan) -> dict:
    assert json_scan.returncode == 1, f"exit {json_scan.returncode}: {json_scan.stderr[-2000:]}"
    return json.loads(json_scan.stdout)


def test_the_image_really_carries_the_leaks(leaky_image, leaky_archive):
    """What the scanner is asked to find is really there: checks the fixture, not the scanner."""
    history = [entry["CreatedBy"] for entry in leaky_image.history()]
    assert any(f"NPM_TOKEN={catalog.NPM_TOKEN}" in created_by for created_by in history)
    assert any("rm /app/.env" in created_by for created_by in history)
    assert f"GITHUB_TOKEN={catalog.GITHUB_PAT}" in leaky_image.attrs["Config"]["Env"]
    assert leaky_archive.stat().st_size > 1_000_000  # busybox and all


def test_scan_exits_1_with_a_json_report(json_scan, report):
    assert json_scan.returncode == 1
    assert report["schema"] == "layerscan/v1"
    assert [image["source"] for image in report["images"]] == ["docker-archive"]
    assert report["summary"]["findings"] == len(report["findings"]) > 0


def test_deleted_aws_key_is_found_with_the_layer_that_removed_it(report):
    found = [f for f in findings_of(report, catalog.AWS_KEY_ID) if f["location"]["path"] == "/app/.env"]
    assert found, "AWS access key id in /app/.env not reported"
    for finding in found:
        assert finding["location"]["kind"] == "file"
        assert finding["location"]["line"] == 1
        assert finding["status"] == "deleted"
        assert "rm /app/.env" in finding["removed_in"]["created_by"]
        assert "mkdir -p /app" in finding["layer"]["created_by"]
        assert finding["removed_in"]["index"] > finding["layer"]["index"]


def test_npm_token_in_npmrc_is_present(report):
    found = [f for f in findings_of(report, catalog.NPM_TOKEN) if f["location"]["path"] == "/root/.npmrc"]
    assert found, "npm token in /root/.npmrc not reported"
    assert {f["status"] for f in found} == {"present"}
    assert all(f["location"]["kind"] == "file" for f in found)


def test_npm_build_arg_is_found_in_history(report):
    found = [f for f in findings_of(report, catalog.NPM_TOKEN) if f["location"]["kind"] == "history"]
    assert found, "npm build arg in the history not reported"
    for finding in found:
        assert finding["status"] == "history"
        assert finding["location"]["path"].startswith("history[")


def test_github_token_in_env_is_a_config_finding(report):
    found = [f for f in findings_of(report, catalog.GITHUB_PAT) if f["location"]["kind"] == "env"]
    assert found, "GITHUB_TOKEN in the config's Env not reported"
    for finding in found:
        assert finding["location"]["path"] == "Env.GITHUB_TOKEN"
        assert finding["status"] == "config"
        assert finding["layer"] is None


def test_json_output_never_shows_a_raw_secret(json_scan):
    assert_no_raw_secret(json_scan.stdout, json_scan.stderr)


def test_table_output_exits_1_and_never_shows_a_raw_secret(leaky_archive, run_cli):
    proc = run_cli("--format", "table", "--no-progress", leaky_archive)
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-2000:]}"
    assert "/app/.env" in proc.stdout
    assert_no_raw_secret(proc.stdout, proc.stderr)
