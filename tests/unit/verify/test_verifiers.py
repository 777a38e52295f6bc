"""Every verifier, against a local TLS server answering as its provider documents: the live
answer is `live`, the invalid one `invalid`; the secret went where the provider wants it, and
into no detail."""
from __future__ import annotations

import base64

import pytest

from scanner.detectors.rules import load_rules
from scanner.verify.spec import load_verifiers
from tests.unit.verify.fakeapi import raw_examples, reply_of
from tests.unit.verify.helpers import engine, finding, partner_for, secret_for

VERIFIERS = load_verifiers()

# Rule ids that the `rules` branch adds (merged separately): a verifier may name them before they exist.
PENDING_RULES = {
    "deepseek-api-key", "together-api-key", "fireworks-api-key", "elevenlabs-api-key", "razorpay-key-secret",
    "razorpay-live-key-id", "hubspot-private-app-token", "notion-integration-token", "notion-legacy-token",
    "airtable-pat", "airtable-api-key", "linear-api-key", "asana-pat", "asana-pat-v2", "figma-pat",
    "figma-legacy-pat", "dropbox-long-lived-token", "dropbox-short-lived-token", "mapbox-secret-token",
    "vercel-token", "vercel-new-token", "render-api-key", "doppler-cli-token", "doppler-service-account",
    "postman-api-key", "postmark-account-token", "pagerduty-api-key", "pagerduty-rest-key",
}


def test_there_are_forty_verifiers_or_more() -> None:
    assert len(VERIFIERS) >= 40


def test_every_rule_a_verifier_names_is_loaded_or_pending() -> None:
    loaded = {r.id for r in load_rules().rules}
    named = {r for v in VERIFIERS for r in (*v.rules, *([v.pair] if v.pair else []))}
    assert named - loaded <= PENDING_RULES, sorted(named - loaded - PENDING_RULES)


def test_every_verifier_has_docs_and_both_examples() -> None:
    for v in VERIFIERS:
        assert v.docs.startswith("https://"), v.id
        examples = raw_examples(v.id)
        assert {"live", "invalid"} <= set(examples), v.id


def _sent(seen, secret: str) -> bool:
    """The secret is in the request: path, query, a header, the body, or Basic credentials."""
    places = [seen.path, seen.body.decode("utf-8", "replace"), *seen.headers.values()]
    auth = seen.headers.get("authorization", "")
    if auth.startswith("Basic "):
        places.append(base64.b64decode(auth[6:]).decode())
    return any(secret in p for p in places)


@pytest.mark.parametrize("outcome", ["live", "invalid"])
@pytest.mark.parametrize("verifier", VERIFIERS, ids=lambda v: v.id)
def test_verifier_answers_as_documented(verifier, outcome, api, ca_file) -> None:
    secret, partner = secret_for(verifier.id), partner_for(verifier.id)
    api.answer(reply_of(raw_examples(verifier.id)[outcome]))
    found = [finding(verifier.rules[0], secret)] + ([finding(verifier.pair, partner)] if verifier.pair else [])
    out = engine(api.url, ca_file).verify(found)  # every provider at the fake API: nothing leaves
    v = out[0].verification
    assert v is not None and v.status == outcome, (v, [s.path for s in api.seen])
    assert v.endpoint == "127.0.0.1" + api.url[len("https://127.0.0.1"):]
    assert secret not in v.detail and (not verifier.pair or partner not in v.detail)
    seen = api.seen[0]  # the paired finding may have a verifier of its own, asked next
    documented = verifier.request(__import__("scanner.verify.interface", fromlist=["Credential"]).Credential(
        secret, partner), api.url)
    assert seen.method == documented.method and seen.path == documented.url[len(api.url):]
    if verifier.id == "aws":  # signed: the secret key itself is never sent
        assert not _sent(seen, secret) and f"Credential={partner}/" in seen.headers["authorization"]
    else:  # a webhook URL is sent as the URL it is
        assert _sent(seen, secret.rsplit("/", 2)[-2] + "/" + secret.rsplit("/", 1)[-1] if "://" in secret else secret)
    if verifier.pair and verifier.pair not in {r for o in VERIFIERS for r in o.rules}:
        assert out[1].verification == v  # the paired finding says what its pair found
