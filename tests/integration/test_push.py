"""`layerscan push IMAGE` against the real engine and a real registry: a clean image lands, a leaky
one does not, the gate's options apply, errors exit 2 with one line.

The registry listens on 127.0.0.1:PORT over plain HTTP: dockerd treats 127.0.0.0/8 as an insecure
registry by default, so the engine pushes there without any configuration.
"""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from scanner.push import EnginePusher, PushError, Target, push_target
from tests import secrets_catalog as catalog
from tests.integration.conftest import CLI_TIMEOUT, REPO_ROOT
from tests.services import free_port

pytestmark = pytest.mark.integration

CLEAN = "FROM layerscan-test/busybox:1\nRUN echo hello > /hello.txt\n"
# the secret is deleted by a later layer: still in the image, so the default gate fails on it
LEAKY = "FROM layerscan-test/busybox:1\nCOPY app.env /app/.env\nRUN rm /app/.env\n"
LEAKY_FILES = {"app.env": f"AWS_ACCESS_KEY_ID={catalog.AWS_KEY_ID}\n"}
MANIFEST_TYPES = ", ".join(["application/vnd.docker.distribution.manifest.v2+json",
                            "application/vnd.oci.image.manifest.v1+json"])


@pytest.fixture
def push(run_cli, docker_engine):
    def run(*args: str):
        return run_cli("push", *args, "--no-progress", env=docker_engine.env())

    return run


def manifest_digest(registry, repository: str, tag: str) -> str:
    status, headers, body = registry.request(f"/v2/{repository}/manifests/{tag}",
                                             headers={"Accept": MANIFEST_TYPES})
    assert status == 200, f"manifest of {repository}:{tag}: HTTP {status} {body[:200]!r}"
    return headers["Docker-Content-Digest"]


def test_a_clean_image_lands(build_image, registry, push):
    name = f"{registry.host}/gate/clean:1"
    build_image(CLEAN, tag=name)
    proc = push(name)
    assert proc.returncode == 0, proc.stderr
    assert "gate/clean" in registry.catalog()
    assert registry.tags("gate/clean") == ["1"]
    digest = manifest_digest(registry, "gate/clean", "1")
    assert proc.stderr.splitlines()[-1] == f"layerscan push: pushed {name} ({digest})"
    assert proc.stdout.splitlines()[-1] == "0 finding(s) in 1 image(s)"


def test_a_leaky_image_does_not_land(build_image, registry, push):
    name = f"{registry.host}/gate/leaky:1"
    image = build_image(LEAKY, files=LEAKY_FILES, tag=name)
    proc = push(name, "--format", "json")
    assert proc.returncode == 1, proc.stderr
    assert "gate/leaky" not in registry.catalog()
    report = json.loads(proc.stdout)
    [finding] = [f for f in report["findings"] if f["rule_id"] == "aws-access-key-id"]
    assert (finding["status"], finding["location"]["path"], finding["layer"]["index"]) == ("deleted", "/app/.env", 1)
    assert report["images"][0]["ref"] == f"docker-daemon:{name}"
    assert report["images"][0]["source"] == "daemon"
    verdict, *blocked = proc.stderr.splitlines()
    assert verdict.startswith("gate: FAIL (exit 1): ")
    assert blocked == [
        f"layerscan push: {name} not pushed: the gate failed on",
        f"  docker-daemon:{name}: critical aws-access-key-id at /app/.env (deleted, layer 1) "
        f"fingerprint {finding['fingerprint']}",
    ]
    assert catalog.AWS_KEY_ID not in proc.stdout + proc.stderr
    assert image.id == image.client.images.get(name).id  # nothing re-tagged or removed


def test_the_gate_options_apply_to_push(build_image, registry, push, run_cli, docker_engine, tmp_path):
    """The leaky image lands once its finding is accepted (baseline), or not gated (--status present)."""
    accepted = f"{registry.host}/gate/accepted:1"
    build_image(LEAKY, files=LEAKY_FILES, tag=accepted)
    baseline = tmp_path / "baseline.json"
    made = run_cli("baseline", f"docker-daemon:{accepted}", "-o", baseline, "--no-progress", env=docker_engine.env())
    assert made.returncode == 0, made.stderr
    assert made.stderr.strip() == f"wrote 1 fingerprint(s) to {baseline}"
    proc = push(accepted, "--baseline", baseline)
    assert proc.returncode == 0, proc.stderr
    assert registry.tags("gate/accepted") == ["1"]
    assert "no new secrets found" in proc.stdout
    assert "accepted by the baseline: 1 finding(s)" in proc.stdout

    present_only = f"{registry.host}/gate/present-only:2"
    build_image(LEAKY, files=LEAKY_FILES, tag=present_only)
    proc = push(present_only, "--status", "present")
    assert proc.returncode == 0, proc.stderr
    assert registry.tags("gate/present-only") == ["2"]


