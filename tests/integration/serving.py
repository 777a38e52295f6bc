"""`layerscan serve` as the integration tests (and bench/serve.py) run it: a real process on a
free loopback port (dockerd pushes there over plain HTTP without configuration), its stderr
(one JSON line per event) kept, its /metrics read back."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from tests.services import ServiceUnavailable, _stop_process, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class Serve:
    def __init__(self, upstream: str, cache_dir: Path, *args: str, stdin: Optional[str] = None) -> None:
        self.upstream, self.cache_dir, self.args, self.stdin = upstream, cache_dir, args, stdin
        self.port: Optional[int] = None
        self._proc: Optional[subprocess.Popen] = None
        self._log = cache_dir / f"serve-{os.getpid()}-{id(self)}.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def start(self) -> "Serve":
        self.port = free_port()
        argv = [sys.executable, "-m", "scanner", "serve", "--upstream", self.upstream, "--listen", self.host,
                "--cache-dir", str(self.cache_dir), *self.args]
        with open(self._log, "wb") as log:
            self._proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=log, stderr=log,
                                          start_new_session=True)
        if self.stdin is not None:
            self._proc.stdin.write(self.stdin.encode() + b"\n")
        self._proc.stdin.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServiceUnavailable(f"layerscan serve exited with {self._proc.returncode}: {self.log_text()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return self
            except OSError:
                time.sleep(0.1)
        raise ServiceUnavailable(f"layerscan serve not ready in 30 s: {self.log_text()}")

    def stop(self) -> None:
        _stop_process(self._proc, 10)
        self._proc = None

    def __enter__(self) -> "Serve":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def get(self, path: str, headers: Optional[dict] = None) -> tuple[int, dict, bytes]:
        req = urllib.request.Request(f"http://{self.host}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def log_text(self) -> str:
        return self._log.read_text(errors="replace") if self._log.exists() else ""

    def events(self, kind: Optional[str] = None) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if kind is None or record.get("event") == kind:
                    out.append(record)
        return out

    def metric(self, name: str, **labels: str) -> float:
        """A sample of /metrics (0 when absent)."""
        status, _, body = self.get("/metrics")
        assert status == 200
        want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
        for line in body.decode().splitlines():
            if line.startswith(want + " "):
                return float(line.split()[-1])
        return 0.0

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))

    def peak_rss_kib(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))
