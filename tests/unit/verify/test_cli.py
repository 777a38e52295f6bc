"""`--verify` from the command line: off by default (nothing is sent), the gate it narrows, the
endpoints it lists."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from scanner.cli import main
from scanner.gate import Policy, gating
from scanner.models import ScanResult, ImageResult, SourceKind, Verification
from dataclasses import replace
from tests.unit.verify.fakeapi import Reply
from tests.unit.verify.helpers import finding

SAMPLE = Path(__file__).resolve().parents[3] / "sample_images" / "leaky-app.tar"


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_:
        main([args[0], "--no-progress", *args[1:]] if args[0] != "verify" else list(args))
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


@pytest.fixture
def connections(monkeypatch):
    made: list = []
    real = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda addr, *a, **k: made.append(addr) or real(addr, *a, **k))
    return made


def test_without_verify_no_connection_is_made(capsys, connections, api, tmp_path) -> None:
    code, out, _ = run(capsys, "scan", "--no-cache", "--workers", "1", "-f", "json", str(SAMPLE))
    assert code == 1 and not connections and not api.seen
    assert all(f["verification"] is None for f in json.loads(out)["findings"])


def test_with_verify_the_sample_is_checked(capsys, connections, api, ca_file) -> None:
    api.answer(Reply(200, '{"login": "octocat", "ok": true, "user": "bot", "team": "acme", "username": "ops"}'))
    endpoints = [a for p in ("github", "slack", "npm", "aws") for a in ("--verify-endpoint", f"{p}={api.url}")]
    code, out, err = run(capsys, "scan", "--no-cache", "--workers", "1", "-f", "json", "--verify",
                         "--verify-ca-file", ca_file, *endpoints, str(SAMPLE))
    doc = json.loads(out)
    by_rule = {f["rule_id"]: f["verification"] for f in doc["findings"]}
    assert by_rule["github-pat"]["status"] == "live" and by_rule["github-pat"]["detail"].startswith("octocat")
    assert by_rule["openssh-private-key"] is None
    assert connections and api.seen and "--verify:" in err
    for f in doc["findings"]:
        assert f["secret"].get("value") is None  # --verify reads values; the report still hides them


def test_fail_on_verified_needs_verify(capsys) -> None:
    code, _, err = run(capsys, "scan", "--fail-on-verified", str(SAMPLE))
    assert code == 2 and "--fail-on-verified needs --verify" in err


def test_verify_endpoint_must_be_https_and_known(capsys) -> None:
    code, _, err = run(capsys, "scan", "--verify", "--verify-endpoint", "github=http://x", str(SAMPLE))
    assert code == 2 and "https://" in err
    code, _, err = run(capsys, "scan", "--verify", "--verify-endpoint", "nosuch=https://x", str(SAMPLE))
    assert code == 2 and "no provider" in err


def test_list_endpoints(capsys) -> None:
    code, out, _ = run(capsys, "verify", "--list-endpoints")
    hosts = out.split()
    assert code == 0 and {"api.github.com", "sts.amazonaws.com", "slack.com", "*.api.mailchimp.com"} <= set(hosts)
    assert hosts == sorted(set(hosts)) and len(hosts) >= 40


@pytest.mark.parametrize("status,gates", [("live", True), ("invalid", False), ("unknown", True), ("error", True),
                                          (None, True)])
def test_fail_on_verified_lets_only_invalid_pass(status, gates) -> None:
    f = finding("github-pat", "x")
    if status is not None:
        f = replace(f, verification=Verification(status, "api.github.com"))
    result = ScanResult((ImageResult("img", SourceKind.DOCKER_ARCHIVE, None, (), (f,), ()),))
    assert bool(gating(result, Policy(fail_on_verified=True))) is gates
    assert gating(result, Policy())  # without the flag every finding gates
