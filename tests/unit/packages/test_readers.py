"""Each ecosystem's evidence reader: what it records, and what hostile input it refuses."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest

from scanner.packagedb import MAX_MANIFEST, entries, is_package_db, read_package_db
from scanner.packages.records import Writer, clean, headers, joined, records

SITE = "/usr/local/lib/python3.11/site-packages"
DIST = f"{SITE}/botocore-1.34.1.dist-info"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def evidence(path: str, data: bytes) -> list[tuple[str, str, str, str, str, bool]]:
    db = read_package_db(path, data)
    assert db is not None, path
    return [(e.kind, e.path, e.value, e.package.name, e.package.version, e.package.local)
            for e in records(db.manager, db.files)]


def packages(path: str, data: bytes) -> list[tuple[str, str, str, bool]]:
    db = read_package_db(path, data)
    assert db is not None
    return [(p.name, p.version, p.key, p.local) for p in headers(db.manager, db.files)]


@pytest.mark.parametrize("path", [
    f"{DIST}/RECORD", f"{DIST}/METADATA", f"{DIST}/direct_url.json", f"{SITE}/foo-1.0-py3.11.egg-info/PKG-INFO",
    f"{SITE}/foo-1.0-py3.11.egg-info/installed-files.txt", "/app/node_modules/express/package.json",
    "/app/node_modules/@acme/util/package.json", "/app/node_modules/.pnpm/a@1.0.0/node_modules/a/package.json",
    "/app/node_modules/.package-lock.json", "/app/package-lock.json", "/app/npm-shrinkwrap.json", "/app/yarn.lock",
    "/root/.m2/repository/org/slf4j/slf4j-api/2.0.9/slf4j-api-2.0.9.jar.sha1",
    "/root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.193/.cargo-checksum.json",
    "/app/vendor/composer/installed.json", "/usr/local/bundle/specifications/rack-3.0.8.gemspec",
    "/go/pkg/mod/cache/download/github.com/!azure/go-autorest/@v/v14.2.0+incompatible.ziphash",
    "/var/lib/dpkg/status", "/lib/apk/db/installed"])
def test_evidence_files_are_picked(path) -> None:
    assert is_package_db(path, 100)


@pytest.mark.parametrize("path", [
    "/app/RECORD", f"{SITE}/botocore/RECORD", f"{DIST}/WHEEL", "/app/package.json", "/app/node_modules/package.json",
    "/app/node_modules/express/lib/package.json", "/app/node_modules/.bin/package.json",
    "/root/.m2/repository/org/slf4j/slf4j-api/2.0.9/other.jar.sha1", "/app/x.sha1", "/app/foo.gemspec",
    "/usr/local/bundle/specifications/default/json-2.6.gemspec", "/app/installed.json", "/tmp/x.ziphash"])
def test_other_files_are_not(path) -> None:
    assert not is_package_db(path, 100) or read_package_db(path, b"{}") is None


def test_huge_manifests_are_scanned_not_read() -> None:
    assert not is_package_db(f"{DIST}/RECORD", MAX_MANIFEST + 1)
    assert not is_package_db("/app/node_modules/express/package.json", MAX_MANIFEST + 1)


# --- Python ------------------------------------------------------------------------------------

def test_record_digests_relative_to_site_packages() -> None:
    rows = (f"botocore/__init__.py,sha256={b64(b'x')},1\n"
            f"../../../bin/botocore-cli,sha256={b64(b'y')},1\n"
            "botocore/__pycache__/__init__.cpython-311.pyc,,\n"
            "botocore-1.34.1.dist-info/RECORD,,\n")
    got = evidence(f"{DIST}/RECORD", rows.encode())
    assert got == [
        ("digest", f"{SITE}/botocore/__init__.py", "sha256b64:" + b64(b"x"), "", "", False),
        ("digest", "/usr/local/bin/botocore-cli", "sha256b64:" + b64(b"y"), "", "", False),
        ("file", f"{SITE}/botocore/__pycache__/__init__.cpython-311.pyc", "", "", "", False)]


def test_hostile_record_rows_are_no_evidence() -> None:
    rows = ("\n".join([
        f"../../../../../etc/shadow,sha256={b64(b'x')},1",  # climbs above the prefix
        f"../../../../../../../../../etc/passwd,sha256={b64(b'x')},1",  # above the root
        f"/etc/passwd,sha256={b64(b'x')},1",  # absolute
        "botocore/a.py,sha256=!!!not-base64!!!,1",  # malformed digest
        f"botocore/b.py,sha256={b64(b'x')[:20]},1",  # truncated digest
        "botocore/c.py,md5=abc,1",  # not sha256
        f"botocore/d.py,sha256={b64(b'x')[:-1]}B,1",  # not 32 bytes: the last character holds bits that are not 0
        'botocore/"unterminated,sha256=x',
        "botocore/\x00nul.py,sha256=" + b64(b"x") + ",1",
        "botocore/ctl\x1b[31m.py,sha256=" + b64(b"x") + ",1",
        "x" * 200_000 + ",sha256=" + b64(b"x") + ",1",
        "lonely-field",
        f"../../etc/ok,sha256={b64(b'z')},1",  # <prefix>/lib/etc/ok: inside the prefix, kept
    ]) + "\n").encode()
    got = evidence(f"{DIST}/RECORD", rows)
    assert [(k, p) for k, p, *_ in got] == [("digest", "/usr/local/lib/etc/ok")]


def test_metadata_names_the_distribution() -> None:
    meta = b"Metadata-Version: 2.1\nName: botocore\nVersion: 1.34.1\nSummary: x\n\nName: not-this\n"
    assert packages(f"{DIST}/METADATA", meta) == [("botocore", "1.34.1", DIST, False)]
    assert read_package_db(f"{DIST}/METADATA", b"Summary: no name\n") is None
    info = f"{SITE}/foo-1.0-py3.11.egg-info"
    assert packages(f"{info}/PKG-INFO", b"Name: foo\nVersion: 1.0\n") == [("foo", "1.0", info, False)]


@pytest.mark.parametrize("doc,local", [
    ({"url": "https://files.pythonhosted.org/x.whl", "archive_info": {"hashes": {}}}, False),
    ({"url": "file:///src/app", "dir_info": {"editable": True}}, True),
    ({"url": "file:///src/dist/app-1.0-py3-none-any.whl", "archive_info": {}}, True),
    ({"url": "https://github.com/acme/app", "vcs_info": {"vcs": "git", "commit_id": "abc"}}, True),
    ({"url": "https://example.com/a", "dir_info": {}}, True),
    ("garbage", True)])
def test_direct_url_local_or_vcs(doc, local) -> None:
    data = json.dumps(doc).encode() if not isinstance(doc, str) else b"{not json"
    assert packages(f"{DIST}/direct_url.json", data) == [("", "", DIST, local)]


def test_egg_info_installed_files_relative_to_the_egg_info() -> None:
    info = f"{SITE}/foo-1.0-py3.11.egg-info"
    got = evidence(f"{info}/installed-files.txt", b"../foo/__init__.py\n../foo/k.pem\n../../../../../../etc/x\nPKG-INFO\n")
    assert [(k, p) for k, p, *_ in got] == [("file", f"{SITE}/foo/__init__.py"), ("file", f"{SITE}/foo/k.pem"),
                                            ("file", f"{info}/PKG-INFO")]


# --- npm ---------------------------------------------------------------------------------------

def test_package_json_is_a_tree_of_its_layer() -> None:
    root = "/app/node_modules/@acme/util"
    got = evidence(f"{root}/package.json", json.dumps({"name": "@acme/util", "version": "2.0.0"}).encode())
    assert got == [("tree", root, "", "@acme/util", "2.0.0", False)]


@pytest.mark.parametrize("extra,path,local", [
    ({"_resolved": "https://registry.npmjs.org/a/-/a-1.0.0.tgz"}, "/app/node_modules/a", False),
    ({"_resolved": "file:../a"}, "/app/node_modules/a", True),
    ({"_from": "git+https://github.com/acme/a.git"}, "/app/node_modules/a", True),
    ({}, "/app/node_modules/.pnpm/a@file+packages+a/node_modules/a", True),
    ({}, "/app/node_modules/.pnpm/a@1.0.0/node_modules/a", False)])
def test_package_json_local_sources(extra, path, local) -> None:
    got = evidence(f"{path}/package.json", json.dumps({"name": "a", "version": "1.0.0", **extra}).encode())
    assert got == [("tree", path, "", "a", "1.0.0", local)]


def test_lockfiles_name_local_packages() -> None:
    lock = {"lockfileVersion": 3, "packages": {
        "": {"name": "app"}, "node_modules/a": {"version": "1.0.0", "resolved": "https://registry.npmjs.org/a.tgz"},
        "node_modules/mine": {"resolved": "file:../mine", "link": True},
        "node_modules/x/node_modules/fork": {"version": "1.0.0", "resolved": "git+ssh://git@github.com/acme/fork.git"},
        "../../../../../../../etc": {"resolved": "file:x"}, "node_modules/bad": "not a dict"}}
    assert packages("/app/node_modules/.package-lock.json", json.dumps(lock).encode()) == [
        ("mine", "", "/app/node_modules/mine", True),
        ("fork", "1.0.0", "/app/node_modules/x/node_modules/fork", True)]
    v1 = {"lockfileVersion": 1, "dependencies": {"a": {"version": "1.0.0", "dependencies": {
        "b": {"version": "file:../b"}}}, "c": {"version": "github:acme/c#abc"}}}
    assert packages("/srv/app/package-lock.json", json.dumps(v1).encode()) == [
        ("b", "file:../b", "/srv/app/node_modules/a/node_modules/b", True), ("c", "github:acme/c#abc",
                                                                            "/srv/app/node_modules/c", True)]


@pytest.mark.parametrize("data", [b"", b"[1, 2]", b"{", b"[" * 100_000 + b"]" * 100_000, b'{"name": 5, "version": []}'])
def test_hostile_package_json(data) -> None:
    db = read_package_db("/app/node_modules/a/package.json", data)
    assert db is None or [e.package.name for e in records(db.manager, db.files)] == [""]


# --- JVM, Cargo, Composer, gems, Go ------------------------------------------------------------

def test_maven_sha1() -> None:
    jar = "/root/.m2/repository/org/slf4j/slf4j-api/2.0.9/slf4j-api-2.0.9.jar"
    sha1 = hashlib.sha1(b"jar").hexdigest()
    assert evidence(jar + ".sha1", f"{sha1.upper()}  slf4j-api-2.0.9.jar\n".encode()) == [
        ("digest", jar, f"sha1:{sha1}", "org.slf4j:slf4j-api", "2.0.9", False)]
    assert read_package_db(jar + ".sha1", b"not a digest") is None


def test_cargo_checksums() -> None:
    crate = "/root/.cargo/registry/src/index.crates.io-6f17d22bba15001f/serde-1.0.193"
    doc = {"files": {"src/lib.rs": "a" * 64, "../../evil.rs": "b" * 64, "src/bad.rs": "zz"}, "package": "c" * 64}
    assert evidence(f"{crate}/.cargo-checksum.json", json.dumps(doc).encode()) == [
        ("digest", f"{crate}/src/lib.rs", "sha256:" + "a" * 64, "serde", "1.0.193", False)]
    doc["package"] = None  # a git or path source
    assert {e[5] for e in evidence(f"{crate}/.cargo-checksum.json", json.dumps(doc).encode())} == {True}


def test_composer_installed() -> None:
    doc = {"packages": [
        {"name": "monolog/monolog", "version": "3.5.0", "dist": {"type": "zip"}, "installation-source": "dist",
         "install-path": "../monolog/monolog"},
        {"name": "acme/lib", "version": "dev-main", "dist": {"type": "path"}, "install-path": "../acme/lib"},
        {"name": "evil/x", "dist": {"type": "zip"}, "install-path": "../../../etc"}]}
    got = evidence("/app/vendor/composer/installed.json", json.dumps(doc).encode())
    assert got == [("tree", "/app/vendor/monolog/monolog", "", "monolog/monolog", "3.5.0", False),
                   ("tree", "/app/vendor/acme/lib", "", "acme/lib", "dev-main", True)]


def test_gemspec_and_go_module_cache() -> None:
    assert evidence("/usr/local/bundle/specifications/aws-sdk-s3-1.136.0.gemspec", b"Gem::Specification.new") == [
        ("tree", "/usr/local/bundle/gems/aws-sdk-s3-1.136.0", "", "aws-sdk-s3", "1.136.0", False)]
    got = evidence("/go/pkg/mod/cache/download/github.com/!azure/go-autorest/@v/v14.2.0+incompatible.ziphash", b"h1:x=")
    assert got == [("tree", "/go/pkg/mod/github.com/!azure/go-autorest@v14.2.0+incompatible", "",
                    "github.com/Azure/go-autorest", "v14.2.0+incompatible", False)]


# --- distro databases name their packages -------------------------------------------------------

def test_distro_records_name_packages() -> None:
    sums = read_package_db("/var/lib/dpkg/info/libssl3:amd64.md5sums", b"d41d8cd98f00b204e9800998ecf8427e  usr/lib/x\n")
    assert [(p.name, p.key) for p in headers(sums.manager, sums.files)] == [("libssl3", "dpkg:libssl3")]
    assert list(entries(sums)) == [("/usr/lib/x", "md5:d41d8cd98f00b204e9800998ecf8427e")]
    status = read_package_db("/var/lib/dpkg/status", b"Package: libssl3\nVersion: 3.0.11-1\n\nPackage: b\nVersion: 2\n")
    assert [(p.name, p.version) for p in headers(status.manager, status.files)] == [("libssl3", "3.0.11-1"), ("b", "2")]
    apk = read_package_db("/lib/apk/db/installed", b"P:musl\nV:1.2.4-r2\nF:lib\nR:x\nZ:Q1" +
                          base64.b64encode(hashlib.sha1(b"x").digest()) + b"\n")
    assert [(p.name, p.version) for p in headers(apk.manager, apk.files)] == [("musl", "1.2.4-r2")]


# --- the record format itself --------------------------------------------------------------------

def test_names_from_an_image_are_cleaned_and_bounded() -> None:
    assert clean("a\x1b[31mb\tc\nd\x9be\u202e") == "a[31mbcde"
    assert len(clean("x" * 1000)) == 214 and clean(5) == "" and clean(None) == ""
    out = Writer()
    out.package("evil\tname\nx", "1\t2", "/k")
    assert [(p.name, p.version) for p in headers("npm", out.text())] == [("evilnamex", "12")]


def test_joined_refuses_climbing_out() -> None:
    assert joined("/a/b", "c/../d") == "/a/b/d"
    assert joined("/a/b", "../../../../x") is None and joined("/a", "/etc/x") is None
    assert joined("/a", "x\\..\\y") is None and joined("/a", "") is None


def test_yarn_lock_local_specs() -> None:
    lock = (b'# yarn lockfile v1\n\n"@acme/ui@file:../ui":\n  version "1.0.0"\n\n'
            b'lodash@^4.17.21, lodash@^4.0.0:\n  version "4.17.21"\n  resolved "https://registry.yarnpkg.com/x"\n\n'
            b'"mine@link:./mine", other@^1:\n  version "0.0.0"\n\n"fork@git+https://github.com/a/fork.git#abc":\n'
            b'  version "2.0.0"\n\n"@scope/w@workspace:packages/w":\n  version: 0.0.0-use.local\n')
    assert packages("/app/yarn.lock", lock) == [
        ("@acme/ui", "", "/app/node_modules/@acme/ui", True), ("mine", "", "/app/node_modules/mine", True),
        ("fork", "", "/app/node_modules/fork", True), ("@scope/w", "", "/app/node_modules/@scope/w", True)]


def test_npm_cache_index_names_content_files() -> None:
    sha512 = hashlib.sha512(b"tgz").digest()
    hexd = sha512.hex()
    bucket = "/root/.npm/_cacache/index-v5/ab/cd/" + "e" * 60
    lines = [{"key": "make-fetch-happen:request-cache:https://registry.npmjs.org/@aws-sdk/client-s3/-/client-s3-3.5.0.tgz",
              "integrity": "sha512-" + base64.b64encode(sha512).decode()},
             {"key": "make-fetch-happen:request-cache:https://registry.npmjs.org/@smithy%2fcore",
              "integrity": "sha512-" + base64.b64encode(sha512).decode()},
             {"key": "make-fetch-happen:request-cache:file:///app/vendor/acme-1.0.0.tgz",
              "integrity": "sha512-" + base64.b64encode(sha512).decode()},
             {"key": "make-fetch-happen:request-cache:https://registry.npmjs.org/x/-/x-1.tgz", "integrity": None},
             {"key": "make-fetch-happen:request-cache:https://registry.npmjs.org/y/-/y-1.tgz", "integrity": "sha512-!!"}]
    data = "".join(f"{'0' * 40}\t{json.dumps(e)}\n" for e in lines).encode() + b"garbage\n\n"
    assert is_package_db(bucket, len(data)) and not is_package_db("/root/.npm/_cacache/index-v5/ab/cd/short", 9)
    content = f"/root/.npm/_cacache/content-v2/sha512/{hexd[:2]}/{hexd[2:4]}/{hexd[4:]}"
    assert [(k, p, n, v) for k, p, _, n, v, _ in evidence(bucket, data)] == [
        ("file", content, "@aws-sdk/client-s3", "3.5.0"), ("file", content, "@smithy/core", "")]
