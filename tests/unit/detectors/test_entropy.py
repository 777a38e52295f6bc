"""Keyword and entropy detection on candidate lines (detect-secrets' plugins, our filters)."""
from __future__ import annotations

import pickle
import re

import pytest
from detect_secrets.settings import get_settings

from scanner.detectors.entropy import ENTROPY_RULE, KEYWORD_RULE, EntropyDetector
from scanner.detectors.rules import load_rules
from scanner.detectors.signature import SignatureDetector
from scanner.models import DetectorKind
from tests.corpus.material import Rand

RULES = load_rules()
SIGNATURE = SignatureDetector(RULES)
DETECTOR = EntropyDetector(SIGNATURE)
R = Rand("entropy-tests")
PASSWORD = R.password(18)
TOKEN = R.b64(48)


def found(text: str | bytes, path: str | None = "/app/config.env", detector: EntropyDetector = DETECTOR) -> list[bytes]:
    buf = text.encode() if isinstance(text, str) else text
    return [m.secret for m in detector.scan(buf, path)]


@pytest.mark.parametrize("text,path", [
    (f"DB_KEY={PASSWORD}\n", "/app/.env"),
    (f"CLIENT_KEY={PASSWORD}\n", "/srv/app/settings.conf"),
    (f'{{"service_key": "{PASSWORD}", "region": "eu"}}\n', "/app/app.json"),
    (f"database_key: {PASSWORD}\n", "/app/db.yaml"),
    (f'account_key = "{PASSWORD}"\n', "/app/settings.py"),
    (f"CLIENT_KEY=~{PASSWORD}\n", "/app/.env"),  # a value starting with a symbol, which detect-secrets passes over
    (f'var cfg={{CLIENT_KEY:"{PASSWORD}"}};', "/app/static/bundle.min.js"),
], ids=["env-file", "conf", "json", "yaml", "python-quoted", "leading-symbol", "minified-js"])
def test_keyword_secrets_without_a_vendor_prefix(text: str, path: str) -> None:
    secrets = found(text, path)
    assert len(secrets) == 1 and secrets[0] in text.encode()
    (m,) = DETECTOR.scan(text.encode(), path)
    assert (m.rule_id, m.detector) == (KEYWORD_RULE[0], DetectorKind.KEYWORD)
    assert text.encode()[m.start:m.end] == m.secret


def test_high_entropy_value_of_a_secret_ish_name() -> None:
    (m,) = DETECTOR.scan(f'credentials = "{TOKEN}"\n'.encode(), "/app/client.toml")
    assert (m.rule_id, m.secret) == (ENTROPY_RULE[0], TOKEN.encode())
    assert m.detector is DetectorKind.ENTROPY


def test_binary_c_strings_count_and_go_string_tables_do_not() -> None:
    c_string = b"\x7fELF\x02\x01" + b"\x00" * 40 + f"CLIENT_KEY={PASSWORD}".encode() + b"\x00" + b"\x01" * 40
    assert found(c_string, "/usr/local/bin/app") == [PASSWORD.encode()]
    table = b"\x7fELF\x00" + b"A" * 600 + f"NodeStageSecretRefCLIENT_KEY:{PASSWORD}AllocatedResources".encode() + b"B" * 600
    assert found(table, "/usr/local/bin/app") == []


def test_config_values_leave_the_names_the_config_detector_knows() -> None:
    assert found(f"CLIENT_KEY={PASSWORD}", None) == [PASSWORD.encode()]
    assert found(f"DB_PASSWORD={PASSWORD}", None) == []  # config.py's named-secret check reports it


