"""Hostile package evidence: manifests that lie, climb out, nest without end or are huge. None of
them may hide a secret the image author put there, nor crash or stall the scan."""
from __future__ import annotations

import base64
import hashlib
import json

from scanner.packagedb import MAX_MANIFEST
from tests import secrets_catalog as sc
from tests.hostile import kit

AWS = "unit-aws-key-id"
ENV = f"A=1\nKEY={sc.AWS_KEY_ID}\n".encode()
SITE = "usr/local/lib/python3.11/site-packages"


def row(path: str, data: bytes) -> str:
    return f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},1\n"


def test_manifests_that_claim_files_outside_their_package_hide_nothing(tmp_path, scan):
    """A RECORD listing /app/.env (by climbing, absolutely, or in a bogus site-packages), a
    package.json above it, lockfiles and checksum files that point out: the secret stays untriaged."""
    record = (row("../../../../../../app/.env", ENV) + row("/app/.env", ENV) + row("../../../../../../../../../app/.env", ENV)
              + '"../../../../app/.env",sha256=x,1\n' + "\x00" * 1000 + "\n" + "x," * 100_000 + "\n")
    layer = kit.tar(
        kit.member("app/.env", ENV),
        kit.member(f"{SITE}/evil-1.0.dist-info/RECORD", record.encode()),
        kit.member(f"{SITE}/evil-1.0.dist-info/METADATA", b"Name: evil\x1b[2J\nVersion: 1\n"),
        kit.member("app/node_modules/x/package.json", b'{"name": "x", "version": "1"}'),
        kit.member("package.json", b'{"name": "root"}'),
        kit.member("node_modules/app/package.json", b'{"name": "app"}'),  # /node_modules/app is not /app
        kit.member("app/node_modules/.package-lock.json", b"[" * 50_000 + b"]" * 50_000),
        kit.member("app/vendor/composer/installed.json", json.dumps(
            {"packages": [{"name": "e/e", "install-path": "../../../app", "dist": {"type": "zip"}}]}).encode()),
        kit.member("x-1.0.0/.cargo-checksum.json", json.dumps(
            {"files": {"../app/.env": hashlib.sha256(ENV).hexdigest()}, "package": "0" * 64}).encode()),
        kit.member("app/.env.sha1", hashlib.sha1(ENV).hexdigest().encode()),
    )
    out = scan(kit.write(tmp_path, kit.image_of(layer))[0])
    env = [f for f in out.result.findings if f.hit.path == "/app/.env"]
    assert [(f.hit.rule_id, f.triage) for f in env] == [(AWS, None)]


def test_a_huge_manifest_is_scanned_not_read_as_evidence(tmp_path, scan):
    big = (row("pkg/conf.py", ENV) * ((MAX_MANIFEST // 60) + 1000)).encode()
    assert len(big) > MAX_MANIFEST
    layer = kit.tar(kit.member(f"{SITE}/pkg/conf.py", ENV), kit.member(f"{SITE}/pkg-1.0.dist-info/RECORD", big))
    out = scan(kit.write(tmp_path, kit.image_of(layer))[0])
    assert {f.triage for f in out.result.findings if f.hit.path.endswith("/pkg/conf.py")} == {None}
    assert out.error is None
