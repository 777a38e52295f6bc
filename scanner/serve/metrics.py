"""`/metrics` of `layerscan serve`, by prometheus_client, in a registry of its own (no global
state: two servers in one process, as in the tests, count apart). The layer counters are kept by
`scanner.serve.layercache.ServeCache`."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


SCAN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.decisions = Counter("layerscan_serve_decisions", "Manifest pushes decided, by verdict",
                                 ["verdict"], registry=self.registry)
        self.scan_seconds = Histogram("layerscan_serve_scan_seconds", "Seconds to scan a pushed manifest",
                                      buckets=SCAN_BUCKETS, registry=self.registry)
        self.layers = Counter("layerscan_serve_layers", "Layers of pushed images, by whether they were "
                              "scanned or found in the layer cache", ["outcome"], registry=self.registry)
        self.upstream_errors = Counter("layerscan_serve_upstream_errors", "Requests the upstream did not answer",
                                       registry=self.registry)
        self.attached = Counter("layerscan_serve_reports_attached", "Reports attached to passed images, by result",
                                ["result"], registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
