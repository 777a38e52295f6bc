"""How to reach registries, as the user set it: plain data, cheap to import and to pickle."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Optional

from scanner.limits import NO_DEADLINE, Deadline

RETRY_STATUS = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 30.0  # seconds: a longer `Retry-After` is waited this long (and within --timeout)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4  # tries per request, and connections per blob (a dropped one resumes)
    backoff: float = 0.25  # seconds; doubles each try

    def urllib3(self, deadline: Deadline = NO_DEADLINE) -> Any:
        from scanner.sources.bounded import BoundedRetry

        return BoundedRetry(total=self.attempts - 1, other=0, backoff_factor=self.backoff,
                            status_forcelist=RETRY_STATUS, allowed_methods=frozenset({"GET", "HEAD"}),
                            respect_retry_after_header=True, raise_on_status=False, raise_on_redirect=False,
                            deadline=deadline)

    def pause(self, attempt: int, deadline: Deadline = NO_DEADLINE, where: str = "") -> None:
        """The backoff before another try; a backoff past the run's deadline ends the scan."""
        wait = min(self.backoff * (2 ** attempt), 8.0)
        if deadline.set and wait >= (deadline.left() or 0.0):
            raise deadline.error(f"waiting to retry {where}".rstrip())
        time.sleep(wait)


@dataclass(frozen=True)
class RegistryOptions:
    """From the CLI's --insecure-registry, --ca-file, --username and --password-stdin."""

    insecure: tuple[str, ...] = ()  # hosts (HOST[:PORT]) for plain HTTP or unverified TLS
    ca_file: Optional[str] = None  # CA bundle for every registry (else certs.d, else system CAs)
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    retry: RetryPolicy = RetryPolicy()