@pytest.mark.parametrize("text,path", [
    ("DB_KEY=${DB_KEY}\n", "/app/.env"),
    ("client_key: {{ .Values.clientKey }}\n", "/app/values.yaml"),
    ("CLIENT_KEY=changeme\n", "/app/.env"),
    ("CLIENT_KEY=your-key-here\n", "/app/.env"),
    ("service_key = get_service_key()\n", "/app/conf.ini"),
    ("client_key = settings.CLIENT_KEY\n", "/app/conf.ini"),
    ("private_key: RSAPrivateKeyWithSerialization,\n", "/app/crypto.py"),  # a type annotation
    ("client_key = load(path)\n", "/app/app.py"),
    ('ACCESS_KEY = "AWSAccessKeyId"\n', "/app/credentials.py"),
    (f'"NextToken": "{TOKEN}",\n', "/app/response.json"),
    (f'"ClientSecretArn": "{TOKEN}",\n', "/app/response.json"),
    ('"credentials": "arn:aws:secretsmanager:us-west-2:123456789012:secret:db-a1b2c3",\n', "/app/x.json"),
    ('"credentials": "550e8400-e29b-41d4-a716-446655440000",\n', "/app/x.json"),
    ('"private_key_file": "/etc/ssl/private/server.key",\n', "/app/x.json"),
    (f"CLIENT_KEY={PASSWORD}\n", "/app/README.md"),  # documentation
    (f"CLIENT_KEY={PASSWORD}\n", "/app/.env.example"),  # a template
    (f'"integrity": "sha512-{TOKEN}",\n"credentials": "{TOKEN}"\n', "/app/package-lock.json"),
    (f"credentials = {TOKEN}\n", "/usr/lib/python3/dist-packages/x-1.0.dist-info/RECORD"),
    ("GITHUB_CREDENTIALS=ghp_R7kq2Lw9ZxT4mVb8Nc3Hs6Pd1Fj5GyAAAAAA\n", "/app/.env"),  # a provider's, bad checksum
    ("CLIENT_KEY=abcd1234efgh5678ijkl\n", "/app/.env"),  # typed, not generated
    ("CLIENT_KEY=Mustbe8characters\n", "/app/.env"),
    ("client_key: amazon-bedrock-ide/*\n", "/app/policy.yaml"),
    ('service_key = "%s"\n', "/app/x.conf"),
    ('auth_password="s\u0259cr\u0259t",\n', "/app/test_client.py"),  # not ASCII: text, not a key
    ("RsaPrivateKey::dUnknownDefinedBy\n", "/app/x.conf"),  # a scope in a symbol name
], ids=lambda v: v if v.startswith("/") else None)
def test_decoys_stay_silent(text: str, path: str) -> None:
    assert found(text, path) == []


def test_what_a_rule_reports_is_not_reported_again() -> None:
    text = f"DB_PASSWORD={PASSWORD}\nGITHUB_TOKEN=ghp_R7kq2Lw9ZxT4mVb8Nc3Hs6Pd1Fj5Gy0Kq7mJ3\n".encode()
    assert [m.secret for m in SIGNATURE.scan(text, "/app/.env") if m.rule_id == "generic-password"] == [PASSWORD.encode()]
    assert found(text, "/app/.env") == []
    alone = found(text, "/app/.env", EntropyDetector())  # alone, it reports both
    assert alone == [PASSWORD.encode(), b"ghp_R7kq2Lw9ZxT4mVb8Nc3Hs6Pd1Fj5Gy0Kq7mJ3"]


