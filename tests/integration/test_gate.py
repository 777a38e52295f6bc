"""Baselines across a real rebuild: the same Dockerfile built twice by the real engine (no cache:
every layer digest changes), the first build's baseline accepts exactly the second build's
findings; a secret added later still fails; the baseline file holds no secret nor its hash.
"""
from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from tests import secrets_catalog as catalog
from tests.unit.reports.test_sarif import errors, validator  # noqa: F401 (a fixture)
from tests.unit.reports.test_end_to_end import CATALOGUE

pytestmark = pytest.mark.integration

DOCKERFILE = f"""\
FROM layerscan-test/busybox:1
ARG NPM_TOKEN
RUN mkdir -p /app && echo "//registry.npmjs.org/:_authToken=${{NPM_TOKEN}}" > /app/.npmrc && head -c 16 /dev/urandom | od -An -tx1 > /app/built
COPY app.env /app/.env
RUN rm /app/.env
ENV GITHUB_TOKEN={catalog.GITHUB_PAT}
"""
FILES = {"app.env": f"AWS_ACCESS_KEY_ID={catalog.AWS_KEY_ID}\nAWS_SECRET_ACCESS_KEY={catalog.AWS_SECRET_KEY}\n"}
ADDED = "COPY new.env /app/new.env\n"
ADDED_FILES = {**FILES, "new.env": f"GITLAB_TOKEN={catalog.GITLAB_PAT}\n"}


@pytest.fixture(scope="module")
def rebuild(docker_engine, base_image, tmp_path_factory, save_image):
    """rebuild(dockerfile, files) -> (tag, docker save tarball): a fresh build, never from the cache."""
    client = docker_engine.client()

    def build(dockerfile: str, files: dict):
        context = tmp_path_factory.mktemp("context")
        (context / "Dockerfile").write_text(dockerfile)
        for name, text in files.items():
            (context / name).write_text(text)
        tag = f"layerscan-test/rebuilt-{uuid.uuid4().hex[:8]}:1"
        image, _ = client.images.build(path=str(context), tag=tag, buildargs={"NPM_TOKEN": catalog.NPM_TOKEN},
                                       network_mode="host", rm=True, forcerm=True, pull=False, nocache=True)
        return tag, save_image(image, tmp_path_factory.mktemp("saved") / "image.tar")

    return build


@pytest.fixture(scope="module")
def builds(rebuild):
    return {"first": rebuild(DOCKERFILE, FILES), "second": rebuild(DOCKERFILE, FILES),
            "added": rebuild(DOCKERFILE + ADDED, ADDED_FILES)}


