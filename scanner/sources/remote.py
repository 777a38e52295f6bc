"""How to reach registries, as the user set it: plain data, cheap to import and to pickle."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

RETRY_STATUS = (429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries per request, and connections per blob (a dropped one resumes)
    backoff: float = 0.25  # seconds; doubles each try

    def urllib3(self) -> Any:
        from urllib3.util.retry import Retry

        return Retry(total=self.attempts - 1, other=0, backoff_factor=self.backoff, status_forcelist=RETRY_STATUS,
                     allowed_methods=frozenset({"GET", "HEAD"}), respect_retry_after_header=True,
                     raise_on_status=False, raise_on_redirect=False)

    def pause(self, attempt: int) -> None:
        time.sleep(min(self.backoff * (2 ** attempt), 8.0))


@dataclass(frozen=True)
class RegistryOptions:
    """From the CLI's --insecure-registry, --ca-file, --username and --password-stdin."""

    insecure: tuple[str, ...] = ()  # hosts (HOST[:PORT]) for plain HTTP or unverified TLS
    ca_file: Optional[str] = None  # CA bundle for every registry (else certs.d, else system CAs)
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    retry: RetryPolicy = RetryPolicy()
