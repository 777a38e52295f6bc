"""Structural checks of candidate secrets: a token's checksum, a JWT that decodes, a key that parses.

Each validator takes the secret's bytes and returns True when it is well formed. Rules name a
validator by its key in VALIDATORS. Validators never raise: malformed input is simply False.
"""
from __future__ import annotations

import json
import zlib
from typing import Callable, Optional

from scanner.detectors.keyblocks import (
    age_secret_key,
    b64decode,
    base64_pem_private_key,
    pem_private_key,
    pgp_private_key,
    putty_private_key,
)

_BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# --- helpers -------------------------------------------------------------------------------------

def _json_object(raw: Optional[bytes]) -> Optional[dict]:
    if raw is None:
        return None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _base62(n: int, width: int) -> bytes:
    out = bytearray()
    while n:
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return bytes(reversed(out)).rjust(width, b"0")


# --- token checksums -----------------------------------------------------------------------------

def base62_crc32(secret: bytes) -> bool:
    """GitHub classic and npm tokens: prefix, 30 random base62 chars, base62 CRC32 of them in 6."""
    body = secret.rpartition(b"_")[2]
    if len(body) != 36 or not (body.isascii() and body.isalnum()):
        return False
    return _base62(zlib.crc32(body[:30]), 6) == body[30:]


# --- tokens that carry structure -----------------------------------------------------------------

def jwt(secret: bytes) -> bool:
    """Three base64url parts; header and payload decode to JSON objects, the header names `alg`."""
    parts = secret.split(b".")
    if len(parts) != 3 or not parts[2]:
        return False
    header = _json_object(b64decode(parts[0], urlsafe=True))
    payload = _json_object(b64decode(parts[1], urlsafe=True))
    return header is not None and payload is not None and "alg" in header \
        and b64decode(parts[2], urlsafe=True) is not None


def basic_auth(secret: bytes) -> bool:
    """HTTP Basic credentials: base64 of printable `user:password` with a non-empty password."""
    raw = b64decode(secret)
    if raw is None:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    _, sep, password = text.partition(":")
    return bool(sep and password) and text.isprintable()


def azure_key(secret: bytes) -> bool:
    """Azure storage account keys (64 bytes) and shared access keys (32 bytes), base64."""
    raw = b64decode(secret)
    return raw is not None and len(raw) in (32, 64) and secret.rstrip(b"=").isascii()


def discord_bot_token(secret: bytes) -> bool:
    """The first part of a Discord bot token is the base64 of the bot's numeric user id."""
    parts = secret.split(b".")
    if len(parts) != 3:
        return False
    raw = b64decode(parts[0], urlsafe=True)
    return raw is not None and raw.isdigit() and 15 <= len(raw) <= 21


def _macaroon_header(raw: bytes) -> list[tuple[int, bytes]]:
    """The first two (type, data) fields of a v2 binary macaroon; ValueError/IndexError if malformed."""
    if raw[0] != 2:
        raise ValueError("not a v2 macaroon")
    fields, pos = [], 1
    while len(fields) < 2:
        ftype, pos = raw[pos], pos + 1
        size = shift = 0
        while True:
            byte, pos = raw[pos], pos + 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        data, pos = raw[pos:pos + size], pos + size
        if len(data) != size:
            raise ValueError("truncated field")
        fields.append((ftype, data))
    return fields


def pypi_macaroon(secret: bytes) -> bool:
    """`pypi-` + a base64url macaroon: location (test.)pypi.org, then a printable identifier."""
    raw = b64decode(secret.partition(b"-")[2], urlsafe=True)
    try:
        (ltype, location), (itype, ident) = _macaroon_header(raw or b"")
    except (ValueError, IndexError):
        return False
    return ltype == 1 and location in (b"pypi.org", b"test.pypi.org") and itype == 2 \
        and 0 < len(ident) <= 128 and ident.isascii() and ident.decode().isprintable()


def grafana_cloud_token(secret: bytes) -> bool:
    """`glc_` + base64 of a JSON object holding the key (`k`)."""
    obj = _json_object(b64decode(secret.partition(b"_")[2]))
    return obj is not None and "k" in obj


def grafana_api_key(secret: bytes) -> bool:
    """Legacy Grafana API keys: base64 of `{"k": ..., "n": ..., "id": ...}`."""
    obj = _json_object(b64decode(secret))
    return obj is not None and "k" in obj and "n" in obj


def sentry_org_token(secret: bytes) -> bool:
    """`sntrys_` + base64 JSON (issued-at, org, URLs) + `_` + the random part."""
    parts = secret.split(b"_")
    if len(parts) != 3 or len(parts[2]) < 32:
        return False
    obj = _json_object(b64decode(parts[1]))
    return obj is not None and "iat" in obj


VALIDATORS: dict[str, Callable[[bytes], bool]] = {
    "base62-crc32": base62_crc32,
    "age-secret-key": age_secret_key,
    "jwt": jwt,
    "basic-auth": basic_auth,
    "azure-key": azure_key,
    "discord-bot-token": discord_bot_token,
    "pypi-macaroon": pypi_macaroon,
    "grafana-cloud-token": grafana_cloud_token,
    "grafana-api-key": grafana_api_key,
    "sentry-org-token": sentry_org_token,
    "pem-private-key": pem_private_key,
    "base64-pem-private-key": base64_pem_private_key,
    "pgp-private-key": pgp_private_key,
    "putty-private-key": putty_private_key,
}
