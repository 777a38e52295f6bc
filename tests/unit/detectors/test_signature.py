"""The signature detector's checks: keyword prefilter, entropy floor, allowlists, placeholders."""
from __future__ import annotations

import time

import pytest

from scanner.detectors.interface import Match
from scanner.detectors.rules import RuleSet, load_rules, parse_rule_file
from scanner.detectors.signature import (
    SignatureDetector,
    is_placeholder,
    most_severe_per_span,
    shannon_entropy,
)
from scanner.models import DetectorKind, Severity
from tests import secrets_catalog as catalog

TOKEN = b"Zr7Kq2Wm9Xt4Lp6V"  # 16 distinct characters: 4 bits of entropy per character


def detector(body: str) -> SignatureDetector:
    """A detector over one rule: `body` is the YAML of the rule's fields after id/title/severity."""
    text = "rules:\n  - id: demo\n    title: Demo\n    severity: high\n" + body
    return SignatureDetector(RuleSet(tuple(parse_rule_file(text.encode(), "demo.yaml")), "test"))


def secrets(det: SignatureDetector, buf: bytes) -> list[bytes]:
    return [m.secret for m in det.scan(buf)]


# --- keyword prefilter ------------------------------------------------------------------------------

KEYED = """    keywords: [demo_]
    regex: '(?P<secret>[A-Za-z0-9]{16})(?![A-Za-z0-9])'
"""


def test_rule_runs_only_where_its_keyword_is() -> None:
    det = detector(KEYED)
    assert secrets(det, b"value " + TOKEN) == []
    assert secrets(det, b"demo_ " + TOKEN) == [TOKEN]
    assert det.candidate_rules(b"value " + TOKEN) == []
    assert [r.id for r in det.candidate_rules(b"x = demo_ " + TOKEN)] == ["demo"]


def test_keywords_match_case_insensitively() -> None:
    assert secrets(detector(KEYED), b"DEMO_ " + TOKEN) == [TOKEN]


def test_rule_without_keywords_runs_wherever_its_shape_may_match() -> None:
    det = detector("    regex: '(?P<secret>[A-Za-z0-9]{16})(?![A-Za-z0-9])'\n")
    assert secrets(det, TOKEN) == [TOKEN]
    assert secrets(det, b"x" * 5000 + b" " + TOKEN + b" " + b"y" * 5000) == [TOKEN]
    assert [r.id for r in det.candidate_rules(b"key: " + TOKEN)] == ["demo"]


def test_match_offsets_point_at_the_secret_only() -> None:
    det = detector("""    keywords: [demo_token]
    regex: 'DEMO_TOKEN=(?P<secret>[A-Za-z0-9]{16})'
""")
    buf = b"export DEMO_TOKEN=" + TOKEN + b"\n"
    (m,) = det.scan(buf)
    assert (m.rule_id, m.detector, m.severity, m.title) == ("demo", DetectorKind.SIGNATURE, Severity.HIGH, "Demo")
    assert buf[m.start:m.end] == m.secret == TOKEN


def test_every_occurrence_is_reported() -> None:
    other = b"Qa3Ue7Vb5Gt8Hs6J"
    assert secrets(detector(KEYED), b"demo_ " + TOKEN + b"\ndemo_ " + other) == [TOKEN, other]


# --- entropy floor ----------------------------------------------------------------------------------

@pytest.mark.parametrize("data,bits", [(b"", 0.0), (b"aaaa", 0.0), (b"abab", 1.0), (b"abcd", 2.0),
                                       (bytes(range(256)), 8.0)])
def test_shannon_entropy(data: bytes, bits: float) -> None:
    assert shannon_entropy(data) == pytest.approx(bits)


def test_entropy_floor() -> None:
    det = detector(KEYED + "    entropy: 3.5\n")
    assert secrets(det, b"demo_ " + TOKEN) == [TOKEN]  # 4.0 bits
    assert secrets(det, b"demo_ abcdabcdabcdabcd") == []  # 2.0 bits
    assert secrets(det, b"demo_ Zr7KZr7KZr7KZr7K") == []  # 2.0 bits


# --- allowlists -------------------------------------------------------------------------------------

def test_allowlist_regexes_skip_a_secret() -> None:
    det = detector(KEYED + "    allowlist:\n      regexes: ['^Zr7K', 'EXAMPLE$']\n")
    assert secrets(det, b"demo_ " + TOKEN) == []
    assert secrets(det, b"demo_ Qa3Ue7Vb5GtEXAMPLE") == []
    assert secrets(det, b"demo_ Qa3Ue7Vb5Gt8Hs6J") == [b"Qa3Ue7Vb5Gt8Hs6J"]


