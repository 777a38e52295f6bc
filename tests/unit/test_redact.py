"""Secrets leave the scanner as a hash and a redacted form; scrub removes them from free text."""
from __future__ import annotations

import hashlib

import pytest

from scanner.redact import decode, make_secret, redact, scrub
from tests import secrets_catalog as sc


@pytest.mark.parametrize("value,shown", [
    (sc.GITHUB_PAT, "ghp_****...u2wr"),
    (sc.AWS_KEY_ID, "AKIA****...TB3P"),  # exactly 20
    ("0123456789abcdefghi", "01****...hi"),  # 19
    (sc.DB_PASSWORD, "Pq****...v7"),  # 16
    ("0123456789ab", "01****...ab"),  # 12
    ("0123456789a", "****"),  # 11
    ("x", "****"),
    ("", "****"),
])
def test_redact(value, shown):
    assert redact(value) == shown


@pytest.mark.parametrize("value", [v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str)
                                   and k != "BASE62"])
def test_redacted_form_never_holds_the_secret(value):
    shown = make_secret(value.encode(), keep_value=False).redacted
    assert value.strip() not in shown
    assert len(shown.replace("*", "").replace(".", "")) <= 8 or shown.startswith("-----BEGIN")


def test_make_secret_hashes_the_exact_bytes():
    s = make_secret(sc.NPM_TOKEN.encode(), keep_value=False)
    assert s.sha256 == hashlib.sha256(sc.NPM_TOKEN.encode()).hexdigest()
    assert s.value is None
    assert make_secret(sc.NPM_TOKEN.encode(), keep_value=True).value == sc.NPM_TOKEN


def test_secret_repr_never_shows_the_value():
    s = make_secret(sc.NPM_TOKEN.encode(), keep_value=True)
    assert sc.NPM_TOKEN not in repr(s)


def test_pem_shows_only_its_header():
    s = make_secret(sc.RSA_PRIVATE_KEY.encode(), keep_value=False)
    assert s.redacted == "-----BEGIN PRIVATE KEY----- ****...(redacted)"
    s = make_secret(sc.OPENSSH_PRIVATE_KEY.encode(), keep_value=False)
    assert s.redacted == "-----BEGIN OPENSSH PRIVATE KEY----- ****...(redacted)"


def test_undecodable_bytes_are_kept_distinct():
    raw = b"tok\xff\xfe" + b"z" * 20
    s = make_secret(raw, keep_value=True)
    assert s.sha256 == hashlib.sha256(raw).hexdigest()
    assert s.value == decode(raw) == "tok\\xff\\xfe" + "z" * 20


def test_scrub_every_occurrence_longest_first():
    text = f"|2 URL={sc.URL_CREDENTIAL} PW={sc.URL_PASSWORD} /bin/sh -c echo {sc.URL_PASSWORD}"
    out = scrub(text, [sc.URL_PASSWORD, sc.URL_CREDENTIAL])
    assert out == (f"|2 URL={redact(sc.URL_CREDENTIAL)} PW={redact(sc.URL_PASSWORD)} "
                   f"/bin/sh -c echo {redact(sc.URL_PASSWORD)}")
    assert sc.URL_PASSWORD not in out


def test_scrub_edge_cases():
    assert scrub(None, [sc.NPM_TOKEN]) is None
    assert scrub("RUN make", []) == "RUN make"
    assert scrub("RUN make", ["", sc.NPM_TOKEN]) == "RUN make"
    assert scrub(f"a {sc.NPM_TOKEN} b", [sc.NPM_TOKEN, sc.NPM_TOKEN]) == f"a {redact(sc.NPM_TOKEN)} b"
