"""Every registry answer bounded in size and in time, whatever the registry (or a token server)
sends: a document is read in the chunks the socket gives (`read1`), each chunk counted against a
size cap and the clock, so a reply that drips a byte every few seconds ends at its request's
deadline (`REQUEST_SECONDS`) or at the run's `--timeout`, whichever comes first; and urllib3's
`Retry`, bounded: a `Retry-After` is waited at most `MAX_RETRY_AFTER` seconds, and no wait
(Retry-After or backoff) outlasts the run's `--timeout`: one that would ends the scan."""
from __future__ import annotations

import socket
import threading
import time
import weakref
from typing import Any, Optional

from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from scanner.limits import NO_DEADLINE, Deadline
from scanner.sources.interface import SourceError
from scanner.sources.remote import MAX_RETRY_AFTER

CONNECT_SECONDS = 10.0
READ_SECONDS = 60.0  # the longest silence of a socket
REQUEST_SECONDS = 120.0  # one request, first byte asked for to last byte read (not per read)
CHUNK = 1 << 16
KiB, MiB = 1 << 10, 1 << 20
MAX_MANIFEST = 4 * MiB  # the distribution spec's own limit
MAX_CONFIG = 64 * MiB  # an image config (huge Env or history lists are legal, within reason)
MAX_LIST = 4 * MiB  # a referrers index, a catalog or tags page
MAX_TOKEN = 1 * MiB  # a token server's JSON answer
MAX_ERROR = 64 * KiB  # an error body: read this far for its error codes, the rest dropped


class Watchdog:
    """Ends a request that outlasts its deadline wherever it waits, the status line and headers
    too (a socket's timeout is per read: a server that drips a header byte at a time never trips
    it). `arm(seconds)` at the start of each request of a session; when the time is up, every
    socket the session opened is shut down, so the blocked read returns and the request fails
    (`fired` tells the caller why). One watchdog per session; its requests run one at a time."""

    def __init__(self) -> None:
        self._sockets: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
        self._timer: Optional[threading.Timer] = None
        self.fired = False

    def add(self, sock: socket.socket) -> None:
        self._sockets.add(sock)

    def arm(self, seconds: float) -> None:
        self.disarm()
        self.fired = False
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self.fired = True
        for sock in list(self._sockets):
            try:  # the plain socket's shutdown, also under TLS: it wakes the read, leaves the TLS object be
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass


def watched(adapter: Any, watchdog: Watchdog) -> None:
    """Make every connection `adapter` opens report its socket to `watchdog` (urllib3's pool
    classes, subclassed for this session)."""
    from urllib3.connection import HTTPConnection, HTTPSConnection
    from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

    def connection(base: type) -> type:
        def connect(self: Any) -> None:
            base.connect(self)
            watchdog.add(self.sock)
        return type(f"Watched{base.__name__}", (base,), {"connect": connect})

    adapter.poolmanager.pool_classes_by_scheme = {
        "http": type("WatchedPool", (HTTPConnectionPool,), {"ConnectionCls": connection(HTTPConnection)}),
        "https": type("WatchedTLSPool", (HTTPSConnectionPool,), {"ConnectionCls": connection(HTTPSConnection)}),
    }


def timeouts(deadline: Deadline) -> tuple[float, float]:
    """(connect, read) seconds for one request: none longer than what is left of the run."""
    return deadline.cap(CONNECT_SECONDS) or 0.01, deadline.cap(READ_SECONDS) or 0.01


def read_body(resp: Any, cap: int, what: str, deadline: Deadline, host: str, truncate: bool = False) -> bytes:
    """The whole body of a streamed `requests` response, up to `cap` bytes (over it: an error,
    or with `truncate` the first `cap` bytes), within its request's deadline and the run's. The
    response is closed whatever happens."""
    started = time.monotonic() - resp.elapsed.total_seconds()  # requests' elapsed: up to the headers
    chunks, total = [], 0
    try:
        while True:
            deadline.check(f"while {host} sent {what}")
            if time.monotonic() - started > REQUEST_SECONDS:
                raise SourceError(f"{what}: {host} took over {REQUEST_SECONDS:g} s to answer; gave up")
            chunk = resp.raw.read1(CHUNK, decode_content=False)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > cap:
                if truncate:
                    return b"".join(chunks) + chunk[:cap - total + len(chunk)]
                raise SourceError(f"{what}: {host} sent over {_size(cap)}; not read further")
            chunks.append(chunk)
    finally:
        resp.close()


def _size(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB else f"{n // KiB} KiB"


class BoundedRetry(Retry):
    def __init__(self, *args: Any, deadline: Deadline = NO_DEADLINE, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.deadline = deadline

    def new(self, **kw: Any) -> "BoundedRetry":
        out = super().new(**kw)
        out.deadline = self.deadline
        return out

    def get_retry_after(self, response: Any) -> Optional[float]:
        try:
            after = super().get_retry_after(response)
        except InvalidHeader:  # a Retry-After that is no number and no date: the usual backoff
            return None
        return None if after is None else min(after, MAX_RETRY_AFTER)

    def sleep(self, response: Any = None) -> None:
        after = self.get_retry_after(response) if response is not None else None
        wait = after if after is not None else self.get_backoff_time()
        left = self.deadline.left()
        if left is not None and wait >= left:
            raise self.deadline.error("waiting for the registry to be ready again (Retry-After)"
                                      if after is not None else "waiting to retry a registry request")
        super().sleep(response)
