"""`layerscan find --secrets FILE IMAGE...`: every sighting of a known value, never the value itself."""
from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from scanner.cli import main
from scanner.detectors.known import base64_forms, url_forms
from scanner.redact import redact
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import write_image

REPO = Path(__file__).resolve().parents[2]
PAT, PASSWORD, AWS = sc.GITHUB_PAT, sc.DB_PASSWORD, sc.AWS_KEY_ID
NEVER_SEEN = "n0t-in-any-image-Zq81kW"
BASE = ik.LayerSpec("ADD rootfs.tar / # buildkit", [ik.dir("/etc"), ik.file("/etc/os-release", b"ID=test\n")])


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def image_a() -> ik.ImageSpec:
    """The token in a present file; the password URL-encoded in a connection string."""
    return ik.ImageSpec([BASE, ik.LayerSpec("COPY app /app # buildkit", [
        ik.dir("/app"), ik.file("/app/.env", f"GITHUB_TOKEN={PAT}\n".encode()),
        ik.file("/app/db.url", f"postgres://app:{quote(PASSWORD, safe='')}@db:5432/app\n".encode())])],
        tags=["find/a:1"])


def image_b() -> ik.ImageSpec:
    """The token inside a jar and base64-encoded in a registry login; the AWS key in Env."""
    login = json.dumps({"auths": {"ghcr.io": {"auth": base64.b64encode(f"ci:{PAT}".encode()).decode()}}})
    return ik.ImageSpec([BASE, ik.LayerSpec("COPY build /app # buildkit", [
        ik.dir("/app/lib"), ik.file("/app/lib/app.jar", ik.pack_zip({
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\n",
            "BOOT-INF/classes/application.properties": f"github.token={PAT}\n".encode()})),
        ik.dir("/root/.docker"), ik.file("/root/.docker/config.json", login.encode(), mode=0o600)])],
        tags=["find/b:1"], env=["PATH=/usr/bin", f"AWS_ACCESS_KEY_ID={AWS}"])


def image_c() -> ik.ImageSpec:
    """The token only in a layer that a later one deleted."""
    return ik.ImageSpec([BASE,
                         ik.LayerSpec("COPY .env /app/.env # buildkit", [ik.file("/app/.env", f"T={PAT}\n".encode())]),
                         ik.LayerSpec("RUN /bin/sh -c rm /app/.env # buildkit", [ik.whiteout("/app/.env")])],
                        tags=["find/c:1"])


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list[str]:
    tmp = tmp_path_factory.mktemp("find")
    return [str(write_image(tmp, image_a(), "docker-legacy", "none", "a")[0]),
            str(write_image(tmp, image_b(), "oci-archive", "gzip", "b")[0]),
            str(write_image(tmp, image_c(), "oci-layout", "zstd", "c")[0])]


@pytest.fixture
def secrets_file(tmp_path) -> Path:
    path = tmp_path / "leaked.txt"
    path.write_text(f"{PAT}\n{PASSWORD}\nsha256:{sha(AWS)}\n{NEVER_SEEN}\n")
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main(["find", *args, "--no-progress"])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def leaks(text: str) -> list[str]:
    """Every given value, and any form or partial view of it, that `text` shows."""
    values = [PAT, PASSWORD, AWS, NEVER_SEEN]
    shown = values + [redact(v) for v in values] + [quote(PASSWORD, safe="")]
    shown += [f.decode() for v in values for f in base64_forms(v.encode()) + url_forms(v.encode())]
    return [s for s in shown if s in text]


