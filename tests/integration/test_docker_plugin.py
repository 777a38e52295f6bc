"""`docker layerscan IMAGE`: the plugin installed by `layerscan docker-plugin install` into a
private DOCKER_CONFIG and run by the real Docker CLI (a tarball scan needs no engine)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateline import gate_only
from tests.integration.runcli import REPO_ROOT

SAMPLE = REPO_ROOT / "sample_images" / "leaky-app.tar"


@pytest.fixture(scope="module")
def docker_env(tmp_path_factory) -> dict:
    if not shutil.which("docker"):
        if os.environ.get("CI") == "true":
            pytest.fail("the docker CLI is not installed (scripts/install-deps.sh installs docker.io)")
        pytest.skip("the docker CLI is not installed")
    config = tmp_path_factory.mktemp("docker-config")
    env = {**os.environ, "DOCKER_CONFIG": str(config), "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    done = subprocess.run([sys.executable, "-m", "scanner", "docker-plugin", "install"], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (config / "cli-plugins" / "docker-layerscan").exists()
    return env


def docker(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_docker_lists_the_plugin(docker_env):
    helped = docker(docker_env, "--help")
    assert helped.returncode == 0
    assert any(line.split()[:1] == ["layerscan*"] for line in helped.stdout.splitlines()), helped.stdout
    info = docker(docker_env, "info", "--format", "{{json .ClientInfo.Plugins}}")
    plugins = {p["Name"]: p for p in json.loads(info.stdout.strip().splitlines()[0])}
    assert plugins["layerscan"]["Vendor"] == "layerscan" and "Err" not in plugins["layerscan"]


def test_docker_layerscan_scans_a_tarball_without_an_engine(docker_env):
    done = docker(docker_env, "layerscan", str(SAMPLE), "--no-progress", "-f", "json")
    assert (done.returncode, gate_only(done.stderr)) == (1, "FAIL"), done.stderr
    findings = json.loads(done.stdout)["findings"]
    assert {"github-pat", "aws-access-key-id"} <= {f["rule_id"] for f in findings}


def test_docker_layerscan_help_and_errors(docker_env):
    helped = docker(docker_env, "layerscan", "--help")
    assert helped.returncode == 0 and "docker-plugin" in helped.stdout
    missing = docker(docker_env, "layerscan", "--no-progress", str(SAMPLE) + ".missing")
    assert missing.returncode == 2 and missing.stderr.startswith("layerscan: error: ")
