"""Scan images in the real Docker engine: by name and by `docker-daemon:`, streamed, no daemon copy.

The image is built from a Dockerfile by the session's engine; the engine's `docker save` stream is
scanned as it passes. The same image saved to a tarball is the reference: both scans must find
exactly the same findings (same fingerprints, statuses, layers).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests import secrets_catalog as catalog
from tests import services
from tests.integration.runcli import REPO_ROOT, assert_one_line_error, cli, report, sha

pytestmark = pytest.mark.integration

NAME = "layerscan-test/daemon-leaky:1"
DOCKERFILE = f"""\
FROM {services.BASE_IMAGE}
ARG NPM_TOKEN
RUN echo "//registry.npmjs.org/:_authToken=${{NPM_TOKEN}}" > /root/.npmrc
RUN mkdir -p /app && head -c 1500000 /dev/urandom > /app/noise && \\
    printf 'AWS_ACCESS_KEY_ID=%s\\nAWS_SECRET_ACCESS_KEY=%s\\n' {catalog.AWS_KEY_ID} {catalog.AWS_SECRET_KEY} > /app/.env
RUN rm /app/.env
ENV GITHUB_TOKEN={catalog.GITHUB_PAT}
"""


def comparable(doc: dict) -> list[tuple]:
    return sorted((f["fingerprint"], f["status"], f["location"]["path"], (f["layer"] or {}).get("diff_id"),
                   (f["removed_in"] or {}).get("index")) for f in doc["findings"])


@pytest.fixture(scope="module")
def engine_env(docker_engine) -> dict:
    return {"DOCKER_HOST": docker_engine.host}


@pytest.fixture(scope="module")
def leaky(build_image):
    return build_image(DOCKERFILE, tag=NAME, buildargs={"NPM_TOKEN": catalog.NPM_TOKEN})


@pytest.fixture(scope="module")
def archive_report(leaky, save_image, tmp_path_factory) -> dict:
    path = save_image(leaky, tmp_path_factory.mktemp("daemon") / "leaky.tar")
    return report(cli("--format", "json", "--no-cache", path))


@pytest.fixture(scope="module")
def by_name(leaky, engine_env) -> dict:
    return report(cli("--format", "json", "--no-cache", NAME, env=engine_env))


def test_scan_by_name_streams_the_image_from_the_engine(by_name, leaky):
    image = by_name["images"][0]
    assert (image["ref"], image["source"], image["platform"]) == (NAME, "daemon", "linux/amd64")
    assert [layer["diff_id"] for layer in image["layers"]] == leaky.attrs["RootFS"]["Layers"]
    found = {(f["secret"]["sha256"], f["location"]["kind"], f["status"]) for f in by_name["findings"]}
    assert (sha(catalog.AWS_KEY_ID), "file", "deleted") in found
    assert (sha(catalog.NPM_TOKEN), "file", "present") in found
    assert (sha(catalog.NPM_TOKEN), "history", "history") in found
    assert (sha(catalog.GITHUB_PAT), "env", "config") in found
    deleted = next(f for f in by_name["findings"] if f["secret"]["sha256"] == sha(catalog.AWS_KEY_ID))
    assert "rm /app/.env" in deleted["removed_in"]["created_by"]


def test_the_stream_finds_exactly_what_the_saved_tarball_holds(by_name, archive_report):
    assert comparable(by_name) == comparable(archive_report)
    assert len(by_name["findings"]) >= 5


def test_docker_daemon_transport(leaky, engine_env, by_name):
    doc = report(cli("--format", "json", f"docker-daemon:{NAME}", env=engine_env))
    assert doc["images"][0]["ref"] == f"docker-daemon:{NAME}"
    assert comparable(doc) == comparable(by_name)


def test_the_current_docker_context_is_honoured(leaky, docker_engine, tmp_path):
    """No DOCKER_HOST: the engine comes from ~/.docker/config.json's currentContext."""
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"lstest").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "lstest", "Metadata": {},
                                                "Endpoints": {"docker": {"Host": docker_engine.host,
                                                                         "SkipTLSVerify": False}}}))
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "lstest"}))
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"} | {"DOCKER_CONFIG": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "scanner", "--no-progress", "--format", "json", f"docker-daemon:{NAME}"],
                          capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["images"][0]["source"] == "daemon"


def test_an_image_the_engine_lacks(engine_env):
    assert_one_line_error(cli("docker-daemon:layerscan-test/no-such-image:1", env=engine_env),
                          "no such image in the Docker engine")


