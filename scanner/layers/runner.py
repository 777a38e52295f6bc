"""Run `scan_layer` over an image's layers: cache first, then worker processes, one layer each.

Each worker opens its own layer (a byte range of a file on disk), streams it once and returns a
LayerScan; the parent only merges. A worker with no layer left to start (a one-layer image, or
the last large layer of an image still walking) helps the walks still going: it scans the files
they send it (`share`). A cached layer is not scanned again, but its bytes are still read and
checked against their digest (`verify_all`: several local blobs at once).

Within one run (several images), a layer whose diff_id was scanned already is never scanned
again: the very same blob (same file, offset and size) is not even read again; the same layer
stored in another file is read to check its digest, like a cached one, but not scanned.
"""
from __future__ import annotations

import signal
import threading
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import replace
from functools import partial
from multiprocessing import get_context
from typing import TYPE_CHECKING, BinaryIO, Callable, Iterator, Optional, Protocol, Sequence

from scanner.cache import LayerCache, NullCache, cache_key
from scanner.cpus import available_cpus
from scanner.detectors.content import ContentScanner
from scanner.limits import Limits
from scanner.models import Blob, BlobKind, Layer, LayerScan
from scanner.sources.blobs import HashingReader, is_document, layer_stream, open_blob, open_layer
from scanner.sources.interface import SourceError

if TYPE_CHECKING:
    from scanner.layers.share import Share

# The walk (`scanner.layers.walk`, and the archive readers it brings) is imported where a layer is
# walked, not here: a re-scan whose layers are all cached never loads it (a tenth of its time).

POOL_MIN_BYTES = 4 << 20  # below this, worker start-up costs more than it saves
HELPERS_PER_WALK = 4  # workers per layer at most: one walk feeds few helpers (one was busy about half the time)

_worker_state: dict = {}  # set once per worker process by _init_worker; never in the parent


def _init_worker(content: ContentScanner, limits: Limits, share: Optional[Share] = None) -> None:
    _worker_state.update(content=content, limits=limits, share=share)
    if share is not None:
        share.join()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: one message, and it ends us


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """On Ctrl-C or an error, end the workers now: one may wait on a stalled registry download."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _scan_in_worker(layer: Layer) -> LayerScan:
    from scanner.layers.walk import scan_layer
    return scan_layer(layer, _worker_state["content"], limits=_worker_state["limits"], share=_worker_state["share"])


def _help_in_worker() -> int:
    """A worker with no layer to walk scans small files for those walking one, until told to stop."""
    from scanner.layers.walk import scan_sent
    return _worker_state["share"].serve(partial(scan_sent, _worker_state["content"], _worker_state["limits"]))


def layer_key(layer: Layer) -> Optional[str]:
    """The digest a layer's scan is stored and shared under (the layer cache, the run's table of
    layers seen, a fleet's unique layers): always one computed over the very bytes scanned. A tar:
    its diff_id, which the walk checks the tar hashes to. A layer scanned as one document (a media
    type that is not a tar): its blob digest, checked on read, in a keyspace of its own; never the
    diff_id its config gives it, which nothing checks it against: else one pushed image could
    stand its clean document in for another image's tar of that diff_id."""
    if is_document(layer.media_type):
        return f"document:{layer.blob.digest}" if layer.blob.digest else None
    return layer.diff_id


def verify_layer(layer: Layer, cached: LayerScan) -> str:
    """Check the bytes of a layer whose scan is cached (or was made earlier in this run): the
    cache trusts no file, and a manifest's digest only pins the blob, not the diff_id the config
    gives it.

    The stored blob is hashed (against the manifest's digest where there is one); when those are
    the very bytes the scan read (the blob digest it recorded, with the diff_id checked), that is
    enough: same stored bytes, same tar. Any other blob (another compression of the same tar, or
    one that is not the layer its config names) is decompressed and its tar checked against the
    diff_id. Returns the digest of the bytes as stored."""
    with open_blob(layer.blob, f"layer {layer.index}") as raw:
        raw.drain()
    if "sha256:" + raw.hash.hexdigest() != cached.digest:
        with open_layer(layer) as tar:
            tar.drain()
    return "sha256:" + raw.hash.hexdigest()


