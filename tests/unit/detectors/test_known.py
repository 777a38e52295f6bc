"""The known-secret detector: the secrets file, the encoded forms, hash-only entries, scrubbing."""
from __future__ import annotations

import base64
import hashlib
import io
import json
from urllib.parse import quote, quote_plus

import pytest

from scanner.detectors.content import ContentScanner
from scanner.detectors.known import (MIN_VALUE, RULE, RULE_BASE64, RULE_URL, KnownSecretDetector, KnownSecretsError,
                                     base64_forms, parse_secrets, url_forms)
from scanner.detectors.signature import SignatureDetector
from tests import secrets_catalog as sc

PAT = sc.GITHUB_PAT.encode()
PASSWORD = sc.DB_PASSWORD.encode()  # `!` and `#`: its URL-encoded forms differ from it


def sha(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def detector(*lines: bytes, candidates=None) -> KnownSecretDetector:
    return KnownSecretDetector(parse_secrets(b"\n".join(lines)), candidates)


def found(d: KnownSecretDetector, buf: bytes) -> list[tuple[str, bytes, bytes]]:
    """(rule, given value, the bytes at the match) of every match."""
    return [(m.rule_id, m.secret, buf[m.start:m.end]) for m in d.scan(buf)]


# --- the secrets file --------------------------------------------------------------------------


def test_values_hashes_blank_lines_and_crlf():
    data = PAT + b"\r\n\n" + b"sha256:" + sha(PASSWORD).upper().encode() + b"\n" + PAT + b"\n"
    secrets = parse_secrets(data)
    assert [(s.line, s.sha256, s.value) for s in secrets] == [(1, sha(PAT), PAT), (3, sha(PASSWORD), None)]
    assert secrets[0].label == "[known secret, line 1]"
    assert "ghp_" not in repr(secrets)


def test_a_value_is_taken_byte_for_byte():
    """No comments and no trimming: a password may start with # or end with a space."""
    (secret,) = parse_secrets(b"#hash-start-pass \n")
    assert secret.value == b"#hash-start-pass "


@pytest.mark.parametrize("data, where", [(b"ok-value-1\nshort\n", "line 2"), (b"x" * 5000, "line 1"),
                                         (b"\n\n", "no secret")])
def test_errors_name_the_line_never_the_value(data, where):
    with pytest.raises(KnownSecretsError) as err:
        parse_secrets(data, "secrets.txt")
    assert where in str(err.value) and "secrets.txt" in str(err.value)
    assert b"short" not in str(err.value).encode() and "xxxxx" not in str(err.value)


def test_values_shorter_than_the_minimum_are_refused():
    with pytest.raises(KnownSecretsError):
        parse_secrets(b"a" * (MIN_VALUE - 1))
    assert parse_secrets(b"a" * MIN_VALUE)


# --- the forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:", b"\xff\x00\x10"])
@pytest.mark.parametrize("suffix", [b"", b"!", b"\n\x00", b":x:y"])
@pytest.mark.parametrize("value", [PAT, PASSWORD, bytes(range(256))[:40]])
def test_base64_of_any_surrounding_holds_one_of_the_forms(prefix, suffix, value):
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(prefix + value + suffix)
        assert any(form in text for form in base64_forms(value)), (prefix, suffix)


def test_base64_forms_depend_on_the_value_only():
    forms = base64_forms(PAT)
    assert 3 <= len(forms) <= 6
    assert all(len(f) >= len(PAT) * 4 // 3 - 3 for f in forms)


def test_url_forms():
    forms = url_forms(PASSWORD)
    assert quote(PASSWORD, safe="").encode() in forms
    assert any(b"%21" in f for f in forms) and any(b"%23" in f for f in forms)
    assert url_forms(b"only-unreserved_chars.~123") == []  # the same bytes as the value: no extra form
    assert quote_plus(b"with space and /slash").encode() in url_forms(b"with space and /slash")


# --- scanning -----------------------------------------------------------------------------------


def test_raw_base64_and_url_encoded_sightings_carry_the_given_value():
    auth = base64.b64encode(b"deploy:" + PAT).decode()
    buf = (b"token=" + PAT + b"\n" + json.dumps({"auths": {"ghcr.io": {"auth": auth}}}).encode()
           + b"\nGET /login?pw=" + quote(PASSWORD, safe="").encode() + b" HTTP/1.1\n")
    got = found(detector(PAT, PASSWORD), buf)
    assert {(rule, value) for rule, value, _ in got} == {(RULE, PAT), (RULE_BASE64, PAT), (RULE_URL, PASSWORD)}
    raw = [at for rule, _, at in got if rule == RULE]
    assert raw == [PAT]


def test_url_encoding_with_lower_case_hex_and_plus():
    value = b"p@ss word/with:colon"
    d = detector(value)
    for text in (quote(value, safe="").lower(), quote_plus(value), quote(value)):
        assert [(r, v) for r, v, _ in found(d, f"x={text}&y=1".encode())] == [(RULE_URL, value)], text


def test_every_occurrence_is_a_sighting():
    d = detector(PAT)
    buf = b"a " + PAT + b" b " + PAT + PAT
    assert [m.start for m in d.scan(buf)] == [2, 2 + len(PAT) + 3, 2 + 2 * len(PAT) + 3]


def test_a_longer_value_wins_where_two_start_at_the_same_byte():
    short, long_ = b"prefix-value", b"prefix-value-and-more"
    content = ContentScanner([detector(short, long_)])
    located = content.scan_stream(io.BytesIO(b"k=" + long_ + b"\n").read, "/f")
    assert [loc.match.secret for loc in located] == [long_]


def test_hash_only_entries_match_whole_tokens_and_values_after_equals():
    d = detector(b"sha256:" + sha(PASSWORD).encode())
    for text in (b'DB_PASSWORD="' + PASSWORD + b'"', b"DB_PASSWORD=" + PASSWORD, b"password: " + PASSWORD,
                 b"[" + PASSWORD + b"]", b"pw:" + PASSWORD):
        got = found(d, text + b"\n")
        assert got == [(RULE, PASSWORD, PASSWORD)], text
    assert found(d, b"x" + PASSWORD + b"\n") == []  # inside a longer token: not a candidate
    assert found(d, base64.b64encode(PASSWORD)) == []  # encoded forms need the value itself


def test_hash_only_entries_match_what_a_rule_finds(unit_rules):
    key = sc.AWS_KEY_ID.encode()
    buf = b"url=https://ci:" + key + b"@git.example/repo.git\n"  # no token boundary around the key
    assert found(detector(b"sha256:" + sha(key).encode()), buf) == []
    d = detector(b"sha256:" + sha(key).encode(), candidates=SignatureDetector(unit_rules))
    assert found(d, buf) == [(RULE, key, key)]


def test_digest_names_the_hashes_not_the_values():
    d = detector(PAT, b"sha256:" + sha(PASSWORD).encode())
    assert d.digest == detector(b"sha256:" + sha(PAT).encode(), PASSWORD).digest
    assert d.digest != detector(PAT).digest


# --- never shown --------------------------------------------------------------------------------


def test_scrub_replaces_every_form_with_the_label():
    d = detector(PAT, PASSWORD)
    auth = base64.b64encode(b"u:" + PAT).decode()
    text = f"|2 TOKEN={sc.GITHUB_PAT} AUTH={auth} PW={quote(sc.DB_PASSWORD, safe='')} /bin/sh -c make"
    clean = d.scrub(text)
    assert sc.GITHUB_PAT not in clean and quote(sc.DB_PASSWORD, safe="") not in clean
    assert not any(form.decode() in clean for form in base64_forms(PAT))
    assert clean.startswith("|2 TOKEN=[known secret, line 1] AUTH=")
    assert "PW=[known secret, line 2]" in clean


def test_scrub_replaces_found_values_of_hash_only_entries():
    d = detector(b"sha256:" + sha(PASSWORD).encode())
    assert d.scrub(f"ENV PW={sc.DB_PASSWORD}", [(sc.DB_PASSWORD, sha(PASSWORD))]) == \
        "ENV PW=[known secret, line 1]"
    assert d.scrub(f"ENV PW={sc.DB_PASSWORD}", [(sc.DB_PASSWORD, "0" * 64)]) == f"ENV PW={sc.DB_PASSWORD}"
    assert d.scrub(None) is None
