"""The engine's safety and pacing: retries, rate limit, timeouts, cache, canaries, refused
addresses, redirects, pairing, and secrets kept out of every message."""
from __future__ import annotations

import socket
import time

import pytest

from scanner.verify.aws import account_of, signature, signing_key
from scanner.verify.store import VerifyStore
from scanner.verify.transport import Transport
from tests.unit.verify.fakeapi import Reply
from tests.unit.verify.helpers import AWS_KEY_ID, AWS_SECRET, CANARY_KEY_ID, engine, finding

TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "xyz123"
LIVE = Reply(200, '{"login": "octocat"}', {"X-OAuth-Scopes": "repo"})


def test_live_detail_names_account_and_scopes(api, ca_file) -> None:
    api.answer(LIVE)
    (f,) = engine(api.url, ca_file).verify([finding("github-pat", TOKEN)])
    assert (f.verification.status, f.verification.detail) == ("live", "octocat repo")
    assert api.seen[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_retry_on_429_then_live(api, ca_file) -> None:
    api.answer(Reply(429, "{}", {"Retry-After": "1"}), Reply(503), LIVE)
    waits: list[float] = []
    (f,) = engine(api.url, ca_file, sleep=waits.append).verify([finding("github-pat", TOKEN)])
    assert f.verification.status == "live" and len(api.seen) == 3
    assert 1.0 in waits


def test_retries_are_capped(api, ca_file) -> None:
    api.answer(Reply(503))
    (f,) = engine(api.url, ca_file, retries=2).verify([finding("github-pat", TOKEN)])
    assert len(api.seen) == 3 and f.verification.status == "unknown" and f.verification.detail == "HTTP 503"


def test_rate_limit_paces_one_provider(api, ca_file) -> None:
    api.answer(LIVE)
    e = engine(api.url, ca_file, rps=4.0, sleep=time.sleep)
    start = time.monotonic()
    e.verify([finding("github-pat", f"{TOKEN}{i}") for i in range(4)])
    assert len(api.seen) == 4 and time.monotonic() - start >= 0.7  # 3 intervals of 0.25 s


def test_one_value_seen_twice_is_asked_once(api, ca_file) -> None:
    api.answer(LIVE)
    out = engine(api.url, ca_file).verify([finding("github-pat", TOKEN), finding("github-pat", TOKEN, "/b")])
    assert len(api.seen) == 1 and out[0].verification == out[1].verification


def test_timeout_is_an_error_without_the_secret(api, ca_file) -> None:
    api.answer(Reply(200, "{}", delay=1.5))
    (f,) = engine(api.url, ca_file, timeout=0.3).verify([finding("github-pat", TOKEN)])
    assert f.verification.status == "error" and "timed out" in f.verification.detail.lower()
    assert TOKEN not in f.verification.detail


def test_scan_deadline_bounds_verification(api, ca_file) -> None:
    api.answer(LIVE)
    (f,) = engine(api.url, ca_file, deadline=time.monotonic() - 1).verify([finding("github-pat", TOKEN)])
    assert f.verification.status == "error" and "--timeout" in f.verification.detail and not api.seen


def test_cache_second_run_sends_nothing(api, ca_file, tmp_path) -> None:
    api.answer(LIVE)
    engine(api.url, ca_file, store=VerifyStore(str(tmp_path))).verify([finding("github-pat", TOKEN)])
    assert len(api.seen) == 1
    text = (tmp_path / "verify.json").read_text()
    assert TOKEN not in text and TOKEN[4:20] not in text
    (f,) = engine(api.url, ca_file, store=VerifyStore(str(tmp_path))).verify([finding("github-pat", TOKEN)])
    assert len(api.seen) == 1 and f.verification.status == "live"


def test_cache_entries_expire(api, ca_file, tmp_path) -> None:
    api.answer(LIVE)
    engine(api.url, ca_file, store=VerifyStore(str(tmp_path))).verify([finding("github-pat", TOKEN)])
    engine(api.url, ca_file, store=VerifyStore(str(tmp_path), ttl=0)).verify([finding("github-pat", TOKEN)])
    assert len(api.seen) == 2


def test_errors_are_not_cached(api, ca_file, tmp_path) -> None:
    api.answer(Reply(503))
    engine(api.url, ca_file, store=VerifyStore(str(tmp_path)), retries=0).verify([finding("github-pat", TOKEN)])
    assert not (tmp_path / "verify.json").exists()


def test_aws_pair_is_signed_and_live(api, ca_file) -> None:
    api.answer(Reply(200, '{"GetCallerIdentityResponse": {"GetCallerIdentityResult": {"Arn": "arn:aws:iam::581039954779:user/ci"}}}'))
    out = engine(api.url, ca_file).verify([finding("aws-access-key-id", AWS_KEY_ID), finding("aws-secret-access-key", AWS_SECRET)])
    assert [f.verification.status for f in out] == ["live", "live"]
    assert out[1].verification.detail == "arn:aws:iam::581039954779:user/ci"
    seen = api.seen[0]
    assert seen.method == "POST" and seen.body == b"Action=GetCallerIdentity&Version=2011-06-15"
    assert seen.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")
    assert AWS_SECRET not in str(seen.headers)


def test_aws_pair_must_share_the_file(api, ca_file) -> None:
    out = engine(api.url, ca_file).verify([finding("aws-access-key-id", AWS_KEY_ID, "/a"),
                                           finding("aws-secret-access-key", AWS_SECRET, "/b")])
    assert out[1].verification.status == "unknown" and "aws-access-key-id" in out[1].verification.detail
    assert out[0].verification is None and not api.seen


def test_aws_config_pair_is_the_env(api, ca_file) -> None:
    from scanner.models import LocationKind
    api.answer(Reply(403, "<ErrorResponse><Error><Code>InvalidClientTokenId</Code></Error></ErrorResponse>"))
    out = engine(api.url, ca_file).verify([
        finding("aws-access-key-id", AWS_KEY_ID, "Env.AWS_ACCESS_KEY_ID", None, LocationKind.ENV),
        finding("aws-secret-access-key", AWS_SECRET, "Env.AWS_SECRET_ACCESS_KEY", None, LocationKind.ENV)])
    assert out[1].verification.status == "invalid" and out[1].verification.detail == "InvalidClientTokenId"


def test_canary_is_marked_and_not_called(api, ca_file) -> None:
    assert account_of(CANARY_KEY_ID) == "052310077262"
    out = engine(api.url, ca_file).verify([finding("aws-access-key-id", CANARY_KEY_ID),
                                           finding("aws-secret-access-key", AWS_SECRET)])
    v = out[1].verification
    assert (v.status, v.detail, v.canary) == ("unknown", "known canary token, not called", True) and not api.seen


def test_private_address_refused_without_user_endpoint(api, monkeypatch) -> None:
    """api.github.com made to resolve to 127.0.0.1 (a rebinding or hostile DNS) is not called."""
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: real("127.0.0.1", api.server.server_address[1], *a, **k))
    (f,) = engine(None, None).verify([finding("github-pat", TOKEN)])
    assert f.verification.status == "error" and "non-public address" in f.verification.detail and not api.seen


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "fe80::1", "::ffff:10.0.0.1",
                                     "0.0.0.0", "192.168.1.1", "100.64.0.1"])