def test_allowlist_stopwords_are_case_insensitive_substrings() -> None:
    det = detector(KEYED + "    allowlist:\n      stopwords: [sample]\n")
    assert secrets(det, b"demo_ Qa3SAMPLEb5Gt8Hs") == []
    assert secrets(det, b"demo_ Qa3SampLeb5Gt8Hs") == []
    assert secrets(det, b"demo_ " + TOKEN) == [TOKEN]


def test_validator_decides_last() -> None:
    det = detector("""    keywords: [ghp_]
    regex: '(?P<secret>ghp_[A-Za-z0-9]{36})'
    validator: base62-crc32
""")
    bad = catalog.GITHUB_PAT[:-1] + ("A" if catalog.GITHUB_PAT[-1] != "A" else "B")
    assert secrets(det, catalog.GITHUB_PAT.encode()) == [catalog.GITHUB_PAT.encode()]
    assert secrets(det, bad.encode()) == []


# --- placeholder filter -----------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "${DB_PASSWORD}", "$(cat /run/secrets/db)", "{{ vault_password }}", "{{.Values.token}}", "<token>",
    "<your-api-key>", "%(password)s", "#{DB_PASSWORD}", "changeme", "CHANGEME", "your-key-here",
    "'changeme'", "xxxxxxxxxxxxxxxx", "XXXX-XXXX-XXXX", "****************", "abc....", "aaaaaaaa",
    "abababab", "false", "null", "None", "password", "secret", "test", "0123456789", "ABCDEFGHIJKLMNOP",
    "x", "{token}", "password = get_secret()",
])
def test_placeholders_are_filtered(value: str) -> None:
    assert is_placeholder(value.encode())


@pytest.mark.parametrize("name", ["DB_PASSWORD", "DJANGO_SECRET_KEY", "GITHUB_PAT", "AWS_SECRET_KEY",
                                  "URL_PASSWORD", "JWT", "RSA_PRIVATE_KEY", "OPENSSH_PRIVATE_KEY"])
def test_real_secrets_are_not_placeholders(name: str) -> None:
    assert not is_placeholder(getattr(catalog, name).encode())


@pytest.mark.parametrize("value", [b"${DEMO_TOKEN_VALUE}", b"<demo-token-value>", b"xxxxxxxxxxxxxxxx"])
def test_detector_applies_the_placeholder_filter(value: bytes) -> None:
    det = detector("""    keywords: [demo_token]
    regex: 'DEMO_TOKEN=(?P<secret>\\S{16,})'
""")
    assert secrets(det, b"DEMO_TOKEN=" + value) == []
    assert secrets(det, b"DEMO_TOKEN=" + TOKEN) == [TOKEN]


# --- one secret, one finding ------------------------------------------------------------------------

def _match(rule: str, severity: Severity, start: int = 0, end: int = 16) -> Match:
    return Match(rule, DetectorKind.SIGNATURE, severity, rule, start, end, TOKEN)


def test_most_severe_rule_wins_on_the_same_span() -> None:
    found = [_match("generic", Severity.MEDIUM), _match("provider", Severity.HIGH),
             _match("elsewhere", Severity.LOW, 20, 36)]
    assert [m.rule_id for m in most_severe_per_span(found)] == ["provider", "elsewhere"]


def test_equal_severities_on_the_same_span_are_all_kept() -> None:
    found = [_match("a", Severity.HIGH), _match("b", Severity.HIGH)]
    assert [m.rule_id for m in most_severe_per_span(found)] == ["a", "b"]


def test_provider_rule_hides_the_generic_one_in_a_real_scan() -> None:
    det = SignatureDetector(load_rules())
    buf = b"DD_API_KEY=" + b"3f9a1c7e5b2d8f4a6c0e9b1d7f3a5c8e"
    assert [m.rule_id for m in det.scan(buf)] == ["datadog-api-key"]


# --- no pathological regexes ------------------------------------------------------------------------

ADVERSARIAL = [
    b"a" * 200_000, b"A1" * 100_000, b"=" * 200_000, b"://" * 60_000, b"<" + b"a" * 200_000,
    b"password=" * 20_000, b"token: " * 25_000, b"-----BEGIN RSA PRIVATE KEY-----\n" + b"QUJD" * 50_000,
    b"PuTTY-User-Key-File-3: " + b"x\n" * 80_000, b"curl -u " * 25_000, b"machine a login b " * 10_000,
    b"eyJ" + b"a" * 100_000 + b".eyJ" + b"b" * 100_000, b"$6$" * 60_000, b"sv=2024-01-01&" * 10_000,
    b"\x00\xff" * 100_000,
]


def test_rules_stay_fast_on_adversarial_input() -> None:
    det = SignatureDetector(load_rules())
    started = time.monotonic()
    for buf in ADVERSARIAL:
        list(det.scan(buf))
    assert time.monotonic() - started < 30
