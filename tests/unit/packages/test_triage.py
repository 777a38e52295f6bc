"""Triage of language packages through the pipeline: what evidence vouches for, and what it
never does (modified, unlisted, local, private, a later layer, directly in node_modules, a
live-format token)."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from dataclasses import replace

import click
import pytest

from scanner.cache import SqliteLayerCache
from scanner.errors import ExitCode
from scanner.gate import Policy, verdict
from scanner.models import Confidence, PackageRef
from scanner.pipeline import ScanOptions, Scanner
from scanner.reports.json import JsonReport
from scanner.reports.table import TableReport
from scanner.triage import PACKAGE, private_matcher, top_packages
from tests import imagekit as ik
from tests.corpus import material as m
from tests.corpus.material import Rand
from tests.unit.conftest import write_image
from tests.unit.test_triage import RULES, by_path

R = Rand("package-triage")
TOKEN = m.checksummed("ghp_", R)

SITE = "/usr/local/lib/python3.11/site-packages"
PLAIN = b'\naws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8x9Lk2Vb"\nDB_PASSWORD = "Tq83mZr0pLx72kWe"\n'
LIVE = f'\nGITHUB_TOKEN = "{TOKEN}"\n'.encode()


def record_row(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}\n"


def dist(name: str, version: str, files: dict[str, bytes], listed: dict[str, bytes], extra=()) -> list[ik.Entry]:
    """A dist-info directory (METADATA, RECORD of `listed`) and the files of `files`."""
    info = f"{SITE}/{name.replace('-', '_')}-{version}.dist-info"
    record = "".join(record_row(p, d) for p, d in listed.items()) + f"{info[len(SITE) + 1:]}/RECORD,,\n"
    return [ik.file(f"{SITE}/{p}", d) for p, d in files.items()] + [
        ik.file(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n".encode()),
        ik.file(f"{info}/RECORD", record.encode()), *[ik.file(f"{info}/{n}", d) for n, d in extra]]


def npm_package(root: str, name: str, files: dict[str, bytes], **fields) -> list[ik.Entry]:
    manifest = json.dumps({"name": name, "version": "1.0.0", **fields}).encode()
    return [ik.file(f"{root}/package.json", manifest)] + [ik.file(f"{root}/{p}", d) for p, d in files.items()]


def jar(member: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(member, data)
    return out.getvalue()


JAR = jar("config/app.properties", b"db.password=" + PLAIN.split(b'"')[3] + b"\n")


def big_jar() -> bytes:
    """A jar over the 8 MiB a walk keeps: its sha1 is hashed as it streams (Maven caches only)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("blob.bin", R.raw(9 << 20), compress_type=zipfile.ZIP_STORED)
        z.writestr("config/app.properties", b"db.password=" + PLAIN.split(b'"')[3] + b"\n")
    return out.getvalue()


BIG_JAR = big_jar()
M2_BIG = "/root/.m2/repository/org/acme/big-lib/3.0/big-lib-3.0.jar"
M2 = "/root/.m2/repository/org/acme/ok-lib/1.0/ok-lib-1.0.jar"
GRADLE_JAR = (f"/root/.gradle/caches/modules-2/files-2.1/org.example/sdk/2.0/"
              f"{hashlib.sha1(JAR).hexdigest()}/sdk-2.0.jar")
CRATE = "/root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/demo-0.1.0"


