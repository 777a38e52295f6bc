"""A local HTTPS server that answers as a provider's documented API, for the verify tests: a test
CA and a certificate for 127.0.0.1 made with `openssl`, the answers set by the test, every request
recorded."""
from __future__ import annotations

import functools
import http.server
import json
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

OPENSSL_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"


def make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) under `directory`."""
    ca_key, ca, key, csr, cert = (directory / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=layerscan test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    (directory / "ext.cnf").write_text(OPENSSL_EXT)
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out", str(cert),
        "-days", "2", "-extfile", str(directory / "ext.cnf"))
    return ca, cert, key


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: str = "{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeApi:
    """`replies` are served in order (the last one repeats); `seen` holds every request."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.replies: list[Reply] = [Reply()]
        self.seen: list[Seen] = []
        self.routes: dict[str, Reply] = {}  # by exact path, before `replies`
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: ANN002
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                api.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                reply = api.routes.get(self.path) or (api.replies.pop(0) if len(api.replies) > 1 else api.replies[0])
                if reply.delay:
                    time.sleep(reply.delay)
                data = reply.body.encode()
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda request, address: None  # a client that gave up (timeout tests)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.seen.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def reply_of(example: dict) -> Reply:
    """A verifier's documented example answer (`examples.live` in its data) as a Reply."""
    body = example.get("body", "")
    return Reply(int(example["status"]), body if isinstance(body, str) else json.dumps(body),
                 {str(k): str(v) for k, v in (example.get("headers") or {}).items()})


@functools.lru_cache(maxsize=None)
def _all_examples() -> dict[str, dict]:
    import yaml

    from scanner.verify.spec import builtin_directory

    out = {}
    for path in sorted(Path(builtin_directory()).glob("*.yaml")):
        for data in yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["verifiers"]:
            out[data["id"]] = data.get("examples") or {}
    return out


def raw_examples(verifier_id: str) -> dict:
    return _all_examples().get(verifier_id, {})
