"""Each validator accepts well-formed secrets and rejects near misses; none raises on junk."""
from __future__ import annotations

import base64
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from scanner.detectors.validators import VALIDATORS
from tests import secrets_catalog as catalog


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def der(size: int) -> bytes:
    """A DER SEQUENCE header and `size` random content bytes: the outer shape of a private key."""
    return bytes([0x30, 0x82]) + size.to_bytes(2, "big") + random.Random(size).randbytes(size)


def pem(label: str, body: bytes, sep: str = "\n") -> str:
    text = b64(body)
    lines = [text[i:i + 64] for i in range(0, len(text), 64)]
    return sep.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])


def flip_last(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


# A throwaway key made with `gpg --quick-gen-key ... ed25519` for these tests, never used elsewhere.
PGP_KEY = """-----BEGIN PGP PRIVATE KEY BLOCK-----

lFgEaw0w5hYJKwYBBAHaRw8BAQdAkfUoUl7pke6lQAOo8IMh2ol3nJpom1JhVbGk
TjpVuggAAQC9rT+LoKTuuV9PaazwT9y2O7f9pPPypVpD1ja5BLymihMjtBFDSSA8
Y2lAeC5leGFtcGxlPoiQBBMWCAA4FiEErcOureOKtq1nKTd+f6VkoWaytYoFAmsN
MOYCGwMFCwkIBwIGFQoJCAsCBBYCAwECHgECF4AACgkQf6VkoWaytYrrtgD+J8Kc
f+bjEb6o/1FEXdO4sX9x78JIHHwfACRHg2WZOl4A/jjWFRwc2ZGVOXwFvE1Mdq0X
2KJcZuD6jmX3P/D5KxEB
=ryJl
-----END PGP PRIVATE KEY BLOCK-----"""

# `openssl ec -aes128` output (legacy PEM encryption), made for these tests.
EC_LEGACY_ENCRYPTED = """-----BEGIN EC PRIVATE KEY-----
Proc-Type: 4,ENCRYPTED
DEK-Info: AES-128-CBC,7A2F86ADB9C4D3777169D3C38E0908DA

s0RgFzVLAWYr1AtQ9zvqcg27u5ClzCRFTIE2CThkvFcwQyOwnOUlYqc9W0T9S9bz
M8ZJ5ddiAu6b6M0wROjR9Fjq4461/qgM+3JvNfGhS1EQsUjRQw4eJ6LHkAfSjoFt
+SMJh2E1WzWGpq114Hmw7vMiV9MMJT7fAACG9fp561c=
-----END EC PRIVATE KEY-----"""

AGE_KEY = "AGE-SECRET-KEY-18Z6WV5HYFKNLYDCDNCNQUFCNV4G2FGAX6PL4CRPN9793YFQG8LFQ5TGD44"

PUTTY_KEY = "\n".join([
    "PuTTY-User-Key-File-3: ssh-ed25519", "Encryption: none", "Comment: deploy@build",
    "Public-Lines: 2", "AAAAC3NzaC1lZDI1NTE5AAAAIHk3dW9yZ2FuZS1rZXktZm9yLXRlc3RzLW9ubHkt", "YQ==",
    "Private-Lines: 1", "AAAAIF3v6Zr0k9qT2mX8wL4cN7bH1sP5dJ6fG3yV0aQe2Ui7",
    "Private-MAC: " + "5e" * 32,
])
PUTTY_ARGON = PUTTY_KEY.replace("Encryption: none", "Encryption: aes256-cbc").replace(
    "Private-Lines: 1", "Key-Derivation: Argon2id\nArgon2-Memory: 8192\nArgon2-Passes: 13\n"
    "Argon2-Parallelism: 1\nArgon2-Salt: " + "ab" * 16 + "\nPrivate-Lines: 1")

JWT_HEADER = b64url(compact({"alg": "RS256", "typ": "JWT"}))
JWT_PAYLOAD = b64url(compact({"sub": "svc-build", "iat": 1700000000}))
JWT_SIG = b64url(bytes(range(64)))

GRAFANA_CLOUD = "glc_" + b64(compact({"o": "123456", "n": "ci-deploy", "k": "Zr7Kq2Wm9Xt4Lp6Vn1Hs3Jd5",
                                      "m": {"r": "eu"}}))
SENTRY_ORG = "sntrys_" + b64(compact({"iat": 1700000000, "url": "https://sentry.io", "org": "acme"})) \
    + "_" + "Qm9Xt4Lp6Vn1Hs3Jd5Fb8Gt2Ra7Ue3Wi9Ko2Lm6Xn4R"
DISCORD = b64url(b"1098765432109876543") + ".GhT2kq." + "Zr7Kq2Wm9Xt4Lp6Vn1Hs3Jd5Fb8Gt2Ra7Ue3W"

CASES: dict[str, tuple[list[str], list[str]]] = {
    "base62-crc32": (
        [catalog.GITHUB_PAT, catalog.GITHUB_OAUTH, catalog.NPM_TOKEN,
         catalog.checksummed("ghs_", "000000000000000000000000000000")],
        [flip_last(catalog.GITHUB_PAT), flip_last(catalog.NPM_TOKEN), catalog.GITHUB_PAT[:-1],
         "ghp_" + "x" * 36, "ghp_" + "!" * 36, ""]),
    "age-secret-key": (
        [AGE_KEY, AGE_KEY.lower()],
        [flip_last(AGE_KEY), AGE_KEY.replace("AGE-SECRET-KEY-", "AGE-PUBLIC-KEY-"), AGE_KEY[:-2],
         AGE_KEY[:-1] + "B"]),
    "jwt": (
        [catalog.JWT, f"{JWT_HEADER}.{JWT_PAYLOAD}.{JWT_SIG}"],
        [f"{b64url(compact({'typ': 'JWT'}))}.{JWT_PAYLOAD}.{JWT_SIG}",  # no alg
         f"{JWT_HEADER}.{b64url(compact(['not', 'an', 'object']))}.{JWT_SIG}",
         f"{JWT_HEADER}.{JWT_PAYLOAD}", f"{JWT_HEADER}.{JWT_PAYLOAD}.",
         f"{JWT_HEADER}.{b64url(b'not json at all')}.{JWT_SIG}", "eyJ.eyJ.abc"]),
    "basic-auth": (
        [b64(b"deploy:Vt8mQz2xLk4Rw7Np"), b64(b":token-only-password"), b64(b"ci-bot:p@ss:w0rd")],
        [b64(b"no-colon-here"), b64(b"user:"), b64(b"user:\x00\x01\x02"), b64(b"\xff\xfe:\xfd"),
         "not*base64", ""]),
    "azure-key": (
        [b64(bytes(range(64))), b64(bytes(range(32)))],
        [b64(bytes(range(40))), b64(bytes(range(63))), "A" * 87 + "=", "%%%"]),
    "discord-bot-token": (
        [DISCORD],
        ["TXlCb3ROYW1lSXNOb3RBTnVtYmVy.GhT2kq." + "Z" * 38, DISCORD.rsplit(".", 1)[0],
         b64url(b"12345") + ".GhT2kq." + "Z" * 38]),
    "pypi-macaroon": (
        [catalog.PYPI_TOKEN,
         "pypi-" + b64url(b"\x02\x01\x0dtest.pypi.org\x02\x24" + b"b8f4d716-3c2a-49e6-9b1f-7a8d5e2c4f03" + b"\x00")],
        ["pypi-" + b64url(b"\x02\x01\x0bexample.org\x02\x04abcd\x00"),
         "pypi-AgEIcHlwaS5vcmc" + "Zr7Kq2Wm9Xt4Lp6Vn1Hs3Jd5Fb8Gt2Ra7Ue3Wi9Ko2Lm6Xn4Rb8Vt1Hs5Pd3",
         "pypi-" + b64url(b"\x01\x01\x08pypi.org\x02\x04abcd"), "pypi-!!!"]),
    "grafana-cloud-token": (
        [GRAFANA_CLOUD],
        ["glc_" + b64(compact({"o": "1", "n": "x"})), "glc_" + b64(b"plain text, not json"), "glc_%%%"]),
    "grafana-api-key": (
        [b64(compact({"k": "Zr7Kq2Wm9Xt4Lp6Vn1Hs3Jd5Fb8Gt2Ra7", "n": "ci", "id": 1}))],
        [b64(compact({"kid": "Zr7Kq2Wm9Xt4", "name": "ci"})), b64(b"{not json"), "eyJrIjoi%%%"]),
    "sentry-org-token": (
        [SENTRY_ORG],
        ["sntrys_" + b64(compact(["iat"])) + "_" + "Q" * 43, SENTRY_ORG.rsplit("_", 1)[0],
         "sntrys_" + b64(compact({"iat": 1})) + "_short"]),
    "pem-private-key": (
        [catalog.RSA_PRIVATE_KEY, catalog.OPENSSH_PRIVATE_KEY,
         catalog.RSA_PRIVATE_KEY.replace("\n", "\\n"),  # pasted into JSON
         catalog.RSA_PRIVATE_KEY.replace("\n", " "),  # flattened into one line
         pem("RSA PRIVATE KEY", der(600)), pem("EC PRIVATE KEY", der(119)),
         pem("ENCRYPTED PRIVATE KEY", der(700), sep="\\r\\n"), EC_LEGACY_ENCRYPTED],
        ["-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA...\n-----END RSA PRIVATE KEY-----",
         pem("RSA PRIVATE KEY", der(600)[:-5]),  # truncated
         pem("RSA PRIVATE KEY", b"\x04" + der(600)[1:]),  # not a SEQUENCE
         pem("CERTIFICATE", der(600)), pem("PUBLIC KEY", der(90)),
         pem("OPENSSH PRIVATE KEY", b"ssh-rsa " + bytes(200)),
         "\n".join(EC_LEGACY_ENCRYPTED.splitlines()[:5] + EC_LEGACY_ENCRYPTED.splitlines()[-1:]),  # cut
         "-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----"]),
    "base64-pem-private-key": (
        [b64(catalog.RSA_PRIVATE_KEY.encode()),
         b64(("-----BEGIN DSA PARAMETERS-----\nMIIBHgKBgQ==\n-----END DSA PARAMETERS-----\n"
              + catalog.RSA_PRIVATE_KEY).encode())],
        [b64(pem("CERTIFICATE", der(600)).encode()), b64(b"-----BEGIN RSA PRIVATE KEY-----\n..."), "%%%"]),
    "pgp-private-key": (
        [PGP_KEY, PGP_KEY.replace("\n=ryJl", ""), PGP_KEY.replace("\n", "\\n"),
         PGP_KEY.replace("BLOCK-----\n\n", "BLOCK-----\nComment: exported for tests\n\n")],
        [PGP_KEY.replace("=ryJl", "=ryJm"), PGP_KEY.replace("lFgE", "mDME"),  # public-key packet
         PGP_KEY.replace("PRIVATE KEY BLOCK", "PUBLIC KEY BLOCK"),
         "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBGQ...your key...\n-----END PGP PRIVATE KEY BLOCK-----"]),
    "putty-private-key": (
        [PUTTY_KEY, PUTTY_ARGON, PUTTY_KEY.replace("\n", "\\n")],
        [PUTTY_KEY.replace("Private-Lines: 1", "Private-Lines: 3"),
         PUTTY_KEY.replace("Public-Lines: 2", "Public-Lines: 1"),
         PUTTY_KEY.replace("YQ==", "..."), PUTTY_KEY.replace("Public-Lines: 2", "Public-Lines: x")]),
}


def _params(index: int) -> list:
    return [pytest.param(name, value, id=f"{name}-{i}")
            for name, case in CASES.items() for i, value in enumerate(case[index])]


def test_every_validator_has_cases() -> None:
    assert set(CASES) == set(VALIDATORS)
    assert all(good and bad for good, bad in CASES.values())


@pytest.mark.parametrize("name,value", _params(0))
def test_validator_accepts(name: str, value: str) -> None:
    assert VALIDATORS[name](value.encode()) is True


@pytest.mark.parametrize("name,value", _params(1))
def test_validator_rejects(name: str, value: str) -> None:
    assert VALIDATORS[name](value.encode()) is False


@pytest.mark.parametrize("name", sorted(VALIDATORS))
def test_validator_never_raises_on_junk(name: str) -> None:
    rng = random.Random(name)
    samples = [b"", b"-", b"_", b".", b"=", b"-----BEGIN X-----", b"\\n" * 5]
    samples += [rng.randbytes(rng.randrange(1, 300)) for _ in range(200)]
    for good in CASES[name][0]:  # every prefix of a good value: truncation must not crash
        samples += [good.encode()[:n] for n in range(0, len(good), max(1, len(good) // 40))]
    for data in samples:
        assert VALIDATORS[name](data) in (True, False)


# --- keys made by the real tools, where they are installed -------------------------------------------

def _tool(cmd: list[str], cwd: Path, env: dict | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")
@pytest.mark.parametrize("args", [
    ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", "k.pem"],
    ["genpkey", "-algorithm", "ed25519", "-out", "k.pem"],
    ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "k.pem"],
    ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-aes-128-cbc",
     "-pass", "pass:x", "-out", "k.pem"],
], ids=["rsa-pkcs8", "ed25519", "ec-sec1", "rsa-encrypted-pkcs8"])
def test_pem_keys_from_openssl(tmp_path: Path, args: list[str]) -> None:
    _tool(["openssl", *args], tmp_path)
    key = (tmp_path / "k.pem").read_bytes()
    assert VALIDATORS["pem-private-key"](key)
    assert VALIDATORS["base64-pem-private-key"](base64.b64encode(key))


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen is not installed")
@pytest.mark.parametrize("kind", ["ed25519", "ecdsa"])
def test_openssh_keys_from_ssh_keygen(tmp_path: Path, kind: str) -> None:
    _tool(["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", "id"], tmp_path)
    assert VALIDATORS["pem-private-key"]((tmp_path / "id").read_bytes())
    assert not VALIDATORS["pem-private-key"]((tmp_path / "id.pub").read_bytes())


@pytest.mark.skipif(not shutil.which("gpg"), reason="gpg is not installed")
def test_pgp_key_from_gpg(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    try:
        _tool(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key",
               "CI <ci@build.example>", "ed25519", "sign", "never"], tmp_path, env)
        out = subprocess.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor",
                              "--export-secret-keys"], env=env, check=True, capture_output=True, timeout=60)
    finally:  # gpg starts a gpg-agent (and keyboxd) for this GNUPGHOME: stop them
        subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True, timeout=60)
    assert VALIDATORS["pgp-private-key"](out.stdout)
