"""`layerscan --verify` run as a user runs it, on the sample image: every provider pointed at a
local TLS server answering as the providers document; JSON says what each key is, the secret in
no message, and `--fail-on-verified` lets rejected keys pass the gate (only those)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.runcli import REPO_ROOT, cli
from tests.unit.verify.fakeapi import FakeApi, Reply, make_certs

pytestmark = pytest.mark.integration

SAMPLE = REPO_ROOT / "sample_images" / "leaky-app.tar"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    ca, cert, key = make_certs(tmp_path_factory.mktemp("tls"))
    api = FakeApi(cert, key)
    yield api, str(ca)
    api.close()


def _run(api: FakeApi, ca: str, cache: Path, *extra: str):
    endpoints = [a for p in ("github", "slack", "npm", "aws") for a in ("--verify-endpoint", f"{p}={api.url}")]
    return cli("-f", "json", "--cache-dir", cache, "--verify", "--verify-ca-file", ca, *endpoints, *extra,
               SAMPLE)


def test_verify_sample_image_json(fake, tmp_path) -> None:
    api, ca = fake
    api.answer(Reply(401, '{"message": "Bad credentials", "ok": false, "error": "invalid_auth"}'))
    api.routes["/"] = Reply(403, '{"Error": {"Code": "InvalidClientTokenId"}}')  # STS
    proc = _run(api, ca, tmp_path / "cache")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    verified = {f["rule_id"]: f["verification"] for f in doc["findings"] if f["verification"]}
    assert {"github-pat", "github-oauth-token", "slack-bot-token", "npm-token", "aws-secret-access-key",
            "aws-access-key-id"} <= set(verified)
    assert all(v["status"] == "invalid" and v["endpoint"].startswith("127.0.0.1:") and v["checked_at"]
               for v in verified.values()), verified
    assert all("value" not in f["secret"] for f in doc["findings"])  # values read, never reported
    assert proc.stderr.strip().startswith("layerscan: --verify:")
    # every finding is rejected or has no verifier: --fail-on-verified gates on the unverifiable rest only
    seen = len(api.seen)
    gated = _run(api, ca, tmp_path / "cache", "--fail-on-verified")
    assert gated.returncode == 1  # the ssh private key has no verifier: it still gates
    assert len(api.seen) == seen  # the cache answered: nothing asked twice
    only_keys = _run(api, ca, tmp_path / "cache", "--fail-on-verified", "--disable-rule", "openssh-private-key")
    assert only_keys.returncode == 0, only_keys.stderr
