"""The rule pack: every example of every rule, the loader's errors, the shared secrets catalog."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from scanner.detectors.interface import DetectorError
from scanner.detectors.rules import load_rule_files, load_rules, parse_rule_file
from scanner.detectors.signature import SignatureDetector
from scanner.detectors.validators import VALIDATORS
from scanner.models import Severity
from tests import secrets_catalog as catalog

RULES = load_rules()
DETECTOR = SignatureDetector(RULES)


def _examples(kind: str) -> list:
    params = []
    for rule in RULES.rules:
        for i, text in enumerate(rule.positives if kind == "positive" else rule.negatives):
            # ids name the rule and the example's index, never the example itself (a secret)
            params.append(pytest.param(rule.id, text, id=f"{rule.id}-{kind}-{i}"))
    return params


def _matches(rule_id: str, text: str) -> list:
    return [m for m in DETECTOR.scan(text.encode()) if m.rule_id == rule_id]


@pytest.mark.parametrize("rule_id,text", _examples("positive"))
def test_positive_example_matches(rule_id: str, text: str) -> None:
    found = _matches(rule_id, text)
    assert found, f"rule {rule_id} did not match its positive example"
    buf = text.encode()
    for m in found:
        assert m.secret in buf and buf[m.start:m.end] == m.secret


@pytest.mark.parametrize("rule_id,text", _examples("negative"))
def test_negative_example_does_not_match(rule_id: str, text: str) -> None:
    assert not _matches(rule_id, text), f"rule {rule_id} matched its negative example"


def test_rule_pack_is_complete_and_consistent() -> None:
    assert len(RULES) >= 100
    ids = [r.id for r in RULES.rules]
    assert len(ids) == len(set(ids))
    for rule in RULES.rules:
        assert rule.positives and rule.negatives, f"{rule.id} needs positive and negative examples"
        assert rule.title and rule.severity in Severity
        assert all(k == k.lower() for k in rule.keywords), rule.id


def test_every_validator_is_used_by_a_rule() -> None:
    assert {r.validator for r in RULES.rules if r.validator} == set(VALIDATORS)


def test_every_positive_example_holds_a_keyword() -> None:
    for rule in RULES.rules:
        for text in rule.positives:
            low = text.lower().encode()
            assert not rule.keywords or any(k in low for k in rule.keywords), rule.id


def test_rule_set_digest_and_without() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", RULES.digest)
    fewer = RULES.without(["jwt"])
    assert len(fewer) == len(RULES) - 1 and fewer.digest != RULES.digest
    with pytest.raises(DetectorError, match="unknown rule id"):
        RULES.without(["no-such-rule"])


# --- the loader -----------------------------------------------------------------------------------

GOOD = """
rules:
  - id: demo-token
    title: Demo token
    severity: high
    keywords: [demo_]
    regex: '(?P<secret>demo_[a-z0-9]{8})'
