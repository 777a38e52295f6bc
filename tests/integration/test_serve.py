"""`layerscan serve` in front of the real docker-registry, pushed to by the real Docker engine
(`docker push`) and by `skopeo copy`: a leaky image is refused before its tag exists (the
client prints why), a clean one lands with its report attached; the same over htpasswd + TLS.

The proxy listens on 127.0.0.1:PORT over plain HTTP: dockerd treats 127.0.0.0/8 as an insecure
registry, so the engine pushes there without configuration.
"""
from __future__ import annotations

import json
import subprocess

import pytest

from tests import imagekit as ik
from tests import secrets_catalog as catalog
from tests.integration.serving import Serve
from tests.services import _which

pytestmark = pytest.mark.integration

CLEAN = "FROM layerscan-test/busybox:1\nRUN echo hello > /hello.txt\n"
LEAKY = "FROM layerscan-test/busybox:1\nCOPY app.env /app/.env\nRUN rm /app/.env\n"
LEAKY_FILES = {"app.env": f"AWS_ACCESS_KEY_ID={catalog.AWS_KEY_ID}\n"}
ACCEPT = ", ".join(["application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.oci.image.index.v1+json"])
REPORT_TYPE = "application/vnd.layerscan.report.v1+json"


@pytest.fixture
def serve_factory(tmp_path):
    started: list[Serve] = []

    def start(registry, *args: str, stdin=None) -> Serve:
        extra = ("--ca-file", str(registry.ca_cert)) if registry.tls else ()
        serve = Serve(registry.url, tmp_path, *extra, *args, stdin=stdin).start()
        started.append(serve)
        return serve

    yield start
    for serve in started:
        serve.stop()


