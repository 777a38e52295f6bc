"""The verification cache: `verify.json` in the layer cache's directory. Keyed by the sha256 of
(verifier id, secret hash, paired secret hash): never a raw value. Only definite answers (live,
invalid) are kept, for `ttl` seconds (24 h)."""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from typing import Optional

from scanner.models import Verification

TTL = 24 * 3600
FILENAME = "verify.json"


def cache_key(verifier_id: str, secret_sha256: str, partner_sha256: str = "") -> str:
    return hashlib.sha256(f"{verifier_id}\0{secret_sha256}\0{partner_sha256}".encode()).hexdigest()


class VerifyStore:
    def __init__(self, directory: Optional[str], ttl: float = TTL) -> None:
        self.path = os.path.join(directory, FILENAME) if directory else None
        self.ttl = ttl
        self.entries: dict[str, dict] = {}
        self.dirty = False
        if self.path and os.path.isfile(self.path):
            try:
                with open(self.path, encoding="utf-8") as f:
                    loaded = json.load(f)
                self.entries = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.entries = {}  # a broken cache is a cold one

    def get(self, key: str) -> Optional[Verification]:
        e = self.entries.get(key)
        if not isinstance(e, dict) or time.time() - float(e.get("at", 0)) > self.ttl:
            return None
        try:
            return Verification(str(e["status"]), str(e["endpoint"]), str(e["detail"]), str(e["checked_at"]))
        except KeyError:
            return None

    def put(self, key: str, v: Verification) -> None:
        if self.path is None or v.status not in ("live", "invalid"):
            return
        self.entries[key] = {"status": v.status, "endpoint": v.endpoint, "detail": v.detail,
                             "checked_at": v.checked_at, "at": time.time()}
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        now = time.time()
        keep = {k: e for k, e in self.entries.items() if now - float(e.get("at", 0)) <= self.ttl}
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=".verify-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(keep, f)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written costs calls next time, never the scan
        self.dirty = False
