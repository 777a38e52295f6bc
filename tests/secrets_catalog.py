"""Real-shaped secrets planted by the tests and the sample images.

They are made for this project (random, never issued by any provider), shaped exactly like the
providers' documented formats, with valid checksums where the format has one.
"""
from __future__ import annotations

import base64
import hashlib
import json
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int = 6) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = BASE62[r] + out
    return out.rjust(width, "0")


def checksummed(prefix: str, random30: str) -> str:
    """GitHub/npm token layout: prefix, 30 random base62 chars, base62 CRC32 of them (6 chars)."""
    assert len(random30) == 30
    return prefix + random30 + base62(zlib.crc32(random30.encode()) & 0xFFFFFFFF)


def _jwt(payload: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d, separators=(",", ":")).encode()).rstrip(b"=").decode()
    body = enc({"alg": "HS256", "typ": "JWT"}) + "." + enc(payload)
    sig = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()).rstrip(b"=").decode()
    return body + "." + sig


AWS_KEY_ID = "AKIA4QJ7ZR2MW6XNTB3P"
AWS_SECRET_KEY = "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"
GITHUB_PAT = checksummed("ghp_", "R7kq2Lw9ZxT4mVb8Nc3Hs6Pd1Fj5Gy")
GITHUB_OAUTH = checksummed("gho_", "M3nB7vC1xZ9lK5jH2gF8dS4aQ6wE0r")
GITHUB_FINE_GRAINED = "github_pat_11AB3CDEF0gH7iJkLmN9oP_" + "Qr8StUv2WxYz4Ab6Cd1Ef3Gh5Ij7Kl9Mn0Op2Qr4St6Uv8Wx1Yz3Ab5Cd7Ef9Gh0"
GITLAB_PAT = "glpat-Zk8Qw3Rt6Yp1Ls4Dh7Fm"
SLACK_BOT_TOKEN = "xoxb-2847561930-4829173650284-Hq7Zt3Kw9Lm2Xv5Nb8Rc1Fy"
SLACK_WEBHOOK = "https://hooks.slack.com/services/T04QX7B2K/B06LM3N8P/Zr7Kq2Wm9Xt4Lp6Vn1Hs3Jd"
STRIPE_LIVE_KEY = "sk_live_51Nq7ZkLm4Xw9Rt2Vb8Hs3Pd6Fj1Gy5Tc0Qa7Ue3Wi9Ko2Lm6Xn4Rb8Vt1Hs5Pd3Fj7Gy2Tc6Qa9Ue0W"
GOOGLE_API_KEY = "AIzaSyD8kQ2mZ7xW4vR9tL1nB6hJ3cP5fG0sY2e"
NPM_TOKEN = checksummed("npm_", "Wq4Lm8Zx2Kt6Rv1Nb9Hs3Pd7Fj5Gy0")
PYPI_TOKEN = "pypi-AgEIcHlwaS5vcmcCJGI4ZjRkNzE2LTNjMmEtNDllNi05YjFmLTdhOGQ1ZTJjNGYwMwACKlszLCI5ZTdmYjVhNC0xYzJkLTRlOGYtOWEwYi0zYzRkNWU2ZjdhOGIiXQAABiBq7Kx2Lm9Zw4Rt8Vb3Hs6Pd1Fj5Gy0Qa7Ue3Wi"
JWT = _jwt({"sub": "svc-deploy", "iss": "https://auth.internal.example", "iat": 1700000000})
URL_CREDENTIAL = "https://deploy:Vt8mQz2xLk4Rw7Np@git.internal.example/app.git"
URL_PASSWORD = "Vt8mQz2xLk4Rw7Np"
DB_PASSWORD = "Pq9w!zR4t#Lm2Xv7"
DJANGO_SECRET_KEY = "k9#m2!qz$8wx@r4t&v7n^b3p*h6j(c1f)y5g+s0d-l"

RSA_PRIVATE_KEY = """-----BEGIN PRIVATE KEY-----
MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBALXfu8zpc4zHeCq2
PPyBRnIp2xglDPNktNH9OGfENywPd4GkcxqRge33VmpbC8fr4XthK3DRC185hdFv
UmcODBjNPUEfAMpH6gk2pCsM1oyKR24vPic4H5Fkf3LTThqBxp9FqfLksyVNFZtU
D+CTriD+h/PyY/CWATMIW5ZJz2ldAgMBAAECgYEAo3mN2VqBFSn51hJl8OTWCCmd
GC+9W0zKxvDfcU3J9Z2VYn8JQvlFGzs1fnWFulZIH1kw7b/Ig/g1UxHHtH/I2D/w
B/IT1B94JKsq1YjidTT58MNeyXahBAGG5OhMQ/K+TXAc/P02enxH34VEtzW4gg6D
6yQHON0Q/8tr+rVX+AECQQDwvGxEwy6xIbEpgU4F1wQqafX4UPF5I3N2xxfwrKXl
LcD5534S7nyFZB6H6zoZQD213e1kovgQCHaDM+Ex/PYBAkEAwWfftB2aq7TlT6+j
poijlhDSMrIaXY/stJBtjvj/NX/2KnFNQidc+O4XS6hXCw9PeArkMQMbLP3E/QOg
slgLXQJAKJQqT+Dysurx+QQRycw3qIqZ6pSCT6AZK3Fd6LTBdgMjXzyVNM28caOx
vcl5zp3UiR5ykJ8j31f92hnZoNp6AQJAHLbRTap/hjKrQPNwto7eyq7gpkovA+kU
WZJ/0ZRCP60p3Q9JSyMQ+JxQtRjfI3M4dzgWvPgbFsjucCoTt6a+uQJBAMdpRZfY
Vqrqu8fI0lb5DWMDEFYDYG5IL8Ceb7o6NjVEFbSeuU0nP8RPmVN2qnZY6x0oquRQ
CK3H965omWOPaZQ=
-----END PRIVATE KEY-----
"""

OPENSSH_PRIVATE_KEY = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDS2W9lhuEZFFjP5miFzBXCO9A1GaXndUEXs8sLLdxhMAAAAIggB45UIAeO
VAAAAAtzc2gtZWQyNTUxOQAAACDS2W9lhuEZFFjP5miFzBXCO9A1GaXndUEXs8sLLdxhMA
AAAEBxDkdJRtsrc26i5HtD6DBimNVTVjaf8kveERwddD5LENLZb2WG4RkUWM/maIXMFcI7
0DUZped1QRezywst3GEwAAAABHRlc3QB
-----END OPENSSH PRIVATE KEY-----
"""