def docker(engine, *args: str, stdin=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([_which("docker"), *args], env=engine.env(), capture_output=True, text=True,
                          input=stdin, timeout=timeout)


def skopeo_copy(source: str, dest: str, *args: str) -> subprocess.CompletedProcess:
    argv = [_which("skopeo"), "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", *args,
            source, f"docker://{dest}"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def manifest(registry, repository: str, reference: str) -> tuple[int, dict, dict]:
    status, headers, body = registry.request(f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT})
    return status, headers, (json.loads(body) if status == 200 else {})


def attached_report(registry, repository: str, digest: str) -> dict:
    """The report attached to `digest`, by the referrers fallback tag (docker-registry 2.8 has no API)."""
    status, _, index = manifest(registry, repository, "sha256-" + digest.split(":", 1)[1])
    assert status == 200, f"no referrers tag for {digest}"
    [desc] = [d for d in index["manifests"] if d.get("artifactType") == REPORT_TYPE]
    _, _, artifact = manifest(registry, repository, desc["digest"])
    assert artifact["subject"]["digest"] == digest
    assert artifact["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    [layer] = artifact["layers"]
    status, _, body = registry.request(f"/v2/{repository}/blobs/{layer['digest']}")
    assert status == 200
    return json.loads(body)


def archive(tmp_path, name: str, *secret_files: tuple[str, bytes]) -> str:
    spec = ik.ImageSpec([ik.LayerSpec("ADD base /", [ik.file("/etc/base.txt", b"base\n")]),
                         ik.LayerSpec("ADD app /app", [ik.file(f"/app/{name}.txt", name.encode())]),
                         *[ik.LayerSpec(f"ADD {p}", [ik.file(p, data)]) for p, data in secret_files]],
                        tags=[f"x/{name}:1"])
    path = tmp_path / f"{name}.tar"
    ik.write_docker_archive_legacy(spec, path, compression="gzip")
    return f"docker-archive:{path}"


def test_docker_push_leaky_is_denied_clean_lands_with_its_report(build_image, docker_engine, registry, serve_factory):
    serve = serve_factory(registry)
    leaky = f"{serve.host}/serve/leaky:1"
    build_image(LEAKY, files=LEAKY_FILES, tag=leaky)
    proc = docker(docker_engine, "push", leaky)
    assert proc.returncode != 0
    shown = proc.stdout + proc.stderr
    assert "denied: layerscan: 1 finding(s) at or above low: aws-access-key-id in /app/.env (layer 1, deleted)" \
        in shown, shown
    assert catalog.AWS_KEY_ID not in shown + serve.log_text()
    assert manifest(registry, "serve/leaky", "1")[0] == 404

    clean = f"{serve.host}/serve/clean:1"
    build_image(CLEAN, tag=clean)
    proc = docker(docker_engine, "push", clean)
    assert proc.returncode == 0, proc.stderr
    status, headers, _ = manifest(registry, "serve/clean", "1")
    assert status == 200
    digest = headers["Docker-Content-Digest"]
    report = attached_report(registry, "serve/clean", digest)
    assert report["images"][0]["digest"] == digest and report["findings"] == []

    decisions = {d["image"]: d for d in serve.events("decision")}
    assert decisions["serve/leaky:1"]["verdict"] == "deny"
    assert decisions["serve/leaky:1"]["findings"] == {"critical": 1}
    assert (decisions["serve/clean:1"]["verdict"], decisions["serve/clean:1"]["digest"]) == ("pass", digest)
    assert serve.metric("layerscan_serve_decisions_total", verdict="deny") == 1
    assert serve.metric("layerscan_serve_decisions_total", verdict="pass") == 1
    assert serve.metric("layerscan_serve_scan_seconds_count") == 2


def test_htpasswd_and_tls_upstream_with_the_clients_credentials(registry_factory, serve_factory, tmp_path,
                                                               build_image, docker_engine):
    upstream = registry_factory(auth=True, tls=True)
    serve = serve_factory(upstream)
    creds = f"--dest-creds={upstream.credentials}"
    proc = skopeo_copy(archive(tmp_path, "leaky", ("/app/.env", f"KEY={catalog.GITHUB_PAT}\n".encode())),
                       f"{serve.host}/sec/leaky:1", creds)
    assert proc.returncode != 0
    assert "denied: layerscan: 1 finding(s) at or above low: github-pat in /app/.env (layer 2, present)" \
        in proc.stderr, proc.stderr
    assert catalog.GITHUB_PAT not in proc.stderr + serve.log_text()
    assert manifest(upstream, "sec/leaky", "1")[0] == 404

    anonymous = skopeo_copy(archive(tmp_path, "anon"), f"{serve.host}/sec/anon:1")
    assert anonymous.returncode != 0 and "authentication required" in anonymous.stderr.lower(), anonymous.stderr

    proc = skopeo_copy(archive(tmp_path, "clean"), f"{serve.host}/sec/clean:1", creds)
    assert proc.returncode == 0, proc.stderr
    status, headers, _ = manifest(upstream, "sec/clean", "1")
    assert status == 200
    assert attached_report(upstream, "sec/clean", headers["Docker-Content-Digest"])["findings"] == []

    # the engine: `docker login` and `docker push` through the proxy, Basic auth passed along as is
    login = docker(docker_engine, "login", "--username", upstream.username, "--password-stdin", serve.host,
                   stdin=upstream.password)
    assert login.returncode == 0, login.stderr
    name = f"{serve.host}/sec/engine:1"
    build_image(CLEAN, tag=name)
    proc = docker(docker_engine, "push", name)
    assert proc.returncode == 0, proc.stderr
    assert manifest(upstream, "sec/engine", "1")[0] == 200


def test_policy_per_repository_and_on_timeout(registry, serve_factory, tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text("serve:\n  repositories:\n    - match: sandbox/*\n      fail-on: never\n")
    serve = serve_factory(registry, "--config", str(settings))
    leaky = archive(tmp_path, "pol", ("/app/.env", f"AWS_ACCESS_KEY_ID={catalog.AWS_KEY_ID}\n".encode()))
    assert skopeo_copy(leaky, f"{serve.host}/sandbox/leaky:1").returncode == 0
    assert manifest(registry, "sandbox/leaky", "1")[0] == 200
    assert skopeo_copy(leaky, f"{serve.host}/prod/leaky:1").returncode != 0
    assert manifest(registry, "prod/leaky", "1")[0] == 404

    slow = serve_factory(registry, "--scan-timeout", "0.001", "--no-cache")
    proc = skopeo_copy(archive(tmp_path, "slow"), f"{slow.host}/timed/deny:1")
    assert proc.returncode != 0 and "not scanned in time" in proc.stderr and "on-timeout: deny" in proc.stderr
    assert manifest(registry, "timed/deny", "1")[0] == 404
    lenient = serve_factory(registry, "--scan-timeout", "0.001", "--no-cache", "--on-timeout", "allow")
    assert skopeo_copy(archive(tmp_path, "slow2"), f"{lenient.host}/timed/allow:1").returncode == 0
    assert manifest(registry, "timed/allow", "1")[0] == 200
    [decision] = lenient.events("decision")
    assert decision["verdict"] == "timeout-allow" and "on-timeout: allow" in decision["message"]


def test_push_and_scan_attach_add_to_one_referrers_index(build_image, docker_engine, registry, run_cli):
    """`layerscan push --attach` then `layerscan scan --attach`: two reports on one image, the
    fallback tag's index updated, not overwritten."""
    name = f"{registry.host}/attach/clean:1"
    build_image(CLEAN, tag=name)
    pushed = run_cli("push", "--attach", "--no-progress", name, env=docker_engine.env())
    assert pushed.returncode == 0, pushed.stderr
    digest = manifest(registry, "attach/clean", "1")[1]["Docker-Content-Digest"]
    assert f"layerscan push: report attached to {name}: sha256:" in pushed.stderr
    assert f"(tag sha256-{digest.split(':')[1]})" in pushed.stderr

    scanned = run_cli("scan", "--attach", "--format", "sarif", "--no-progress", f"registry:{name}")
    assert scanned.returncode == 0, scanned.stderr
    assert f"layerscan: report attached to registry:{name}: sha256:" in scanned.stderr
    _, _, index = manifest(registry, "attach/clean", "sha256-" + digest.split(":")[1])
    kinds = sorted(d["artifactType"] for d in index["manifests"])
    assert kinds == ["application/vnd.layerscan.report.sarif.v1+json", REPORT_TYPE]
    assert attached_report(registry, "attach/clean", digest)["images"][0]["ref"] == f"docker-daemon:{name}"

    leaky = f"{registry.host}/attach/leaky:1"
    build_image(LEAKY, files=LEAKY_FILES, tag=leaky)
    copied = docker(docker_engine, "push", leaky)  # straight to the registry: no gate on the way
    assert copied.returncode == 0, copied.stderr
    refused = run_cli("scan", "--attach", "--no-progress", f"registry:{leaky}")
    assert refused.returncode == 1 and "report attached" not in refused.stderr
    leaky_digest = manifest(registry, "attach/leaky", "1")[1]["Docker-Content-Digest"]
    assert manifest(registry, "attach/leaky", "sha256-" + leaky_digest.split(":")[1])[0] == 404


def test_an_index_and_every_manifest_it_lists_are_gated(registry, serve_factory, tmp_path):
    def index(name: str, arm_files: dict) -> str:
        amd = ik.ImageSpec([ik.LayerSpec("ADD a /", [ik.file("/a.txt", b"amd64\n")])], architecture="amd64")
        arm = ik.ImageSpec([ik.LayerSpec("ADD a /", [ik.file(p, d) for p, d in {"/a.txt": b"arm64\n", **arm_files}.items()])],
                           architecture="arm64")
        path = tmp_path / f"{name}.oci.tar"
        ik.write_oci_archive(ik.IndexSpec([amd, arm], tags=[f"x/{name}:1"]), path)
        return f"oci-archive:{path}"

    serve = serve_factory(registry)
    leaky = index("multileaky", {"/app/.env": f"AWS_ACCESS_KEY_ID={catalog.AWS_KEY_ID}\n".encode()})
    proc = skopeo_copy(leaky, f"{serve.host}/multi/leaky:1", "--all")
    assert proc.returncode != 0 and "denied: layerscan: 1 finding(s)" in proc.stderr, proc.stderr
    assert manifest(registry, "multi/leaky", "1")[0] == 404

    proc = skopeo_copy(index("multiclean", {}), f"{serve.host}/multi/clean:1", "--all")
    assert proc.returncode == 0, proc.stderr
    status, headers, doc = manifest(registry, "multi/clean", "1")
    assert status == 200 and len(doc["manifests"]) == 2
    [whole] = [d for d in serve.events("decision") if d["image"] == "multi/clean:1"]
    assert whole["verdict"] == "pass" and whole["digest"] == headers["Docker-Content-Digest"]
    report = attached_report(registry, "multi/clean", whole["digest"])
    assert sorted(i["platform"] for i in report["images"]) == ["linux/amd64", "linux/arm64"]


def test_the_proxy_reads_with_its_own_upstream_account_when_given_one(registry_factory, serve_factory, tmp_path):
    upstream = registry_factory(auth=True, tls=True)
    serve = serve_factory(upstream, "--upstream-username", upstream.username, "--upstream-password-stdin",
                          stdin=upstream.password)
    proc = skopeo_copy(archive(tmp_path, "own"), f"{serve.host}/own/clean:1", f"--dest-creds={upstream.credentials}")
    assert proc.returncode == 0, proc.stderr
    status, headers, _ = manifest(upstream, "own/clean", "1")
    assert status == 200
    assert attached_report(upstream, "own/clean", headers["Docker-Content-Digest"])["findings"] == []
    assert upstream.password not in serve.log_text()
    # the proxy's account, not the client's, reads the blobs: a wrong password fails the scan
    wrong = serve_factory(upstream, "--upstream-username", upstream.username, "--upstream-password-stdin",
                          stdin="not-the-password")
    proc = skopeo_copy(archive(tmp_path, "own2"), f"{wrong.host}/own/other:1", f"--dest-creds={upstream.credentials}")
    assert proc.returncode != 0
    assert "not scanned" in proc.stderr and "credentials from --upstream-username" in proc.stderr, proc.stderr
    assert manifest(upstream, "own/other", "1")[0] == 404
