"""Triage by provenance (vendor files, known-public keys), confidence and priority."""
from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import click
import pytest

from scanner.cache import decode, encode
from scanner.detectors.rules import load_rules
from scanner.gate import Policy, verdict
from scanner.errors import ExitCode
from scanner.models import Confidence, LayerScan, PackageDb, PackageRef, Severity, Status
from scanner.packagedb import entries, is_package_db, read_package_db, rpm_header_files
from scanner.pipeline import ScanOptions, Scanner
from scanner.reports.json import JsonReport
from scanner.reports.table import TableReport
from scanner.triage import KNOWN_PUBLIC, VENDOR, Triage, compiled_from, load_known_public, priority
from tests import imagekit as ik
from tests.corpus import material as m
from tests.corpus.build import rpm_header, rpmdb
from tests.corpus.material import Rand
from tests.unit.conftest import write_image

RULES = load_rules()
R = Rand("triage")
KEY = m.pem("PRIVATE KEY", m.pkcs8_der(R))
HOST_KEY = m.openssh(R)
TOKEN = m.checksummed("ghp_", R)
BIG = b"\x7fELF\x02\x01\x01\x00" + R.raw(2 << 20) + b"\x00" + TOKEN.encode() + b"\x00" + R.raw(1000)  # > 1 MiB


def md5(data: bytes | str) -> str:
    return hashlib.md5(data.encode() if isinstance(data, str) else data).hexdigest()


# --- package databases ---------------------------------------------------------------------------

def test_package_database_paths() -> None:
    for path in ("/var/lib/dpkg/info/openssl.md5sums", "/var/lib/dpkg/info/libc6:amd64.md5sums",
                 "/var/lib/dpkg/status", "/var/lib/dpkg/status.d/base-files", "/var/lib/dpkg/status.d/tzdata.md5sums",
                 "/lib/apk/db/installed", "/usr/lib/apk/db/installed", "/var/lib/rpm/rpmdb.sqlite",
                 "/usr/lib/sysimage/rpm/rpmdb.sqlite"):
        assert is_package_db(path), path
    for path in ("/var/lib/dpkg/info/openssl.list", "/var/lib/rpm/Packages", "/app/status", "/lib/apk/db/scripts.tar"):
        assert not is_package_db(path), path


def test_dpkg_md5sums_and_conffiles() -> None:
    sums = read_package_db("/var/lib/dpkg/info/acme.md5sums",
                           b"d41d8cd98f00b204e9800998ecf8427e  usr/share/doc/acme/copyright\nbad line\n"
                           b"0cc175b9c0f1b6a831c399e269772661  lib/x86_64-linux-gnu/libacme.so.1\n")
    assert sums.manager == "dpkg"
    assert list(entries(sums)) == [("/usr/share/doc/acme/copyright", "md5:d41d8cd98f00b204e9800998ecf8427e"),
                                   ("/usr/lib/x86_64-linux-gnu/libacme.so.1", "md5:0cc175b9c0f1b6a831c399e269772661")]
    status = read_package_db("/var/lib/dpkg/status", (
        "Package: acme\nStatus: install ok installed\nConffiles:\n /etc/acme.conf 0cc175b9c0f1b6a831c399e269772661\n"
        " /etc/old.conf 92eb5ffee6ae2fec3ad71c777531578f obsolete\nDescription: x\n\nPackage: other\n").encode())
    assert list(entries(status)) == [("/etc/acme.conf", "md5:0cc175b9c0f1b6a831c399e269772661"),
                                     ("/etc/old.conf", "md5:92eb5ffee6ae2fec3ad71c777531578f")]


def test_apk_installed() -> None:
    sha1 = hashlib.sha1(b"x").digest()
    db = read_package_db("/lib/apk/db/installed", (
        f"P:musl\nV:1.2\nF:lib\nR:ld-musl-x86_64.so.1\na:0:0:755\nZ:Q1{m.b64(sha1)}\nR:noz\n\n"
        f"P:busybox\nF:bin\nR:busybox\nZ:Q1{m.b64(sha1)}\n").encode())
    assert list(entries(db)) == [("/usr/lib/ld-musl-x86_64.so.1", f"sha1:{sha1.hex()}"),
                                 ("/usr/bin/busybox", f"sha1:{sha1.hex()}")]


