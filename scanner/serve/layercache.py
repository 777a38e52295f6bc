"""The layer cache as `layerscan serve` uses it: each scan thread has its own connection to the
one cache (SQLite or PostgreSQL, as `scan` opens it), and the threads share what is in flight, so
that two pushes of images on the same base scan each base layer once: the second waits for the
first's scan of that layer and reads it from the cache. It counts, too: a layer the cache lacks
is scanned, then written; one it has is not scanned.

Across several `serve` processes on one PostgreSQL cache, a layer two of them meet at the same
instant may be scanned by both (the second write changes nothing); after that, by none.
"""
from __future__ import annotations

import threading
from typing import Optional

from scanner.cache import LayerCache
from scanner.models import LayerScan
from scanner.serve.metrics import Metrics


class InFlight:
    """Layer cache keys being scanned by some thread of this process."""

    def __init__(self, wait: float) -> None:
        self.wait = wait  # seconds a thread waits for another's scan before scanning itself
        self._lock = threading.Lock()
        self._scanning: dict[str, threading.Event] = {}

    def claim(self, key: str) -> Optional[threading.Event]:
        """None: the caller scans it now (and must `done` it); else the event of the one who does."""
        with self._lock:
            event = self._scanning.get(key)
            if event is None:
                self._scanning[key] = threading.Event()
            return event

    def done(self, key: str) -> None:
        with self._lock:
            event = self._scanning.pop(key, None)
        if event is not None:
            event.set()


class ServeCache(LayerCache):
    def __init__(self, inner: LayerCache, metrics: Metrics, inflight: InFlight) -> None:
        self.inner, self.metrics, self.inflight = inner, metrics, inflight
        self._claimed: set[str] = set()

    def get(self, key: str, layer_index: int) -> Optional[LayerScan]:
        found = self.inner.get(key, layer_index)
        if found is None:
            other = self.inflight.claim(key)
            if other is None:
                self._claimed.add(key)
                return None
            other.wait(self.inflight.wait)  # another push scans this layer now: its result, once
            found = self.inner.get(key, layer_index)
            if found is None:
                return None  # it failed or is slow: scanned here too
        self.metrics.layers.labels("cached").inc()
        return found

    def put(self, key: str, scan: LayerScan) -> None:
        self.metrics.layers.labels("scanned").inc()
        try:
            self.inner.put(key, scan)
        finally:
            self.release(key)

    def release(self, key: Optional[str] = None) -> None:
        """Let the others go: after a layer's write, or when a scan ends, for what it never wrote."""
        for k in [key] if key is not None else list(self._claimed):
            self._claimed.discard(k)
            self.inflight.done(k)

    @property
    def directory(self) -> Optional[str]:
        return self.inner.directory

    @property
    def mac_key(self) -> Optional[bytes]:  # type: ignore[override]
        """The inner cache's LAYERSCAN_CACHE_KEY: the compiled rules kept in its directory are sealed with it."""
        return self.inner.mac_key
