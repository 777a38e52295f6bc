"""What a refused push tells its client: the blocking findings, redacted and escaped; and the
on-timeout answers."""
from __future__ import annotations

import json

import pytest

from scanner.cache import NullCache
from scanner.detectors.rules import load_rules
from scanner.errors import ExitCode
from scanner.gate import Policy, Verdict
from scanner.models import (DetectorKind, Finding, Hit, LayerInfo, LocationKind, Secret, Severity, Status)
from scanner.pipeline import ScanOptions
from scanner.serve.check import Checker, Push, denial, escape, timed_out
from scanner.serve.policy import RepositoryPolicy
from scanner.sources.auth import Credentials
from scanner.sources.registry_http import Endpoint

VALUE = "ghp_R7kq2Lw9ZxT4mVb8Nc3Hs6Pd1Fj5Gy0abc"


def finding(path: str, severity: Severity = Severity.CRITICAL, layer: int = 3, rule: str = "github-pat") -> Finding:
    hit = Hit(rule, DetectorKind.SIGNATURE, severity, "t", path, 1, Secret("0" * 64, "ghp_****...0abc", None),
              kind=LocationKind.FILE)
    info = LayerInfo(layer, "sha256:" + "1" * 64, None, None, 1, 1)
    return Finding("f" * 32, hit, "repo:1", Status.PRESENT, info)


def test_a_denial_names_the_blocking_findings_without_their_values():
    decided = Verdict(ExitCode.FINDINGS, (finding("/app/.env"), finding("/etc/x", Severity.LOW, 1, "generic-password")))
    text = denial(decided, RepositoryPolicy(Policy(fail_on=Severity.LOW)))
    assert text == ("layerscan: 2 finding(s) at or above low: github-pat in /app/.env (layer 3, present), "
                    "generic-password in /etc/x (layer 1, present)")
    assert VALUE not in text and "ghp_****" not in text


def test_a_denial_escapes_what_the_image_named_and_counts_past_five():
    hostile = "/app/\x1b[31mred\nline\u202e"
    decided = Verdict(ExitCode.FINDINGS, tuple(finding(hostile if i == 0 else f"/f{i}") for i in range(7)))
    text = denial(decided, RepositoryPolicy())
    assert "\x1b" not in text and "\n" not in text and "\u202e" not in text
    assert "/app/\\u001b[31mred\\nline\\u202e" in text
    assert text.endswith(", and 2 more")
    assert text.isascii() and text.isprintable()


def test_escape_bounds_the_length():
    assert escape("a" * 500) == "a" * 200 + "..."


def test_on_timeout_says_what_it_did():
    push = Push("team/app", "1", b"{}", "")
    assert timed_out(push, RepositoryPolicy(on_timeout="deny"), 61.2).verdict == "timeout-deny"
    allowed = timed_out(push, RepositoryPolicy(on_timeout="allow"), 61.2)
    assert allowed.allowed and "on-timeout: allow" in allowed.message and "team/app:1" in allowed.message


@pytest.mark.parametrize("body, says", [
    (b"not json", "not valid JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"size": 1}]}).encode(),
     "bad descriptor in the image index"),
])
def test_a_manifest_that_cannot_be_read_is_denied_with_why(body, says):
    checker = Checker(load_rules(()), ScanOptions(workers=1), Endpoint("127.0.0.1:9", "http"), NullCache)
    decision = checker.check(Push("team/app", "1", body, ""), RepositoryPolicy(), 10)
    assert (decision.verdict, decision.allowed) == ("error", False)
    assert decision.message.startswith("layerscan: team/app:1 not scanned: ") and says in decision.message


def test_blobs_are_read_with_the_clients_authorization_unless_the_proxy_has_its_own():
    endpoint = Endpoint("127.0.0.1:9", "http")
    push = Push("team/app", "1", b"{}", "", authorization="Bearer client-token")
    client = Checker(load_rules(()), ScanOptions(), endpoint, NullCache).client(push)
    assert client._authorization == "Bearer client-token"
    own = Credentials("svc", "pw")
    assert Checker(load_rules(()), ScanOptions(), endpoint, NullCache, upstream_credentials=own).client(push) \
        .endpoint.credentials is own


def test_an_incomplete_scan_under_fail_on_incomplete_says_so():
    from scanner.models import ImageResult, Skipped, SourceKind

    image = ImageResult("repo:1", SourceKind.REGISTRY, None, (), (), (Skipped("/big.zip", "too deep", 1),))
    text = denial(Verdict(ExitCode.ERROR, (), (image,)), RepositoryPolicy())
    assert text == "layerscan: 1 item(s) not scanned (fail-on-incomplete)"