def test_rpm_headers_and_sqlite() -> None:
    files = {"/usr/bin/tool": "a" * 64, "/usr/share/tool/key.pem": "b" * 64}
    assert list(rpm_header_files(rpm_header("tool", files))) == [(f"sha256:{d}", p) for p, d in files.items()]
    assert list(rpm_header_files(b"\x00\x00\x00\x05garbage")) == []
    db = read_package_db("/var/lib/rpm/rpmdb.sqlite", rpmdb({"tool": files}))
    assert db.manager == "rpm" and dict(entries(db)) == {p: f"sha256:{d}" for p, d in files.items()}
    assert read_package_db("/var/lib/rpm/rpmdb.sqlite", b"not sqlite").files == ""


def test_compiled_from() -> None:
    assert compiled_from("/usr/lib/python3/dist-packages/a/__pycache__/b.cpython-311.pyc") == \
        "/usr/lib/python3/dist-packages/a/b.py"
    assert compiled_from("/x/__pycache__/b.cpython-311.opt-1.pyc") == "/x/b.py"
    assert compiled_from("/x/b.pyc") == "/x/b.py"
    assert compiled_from("/x/b.py") is None


def test_known_public_list_is_hashes_with_reasons() -> None:
    known = load_known_public()
    assert hashlib.sha256(b"AKIAIOSFODNN7EXAMPLE").hexdigest() in known
    assert all(len(h) == 64 for h in known) and len(known) >= 50


def test_cache_keeps_package_databases_and_file_digests() -> None:
    scan = LayerScan("sha256:" + "a" * 64, "sha256:" + "b" * 64, (), (), (), 0, 0,
                     (PackageDb("/var/lib/dpkg/status", "dpkg", "md5:abc /etc/x\n"),))
    assert decode(encode(scan), 0).packages == scan.packages


# --- triage through the pipeline -----------------------------------------------------------------

def vendor_spec() -> ik.ImageSpec:
    shipped = {"/usr/share/acme/examples/key.pem": KEY.encode(), "/lib/x86_64-linux-gnu/libacme.so.1": BIG}
    sums = "".join(f"{md5(d)}  {p.lstrip('/')}\n" for p, d in shipped.items())
    sums += f"{md5(b'original')}  usr/share/acme/examples/modified.pem\n"
    return ik.ImageSpec([
        ik.LayerSpec("ADD rootfs.tar /", [
            ik.file("/var/lib/dpkg/info/acme.md5sums", sums.encode()),
            ik.file("/usr/share/acme/examples/key.pem", KEY.encode()),
            ik.file("/usr/lib/x86_64-linux-gnu/libacme.so.1", BIG),  # dpkg says lib/..., merged /usr
            ik.file("/usr/share/acme/examples/modified.pem", KEY.encode()),  # not what the package shipped
            ik.file("/etc/ssh/ssh_host_ed25519_key", HOST_KEY.encode(), mode=0o600),  # made at install time
        ]),
        ik.LayerSpec("COPY key.pem /app/", [ik.file("/app/key.pem", KEY.encode()),
                                            ik.file("/app/old/key.pem", KEY.encode())]),
        ik.LayerSpec("RUN rm -rf /app/old", [ik.whiteout("/app/old")]),
    ], tags=["unit/vendor:1"])


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    path, _ = write_image(tmp_path_factory.mktemp("vendor"), vendor_spec(), "oci-archive", "gzip")
    return Scanner(RULES, ScanOptions(workers=1)).scan([str(path)])


def by_path(result) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in result.findings:
        out.setdefault(f.hit.path, []).append(f)
    return out


def test_files_as_their_package_shipped_them_are_vendor(scanned) -> None:
    found = by_path(scanned)
    assert [f.triage for f in found["/usr/share/acme/examples/key.pem"]] == [VENDOR]
    assert {f.triage for f in found["/usr/lib/x86_64-linux-gnu/libacme.so.1"]} == {VENDOR}  # md5 while streamed
    for f in found["/usr/share/acme/examples/key.pem"] + found["/usr/lib/x86_64-linux-gnu/libacme.so.1"]:
        assert (f.confidence, f.priority) == (Confidence.LOW, 5)


def test_install_time_and_modified_and_copied_keys_are_real(scanned) -> None:
    found = by_path(scanned)
    for path in ("/etc/ssh/ssh_host_ed25519_key", "/usr/share/acme/examples/modified.pem", "/app/key.pem",
                 "/app/old/key.pem"):
        assert [f.triage for f in found[path]] == [None], path


def test_priority_follows_where_the_secret_sits(scanned) -> None:
    found = by_path(scanned)
    present, deleted = found["/app/key.pem"][0], found["/app/old/key.pem"][0]
    vendor = found["/usr/share/acme/examples/key.pem"][0]
    assert present.hit.secret.sha256 == deleted.hit.secret.sha256 == vendor.hit.secret.sha256
    assert (present.status, deleted.status) == (Status.PRESENT, Status.DELETED)
    assert present.priority < deleted.priority < vendor.priority
    assert present.confidence is Confidence.HIGH and present.hit.severity is Severity.CRITICAL