def verify_all(cached: list[tuple[Layer, LayerScan]], threads: int) -> Iterator[tuple[Layer, LayerScan]]:
    """`verify_layer` of each cached layer, yielded in layer order; the first error in that order
    is raised. Blobs in local files are checked `threads` at a time (hashing and decompressing let
    go of the GIL): a warm re-scan is mostly this. Registry blobs one after the other, over the
    one session that holds their token. The threads are daemons: an error or a Ctrl-C does not
    wait for the checks still running, and those still queued are dropped."""
    if threads <= 1 or len(cached) <= 1 or any(layer.blob.kind is not BlobKind.FILE for layer, _ in cached):
        for layer, scan in cached:
            verify_layer(layer, scan)
            yield layer, scan
        return
    futures: list[Future] = [Future() for _ in cached]
    queue = deque(zip(futures, cached))

    def check() -> None:
        while True:
            try:
                future, (layer, scan) = queue.popleft()
            except IndexError:  # none left
                return
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(verify_layer(layer, scan))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
                    future.set_exception(exc)

    for _ in range(min(threads, len(cached))):
        threading.Thread(target=check, daemon=True, name="layerscan-verify").start()
    try:
        for future, pair in zip(futures, cached):
            future.result()
            yield pair
    finally:
        for future in futures:
            future.cancel()


class LayerExecutor(Protocol):
    """Somewhere else to run the layer scans the cache lacks (a Dask cluster): each layer scanned by
    `scan_layer` exactly as a worker process would, every layer given back once, in any order."""

    def scan(self, layers: Sequence[Layer], content: ContentScanner,
             limits: Limits) -> Iterator[tuple[Layer, LayerScan]]: ...


