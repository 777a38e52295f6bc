"""Structural checks of candidate secrets: a token's checksum, a JWT that decodes, a key that parses.

Each validator takes the secret's bytes and returns True when it is well formed. Rules name a
validator by its key in VALIDATORS. Validators never raise: malformed input is simply False.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from typing import Callable, Optional

_BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BECH32 = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# --- helpers -------------------------------------------------------------------------------------

def b64decode(data: bytes, urlsafe: bool = False) -> Optional[bytes]:
    """Strict base64 (or base64url) decoding that tolerates missing padding; None when invalid."""
    data = data.strip()
    if urlsafe:
        data = data.translate(bytes.maketrans(b"-_", b"+/"))
    data = data.rstrip(b"=")
    try:
        return base64.b64decode(data + b"=" * (-len(data) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _json_object(raw: Optional[bytes]) -> Optional[dict]:
    if raw is None:
        return None
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _unescape(block: bytes) -> bytes:
    """A key pasted into JSON or a shell string: literal `\\n`, `\\r`, `\\t` and `\\/` back to bytes."""
    return (block.replace(b"\\r", b"\r").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
            .replace(b"\\/", b"/"))


def _base62(n: int, width: int) -> bytes:
    out = bytearray()
    while n:
        n, r = divmod(n, 62)
        out.append(_BASE62[r])
    return bytes(reversed(out)).rjust(width, b"0")


def _crc24(data: bytes) -> int:
    """OpenPGP ASCII-armor checksum (RFC 4880 section 6.1)."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def _der_sequence(der: bytes) -> bool:
    """True when `der` is exactly one DER SEQUENCE (the outer shape of every PKCS#1/#8/SEC1 key)."""
    if len(der) < 32 or der[0] != 0x30:
        return False
    first = der[1]
    if first < 0x80:
        return 2 + first == len(der)
    n = first & 0x7F
    if not 1 <= n <= 4 or len(der) < 2 + n:
        return False
    return 2 + n + int.from_bytes(der[2:2 + n], "big") == len(der)


# --- token checksums -----------------------------------------------------------------------------

def base62_crc32(secret: bytes) -> bool:
    """GitHub classic and npm tokens: prefix, 30 random base62 chars, base62 CRC32 of them in 6."""
    body = secret.rpartition(b"_")[2]
    if len(body) != 36 or not (body.isascii() and body.isalnum()):
        return False
    return _base62(zlib.crc32(body[:30]), 6) == body[30:]


def age_secret_key(secret: bytes) -> bool:
    """age X25519 identity: Bech32 with the human-readable part `age-secret-key-`."""
    hrp, sep, data = secret.lower().rpartition(b"1")
    if not sep or hrp != b"age-secret-key-" or len(data) != 58:
        return False
    values = [_BECH32.find(c) for c in data]
    if -1 in values:
        return False
    chk = 1
    for v in [c >> 5 for c in hrp] + [0] + [c & 31 for c in hrp] + values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i, gen in enumerate(_BECH32_GEN):
            if (top >> i) & 1:
                chk ^= gen
    return chk == 1


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


# --- private keys --------------------------------------------------------------------------------

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def pem_private_key(secret: bytes) -> bool:
    """A PEM/OpenSSH private key block whose body decodes to a key, not a docs-style stub."""
    m = _PEM.search(_unescape(secret))
    if not m:
        return False
    label, lines = m.group(1), m.group(2).splitlines()
    if not label.endswith(b"PRIVATE KEY"):
        return False
    headers = [ln for ln in lines if b":" in ln]  # Proc-Type, DEK-Info of legacy encrypted PEM
    encrypted = any(b"ENCRYPTED" in ln for ln in headers)
    body = b"".join(b"".join(ln.split()) for ln in lines if b":" not in ln)
    der = b64decode(body)
    if der is None:
        return False
    if label == b"OPENSSH PRIVATE KEY":
        return der.startswith(b"openssh-key-v1\x00") and len(der) > 64
    if encrypted:  # legacy PEM encryption: the body is ciphertext, only its shape can be checked
        return len(der) >= 64 and len(der) % 8 == 0
    return _der_sequence(der)


def base64_pem_private_key(secret: bytes) -> bool:
    """A PEM private key stored base64-encoded (kubeconfig `client-key-data`, Kubernetes Secrets)."""
    raw = b64decode(secret)
    return raw is not None and pem_private_key(raw)


def pgp_private_key(secret: bytes) -> bool:
    """An armored OpenPGP secret key: decodes, starts with a secret-key packet, CRC24 matches."""
    m = _PEM.search(_unescape(secret))
    if not m or m.group(1) != b"PGP PRIVATE KEY BLOCK":
        return False
    lines = [ln.strip() for ln in m.group(2).splitlines()]
    while lines and (not lines[0] or b":" in lines[0]):
        lines.pop(0)  # armor headers and the blank line after them
    checksum = None
    if lines and lines[-1].startswith(b"=") and len(lines[-1]) == 5:
        checksum = b64decode(lines.pop()[1:])
    data = b64decode(b"".join(lines))
    if not data or len(data) < 32:
        return False
    tag = data[0]
    if not (0x94 <= tag <= 0x97 or tag == 0xC5):
        return False
    return checksum is None or int.from_bytes(checksum, "big") == _crc24(data)


def putty_private_key(secret: bytes) -> bool:
    """A PuTTY .ppk file: the Public-Lines and Private-Lines counts hold and each line is base64."""
    lines = [ln.strip() for ln in _unescape(secret).splitlines()]
    try:
        i = next(n for n, ln in enumerate(lines) if ln.startswith(b"Public-Lines:"))
        pub = int(lines[i].split(b":")[1])
        j = i + 1 + pub
        if not lines[j].startswith(b"Private-Lines:"):
            return False
        priv = int(lines[j].split(b":")[1])
    except (StopIteration, ValueError, IndexError):
        return False
    block = lines[i + 1:j] + lines[j + 1:j + 1 + priv]
    return pub > 0 and priv > 0 and len(block) == pub + priv \
        and all(b64decode(ln) is not None for ln in block)


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