def test_found_in_all_three_images_with_the_right_layers(capsys, images, secrets_file):
    code, out, err = run(capsys, "--secrets", str(secrets_file), *images, "--format", "json")
    assert code == 1
    doc = json.loads(out)
    got = sorted(((images.index(f["image"]), f["rule_id"], f["layer"] and f["layer"]["index"], f["location"]["path"],
                   f["location"]["inner_path"], f["status"], f["removed_in"] and f["removed_in"]["index"],
                   f["secret"]["sha256"]) for f in doc["findings"]), key=repr)
    assert got == sorted([
        (0, "known-secret", 1, "/app/.env", None, "present", None, sha(PAT)),
        (0, "known-secret-urlencoded", 1, "/app/db.url", None, "present", None, sha(PASSWORD)),
        (1, "known-secret", 1, "/app/lib/app.jar", "BOOT-INF/classes/application.properties", "present", None, sha(PAT)),
        (1, "known-secret-base64", 1, "/root/.docker/config.json", None, "present", None, sha(PAT)),
        (1, "known-secret", None, "Env.AWS_ACCESS_KEY_ID", None, "config", None, sha(AWS)),
        (2, "known-secret", 1, "/app/.env", None, "deleted", 2, sha(PAT)),
    ], key=repr)
    deleted = next(f for f in doc["findings"] if f["status"] == "deleted")
    assert deleted["layer"]["created_by"] == "COPY .env /app/.env # buildkit"
    assert deleted["removed_in"]["created_by"] == "RUN /bin/sh -c rm /app/.env # buildkit"
    assert {f["secret"]["redacted"] for f in doc["findings"]} == {
        "[known secret, line 1]", "[known secret, line 2]", "[known secret, line 3]"}
    assert all(f["severity"] == "critical" and "value" not in f["secret"] for f in doc["findings"])
    assert err == "layerscan find: 3 of 4 secret(s) seen, 6 sighting(s) in 3 image(s); not seen: line 4\n"
    assert leaks(out) == [] and leaks(err) == []


@pytest.mark.parametrize("fmt", ["table", "json", "sarif", "html"])
def test_no_value_in_any_format(capsys, images, secrets_file, fmt):
    code, out, err = run(capsys, "--secrets", str(secrets_file), *images, "--format", fmt, "--group-by", "secret")
    assert code == 1
    assert leaks(out) == [] and leaks(err) == []
    assert "known secret, line 1" in out


def test_grouped_by_secret(capsys, images, secrets_file):
    _, out, _ = run(capsys, "--secrets", str(secrets_file), *images, "-f", "json", "--group-by", "secret")
    groups = {g["sha256"]: g for g in json.loads(out)["secrets"]}
    assert set(groups) == {sha(PAT), sha(PASSWORD), sha(AWS)}
    assert groups[sha(PAT)]["images"] == images and len(groups[sha(PAT)]["sightings"]) == 4
    assert groups[sha(PAT)]["redacted"] == "[known secret, line 1]"
    assert groups[sha(AWS)]["images"] == [images[1]]


def test_exit_0_when_nothing_is_seen(capsys, images, tmp_path):
    path = tmp_path / "other.txt"
    path.write_text(NEVER_SEEN + "\n")
    code, out, err = run(capsys, "--secrets", str(path), *images)
    assert code == 0
    assert "0 finding(s)" in out and err.endswith("0 of 1 secret(s) seen, 0 sighting(s) in 3 image(s); not seen: line 1\n")


def test_images_from_a_file(capsys, images, secrets_file, tmp_path):
    listing = tmp_path / "images.txt"
    listing.write_text(f"# the three images\n{images[0]}\n\n  {images[1]}  # with a comment\n")
    code, out, _ = run(capsys, "--secrets", str(secrets_file), images[2], "--images-from", str(listing), "-f", "json")
    assert code == 1
    assert [i["ref"] for i in json.loads(out)["images"]] == [images[2], images[0], images[1]]


def test_a_bad_secrets_file_is_one_line_that_names_the_line(capsys, images, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text(f"{PAT}\nshort\n")
    code, out, err = run(capsys, "--secrets", str(path), images[0])
    assert (code, out) == (2, "")
    assert err == f"layerscan: error: --secrets {path}, line 2: a value must be at least 8 bytes long\n"
    assert leaks(err) == [] and "short" not in err.replace("--secrets", "")


def test_find_has_no_reveal_and_no_gate(capsys, images, secrets_file):
    code, _, err = run(capsys, "--secrets", str(secrets_file), images[0], "--reveal")
    assert code == 2 and "--reveal" in err


def test_secrets_from_stdin_in_a_real_process(images, secrets_file):
    proc = subprocess.run([sys.executable, "-m", "scanner", "find", "--secrets", "-", images[2], "--no-progress"],
                          input=secrets_file.read_bytes(), capture_output=True, cwd=REPO, timeout=300)
    assert proc.returncode == 1
    out, err = proc.stdout.decode(), proc.stderr.decode()
    assert "deleted in 2" in out and "[known secret, line 1]" in out
    assert leaks(out) == [] and leaks(err) == []