def packages_spec() -> ik.ImageSpec:
    pyc = b"\xa7\r\r\n" + b"\0" * 12 + PLAIN
    python_layer = [
        *dist("PkgA", "1.0", {"pkga/__init__.py": PLAIN, "pkga/modified.py": PLAIN, "pkga/unlisted.py": PLAIN,
                              "pkga/live.py": LIVE, "pkga/__pycache__/__init__.cpython-311.pyc": pyc,
                              "pkga/__pycache__/modified.cpython-311.pyc": pyc},
              {"pkga/__init__.py": PLAIN, "pkga/modified.py": b"original", "pkga/live.py": LIVE}),
        *dist("mine", "1.0", {"mine/conf.py": PLAIN}, {"mine/conf.py": PLAIN},
              extra=[("direct_url.json", b'{"url": "file:///src/mine", "dir_info": {}}')]),
        *dist("Acme_Utils", "2.0", {"acme_utils/conf.py": PLAIN}, {"acme_utils/conf.py": PLAIN}),
    ]
    npm_layer = [
        *npm_package("/app/node_modules/lib", "lib", {"index.js": PLAIN, "over.js": PLAIN,
                                                      "node_modules/inner/x.js": PLAIN}),
        *npm_package("/app/node_modules/localdep", "localdep", {"index.js": PLAIN}, _resolved="file:../localdep"),
        *npm_package("/app/node_modules/@acme/sdk", "@acme/sdk", {"index.js": PLAIN}),
        *npm_package("/app/node_modules/.pnpm/p@1.0.0/node_modules/p", "p", {"index.js": PLAIN}),
        ik.file("/app/node_modules/stray.js", PLAIN),
    ]
    jvm_layer = [ik.file(M2, JAR), ik.file(M2 + ".sha1", hashlib.sha1(JAR).hexdigest().encode()),
                 ik.file(M2_BIG, BIG_JAR), ik.file(M2_BIG + ".sha1", hashlib.sha1(BIG_JAR).hexdigest().encode()),
                 ik.file("/root/.m2/repository/org/acme/bad-lib/1.0/bad-lib-1.0.jar", JAR),
                 ik.file("/root/.m2/repository/org/acme/bad-lib/1.0/bad-lib-1.0.jar.sha1", b"0" * 40),
                 ik.file(GRADLE_JAR, JAR),
                 ik.file(f"{CRATE}/src/lib.rs", PLAIN),
                 ik.file(f"{CRATE}/.cargo-checksum.json", json.dumps(
                     {"files": {"src/lib.rs": hashlib.sha256(PLAIN).hexdigest()}, "package": "0" * 64}).encode())]
    return ik.ImageSpec([
        ik.LayerSpec("RUN pip install pkga mine acme-utils", python_layer),
        ik.LayerSpec("RUN npm ci", npm_layer),
        ik.LayerSpec("RUN mvn dependency:go-offline && cargo fetch", jvm_layer),
        ik.LayerSpec("RUN patch node_modules", [ik.file("/app/node_modules/lib/over.js", PLAIN + b"\n"),
                                                ik.file("/app/node_modules/lib/added.js", PLAIN)]),
    ], tags=["unit/packages:1"])


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    path, _ = write_image(tmp_path_factory.mktemp("packages"), packages_spec(), "oci-archive", "gzip")
    return Scanner(RULES, ScanOptions(workers=1, private_packages=("acme-*", "@acme/*"))).scan([str(path)])


def triage_of(result, path: str) -> set:
    found = by_path(result).get(path)
    assert found, f"no finding in {path}"
    return {f.triage for f in found}


@pytest.mark.parametrize("path,name", [
    (f"{SITE}/pkga/__init__.py", "PkgA"), (f"{SITE}/pkga/__pycache__/__init__.cpython-311.pyc", "PkgA"),
    ("/app/node_modules/lib/index.js", "lib"), ("/app/node_modules/.pnpm/p@1.0.0/node_modules/p/index.js", "p"),
    (M2, "org.acme:ok-lib"), (M2_BIG, "org.acme:big-lib"), (GRADLE_JAR, "org.example:sdk"), (f"{CRATE}/src/lib.rs", "demo")])
def test_files_as_their_package_installed_them_are_package(packaged, path, name) -> None:
    assert triage_of(packaged, path) == {PACKAGE}
    for f in by_path(packaged)[path]:
        assert f.package is not None and f.package.name == name and (f.confidence, f.priority) == (Confidence.LOW, 5)


@pytest.mark.parametrize("path", [
    f"{SITE}/pkga/modified.py",  # digest mismatch
    f"{SITE}/pkga/__pycache__/modified.cpython-311.pyc",  # compiled from a source that is not triaged
    f"{SITE}/pkga/unlisted.py",  # listed nowhere
    f"{SITE}/mine/conf.py",  # direct_url.json: a local directory
    f"{SITE}/acme_utils/conf.py",  # private-packages: acme-* (PyPI names compared normalised)
    "/app/node_modules/@acme/sdk/index.js",  # private-packages: @acme/*
    "/app/node_modules/localdep/index.js",  # _resolved file:
    "/app/node_modules/lib/node_modules/inner/x.js",  # in a nested package with no package.json
    "/app/node_modules/stray.js",  # directly in node_modules
    "/app/node_modules/lib/over.js",  # rewritten by a later layer: neither copy
    "/app/node_modules/lib/added.js",  # written by a later layer
    "/root/.m2/repository/org/acme/bad-lib/1.0/bad-lib-1.0.jar",  # .sha1 does not match
])
def test_files_no_evidence_vouches_for_stay_real(packaged, path) -> None:
    assert triage_of(packaged, path) == {None}, path