def test_non_public_addresses(address) -> None:
    from scanner.verify.transport import public
    assert not public(address)
    assert public("140.82.112.5")


def test_connection_is_pinned_to_the_checked_address(api, ca_file, monkeypatch) -> None:
    """The name is resolved once; the socket goes to that address, not to a second lookup's."""
    connected: list = []
    real = socket.create_connection
    monkeypatch.setattr(socket, "create_connection", lambda addr, *a, **k: connected.append(addr) or real(addr, *a, **k))
    api.answer(LIVE)
    localhost = api.url.replace("127.0.0.1", "localhost")
    engine(localhost, ca_file).verify([finding("github-pat", TOKEN)])
    assert connected and connected[0][0] in ("127.0.0.1", "::1")


def test_redirect_not_followed(api, ca_file) -> None:
    api.answer(Reply(302, "", {"Location": "https://attacker.example/steal"}))
    (f,) = engine(api.url, ca_file).verify([finding("github-pat", TOKEN)])
    assert f.verification.status == "unknown" and "redirect not followed" in f.verification.detail
    assert len(api.seen) == 1


def test_untrusted_certificate_is_an_error(api) -> None:
    (f,) = engine(api.url, None).verify([finding("github-pat", TOKEN)])
    assert f.verification.status == "error" and "SSL" in f.verification.detail and not api.seen


def test_query_secret_is_scrubbed_from_errors(api, ca_file) -> None:
    api.answer(Reply(200, "{}", delay=1.5))
    secret = "sk.eyJ1IjoiYWNtZSJ9.Zm9vYmFyYmF6cXV4"
    (f,) = engine(api.url, ca_file, timeout=0.3, retries=0).verify([finding("mapbox-secret-token", secret)])
    assert f.verification.status == "error" and secret not in f.verification.detail and "access_token" not in f.verification.detail


def test_secret_in_the_answer_is_scrubbed(api, ca_file) -> None:
    api.answer(Reply(200, f'{{"login": "{TOKEN}"}}'))
    (f,) = engine(api.url, ca_file).verify([finding("github-pat", TOKEN)])
    assert TOKEN not in f.verification.detail


def test_plain_http_is_never_called() -> None:
    from scanner.verify.interface import Request, VerifyError
    with pytest.raises(VerifyError, match="only https"):
        Transport().send(Request("GET", "http://api.github.com/user", {}, None, ("x",)), 1.0)


def test_sigv4_matches_aws_documented_examples() -> None:
    # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv-create-signed-request.html (examples)
    key = signing_key("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    headers = {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "host": "iam.amazonaws.com",
               "x-amz-date": "20150830T123600Z"}
    assert signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "GET", "Action=ListUsers&Version=2010-05-08",
                     headers, b"", "20150830T123600Z", "us-east-1", "iam") == \
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"


def test_account_of_non_key() -> None:
    assert account_of("not-a-key") is None and account_of("AKIA" + "1" * 16) is None


def test_providers_are_asked_in_parallel_each_paced(api, ca_file) -> None:
    """Two providers at 1 request a second, three keys each: about 2 s in parallel, 4 s one after the other."""
    api.answer(Reply(200, '{"login": "octocat", "username": "ops"}'))
    e = engine(api.url, ca_file, rps=1.0, sleep=time.sleep)
    start = time.monotonic()
    out = e.verify([finding("github-pat", f"{TOKEN}{i}") for i in range(3)]
                   + [finding("npm-token", "npm_" + c * 36) for c in "abc"])
    took = time.monotonic() - start
    assert len(api.seen) == 6 and all(f.verification.status == "live" for f in out)
    assert 1.9 <= took < 3.5, took


def test_a_huge_answer_is_read_only_in_part(api, ca_file) -> None:
    api.answer(Reply(200, '{"login": "' + "x" * (4 << 20) + '"}'))
    start = time.monotonic()
    (f,) = engine(api.url, ca_file).verify([finding("github-pat", TOKEN)])
    assert f.verification.status == "live" and time.monotonic() - start < 5
