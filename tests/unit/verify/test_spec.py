"""The verifier data is checked when loaded: a bad entry is one clear error, never a silent skip."""
from __future__ import annotations

import pytest

from scanner.verify.interface import Answer, Credential, VerifyError
from scanner.verify.spec import HttpVerifier, load_verifiers

GOOD = {"id": "x", "rules": ["r"], "docs": "https://docs", "request": {"url": "https://api.x.com/me"},
        "live": {"status": [200]}, "invalid": {"status": [401]}}


def write(tmp_path, text: str):
    (tmp_path / "v.yaml").write_text(text)
    return str(tmp_path)


@pytest.mark.parametrize("text,why", [
    ("verifiers:\n  - {id: x, rules: [r], request: {url: 'http://api.x.com'}, live: {status: [200]}, invalid: {status: [401]}}",
     "https://"),
    ("verifiers:\n  - {id: x, rules: [r], request: {method: DELETE, url: 'https://a.x'}, live: {status: [200]}, invalid: {status: [401]}}",
     "read-only"),
    ("verifiers:\n  - {id: x, rules: [r], request: {url: 'https://a.x'}, live: {status: [200]}}", "live and invalid"),
    ("verifiers:\n  - {id: x, rules: [r], surprise: 1}", "a verifier has"),
    ("verifiers:\n  - {id: x, rules: [r], request: {url: 'https://a.x'}, live: {status: [200]}, invalid: {status: [401]}}\n"
     "  - {id: x, rules: [s], request: {url: 'https://a.x'}, live: {status: [200]}, invalid: {status: [401]}}", "twice"),
    ("verifiers: [: bad", "cannot be read"),
    ("verifiers:\n  - {id: a, kind: aws-sigv4, rules: [r], pair: p, canary_accounts: [052310077262]}", "12-digit"),
])
def test_bad_data_is_one_error(tmp_path, text, why) -> None:
    with pytest.raises(VerifyError, match=why):
        load_verifiers(write(tmp_path, text))


def test_unknown_template_variable_is_an_error() -> None:
    v = HttpVerifier({**GOOD, "request": {"url": "https://api.x.com/{nope}"}}, "t")
    with pytest.raises(VerifyError, match="nope"):
        v.request(Credential("s"), None)


def test_derived_host_needs_a_matching_key() -> None:
    (mailchimp,) = [v for v in load_verifiers() if v.id == "mailchimp"]
    assert mailchimp.request(Credential("0" * 32 + "-us21"), None).url == "https://us21.api.mailchimp.com/3.0/ping"
    with pytest.raises(VerifyError, match="which host"):
        mailchimp.request(Credential("0" * 32 + "-eu1"), None)


def test_endpoint_override_keeps_the_documented_path() -> None:
    (github,) = [v for v in load_verifiers() if v.id == "github"]
    assert github.request(Credential("t"), "https://ghe.corp/api/v3").url == "https://ghe.corp/api/v3/user"


def test_detail_is_printable_and_short(api, ca_file) -> None:
    from tests.unit.verify.fakeapi import Reply
    from tests.unit.verify.helpers import engine, finding
    api.answer(Reply(200, '{"login": "\\u001b[31mred\\u0007' + "x" * 400 + '"}'))
    (f,) = engine(api.url, ca_file).verify([finding("github-pat", "tok")])
    assert "\x1b" not in f.verification.detail and "\x07" not in f.verification.detail
    assert len(f.verification.detail) <= 200


def test_judge_reads_json_conditions() -> None:
    (slack,) = [v for v in load_verifiers() if v.id == "slack"]
    assert slack.judge(Answer(200, {}, b'{"ok": true, "user": "bot", "team": "acme"}')) == ("live", "bot @ acme")
    assert slack.judge(Answer(200, {}, b'{"ok": false, "error": "token_revoked"}'))[0] == "invalid"
    assert slack.judge(Answer(200, {}, b'{"ok": false, "error": "ratelimited"}'))[0] == "unknown"
    assert slack.judge(Answer(200, {}, b"not json"))[0] == "unknown"


def test_settings_file_cannot_turn_the_gate_without_verify(tmp_path, capsys) -> None:
    from scanner.cli import main
    config = tmp_path / "c.yaml"
    config.write_text("fail-on-verified: true\n")
    with pytest.raises(SystemExit) as exit_:
        main(["scan", "--config", str(config), str(tmp_path / "none.tar")])
    assert exit_.value.code == 2 and "--fail-on-verified needs --verify" in capsys.readouterr().err