"""


def _load(tmp_path: Path, text: str, name: str = "x.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return load_rule_files([path])


def test_loader_accepts_a_minimal_rule(tmp_path: Path) -> None:
    rules = _load(tmp_path, GOOD)
    assert [r.id for r in rules.rules] == ["demo-token"]
    assert rules.rules[0].keywords == (b"demo_",)


def test_load_rules_takes_extra_directories(tmp_path: Path) -> None:
    (tmp_path / "extra.yaml").write_text(GOOD)
    assert len(load_rules([tmp_path])) == len(RULES) + 1
    with pytest.raises(DetectorError, match="rule path not found"):
        load_rules([tmp_path / "missing"])


@pytest.mark.parametrize("text,message", [
    ("rules: [\n  - id: x", "not valid YAML"),
    ("- just a list", "expected a mapping with a 'rules' list"),
    (GOOD.replace("(?P<secret>demo_", "(demo_"), "named group"),
    (GOOD.replace("severity: high", "severity: high\n    owner: me"), "unknown field"),
    (GOOD.replace("severity: high", "severity: high\n    validator: nope"), "unknown validator 'nope'"),
    (GOOD.replace("severity: high", "severity: urgent"), "severity must be one of"),
    (GOOD.replace("    title: Demo token\n", ""), "missing title"),
    (GOOD.replace("id: demo-token", "id: Demo_Token"), "id must be lower-case"),
    (GOOD.replace("[a-z0-9]{8}", "[a-z0-9{8}"), "bad regex"),
    (GOOD.replace("keywords: [demo_]", "keywords: demo_"), "keywords must be a list"),
    (GOOD.replace("keywords: [demo_]", "keywords: [demo_]\n    allowlist: {regex: [x]}"),
     "allowlist: unknown field"),
    (GOOD.replace("keywords: [demo_]", "keywords: [demo_]\n    examples: [a]"), "examples must be a mapping"),
    (GOOD.replace("keywords: [demo_]", "keywords: [demo_]\n    entropy: high"), "entropy must be a number"),
])
def test_loader_errors_are_clear(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DetectorError, match=re.escape(message)):
        _load(tmp_path, text)


def test_loader_rejects_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    (tmp_path / "b.yaml").write_text(GOOD)
    with pytest.raises(DetectorError, match=r"b\.yaml: rule id 'demo-token' already defined in a\.yaml"):
        load_rule_files([tmp_path / "a.yaml", tmp_path / "b.yaml"])


def test_error_message_names_the_file_and_rule() -> None:
    with pytest.raises(DetectorError, match=r"^pack\.yaml: rule demo-token: regex needs"):
        parse_rule_file(GOOD.replace("?P<secret>", "").encode(), "pack.yaml")


# --- the shared catalog of planted secrets ----------------------------------------------------------

PEM_RSA = catalog.RSA_PRIVATE_KEY.strip()
PEM_SSH = catalog.OPENSSH_PRIVATE_KEY.strip()

# constant -> (text the secret is planted in, rule expected to find it, secret it must report)
CATALOG = {
    "AWS_KEY_ID": (f"aws_access_key_id = {catalog.AWS_KEY_ID}", "aws-access-key-id", catalog.AWS_KEY_ID),
    "AWS_SECRET_KEY": (f"aws_secret_access_key = {catalog.AWS_SECRET_KEY}", "aws-secret-access-key",
                       catalog.AWS_SECRET_KEY),
    "GITHUB_PAT": (f"GITHUB_TOKEN={catalog.GITHUB_PAT}", "github-pat", catalog.GITHUB_PAT),
    "GITHUB_OAUTH": (f"oauth_token: {catalog.GITHUB_OAUTH}", "github-oauth-token", catalog.GITHUB_OAUTH),
    "GITHUB_FINE_GRAINED": (f"GH_TOKEN={catalog.GITHUB_FINE_GRAINED}", "github-fine-grained-pat",
                            catalog.GITHUB_FINE_GRAINED),
    "GITLAB_PAT": (f"GITLAB_TOKEN={catalog.GITLAB_PAT}", "gitlab-pat", catalog.GITLAB_PAT),
    "SLACK_BOT_TOKEN": (f"SLACK_BOT_TOKEN={catalog.SLACK_BOT_TOKEN}", "slack-bot-token", catalog.SLACK_BOT_TOKEN),
    "SLACK_WEBHOOK": (f"WEBHOOK={catalog.SLACK_WEBHOOK}", "slack-webhook", catalog.SLACK_WEBHOOK),
    "STRIPE_LIVE_KEY": (f"STRIPE_KEY={catalog.STRIPE_LIVE_KEY}", "stripe-secret-key", catalog.STRIPE_LIVE_KEY),
    "GOOGLE_API_KEY": (f"MAPS_KEY={catalog.GOOGLE_API_KEY}", "google-api-key", catalog.GOOGLE_API_KEY),
    "NPM_TOKEN": (f"//registry.npmjs.org/:_authToken={catalog.NPM_TOKEN}", "npm-token", catalog.NPM_TOKEN),
    "PYPI_TOKEN": (f"password = {catalog.PYPI_TOKEN}", "pypi-token", catalog.PYPI_TOKEN),
    "JWT": (f"Authorization: Bearer {catalog.JWT}", "jwt", catalog.JWT),
    "URL_CREDENTIAL": (f"git clone {catalog.URL_CREDENTIAL}", "url-credential", catalog.URL_PASSWORD),
    "DB_PASSWORD": (f"DB_PASSWORD={catalog.DB_PASSWORD}", "generic-password", catalog.DB_PASSWORD),
    "DJANGO_SECRET_KEY": (f"SECRET_KEY = '{catalog.DJANGO_SECRET_KEY}'", "django-secret-key",
                          catalog.DJANGO_SECRET_KEY),
    "RSA_PRIVATE_KEY": (catalog.RSA_PRIVATE_KEY, "pkcs8-private-key", PEM_RSA),
    "RSA_PRIVATE_KEY in JSON": ('{"key": "%s"}' % catalog.RSA_PRIVATE_KEY.replace("\n", "\\n"),
                                "pkcs8-private-key", PEM_RSA.replace("\n", "\\n")),
    "OPENSSH_PRIVATE_KEY": (catalog.OPENSSH_PRIVATE_KEY, "openssh-private-key", PEM_SSH),
}


def test_catalog_mapping_covers_every_secret() -> None:
    names = {n for n, v in vars(catalog).items() if n.isupper() and isinstance(v, str) and n != "BASE62"}
    names -= {"URL_PASSWORD"}  # the password part of URL_CREDENTIAL
    assert names <= {key.split(" ")[0] for key in CATALOG}


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_secret_found_by_expected_rule(name: str) -> None:
    text, rule_id, secret = CATALOG[name]
    found = {m.secret for m in DETECTOR.scan(text.encode()) if m.rule_id == rule_id}
    assert secret.encode() in found, f"{name} not reported by {rule_id}"


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_secret_not_reported_twice_by_generic_rules(name: str) -> None:
    text, rule_id, _ = CATALOG[name]
    generic = {"generic-password", "generic-secret", "generic-token", "generic-api-key", "url-credential",
               "authorization-bearer"} - {rule_id}
    assert not [m.rule_id for m in DETECTOR.scan(text.encode()) if m.rule_id in generic]
