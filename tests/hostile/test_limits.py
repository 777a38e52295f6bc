"""Image-wide limits (bytes, entries, wall-clock time) and scale: a limit that stops a scan is an
error naming the limit (exit 2), never a clean or silently partial result; half a million files
scan in bounded time and memory."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scanner.limits import Limits
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.hostile import kit
from tests.gateline import gate_only

AWS = "unit-aws-key-id"
ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()
REPO = Path(__file__).resolve().parents[2]


def image(tmp_path, *layers: bytes, compression: str = "gzip"):
    return kit.write(tmp_path, kit.image_of(*layers), "oci-archive", compression)[0]


# --- entries and bytes per image ---------------------------------------------------------------------


def test_max_image_files_counts_every_layer(tmp_path, scan):
    path = image(tmp_path, kit.tar(kit.member("a", ENV), kit.member("b")),
                 kit.tar(kit.member("c"), kit.header("d/", type_=b"5")))
    assert len(scan(path, Limits(max_image_files=4)).findings) == 1
    assert scan(path, Limits(max_image_files=3)).error == (
        f"incomplete scan: {path} holds over 3 files and other tar entries (--max-image-files); nothing reported")


def test_max_image_files_stops_a_layer_while_it_is_read(tmp_path, scan):
    path = image(tmp_path, kit.many_files(1000) + kit.END)
    assert scan(path, Limits(max_image_files=100)).error == (
        "incomplete scan: layer 0 holds over 100 files and other tar entries (--max-image-files); nothing reported")


def test_max_image_bytes_counts_every_layer(tmp_path, scan):
    path = image(tmp_path, kit.tar(kit.member("a", ENV)), kit.tar(kit.member("b")))  # 2048 + 1536 bytes
    assert len(scan(path, Limits(max_image_bytes=3584)).findings) == 1
    assert scan(path, Limits(max_image_bytes=3583)).error == (
        f"incomplete scan: {path} holds over 3583 bytes of layers (--max-image-bytes); nothing reported")


def test_max_image_bytes_stops_inside_one_big_file(tmp_path, scan):
    path = image(tmp_path, kit.tar(kit.member("big", b"x" * (8 << 20)), kit.member("a", ENV)))
    assert scan(path, Limits(max_image_bytes=2 << 20)).error == (
        f"incomplete scan: layer 0 holds over {2 << 20} bytes of layers (--max-image-bytes); nothing reported")


# --- findings of one file -----------------------------------------------------------------------------

CAPPED = ("over {n} findings in this file: the first {n} reported, the rest of it not scanned "
          "(max file findings)")


def keys(n: int, start: int = 0) -> bytes:
    """`n` lines, each with another AWS key id."""
    return b"".join(b"KEY=AKIA%s\n" % hashlib.sha256(b"%d" % i).hexdigest().upper()[:16].encode()
                    for i in range(start, start + n))


def found_in(outcome, path: str) -> int:
    return sum(1 for f in outcome.findings if f[1] == path)


@pytest.mark.parametrize("size", ["small", "streamed"])
def test_a_file_made_of_secrets_reports_the_first_max_file_findings(tmp_path, scan, size):
    """A file of secrets (a dump, a hostile file) is not held in memory: its first N findings are
    reported, the rest of it is named as not scanned, and the files after it are scanned."""
    body = keys(30) if size == "small" else keys(60_000)  # about 1.4 MiB: read in chunks
    path = image(tmp_path, kit.tar(kit.member("dump.txt", body), kit.member("app/.env", ENV)))
    out = scan(path, Limits(max_file_findings=10))
    assert found_in(out, "/dump.txt") == 10 and found_in(out, "/app/.env") == 1
    assert out.skipped == ((0, "/dump.txt", CAPPED.format(n=10)),)
    assert sorted(f.hit.line for f in out.result.findings if f.hit.path == "/dump.txt") == list(range(1, 11))


def test_the_findings_of_archive_members_count_for_their_file(tmp_path, scan):
    jar = ik.pack_zip({"a.properties": keys(5), "b.properties": keys(5, 5), "c.properties": keys(5, 10)})
    path = image(tmp_path, kit.tar(kit.member("app.jar", jar)))
    out = scan(path, Limits(max_file_findings=7))
    assert found_in(out, "/app.jar") == 7
    assert out.skipped == ((0, "/app.jar", CAPPED.format(n=7)),)
    assert scan(path, Limits(max_file_findings=15)).skipped == ()  # exactly at the limit: all, nothing left


# --- wall-clock timeout ---------------------------------------------------------------------------------


def test_timeout_stops_a_long_layer(tmp_path, scan):
    path = image(tmp_path, kit.many_files(150_000, b"x") + kit.END)
    started = time.monotonic()
    assert scan(path, timeout=0.5).error == "incomplete scan: the --timeout of 0.5 s ran out in layer 0; nothing reported"
    assert time.monotonic() - started < 5


def test_timeout_reaches_worker_processes(tmp_path, scan):
    noise = os.urandom(3 << 20)  # incompressible: the blobs are big enough for worker processes
    layers = [kit.member(f"noise{i}", noise) + kit.many_files(150_000, b"x", prefix=f"d{i}") + kit.END
              for i in range(2)]
    path = image(tmp_path, *layers)
    started = time.monotonic()
    error = scan(path, timeout=1.0, workers=2).error
    assert error in {f"incomplete scan: the --timeout of 1 s ran out in layer {i}; nothing reported" for i in (0, 1)}
    assert time.monotonic() - started < 8


def test_timeout_generous_enough_changes_nothing(tmp_path, scan):
    path = image(tmp_path, kit.tar(kit.member("a", ENV)))
    assert scan(path, timeout=600).findings == ((AWS, "/a", "present", 0, None),)


# --- scale: 500,000 tiny files in one layer -------------------------------------------------------------


# the CLI in a fresh process that reports its own peak RSS (VmHWM) on the way out: the rusage of a
# child would count the pages it shared with this process before exec
MEASURED = ("import atexit, sys\n"
            "out = sys.argv.pop(1)\n"
            "atexit.register(lambda: open(out, 'w').write(next(line for line in open('/proc/self/status')\n"
            "                                                   if line.startswith('VmHWM'))))\n"
            "from scanner.cli import main\n"
            "main(sys.argv[1:])\n")


def test_half_a_million_tiny_files_in_one_layer(tmp_path):
    """The real process, measured: time and peak memory of the CLI on one layer of 500,000 one-byte
    files (plus the secret beside them), and nothing written anywhere."""
    n = 500_000
    tar = kit.many_files(n, b"x") + kit.member("app/.env", ENV) + kit.END
    path = image(tmp_path, tar, compression="zstd")
    del tar
    rules = tmp_path / "rules.yaml"
    from tests.unit.conftest import UNIT_RULES_YAML
    rules.write_text(UNIT_RULES_YAML)
    sandbox, hwm = tmp_path / "sandbox", tmp_path / "hwm.txt"
    sandbox.mkdir()
    env = {**{k: v for k, v in os.environ.items() if k != "LAYERSCAN_DEBUG"}, "HOME": str(sandbox),
           "TMPDIR": str(sandbox), "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", MEASURED, str(hwm), str(path), "--rules", str(rules), "--no-cache",
                           "--no-progress", "--workers", "1", "-f", "json"], cwd=sandbox, env=env,
                          capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    peak_mib = int(hwm.read_text().split()[1]) >> 10
    print(f"\n500,000 files: {seconds:.1f} s, peak RSS {peak_mib} MiB")
    assert (done.returncode, gate_only(done.stderr)) == (1, "FAIL")
    doc = json.loads(done.stdout)
    assert [(f["location"]["path"], f["status"]) for f in doc["findings"] if f["rule_id"] == AWS] == [
        ("/app/.env", "present")]
    assert doc["images"][0]["layers"][0]["files"] == n + 1 and doc["images"][0]["skipped"] == []
    assert seconds < 300, seconds  # about 40 s on an idle machine
    assert peak_mib < 400, peak_mib  # about 140 MiB: the interpreter, the rules, 500,000 packed path events
    assert list(sandbox.iterdir()) == []