def test_a_bare_name_neither_in_the_engine_nor_reachable(engine_env):
    name = f"127.0.0.1:{services.free_port()}/layerscan-test/nowhere:1"
    assert_one_line_error(cli(name, env=engine_env), "not in the local Docker engine", "cannot reach registry")


def test_no_engine_at_docker_host():
    assert_one_line_error(cli(f"docker-daemon:{NAME}", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}),
                          "the local Docker engine is not reachable (DOCKER_HOST=unix:///nonexistent/docker.sock")


def test_big_layers_are_scanned_as_they_pass_and_small_ones_kept(leaky, docker_engine, monkeypatch):
    """In-process: which members went to the sink (scanned in the stream) and which stayed in memory."""
    from scanner.models import BlobKind
    from scanner.sources.daemon import STREAM_AT, DaemonSource

    passed: list[tuple[str, int]] = []

    class Sink:
        def begin(self, label: str, total_bytes: int) -> None:
            pass

        def layer(self, stream, what: str, expected_diff_id) -> None:
            passed.append((what, len(stream.read())))

        def end(self) -> None:
            pass

    monkeypatch.setenv("DOCKER_HOST", docker_engine.host)
    image = next(DaemonSource(NAME, NAME, Sink()).images())
    kinds = [layer.blob.kind for layer in image.layers]
    assert kinds.count(BlobKind.STREAMED) == len(passed) >= 2  # busybox and the noise layer
    assert all(size >= STREAM_AT for _, size in passed)
    assert set(kinds) == {BlobKind.STREAMED, BlobKind.MEMORY}


# --- Podman, through its Docker-compatible API socket -----------------------------------------

PODMAN_RUN_DIRS = (Path("/run/containers/networks"), Path("/run/containers"), Path("/run/libpod"))  # deepest first


def _start_podman(root: Path) -> tuple[subprocess.Popen, list]:
    binary = shutil.which("podman")
    if binary is None:
        raise services.ServiceUnavailable("podman not found (apt-get install podman)")
    base = [binary, "--root", str(root / "root"), "--runroot", str(root / "run"), "--tmpdir", str(root / "tmp"),
            "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    sock = root / "podman.sock"
    with open(root / "podman.log", "wb") as log:
        proc = subprocess.Popen(base + ["system", "service", "--time=0", f"unix://{sock}"], stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    import docker

    for _ in range(300):
        if proc.poll() is not None:
            raise services.ServiceUnavailable(f"podman system service exited: {(root / 'podman.log').read_text()[-800:]}")
        if sock.exists():
            try:
                docker.DockerClient(base_url=f"unix://{sock}", version="auto", timeout=5).ping()
                return proc, base
            except docker.errors.DockerException:
                pass
        time.sleep(0.1)
    proc.kill()
    raise services.ServiceUnavailable("podman's API socket did not answer in 30 s")


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """(podman argv prefix, DOCKER_HOST) of a private `podman system service` (vfs storage)."""
    if shutil.which("podman") is None:  # not in scripts/install-deps.sh: absent is a skip, even under CI
        pytest.skip("podman is not installed (apt-get install podman)")
    created = [d for d in PODMAN_RUN_DIRS if not d.exists()]
    root = Path(tempfile.mkdtemp(prefix="ls-pm-", dir="/tmp"))
    proc = None
    try:
        proc, base = services.require(lambda: _start_podman(root))
        yield base, f"unix://{root / 'podman.sock'}"
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(root, ignore_errors=True)
        for directory in created:
            shutil.rmtree(directory, ignore_errors=True)


def test_podman_through_its_docker_api_socket(podman, tmp_path):
    from tests import imagekit as ik

    base, host = podman
    spec = ik.ImageSpec([ik.LayerSpec("RUN write", [ik.dir("app"), ik.file("app/.env", f"K={catalog.AWS_KEY_ID}\n".encode())]),
                         ik.LayerSpec("RUN rm", [ik.whiteout("app/.env")])],
                        tags=["localhost/podman-leaky:1"], env=[f"GITHUB_TOKEN={catalog.GITHUB_PAT}"])
    path = tmp_path / "podman.tar"
    ik.write_docker_archive_legacy(spec, path)
    subprocess.run(base + ["load", "-i", str(path)], check=True, capture_output=True, timeout=120)
    from_podman = report(cli("--format", "json", "docker-daemon:localhost/podman-leaky:1", env={"DOCKER_HOST": host}))
    from_file = report(cli("--format", "json", path))
    assert from_podman["images"][0]["source"] == "daemon"
    assert comparable(from_podman) == comparable(from_file)
    assert {f["status"] for f in from_podman["findings"]} == {"deleted", "config"}