class LayerRunner:
    def __init__(self, content: ContentScanner, rules_digest: str, limits: Limits = Limits(),
                 cache: Optional[LayerCache] = None, workers: Optional[int] = None,
                 use_cached_values: bool = True) -> None:
        self.executor: Optional[LayerExecutor] = None  # None: this machine's worker processes
        self.content, self.limits = content, limits
        self.rules_digest = rules_digest
        self.cache = cache or NullCache()
        self.workers = workers or available_cpus()
        self.read_cache = use_cached_values  # --reveal needs raw values, which the cache never holds
        self._seen: dict[str, tuple[Layer, LayerScan]] = {}  # layer_key -> first layer and its scan, this run
        self._streamed: dict[str, LayerScan] = {}  # diff_id -> scan of a layer that went past in a stream

    def scan(self, layers: Sequence[Layer], advance: Callable[[int], None]) -> list[LayerScan]:
        results: dict[int, LayerScan] = {}
        todo: list[Layer] = []
        again: list[Layer] = []  # the same diff_id twice in this image: scanned once
        hits: list[tuple[Layer, LayerScan]] = []  # in the cache: only their bytes are checked
        for layer in layers:
            if layer.blob.kind is BlobKind.STREAMED:
                results[layer.index] = self._from_stream(layer, advance)
                continue
            key = layer_key(layer)
            if key and key in self._seen:
                results[layer.index] = self._seen_before(layer, advance)
                continue
            if key and any(layer_key(t) == key for t in todo):
                again.append(layer)
                continue
            cached = self._cached(layer)
            if cached is not None:
                hits.append((layer, cached))
            else:
                todo.append(layer)
        for layer, cached in verify_all(hits, self.workers):
            advance(layer.blob.size)
            results[layer.index] = cached
        for layer, scan in self._run(todo, advance):
            results[layer.index] = scan
            key = layer_key(layer)
            if key:
                self.cache.put(cache_key(key, self.rules_digest, self.limits), scan)
        for layer in layers:
            key = layer_key(layer)
            if key and layer.index in results:
                self._seen.setdefault(key, (layer, results[layer.index]))
        for layer in again:
            results[layer.index] = self._seen_before(layer, advance)
        return [results[layer.index] for layer in layers]

    def scan_member(self, raw: BinaryIO, what: str, advance: Callable[[int], None],
                    expected_diff_id: Optional[str] = None) -> LayerScan:
        """A layer that goes past once in a stream (the engine's `docker save`), scanned as it
        passes and remembered by the diff_id it hashes to: `scan` matches it to its Layer later.
        `expected_diff_id` (a member named by its digest) lets a cached layer be only hashed."""
        cached = self._cached_diff_id(expected_diff_id)
        with layer_stream(HashingReader(raw), what) as tar:
            if cached is None:
                from scanner.layers.walk import walk_stream
                placeholder = Layer(index=-1, blob=Blob(what, 0, 0, kind=BlobKind.STREAMED), diff_id=None)
                scan = walk_stream(tar, placeholder, self.content, self.limits, advance, what=what)
            else:
                tar.drain()
                tar.raw.drain()
                advance(tar.raw.count)
                scan = cached
        diff_id = "sha256:" + tar.hash.hexdigest()
        if expected_diff_id is not None and diff_id != expected_diff_id:  # not the layer its name promised
            raise SourceError(f"{what}: digest mismatch (expected {expected_diff_id[:23]}…, got {diff_id[:23]}…)")
        if cached is None:
            self.cache.put(cache_key(diff_id, self.rules_digest, self.limits), scan)
        self._streamed[diff_id] = replace(scan, digest="sha256:" + tar.raw.hash.hexdigest())
        return scan

    def _cached_diff_id(self, diff_id: Optional[str]) -> Optional[LayerScan]:
        if not diff_id or not self.read_cache:
            return None
        return self.cache.get(cache_key(diff_id, self.rules_digest, self.limits), -1)

    def _from_stream(self, layer: Layer, advance: Callable[[int], None]) -> LayerScan:
        scan = self._streamed.get(layer.diff_id or "")
        what = f"layer {layer.index} ({(layer.diff_id or '?')[:19]})"
        if scan is None:
            raise SourceError(f"{what}: no layer in the stream hashes to this diff_id (damaged or missing)")
        if layer.blob.digest is not None and layer.blob.digest != scan.digest:
            raise SourceError(f"{what}: digest mismatch (expected {layer.blob.digest[:19]}…, got {scan.digest[:19]}…)")
        advance(layer.blob.size)
        return replace(scan, skipped=tuple(replace(s, layer=layer.index) for s in scan.skipped))

    def _seen_before(self, layer: Layer, advance: Callable[[int], None]) -> LayerScan:
        """A layer scanned earlier in this run: not scanned again; its bytes are checked like a cached
        layer's, unless it is the very same blob, or one fetched by the digest of the blob that was
        scanned (a registry: content-addressed, checked when the first was read)."""
        first, scan = self._seen[layer_key(layer) or ""]
        digest = scan.digest
        if first.blob != layer.blob:
            digest = layer.blob.digest or digest
            if layer.blob.kind in (BlobKind.FILE, BlobKind.MEMORY) or digest != scan.digest:
                digest = verify_layer(layer, scan)  # another blob said to hold the same tar
        advance(layer.blob.size)
        return replace(scan, digest=digest, skipped=tuple(replace(s, layer=layer.index) for s in scan.skipped))

    def _cached(self, layer: Layer) -> Optional[LayerScan]:
        key = layer_key(layer)
        if not self.read_cache or not key:
            return None
        return self.cache.get(cache_key(key, self.rules_digest, self.limits), layer.index)

    def _run(self, todo: list[Layer], advance: Callable[[int], None]):
        if self.executor is not None and todo:
            for layer, scan in self.executor.scan(todo, self.content, self.limits):
                advance(layer.blob.size)
                yield layer, scan
            return
        if not todo:
            return
        big = sum(layer.blob.size for layer in todo)
        if self.workers <= 1 or big < POOL_MIN_BYTES:
            from scanner.layers.walk import scan_layer
            for layer in todo:
                yield layer, scan_layer(layer, self.content, advance, limits=self.limits)
            return
        # the rules compiled once here, inherited by every forked worker; Hyperscan lets go of the
        # GIL while it compiles, so the walk is imported meanwhile
        with ThreadPoolExecutor(1, thread_name_prefix="layerscan-compile") as compiling:
            compiled = compiling.submit(self.content.prepare)
            from scanner.layers.share import Share
            from scanner.layers.walk import scan_layer  # noqa: F401 - for the workers forked below
            compiled.result()
        # largest first, so that the longest layer does not start last
        order = sorted(todo, key=lambda layer: layer.blob.size, reverse=True)
        context = get_context("fork")
        workers = min(self.workers, len(todo) * HELPERS_PER_WALK)
        share = Share(context, workers)  # workers with no layer left help the walks still going
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(self.content, self.limits, share)) as pool:
            futures = {pool.submit(_scan_in_worker, layer): layer for layer in order}
            walking, helpers = set(futures), []
            try:
                while walking:
                    free = workers - len(walking) - len(helpers)  # no layer waits for them
                    helpers += [pool.submit(_help_in_worker) for _ in range(max(free, 0))]
                    done, walking = wait(walking, return_when=FIRST_COMPLETED)
                    for future in done:
                        layer = futures[future]
                        scan = future.result()
                        advance(layer.blob.size)
                        yield layer, scan
                share.stop(len(helpers))
                for future in helpers:
                    future.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                _stop_workers(pool)
                raise
