"""Secrets leave the scanner only as a hash and a redacted form, unless the user asks with --reveal."""
from __future__ import annotations

import hashlib
from typing import Iterable

from scanner.models import Secret


def redact(value: str) -> str:
    """Enough to recognise a secret, never enough to use it: `ghp_****...Xy9Q`."""
    n = len(value)
    if n >= 20:
        return f"{value[:4]}****...{value[-4:]}"
    if n >= 12:
        return f"{value[:2]}****...{value[-2:]}"
    return "****"


def decode(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def make_secret(raw: bytes, keep_value: bool) -> Secret:
    text = decode(raw)
    lines = text.strip().splitlines() or [""]
    if len(lines) > 1 and lines[0].startswith("-----BEGIN"):
        shown = f"{lines[0]} ****...(redacted)"  # a PEM header names the kind, not the key
    else:
        shown = redact(text)
    return Secret(hashlib.sha256(raw).hexdigest(), shown, text if keep_value else None)


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """`text` with every given secret value replaced by its redacted form (longest first)."""
    if text is None:
        return None
    for value in sorted(set(secrets), key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, redact(value))
    return text