def test_credentials_from_the_command_line(build_image, registry_factory, push, docker_engine):
    """--username/--password-stdin reach the engine's push; without them the registry refuses."""
    private = registry_factory(auth=True)
    name = f"{private.host}/gate/private:1"
    build_image(CLEAN, tag=name)
    proc = push(name)
    assert proc.returncode == 2
    verdict, line = proc.stderr.splitlines()
    assert verdict == "gate: pass (exit 0): no findings"  # scanned and passed, then the push failed
    assert line.startswith(f"layerscan: error: {name}: push failed: ")
    assert private.catalog() == []
    proc = subprocess.run([sys.executable, "-m", "scanner", "push", name, "--no-progress",
                           "--username", private.username, "--password-stdin"], cwd=REPO_ROOT,
                          input=private.password + "\n", capture_output=True, text=True,
                          env=docker_engine.env(), timeout=CLI_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert private.tags("gate/private") == ["1"]
    assert private.password not in proc.stdout + proc.stderr


def test_no_tag_means_latest(build_image, registry, push):
    build_image(CLEAN, tag=f"{registry.host}/gate/untagged:latest")
    proc = push(f"{registry.host}/gate/untagged")
    assert proc.returncode == 0, proc.stderr
    assert registry.tags("gate/untagged") == ["latest"]


def test_fail_on_incomplete_blocks_the_push(build_image, registry, push):
    name = f"{registry.host}/gate/partial:1"
    build_image(CLEAN, tag=name)
    proc = push(name, "--fail-on-incomplete", "--max-file-size", "100")
    assert proc.returncode == 2, proc.stderr
    assert "gate/partial" not in registry.catalog()
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("layerscan: error: ") and lines[0].endswith(
        "item(s) not scanned and --fail-on-incomplete is set (see the report's not-scanned list)")
    assert lines[1].startswith("gate: FAIL (exit 2): ") and lines[1].endswith(" (--fail-on-incomplete)")
    assert lines[2] == f"layerscan push: {name} not pushed: the gate failed on"
    assert lines[3].startswith(f"  docker-daemon:{name}: ") and lines[3].endswith(
        " item(s) not scanned (--fail-on-incomplete)")


def test_errors_exit_2_with_one_line(build_image, registry, push):
    missing = f"{registry.host}/gate/missing:1"
    proc = push(missing)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr.splitlines() == [f"layerscan: error: {missing}: no such image in the Docker engine"]

    proc = push(f"{registry.host}/gate/clean@sha256:{'0' * 64}")
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"layerscan: error: {registry.host}/gate/clean@sha256:{'0' * 64}: "
                                        "push needs a NAME[:TAG] in the local Docker engine, not a digest"]

    nowhere = f"127.0.0.1:{free_port()}/gate/nowhere:1"  # nothing listens there
    build_image(CLEAN, tag=nowhere)
    proc = push(nowhere)
    assert proc.returncode == 2
    verdict, line = proc.stderr.splitlines()
    assert verdict == "gate: pass (exit 0): no findings"
    assert line.startswith(f"layerscan: error: {nowhere}: push failed: ")
    assert proc.stdout.splitlines()[-1] == "0 finding(s) in 1 image(s)"  # scanned and passed, then failed


# --- the target and the re-tag check, with a stand-in engine -------------------------------------


@pytest.mark.parametrize("given, repository, tag", [
    ("localhost:5000/app:1", "localhost:5000/app", "1"),
    ("docker-daemon:localhost:5000/app:1", "localhost:5000/app", "1"),
    ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app", "latest"),
    ("app", "app", "latest"),
])
def test_push_target(given, repository, tag):
    target = push_target(given)
    assert target == Target(repository, tag)
    assert target.spec == f"docker-daemon:{repository}:{tag}"


class FakeEngine:
    """Image ids to answer, one per `images.get`; push events to stream."""

    def __init__(self, ids, events=()):
        self.ids, self.events, self.pushed = list(ids), list(events), []
        self.images = SimpleNamespace(get=lambda name: SimpleNamespace(id=self.ids.pop(0)))
        self.api = SimpleNamespace(push=self._push)

    def _push(self, repository, tag, stream, decode, auth_config):
        self.pushed.append((repository, tag, auth_config))
        return iter(self.events)

    def close(self):
        pass


def pusher_for(engine: FakeEngine) -> EnginePusher:
    return EnginePusher(client_factory=lambda: engine)


def test_push_returns_the_registry_digest():
    engine = FakeEngine(["sha256:aa", "sha256:aa"], [{"status": "Pushing"},
                                                     {"aux": {"Tag": "1", "Digest": "sha256:dd", "Size": 9}}])
    assert pusher_for(engine).push(Target("r/app", "1"), "sha256:aa") == "sha256:dd"
    assert engine.pushed == [("r/app", "1", None)]


def test_a_name_retagged_during_the_scan_is_not_pushed():
    engine = FakeEngine(["sha256:" + "b" * 64])
    with pytest.raises(PushError) as err:
        pusher_for(engine).push(Target("r/app", "1"), "sha256:" + "a" * 64)
    assert str(err.value) == ("r/app:1 changed in the Docker engine while it was scanned: not pushed "
                              f"(scanned sha256:{'a' * 12}, now sha256:{'b' * 12})")
    assert engine.pushed == []


def test_a_name_retagged_during_the_push_is_an_error():
    engine = FakeEngine(["sha256:aa", "sha256:bb"], [{"aux": {"Digest": "sha256:dd"}}])
    with pytest.raises(PushError, match="during the push: what was pushed may not be what was scanned"):
        pusher_for(engine).push(Target("r/app", "1"), "sha256:aa")


def test_an_error_in_the_push_stream_is_an_error():
    engine = FakeEngine(["sha256:aa"], [{"status": "Pushing"},
                                        {"errorDetail": {"message": "denied: no"}, "error": "denied: no"}])
    with pytest.raises(PushError) as err:
        pusher_for(engine).push(Target("r/app", "1"), "sha256:aa")
    assert str(err.value) == "r/app:1: push failed: denied: no"
