"""The only way a credential leaves the machine: HTTPS with verified certificates, to an address
checked before connecting (no private, loopback, link-local or reserved address unless the user
set that endpoint) and connected to as checked (no second lookup: no DNS rebinding), no redirect
followed. Errors are one line naming the host, scrubbed of the secret, never a URL.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from typing import Optional

from scanner.verify.interface import Answer, Request, VerifyError

MAX_BODY = 1 << 16  # the judge reads a small JSON document; the rest is not read


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """A message less every secret (raw and URL-encoded), on one line, short."""
    for s in sorted(secrets, key=len, reverse=True):
        if s:
            text = text.replace(s, "[secret]").replace(urllib.parse.quote(s, safe=""), "[secret]")
    text = " ".join(text.split())
    return "".join(c if c.isprintable() else "?" for c in text)[:200]


def public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _Pinned(http.client.HTTPSConnection):
    """HTTPS to `address`, with SNI and certificate checks for `host`."""

    def __init__(self, host: str, port: int, address: str, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class Transport:
    def __init__(self, ca_file: Optional[str] = None) -> None:
        try:
            import certifi
            self.context = ssl.create_default_context(cafile=certifi.where())
        except ImportError:  # pragma: no cover - requests brings certifi
            self.context = ssl.create_default_context()
        if ca_file:
            try:
                self.context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise VerifyError(f"--verify-ca-file {ca_file}: cannot be read: {exc.__class__.__name__}") from None

    def resolve(self, host: str, port: int, allow_private: bool) -> str:
        """The address to connect to, once checked: every address the name has must be public."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise VerifyError(f"{host}: cannot be resolved ({getattr(exc, 'strerror', None) or exc})") from None
        addresses = [info[4][0] for info in infos]
        if not addresses:
            raise VerifyError(f"{host}: no address")
        private = [a for a in addresses if not public(a)]
        if private and not allow_private:
            raise VerifyError(f"{host}: resolves to a non-public address ({private[0]}); refused "
                              "(set it with --verify-endpoint to allow it)")
        return addresses[0]

    def send(self, request: Request, timeout: float, allow_private: bool = False) -> Answer:
        parts = urllib.parse.urlsplit(request.url)
        host = parts.hostname or ""
        if parts.scheme != "https" or not host:
            raise VerifyError(f"{scrub(host, request.secrets)}: only https:// endpoints are called")
        try:
            port = parts.port or 443
            address = self.resolve(host, port, allow_private)
            conn = _Pinned(host, port, address, self.context, timeout)
            try:
                path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
                conn.request(request.method, path, body=request.body, headers=request.headers)
                resp = conn.getresponse()
                body = resp.read(MAX_BODY)
                return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
            finally:
                conn.close()
        except VerifyError as exc:
            raise VerifyError(scrub(str(exc), request.secrets)) from None
        except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
            why = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) or ""
            raise VerifyError(scrub(f"{host}: {exc.__class__.__name__}: {why}", request.secrets)) from None
