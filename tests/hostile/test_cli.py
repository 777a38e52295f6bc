"""The real process on hostile images: `python -m scanner` prints no traceback, exactly one
`layerscan: error:` line and exits 2 when it cannot read an image whole; writes nothing in its
cwd, HOME or TMPDIR; and finds the secret planted beside hostile content."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit
from tests.gateline import gate_only

REPO = Path(__file__).resolve().parents[2]
ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()
BESIDE = kit.member("app/.env", ENV)


def layerscan(args: list[str], tmp_path: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    sandbox = tmp_path / "sandbox"
    for d in ("cwd", "home", "tmp"):
        (sandbox / d).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LAYERSCAN_DEBUG"}
    env.update(HOME=str(sandbox / "home"), TMPDIR=str(sandbox / "tmp"), XDG_CACHE_HOME=str(sandbox / "home" / "cache"),
               PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "scanner", *args], cwd=sandbox / "cwd", env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in done.stderr
    assert [p for p in sandbox.rglob("*") if p.is_file()] == []  # no cache, no temp file, nothing extracted
    return done


def hostile_image(tmp_path: Path, name: str, tar: bytes, **spec) -> Path:
    path, _ = kit.write(tmp_path, kit.image_of(tar, **spec), name=name)
    return path


CASES = {
    "pax-chain": (kit.tar(*[kit.pax(kit.pax_record(b"comment", b"x"))] * 5000, BESIDE),
                  "layer 0: corrupt tar stream (over 64 extended headers in a row at byte 65536)"),
    "base256-size": (kit.tar(kit.header("big", type_=b"Z", size_field=b"\x80\0\0\0\x7f" + b"\xff" * 7), BESIDE),
                     "layer 0: corrupt tar stream (unexpected end of data)"),
    "pax-sparse-map": (kit.tar(kit.pax(kit.pax_record(b"GNU.sparse.map", b"a,b")), kit.member("x"), BESIDE),
                       "layer 0: corrupt tar stream (malformed number '' in a PAX header in the entry at byte 1024)"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_layer_is_one_error_line_and_exit_2(tmp_path, unit_rules_path, name):
    tar, message = CASES[name]
    path = hostile_image(tmp_path, name, tar)
    done = layerscan([str(path), "--rules", str(unit_rules_path), "--no-cache"], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"layerscan: error: {message}\n")


def test_config_nested_100000_deep(tmp_path, unit_rules_path):
    path = hostile_image(tmp_path, "deep", kit.tar(BESIDE))
    kit.rewrite_oci(path, change_config=lambda config: b"[" * 100_000 + b"]" * 100_000)
    done = layerscan([str(path), "--rules", str(unit_rules_path), "--no-cache"], tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("layerscan: error: ")
    assert done.stderr.endswith(": JSON nested deeper than 64 levels\n")


def test_limits_exceeded_are_exit_2_never_clean(tmp_path, unit_rules_path):
    path = hostile_image(tmp_path, "many", kit.many_files(2000) + kit.END)
    base = [str(path), "--rules", str(unit_rules_path), "--no-cache"]
    assert layerscan(base, tmp_path).returncode == 0  # clean within the defaults
    done = layerscan(base + ["--max-image-files", "1000"], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", (
        "layerscan: error: incomplete scan: layer 0 holds over 1000 files and other tar entries "
        "(--max-image-files); nothing reported\n"))
    done = layerscan(base + ["--max-image-bytes", "100K"], tmp_path)
    assert (done.returncode, done.stderr) == (2, "layerscan: error: incomplete scan: layer 0 holds over 102400 "
                                                 "bytes of layers (--max-image-bytes); nothing reported\n")


def test_timeout_is_exit_2(tmp_path, unit_rules_path):
    path = hostile_image(tmp_path, "slow", kit.many_files(200_000, b"x") + kit.END)
    done = layerscan([str(path), "--rules", str(unit_rules_path), "--no-cache", "--timeout", "0.5"], tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", "layerscan: error: incomplete scan: the --timeout of 0.5 s ran out in layer 0; nothing reported\n")


def test_traversal_links_and_devices_beside_a_secret(tmp_path, unit_rules_path):
    tar = kit.tar(kit.member("../../../../tmp/escaped.env", ENV), kit.member("/root/abs.env", ENV),
                  kit.header("app/up", type_=tarfile.SYMTYPE, linkname="../../../../../../"),
                  kit.header("app/loop", type_=tarfile.SYMTYPE, linkname="loop"),
                  kit.header("app/h", type_=tarfile.LNKTYPE, linkname="../../etc/shadow"),
                  kit.header("dev/sda", type_=tarfile.BLKTYPE), kit.header("run/fifo", type_=tarfile.FIFOTYPE),
                  kit.member(b"app/\xff.env", ENV), BESIDE)
    path = hostile_image(tmp_path, "escape", tar)
    done = layerscan([str(path), "--rules", str(unit_rules_path), "--no-cache", "-f", "json"], tmp_path)
    assert (done.returncode, gate_only(done.stderr)) == (1, "FAIL")
    doc = json.loads(done.stdout)
    assert [f["location"]["path"] for f in doc["findings"] if f["rule_id"] == "unit-aws-key-id"] == [
        "/tmp/escaped.env", "/root/abs.env", "/app/\\xff.env", "/app/.env"]
    assert doc["images"][0]["skipped"] == [
        {"layer": 0, "path": "/app/h", "reason": "hardlink to /etc/shadow, which this layer does not hold"}]
    assert sc.AWS_KEY_ID not in done.stdout  # never without --reveal
    assert not Path("/tmp/escaped.env").exists()


def test_table_and_sarif_of_a_hostile_image(tmp_path, unit_rules_path):
    tar = kit.tar(kit.member(b"app/caf\xe9\x1b[31m.env", ENV, uname=b"\xff"), kit.member("weird", ENV, type_=b"Z"),
                  BESIDE) + kit.tar(kit.member("hidden.env", ENV))
    path = hostile_image(tmp_path, "odd", tar)
    for fmt in ("table", "sarif", "json"):
        done = layerscan([str(path), "--rules", str(unit_rules_path), "--no-cache", "-f", fmt], tmp_path)
        assert (done.returncode, gate_only(done.stderr)) == (1, "FAIL"), fmt
        assert sc.AWS_KEY_ID not in done.stdout


def test_cache_holds_hostile_names(tmp_path, unit_rules_path):
    """Names and owners that are not UTF-8 go through the layer cache and back."""
    tar = kit.tar(kit.member(b"app/caf\xe9.env", ENV, uname=b"\xff\xfe"), BESIDE)
    path = hostile_image(tmp_path, "cached", tar)
    cache = tmp_path / "cache"
    args = [str(path), "--rules", str(unit_rules_path), "--cache-dir", str(cache), "-f", "json"]
    first = layerscan(args, tmp_path)
    second = layerscan(args, tmp_path)
    assert (first.returncode, gate_only(first.stderr), second.returncode, gate_only(second.stderr)) == (
        1, "FAIL", 1, "FAIL")
    assert json.loads(first.stdout)["findings"] == json.loads(second.stdout)["findings"]


def test_max_file_findings_flag_and_its_skip_in_the_report(tmp_path, unit_rules_path):
    """A file of secrets: the flag sets how many are reported; the rest is listed as not scanned
    and `--fail-on-incomplete` makes that exit 2."""
    lines = b"".join(b"KEY=AKIA%s\n" % hashlib.sha256(b"%d" % i).hexdigest().upper()[:16].encode()
                     for i in range(50))
    path = hostile_image(tmp_path, "dense", kit.tar(kit.member("dump.txt", lines)))
    base = [str(path), "--rules", str(unit_rules_path), "--no-cache", "-f", "json"]
    doc = json.loads(layerscan(base, tmp_path).stdout)
    assert len(doc["findings"]) == 50 and doc["images"][0]["skipped"] == []
    done = layerscan(base + ["--max-file-findings", "3"], tmp_path)
    doc = json.loads(done.stdout)
    assert done.returncode == 1 and len(doc["findings"]) == 3
    assert [s["reason"] for s in doc["images"][0]["skipped"]] == [
        "over 3 findings in this file: the first 3 reported, the rest of it not scanned (max file findings)"]
    assert layerscan(base + ["--max-file-findings", "3", "--fail-on-incomplete"], tmp_path).returncode == 2
