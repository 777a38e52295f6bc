"""`DaskLayerExecutor`: layer scans on a Dask cluster (`--dask ADDRESS`), or on a local one
(`--dask` alone, `--workers N` workers).

Each task is `scan_layer` of one layer: pure (it depends only on the layer's bytes, which the
worker fetches from the registry itself, and on the rules) and idempotent (it writes nothing;
the cache is written by the client, once per layer, as results come back). So when a worker
dies mid-scan the scheduler runs its tasks again elsewhere, and each layer's result still
arrives exactly once: one future per layer, read once.
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
import uuid
from typing import Any, Iterator, Optional, Sequence

from scanner.detectors.content import ContentScanner
from scanner.errors import LayerscanError
from scanner.layers.walk import scan_layer
from scanner.limits import NO_DEADLINE, Deadline, Limits
from scanner.models import Layer, LayerScan
from scanner.sources.registry_http import BlobOrigin

RETRIES = 2  # an error inside a task (a registry hiccup) is retried; a lost worker is the scheduler's


class DaskError(LayerscanError):
    """The Dask cluster cannot be reached or started."""


def scan_task(layer: Layer, content: ContentScanner, limits: Limits,
              deadline: Optional[tuple[float, float]]) -> LayerScan:
    """One layer, on a Dask worker: the same call as in a local worker process. The --timeout
    deadline travels as (seconds left at submission, timeout): the worker's clock is not ours."""
    resumed = Deadline.resumed(deadline)
    origin = layer.blob.origin
    if isinstance(origin, BlobOrigin):  # a registry blob reads against the deadline on this worker's clock
        layer = replace(layer, blob=replace(layer.blob, origin=replace(origin, deadline=resumed)))
    return scan_layer(layer, content, limits=limits.until(resumed))


class DaskLayerExecutor:
    """A client of a Dask scheduler (or of a local cluster it starts and stops itself)."""

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None, client: Any = None) -> None:
        self._cluster = None
        self._scratch: Optional[tempfile.TemporaryDirectory] = None
        if client is not None:
            self.client, self._own_client = client, False
            return
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise DaskError("--dask needs Dask: pip install 'layerscan[dask]'") from None
        self._own_client = True
        try:
            if address is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="layerscan-dask-")
                self._cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                             dashboard_address=None, local_directory=self._scratch.name)
                self.client = Client(self._cluster)
            else:
                self.client = Client(address, timeout=30)
        except (OSError, TimeoutError) as exc:
            self.close()
            raise DaskError(f"Dask scheduler {address or '(local)'}: {exc}") from None

    def scan(self, layers: Sequence[Layer], content: ContentScanner,
             limits: Limits) -> Iterator[tuple[Layer, LayerScan]]:
        from distributed import as_completed

        run = uuid.uuid4().hex[:12]
        shared = self.client.scatter(content, broadcast=True, hash=False)
        order = sorted(layers, key=lambda layer: layer.blob.size, reverse=True)  # longest first
        plain, deadline = limits.until(NO_DEADLINE), limits.deadline.portable()
        futures = {self.client.submit(scan_task, layer, shared, plain, deadline, retries=RETRIES, pure=False,
                                      key=f"layerscan-{run}-{i}"): layer for i, layer in enumerate(order)}
        try:
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:
            self.client.cancel(list(futures) + [shared])

    def close(self) -> None:
        if self._own_client and getattr(self, "client", None) is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    def __enter__(self) -> "DaskLayerExecutor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
