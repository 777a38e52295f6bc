"""Validators for key material: PEM/DER private keys, OpenSSH, OpenPGP armor, PuTTY, age.

They decode the block the rule matched, so a docs-style stub (`MIIEpAIBAAKCAQEA...`) or a certificate
is rejected. Blocks may have their newlines written as a literal `\\n` (a key pasted into JSON).
Also home of `b64decode`, shared with the token validators.
"""
from __future__ import annotations

import base64
import binascii
import re
from typing import Optional

_BECH32 = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_GEN = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


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


def _unescape(block: bytes) -> bytes:
    """A key pasted into JSON or a shell string: literal `\\n`, `\\r`, `\\t` and `\\/` back to bytes."""
    return (block.replace(b"\\r", b"\r").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
            .replace(b"\\/", b"/"))


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


def pem_private_key(secret: bytes) -> bool:
    """A PEM or OpenSSH private key block whose body decodes to a key."""
    return any(_pem_block_is_key(m.group(1), m.group(2)) for m in _PEM.finditer(_unescape(secret)))


def _pem_block_is_key(label: bytes, text: bytes) -> bool:
    if not label.endswith(b"PRIVATE KEY"):
        return False
    lines = text.splitlines()
    headers = [ln for ln in lines if b":" in ln]  # Proc-Type, DEK-Info of legacy encrypted PEM
    body = b64decode(b"".join(b"".join(ln.split()) for ln in lines if b":" not in ln))
    if body is None:
        return False
    if label == b"OPENSSH PRIVATE KEY":
        return body.startswith(b"openssh-key-v1\x00") and len(body) > 64
    if any(b"ENCRYPTED" in ln for ln in headers):  # the body is ciphertext: only its shape shows
        return len(body) >= 64 and len(body) % 8 == 0
    return _der_sequence(body)


def base64_pem_private_key(secret: bytes) -> bool:
    """PEM text stored base64-encoded (kubeconfig `client-key-data`, a Kubernetes Secret's data)."""
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
        while not lines[j].startswith(b"Private-Lines:"):  # v3 encrypted keys: Argon2 parameters
            if b": " not in lines[j]:
                return False
            j += 1
        priv = int(lines[j].split(b":")[1])
    except (StopIteration, ValueError, IndexError):
        return False
    block = lines[i + 1:i + 1 + pub] + lines[j + 1:j + 1 + priv]
    return pub > 0 and priv > 0 and len(block) == pub + priv \
        and all(b64decode(ln) is not None for ln in block)