def test_untriaged_findings_still_name_their_package(packaged) -> None:
    found = by_path(packaged)
    assert {f.package.name for f in found[f"{SITE}/mine/conf.py"]} == {"mine"}
    assert {f.package.name for f in found[f"{SITE}/acme_utils/conf.py"]} == {"Acme_Utils"}
    assert {f.package for f in found[f"{SITE}/pkga/modified.py"]} == {None}


def test_a_live_format_token_in_a_public_package_stays_visible(packaged) -> None:
    """A checksum-valid GitHub token byte-identical to its RECORD entry: named, not triaged, gating."""
    found = by_path(packaged)[f"{SITE}/pkga/live.py"]
    assert {(f.hit.rule_id, f.triage) for f in found} == {("github-pat", None)}
    assert found[0].package.name == "PkgA" and found[0].priority == 1
    only = replace(packaged, images=tuple(replace(i, findings=tuple(found)) for i in packaged.images))
    assert verdict(only, Policy()).code is ExitCode.FINDINGS


def test_reports_carry_the_package(packaged) -> None:
    doc = json.loads(JsonReport().render(packaged))
    index = {(f["location"]["path"], f["rule_id"]): f for f in doc["findings"]}
    assert any(f["triage"] == "package" and f["package"] == {"ecosystem": "pypi", "name": "PkgA", "version": "1.0"}
               for f in index.values())
    assert doc["summary"]["triaged"]["package"] >= 7
    table = click.unstyle(TableReport().render(packaged))
    line = next(t for t in table.splitlines() if t.startswith("triaged"))
    assert "package)" in line and "; most in: " in line and "(pypi, " in line


def test_top_packages_counts_triaged_findings_only(packaged) -> None:
    top = dict((p.name, n) for p, n in top_packages(packaged.findings, n=20))
    assert "PkgA" in top and "mine" not in top and "Acme_Utils" not in top


def test_the_cache_keeps_language_evidence(packaged, tmp_path) -> None:
    path, _ = write_image(tmp_path, packages_spec(), "oci-archive", "gzip")
    cache = SqliteLayerCache(str(tmp_path / "cache"))
    first = Scanner(RULES, ScanOptions(workers=1), cache=cache).scan([str(path)])
    again = Scanner(RULES, ScanOptions(workers=1), cache=cache).scan([str(path)])
    triaged = [(f.hit.path, f.triage, f.package) for f in first.findings]
    assert triaged == [(f.hit.path, f.triage, f.package) for f in again.findings]
    assert any(t == PACKAGE for _, t, _ in triaged)


@pytest.mark.parametrize("patterns,name,ecosystem,private", [
    (("acme-*",), "acme-utils", "pypi", True), (("acme-*",), "Acme_Utils", "pypi", True),
    (("acme-*",), "acme_utils", "npm", False), (("@acme/*",), "@acme/sdk", "npm", True),
    (("@acme/*",), "@acmex/sdk", "npm", False), (("com.acme:*",), "com.acme:core", "maven", True),
    ((), "anything", "pypi", False)])
def test_private_package_globs(patterns, name, ecosystem, private) -> None:
    assert private_matcher(patterns)(PackageRef(ecosystem, name)) is private


def test_evidence_is_read_whatever_the_workers(packaged, tmp_path) -> None:
    """With helper workers sharing a layer's small files, evidence files are still read by the walk."""
    path, _ = write_image(tmp_path, packages_spec(), "oci-archive", "gzip")
    shared = Scanner(RULES, ScanOptions(workers=2, private_packages=("acme-*", "@acme/*"))).scan([str(path)])
    assert sorted((f.hit.path, f.hit.rule_id, f.triage) for f in shared.findings) == \
        sorted((f.hit.path, f.hit.rule_id, f.triage) for f in packaged.findings)
