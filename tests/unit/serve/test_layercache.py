"""Scan threads share what is in flight: a layer two pushes need at once is scanned once."""
from __future__ import annotations

import threading
import time

from scanner.cache import LayerCache
from scanner.models import LayerScan
from scanner.serve.layercache import InFlight, ServeCache
from scanner.serve.metrics import Metrics


class Store(LayerCache):
    def __init__(self) -> None:
        self.entries: dict[str, LayerScan] = {}

    def get(self, key, layer_index):
        return self.entries.get(key)

    def put(self, key, scan):
        self.entries[key] = scan


SCAN = LayerScan(diff_id="sha256:" + "a" * 64, digest="sha256:" + "b" * 64, events=(), hits=(), skipped=(), files=0, bytes=0)


def counts(metrics: Metrics) -> tuple[float, float]:
    get = lambda outcome: metrics.layers.labels(outcome)._value.get()
    return get("scanned"), get("cached")


def test_the_second_thread_waits_for_the_first_scan_and_reads_it():
    store, metrics, inflight = Store(), Metrics(), InFlight(wait=10)
    first, second = ServeCache(store, metrics, inflight), ServeCache(store, metrics, inflight)
    assert first.get("k", 0) is None  # first claims it
    got = []
    waiter = threading.Thread(target=lambda: got.append(second.get("k", 0)))
    waiter.start()
    time.sleep(0.2)
    assert waiter.is_alive()  # waiting for the first's scan, not scanning
    first.put("k", SCAN)
    waiter.join(5)
    assert got == [SCAN]
    assert counts(metrics) == (1, 1)


def test_a_scan_that_fails_lets_the_others_scan():
    store, metrics, inflight = Store(), Metrics(), InFlight(wait=10)
    first, second = ServeCache(store, metrics, inflight), ServeCache(store, metrics, inflight)
    assert first.get("k", 0) is None
    got = []
    waiter = threading.Thread(target=lambda: got.append(second.get("k", 0)))
    waiter.start()
    first.release()  # its scan raised: nothing written
    waiter.join(5)
    assert got == [None]  # the second scans it itself
    assert second.get("again", 0) is None and counts(metrics) == (0, 0)


def test_a_wait_is_bounded():
    inflight = InFlight(wait=0.1)
    first, second = ServeCache(Store(), Metrics(), inflight), ServeCache(Store(), Metrics(), inflight)
    assert first.get("k", 0) is None
    began = time.monotonic()
    assert second.get("k", 0) is None
    assert time.monotonic() - began < 2