def test_triaged_findings_do_not_gate_by_default(scanned) -> None:
    only_vendor = replace(scanned, images=tuple(replace(i, findings=tuple(f for f in i.findings if f.triage))
                                                for i in scanned.images))
    assert verdict(only_vendor, Policy()).code is ExitCode.CLEAN
    assert verdict(only_vendor, Policy(fail_on_triaged=True)).code is ExitCode.FINDINGS
    assert verdict(scanned, Policy()).code is ExitCode.FINDINGS


def test_reports_carry_triage_confidence_and_priority(scanned) -> None:
    doc = json.loads(JsonReport().render(scanned))
    for f in doc["findings"]:
        assert f["confidence"] in ("high", "medium", "low") and 1 <= f["priority"] <= 5
    assert {f["triage"] for f in doc["findings"]} == {None, "vendor"}
    table = click.unstyle(TableReport().render(scanned))
    assert "triaged (vendor package files, known-public keys; not gating): 2 finding(s) (2 vendor)" in table
    assert "/usr/share/acme/examples/key.pem" not in table
    listed = click.unstyle(TableReport().render(replace(scanned, show_triaged=True)))
    assert "/usr/share/acme/examples/key.pem:1" in listed and "present (vendor)" in listed


def test_known_public_by_hash(scanned, tmp_path) -> None:
    path, _ = write_image(tmp_path, vendor_spec(), "oci-archive", "gzip")
    scanner = Scanner(RULES, ScanOptions(workers=1))
    scanner.triage = Triage(RULES, frozenset({hashlib.sha256(HOST_KEY.strip().encode()).hexdigest()}))
    found = by_path(scanner.scan([str(path)]))
    assert [f.triage for f in found["/etc/ssh/ssh_host_ed25519_key"]] == [KNOWN_PUBLIC]


def test_priority_scale() -> None:
    assert priority(Severity.CRITICAL, Status.PRESENT, Confidence.HIGH, None) == 1
    assert priority(Severity.CRITICAL, Status.DELETED, Confidence.HIGH, None) == 2
    assert priority(Severity.HIGH, Status.CONFIG, Confidence.HIGH, None) == 2
    assert priority(Severity.MEDIUM, Status.HISTORY, Confidence.LOW, None) == 4
    assert priority(Severity.LOW, Status.OVERWRITTEN, Confidence.LOW, None) == 4
    assert priority(Severity.CRITICAL, Status.PRESENT, Confidence.HIGH, VENDOR) == 5


def test_rule_confidence() -> None:
    triage = Triage(RULES, frozenset())
    conf = triage._confidence
    assert conf["github-pat"] is conf["aws-access-key-id"] is conf["rsa-private-key"] is Confidence.HIGH
    assert conf["generic-password"] is conf["datadog-api-key"] is conf["postgres-uri"] is Confidence.MEDIUM
    assert conf["keyword-secret"] is Confidence.MEDIUM and conf["high-entropy-secret"] is Confidence.LOW
    assert conf["shadow-password-hash"] is Confidence.MEDIUM and conf["npmrc-credential"] is Confidence.HIGH


@pytest.mark.parametrize("path,packaged", [
    ("/usr/lib/x86_64-linux-gnu/libacme.so.1", True), ("/lib/libacme.so", True), ("/etc/acme.conf", True),
    ("/opt/acme/bin/acme", True), ("/var/lib/acme/db", True), ("/bin/acme", True), ("/boot/vmlinuz", True),
    ("/usr/local/lib/python3.11/site-packages/x.so", False), ("/app/node_modules/x.node", False),
    ("/root/.pyenv/versions/3.11.7/bin/python", False), ("/home/dev/.cache/x", False), ("/tmp/x", False),
    ("/var/tmp/x", False), ("/srv/app/x", False), ("/usr", False), ("/usrx/y", False)])
def test_where_a_package_may_have_put_a_file(path, packaged) -> None:
    """Where a streamed file's md5 is worth its cost (dpkg records md5): FHS places, not /usr/local."""
    from scanner.packagedb import may_be_packaged
    assert may_be_packaged(path) is packaged


def test_dpkg_vendor_findings_name_their_package(scanned) -> None:
    found = by_path(scanned)["/usr/share/acme/examples/key.pem"]
    assert [f.package for f in found] == [PackageRef("debian", "acme", None)]