def test_candidates_only_where_a_secret_ish_name_is_assigned() -> None:
    filler = b"the quick brown fox jumps over the lazy dog\n" * 2000
    assert DETECTOR.candidates(filler) == []
    buf = filler + f"CLIENT_KEY={PASSWORD}\n".encode() + filler
    (span,) = DETECTOR.candidates(buf)
    assert buf[span[0]:span[1]] == f"CLIENT_KEY={PASSWORD}".encode()


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_a_file_that_quotes_its_values_and_has_no_quoted_assignment_is_not_read_line_by_line(engine, monkeypatch):
    """A test log (`PASS: gdb.base/...` on 100,000 lines) has the shape everywhere and no quoted
    value: done after the prefilter's pass, with either engine; one quoted value is still found."""
    monkeypatch.setenv("LAYERSCAN_PREFILTER", engine)
    detector = EntropyDetector(SignatureDetector(RULES))
    log = b"".join(b"PASS: gdb.base/break%d.exp: continue to breakpoint\n" % i for i in range(500))
    calls = []
    real = detector.candidates
    monkeypatch.setattr(detector, "candidates", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert found(log, "/usr/share/doc/gdb/check.log", detector) == [] and calls == []
    quoted = log + f'client_key = "{PASSWORD}"\n'.encode()
    assert found(quoted, "/usr/share/doc/gdb/check.log", detector) == [PASSWORD.encode()] and calls == [1]
    assert found(log + f"client_key = {PASSWORD}\n".encode(), "/usr/share/doc/gdb/check.log", detector) == []


def test_no_process_wide_detect_secrets_settings() -> None:
    before = get_settings().json()
    found(f"CLIENT_KEY={PASSWORD}\n")
    found(f'credentials = "{TOKEN}"\n', "/app/client.toml")
    assert get_settings().json() == before


def test_pickles_for_worker_processes() -> None:
    clone = pickle.loads(pickle.dumps(DETECTOR))
    assert found(f"CLIENT_KEY={PASSWORD}\n", detector=clone) == [PASSWORD.encode()]


def test_left_name_is_the_left_regex() -> None:
    """`assignments.left_name` (fast) gives `LEFT.search`'s name group (the definition) at every offset."""
    import random

    from scanner.detectors import assignments
    r = random.Random(3)
    alphabet = "aPsS_sword=:\"' \t.-*toknecrtAPIKEY@`]x1"
    lines = ["PASS: gdb.ada/assign_1.exp: changing", "DB_PASSWORD = 'x'", "api_key::=\"v\"", "my.secret_token : v"]
    lines += ["".join(r.choice(alphabet) for _ in range(r.randint(1, 60))) for _ in range(2000)]
    # past LEFT_REACH and LEFT_CORE_MAX: the name's reach and the core's narrowed search
    lines += ["".join(r.choice(alphabet) for _ in range(r.randint(100, 200))) for _ in range(300)]
    lines += ["x" * 70 + "encryption-key" + "a" * 24 + "']\t\t\t\t:=\t\t\t\t@`v", "k" * 45 + "_password=v"]
    assert re._parser.parse(assignments.LEFT_CORE.pattern).getwidth()[1] == assignments.LEFT_CORE_MAX
    for line in lines:
        for at in range(len(line) + 1):
            m = assignments.LEFT.search(line, max(0, at - assignments.LEFT_REACH), at)
            assert assignments.left_name(line, at) == (m.group("name") if m else None), (line, at)


def test_lowered_keyword_regexes_find_what_detect_secrets_finds() -> None:
    """detect-secrets' keyword regexes run on lower-cased text (`_lowered`): the same values."""
    import random

    from detect_secrets.plugins.keyword import (CONFIG_DENYLIST_REGEX_TO_GROUP, QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
                                                REGEX_BY_FILETYPE, KeywordDetector)

    from scanner.detectors import entropy
    detector = KeywordDetector()
    groups = [QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP, CONFIG_DENYLIST_REGEX_TO_GROUP, *REGEX_BY_FILETYPE.values()]
    r = random.Random(5)
    alphabet = "aPsS_sword=:\"' \t.-*toknecrtAPIKEY@`]x1ÀàßKñÑ;,{}()"
    lines = ['DB_PASSWORD = "Zr7Kq2Wm9Xt4"', "Contraseña: 'Xq9ZrT7Kw2'", 'private_KEY => `Aa1!Bb2@`;',
             "$password = 'S3cr3t!x';", 'apiKey: "abc"', 'secret := "Ab12Cd34Ef"']
    lines += ["".join(r.choice(alphabet) for _ in range(r.randint(1, 80))) for _ in range(3000)]
    for line in lines:
        for g in groups:
            want = list(detector.analyze_string(line, denylist_regex_to_group=g))
            assert list(detector.analyze_string(line, denylist_regex_to_group=entropy._lowered(g))) == want, line
