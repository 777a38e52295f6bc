"""Random values in the exact shapes providers document: alphabets, checksums, key encodings.

Everything is made here from a seeded `Rand`, never copied from a provider: DER structures are
assembled field by field, checksums (CRC32 in base62, CRC24, Bech32) are computed.
"""
from __future__ import annotations

import base64
import json
import random
import string
import struct
import uuid
import zlib

from tests.secrets_catalog import base62

B62 = string.ascii_letters + string.digits
B64 = B62 + "+/"
B64U = B62 + "-_"
HEX = "0123456789abcdef"
B32 = string.ascii_uppercase + "234567"
LOWDIG = string.ascii_lowercase + string.digits
UPDIG = string.ascii_uppercase + string.digits
SYMBOLS = "!#%&*+-.:=?@^_~"


class Rand(random.Random):
    """A seeded source of the alphabets tokens are made of."""

    def chars(self, alphabet: str, n: int) -> str:
        return "".join(self.choice(alphabet) for _ in range(n))

    def b62(self, n: int) -> str:
        return self.chars(B62, n)

    def b64(self, n: int) -> str:
        return self.chars(B64, n)

    def b64u(self, n: int) -> str:
        return self.chars(B64U, n)

    def hex(self, n: int) -> str:
        return self.chars(HEX, n)

    def dig(self, n: int) -> str:
        return self.chars("123456789", 1) + self.chars(string.digits, n - 1)

    def lowdig(self, n: int) -> str:
        return self.chars(LOWDIG, n)

    def updig(self, n: int) -> str:
        return self.chars(UPDIG, n)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))

    def password(self, n: int = 18) -> str:
        """A generated password: every class of character, shuffled; it starts with a letter or a
        digit, as one written unquoted in a config file must (YAML would read `&x` as an anchor)."""
        chars = [self.choice(string.ascii_lowercase), self.choice(string.ascii_uppercase),
                 self.choice(string.digits), self.choice(SYMBOLS)] + list(self.chars(B62 + SYMBOLS, n - 5))
        self.shuffle(chars)
        return self.choice(B62) + "".join(chars)

    def raw(self, n: int) -> bytes:
        return bytes(self.getrandbits(8) for _ in range(n))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def checksummed(prefix: str, r: Rand) -> str:
    """GitHub classic and npm tokens: 30 random base62 characters, then their CRC32 in base62."""
    body = r.b62(30)
    return prefix + body + base62(zlib.crc32(body.encode()) & 0xFFFFFFFF)


def basic(user: str, password: str) -> str:
    return b64(f"{user}:{password}".encode())


def jwt(r: Rand) -> str:
    header = {"alg": "RS256", "typ": "JWT", "kid": r.hex(8)}
    payload = {"sub": r.lowdig(10), "aud": "api", "iat": 1700000000 + r.randrange(10**7),
               "exp": 1800000000 + r.randrange(10**7), "scope": "deploy"}
    enc = lambda d: b64u(json.dumps(d, separators=(",", ":")).encode())  # noqa: E731
    return f"{enc(header)}.{enc(payload)}.{b64u(r.raw(64))}"


# --- DER and PEM --------------------------------------------------------------------------------

def der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def integer(value: int) -> bytes:
    raw = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big")
    return der(0x02, raw)


def seq(*items: bytes) -> bytes:
    return der(0x30, b"".join(items))


def oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def rsa_der(r: Rand, bits: int = 1024) -> bytes:
    """PKCS#1 RSAPrivateKey: version, n, e, d, p, q, dp, dq, qinv (random numbers, DER-exact)."""
    big = lambda b: r.getrandbits(b) | (1 << (b - 1)) | 1  # noqa: E731
    return seq(integer(0), integer(big(bits)), integer(65537), integer(big(bits)),
               *(integer(big(bits // 2)) for _ in range(5)))


def pkcs8_der(r: Rand) -> bytes:
    return seq(integer(0), seq(oid("1.2.840.113549.1.1.1"), b"\x05\x00"), der(0x04, rsa_der(r)))


def ec_der(r: Rand) -> bytes:
    """SEC1 ECPrivateKey on P-256."""
    return seq(integer(1), der(0x04, r.raw(32)), der(0xA0, oid("1.2.840.10045.3.1.7")),
               der(0xA1, der(0x03, b"\x00\x04" + r.raw(64))))


def dsa_der(r: Rand) -> bytes:
    return seq(integer(0), *(integer(r.getrandbits(b) | 1 << (b - 1)) for b in (1024, 160, 1024, 1024, 160)))


def encrypted_pkcs8_der(r: Rand) -> bytes:
    algorithm = seq(oid("1.2.840.113549.1.5.13"), seq(
        seq(oid("1.2.840.113549.1.5.12"), seq(der(0x04, r.raw(16)), integer(2048))),
        seq(oid("2.16.840.1.101.3.4.1.42"), der(0x04, r.raw(16)))))
    return seq(algorithm, der(0x04, r.raw(640)))


def pem(label: str, body: bytes, headers: str = "") -> str:
    text = b64(body)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return f"-----BEGIN {label}-----\n{headers}" + "\n".join(lines) + f"\n-----END {label}-----\n"


def legacy_encrypted_rsa(r: Rand) -> str:
    headers = f"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{r.hex(32).upper()}\n\n"
    return pem("RSA PRIVATE KEY", r.raw(608), headers)


def openssh(r: Rand) -> str:
    name = b"ssh-ed25519"
    pub = struct.pack(">I", len(name)) + name + struct.pack(">I", 32) + r.raw(32)
    check = r.raw(4)
    private = (check + check + pub + struct.pack(">I", 64) + r.raw(64)
               + struct.pack(">I", 12) + b"deploy@build" + b"\x01\x02\x03")
    body = (b"openssh-key-v1\x00" + struct.pack(">I", 4) + b"none" + struct.pack(">I", 4) + b"none"
            + struct.pack(">I", 0) + struct.pack(">I", 1) + struct.pack(">I", len(pub)) + pub
            + struct.pack(">I", len(private)) + private)
    text = b64(body)
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "\n".join(lines) + "\n-----END OPENSSH PRIVATE KEY-----\n"


def putty(r: Rand) -> str:
    pub, priv = b64(r.raw(51)), b64(r.raw(48))
    return (f"PuTTY-User-Key-File-3: ssh-ed25519\nEncryption: none\nComment: deploy@build\nPublic-Lines: 1\n"
            f"{pub}\nPrivate-Lines: 1\n{priv}\nPrivate-MAC: {r.hex(64)}\n")


def crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def pgp(r: Rand) -> str:
    body = r.raw(300)
    data = bytes([0x95]) + struct.pack(">H", len(body)) + body  # old-format secret-key packet
    text = b64(data)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    checksum = b64(crc24(data).to_bytes(3, "big"))
    return ("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n" + "\n".join(lines) + f"\n={checksum}\n"
            "-----END PGP PRIVATE KEY BLOCK-----\n")


_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i, gen in enumerate((0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)):
            if (top >> i) & 1:
                chk ^= gen
    return chk


def age_key(r: Rand) -> str:
    hrp = "age-secret-key-"
    bits = int.from_bytes(r.raw(32), "big") << 4  # 256 bits in 52 groups of five
    data = [(bits >> (5 * (51 - i))) & 31 for i in range(52)]
    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    mod = _polymod(expanded + data + [0] * 6) ^ 1
    check = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return (hrp + "1" + "".join(_BECH32[d] for d in data + check)).upper()


def macaroon(location: str, r: Rand) -> str:
    """A v2 binary macaroon (location, identifier, signature), base64url: PyPI's token body."""
    def field(kind: int, value: bytes) -> bytes:
        return bytes([kind, len(value)]) + value
    ident = json.dumps({"version": 1, "permissions": "user", "id": r.uuid()}).encode()
    body = b"\x02" + field(1, location.encode()) + field(2, ident) + b"\x00\x00" + field(6, r.raw(32))
    return b64u(body)


# --- key stores ----------------------------------------------------------------------------------

def jks(r: Rand, private: bool = True) -> bytes:
    """A JKS file: magic, version 2, one entry (a private key with its chain, or a trusted cert)."""
    def utf(text: str) -> bytes:
        return struct.pack(">H", len(text)) + text.encode()
    cert = r.raw(600)
    out = b"\xfe\xed\xfe\xed" + struct.pack(">II", 2, 1)
    if private:
        key = r.raw(1200)
        out += (struct.pack(">I", 1) + utf("server") + struct.pack(">Q", 1700000000000) + struct.pack(">I", len(key))
                + key + struct.pack(">I", 1) + utf("X.509") + struct.pack(">I", len(cert)) + cert)
    else:
        out += struct.pack(">I", 2) + utf("root-ca") + struct.pack(">Q", 1700000000000) + utf("X.509") \
            + struct.pack(">I", len(cert)) + cert
    return out + r.raw(20)  # the keyed digest


def pkcs12(r: Rand, with_key: bool = True) -> bytes:
    """A PFX: version 3, authSafe as pkcs7-data, a shrouded key bag (or only an encrypted cert bag)."""
    data_oid = "1.2.840.113549.1.7.1"
    bags = []
    if with_key:
        bag = seq(oid("1.2.840.113549.1.12.10.1.2"), der(0xA0, encrypted_pkcs8_der(r)))
        bags.append(seq(oid(data_oid), der(0xA0, der(0x04, seq(bag)))))
    bags.append(seq(oid("1.2.840.113549.1.7.6"), der(0xA0, seq(integer(0), der(0x04, r.raw(700))))))
    auth_safe = seq(oid(data_oid), der(0xA0, der(0x04, seq(*bags))))
    mac = seq(seq(seq(oid("2.16.840.1.101.3.4.2.1"), b"\x05\x00"), der(0x04, r.raw(32))), der(0x04, r.raw(8)),
              integer(2048))
    return seq(integer(3), auth_safe, mac)