@pytest.fixture(scope="module")
def baseline_file(builds, run_cli, tmp_path_factory):
    path = tmp_path_factory.mktemp("baseline") / "baseline.json"
    proc = run_cli("baseline", builds["first"][1], "-o", path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    return path


def report(proc) -> dict:
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def by_fingerprint(doc: dict) -> dict[str, dict]:
    return {f["fingerprint"]: f for f in doc["findings"]}


def test_the_rebuild_changed_the_layers(builds, run_cli):
    first = report(run_cli("-f", "json", "--no-progress", builds["first"][1]))
    second = report(run_cli("-f", "json", "--no-progress", builds["second"][1]))
    d1 = [layer["diff_id"] for layer in first["images"][0]["layers"]]
    d2 = [layer["diff_id"] for layer in second["images"][0]["layers"]]
    assert d1[0] == d2[0]  # the base image
    assert d1[1] != d2[1]  # the RUN that wrote /app/.npmrc (and random bytes)
    npmrc = [f for f in second["findings"] if f["location"]["path"] == "/app/.npmrc"]
    assert npmrc and all(f["layer"]["digest"] != d["layer"]["digest"] for f in npmrc
                         for d in first["findings"] if d["location"]["path"] == "/app/.npmrc")
    assert by_fingerprint(first).keys() == by_fingerprint(second).keys()


def test_the_first_builds_baseline_accepts_the_second_build(builds, baseline_file, run_cli):
    accepted = {e["fingerprint"] for e in json.loads(baseline_file.read_text())["findings"]}
    proc = run_cli("-f", "json", "--no-progress", "--baseline", baseline_file, builds["second"][1])
    doc = report(proc)
    assert proc.returncode == 0
    kinds = {(f["rule_id"], f["location"]["path"], f["status"]) for f in doc["findings"]}
    assert {("aws-access-key-id", "/app/.env", "deleted"), ("github-pat", "Env.GITHUB_TOKEN", "config")} <= kinds
    assert any(f["location"]["path"] == "/app/.npmrc" for f in doc["findings"])
    assert any(f["status"] == "history" for f in doc["findings"])
    assert {f["fingerprint"] for f in doc["findings"]} == accepted
    assert all(f["suppressed"] == "baseline" for f in doc["findings"])
    assert doc["summary"]["findings"] == 0
    assert doc["summary"]["suppressed"] == {"baseline": len(accepted)}


def test_the_same_from_the_engine(builds, baseline_file, run_cli, docker_engine):
    """The second build read from the engine (docker-daemon:), not its tarball: the same fingerprints."""
    proc = run_cli("-f", "json", "--no-progress", "--baseline", baseline_file, f"docker-daemon:{builds['second'][0]}",
                   env=docker_engine.env())
    doc = report(proc)
    assert proc.returncode == 0
    assert doc["images"][0]["source"] == "daemon"
    assert doc["summary"]["suppressed"] == {"baseline": len(json.loads(baseline_file.read_text())["findings"])}


def test_a_secret_added_later_still_fails(builds, baseline_file, run_cli):
    proc = run_cli("-f", "json", "--no-progress", "--baseline", baseline_file, builds["added"][1])
    doc = report(proc)
    assert proc.returncode == 1
    active = [(f["rule_id"], f["location"]["path"], f["status"]) for f in doc["findings"] if not f["suppressed"]]
    assert active == [("gitlab-pat", "/app/new.env", "present")]
    # every baseline entry that recurs is accepted; `container_config` (the last build step's
    # container) differs between the builds, so its finding does not recur
    accepted = {e["fingerprint"] for e in json.loads(baseline_file.read_text())["findings"]}
    recurring = accepted & {f["fingerprint"] for f in doc["findings"]}
    assert len(recurring) >= len(accepted) - 1
    assert doc["summary"]["suppressed"] == {"baseline": len(recurring)}


def test_the_baseline_file_holds_no_secret_nor_its_hash(builds, baseline_file, run_cli):
    text = baseline_file.read_text()
    assert [name for name, value in CATALOGUE.items() if value in text] == []
    found = report(run_cli("-f", "json", "--no-progress", builds["first"][1]))["findings"]
    hashes = {hashlib.sha256(v.encode()).hexdigest() for v in CATALOGUE.values()}
    hashes |= {f["secret"]["sha256"] for f in found}
    assert [h for h in hashes if h in text] == []
    assert {e["fingerprint"] for e in json.loads(text)["findings"]} == {f["fingerprint"] for f in found}


def test_sarif_of_the_gated_rebuild(builds, baseline_file, run_cli, validator):  # noqa: F811
    proc = run_cli("-f", "sarif", "--no-progress", "--baseline", baseline_file, builds["added"][1])
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    assert errors(validator, doc) == []
    results = doc["runs"][0]["results"]
    assert [r["ruleId"] for r in results if "suppressions" not in r] == ["gitlab-pat"]
    assert all(r["suppressions"] == [{"kind": "external", "justification": "accepted in the baseline file"}]
               for r in results if r["ruleId"] != "gitlab-pat")


def test_a_settings_file_drives_the_gate(builds, baseline_file, run_cli, tmp_path):
    """--config with the baseline and the policy; flags override it. The one new finding is a
    present critical gitlab-pat."""
    config = tmp_path / "gate.yaml"
    image = builds["added"][1]
    config.write_text(f"baseline: {baseline_file}\nfail-on: critical\n")
    assert run_cli("--config", config, "--no-progress", image).returncode == 1
    config.write_text(f"baseline: {baseline_file}\nfail-on: never\n")
    assert run_cli("--config", config, "--no-progress", image).returncode == 0
    assert run_cli("--config", config, "--no-progress", "--fail-on", "critical", image).returncode == 1
    config.write_text(f"baseline: {baseline_file}\nstatus: [deleted, config]\n")
    assert run_cli("--config", config, "--no-progress", image).returncode == 0
    assert run_cli("--config", config, "--no-progress", "--status", "present", image).returncode == 1
    config.write_text("fail-on: never\n")  # no baseline: the accepted ones are back, but nothing gates
    proc = run_cli("--config", config, "--no-progress", "-f", "json", image)
    assert (proc.returncode, json.loads(proc.stdout)["summary"]["suppressed"]) == (0, {})
