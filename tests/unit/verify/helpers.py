"""Findings with their raw values (as the pipeline hands them to --verify) and an Engine aimed at
the local fake API."""
from __future__ import annotations

import hashlib
from typing import Optional

from scanner.models import DetectorKind, Finding, Hit, LayerInfo, LocationKind, Secret, Severity, Status
from scanner.verify.engine import Engine
from scanner.verify.spec import load_verifiers
from scanner.verify.store import VerifyStore
from scanner.verify.transport import Transport

AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documented example id: account 581039954779, no canary
CANARY_KEY_ID = "AKIAQYLPMN5HHHFPZAM2"  # decodes to 052310077262, a canarytokens.org account
VERIFIERS = load_verifiers()
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ"


def finding(rule_id: str, value: str, path: str = "/app/.env", layer: Optional[int] = 1,
            kind: LocationKind = LocationKind.FILE) -> Finding:
    secret = Secret(hashlib.sha256(value.encode()).hexdigest(), value[:4] + "****", value)
    hit = Hit(rule_id, DetectorKind.SIGNATURE, Severity.HIGH, rule_id, path, 1, secret, kind=kind)
    info = None if layer is None else LayerInfo(layer, f"sha256:{layer:064d}", None, None)
    return Finding("", hit, "img", Status.PRESENT if layer is not None else Status.CONFIG, info)


def engine(api_url: Optional[str], ca_file: Optional[str], ids: tuple[str, ...] = (), store: Optional[VerifyStore] = None,
           **kw) -> Engine:
    verifiers = VERIFIERS
    endpoints = {} if api_url is None else {v.id: api_url for v in verifiers if not ids or v.id in ids}
    kw.setdefault("sleep", lambda s: None)
    return Engine(verifiers, Transport(ca_file), store or VerifyStore(None), endpoints, **kw)


def secret_for(verifier_id: str) -> str:
    return {"mailchimp": "0123456789abcdef0123456789abcdef-us21",
            "discord-webhook": "https://discord.com/api/webhooks/123456789012345678/" + "Ab_-" * 16,
            "aws": AWS_SECRET}.get(verifier_id, "tok_Test0123456789abcdefXYZ")


def partner_for(verifier_id: str) -> str:
    return AWS_KEY_ID if verifier_id == "aws" else "SKpartner0123456789abcdef"
