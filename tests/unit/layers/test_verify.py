"""A warm re-scan checks the bytes of every cached layer (`runner.verify_all`): local blobs
several at once, in layer order for what is reported, the first error in that order."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

import scanner.layers.runner as runner
import scanner.layers.walk as walk
from scanner.cache import SqliteLayerCache
from scanner.models import Blob, BlobKind, Layer
from scanner.pipeline import ScanOptions, Scanner
from scanner.sources.interface import SourceError
from tests import imagekit as ik
from tests.unit.conftest import write_image


def _layers(n: int, kind: BlobKind = BlobKind.FILE) -> list[tuple[Layer, object]]:
    return [(Layer(i, Blob(f"/x/{i}", 0, 10, kind=kind), f"sha256:{i}"), f"scan {i}") for i in range(n)]


def test_a_warm_scan_checks_cached_layers_at_once(tmp_path, unit_rules, monkeypatch):
    spec = ik.ImageSpec([ik.LayerSpec(f"ADD {i} /", [ik.file(f"/app/{i}", b"x" * 1000)]) for i in range(3)])
    path, _ = write_image(tmp_path, spec, "oci-archive", "gzip")
    cache = SqliteLayerCache(str(tmp_path / "cache"))
    options = ScanOptions(workers=2)
    cold = Scanner(unit_rules, options, cache=cache).scan([str(path)])
    together = threading.Barrier(2, timeout=10)  # two checks must be running at the same moment
    real, threads = runner.verify_layer, set()

    def verify_layer(layer, cached):
        threads.add(threading.current_thread().name)
        if layer.index < 2:
            together.wait()
        return real(layer, cached)

    monkeypatch.setattr(runner, "verify_layer", verify_layer)
    monkeypatch.setattr(walk, "scan_layer", lambda *a, **k: pytest.fail("a cached layer was scanned"))
    warm = Scanner(unit_rules, options, cache=cache).scan([str(path)])
    assert threads == {"layerscan-verify"}
    assert [l.digest for l in warm.images[0].layers] == [l.digest for l in cold.images[0].layers]


def test_the_first_error_in_layer_order_is_raised_without_waiting(monkeypatch):
    """Layer 1 fails at once and layer 0 a moment later: the error is layer 0's. Layer 2 never
    finishes: the run does not wait for it."""
    stuck = threading.Event()

    def verify_layer(layer, cached):
        if layer.index == 0:
            time.sleep(0.2)
        if layer.index == 2:
            stuck.wait(30)
        raise SourceError(f"layer {layer.index}: digest mismatch")

    monkeypatch.setattr(runner, "verify_layer", verify_layer)
    started = time.monotonic()
    try:
        with pytest.raises(SourceError, match="^layer 0: digest mismatch$"):
            list(runner.verify_all(_layers(3), threads=3))
        assert time.monotonic() - started < 10
    finally:
        stuck.set()


def test_in_order_and_only_the_layers_before_an_error(monkeypatch):
    def verify_layer(layer, cached):
        if layer.index == 3:
            raise SourceError("bad")

    monkeypatch.setattr(runner, "verify_layer", verify_layer)
    got = []
    with pytest.raises(SourceError, match="bad"):
        for layer, scan in runner.verify_all(_layers(5), threads=2):
            got.append((layer.index, scan))
    assert got == [(0, "scan 0"), (1, "scan 1"), (2, "scan 2")]


@pytest.mark.parametrize("kind,threads", [(BlobKind.REGISTRY, 4), (BlobKind.MEMORY, 4), (BlobKind.FILE, 1)])
def test_registry_blobs_and_one_worker_are_checked_here_one_by_one(monkeypatch, kind, threads):
    seen = []
    monkeypatch.setattr(runner, "verify_layer", lambda layer, cached: seen.append(
        (layer.index, threading.current_thread() is threading.main_thread())))
    assert [l.index for l, _ in runner.verify_all(_layers(3, kind), threads)] == [0, 1, 2]
    assert seen == [(0, True), (1, True), (2, True)]


def test_a_warm_scan_does_not_load_the_walk(tmp_path):
    """A re-scan whose layers are all cached imports no walk, no archive reader: their imports
    were a tenth of its time. The cold scan before it does (it walks the layers)."""
    spec = ik.ImageSpec([ik.LayerSpec("ADD a /", [ik.file("/app/a", b"x" * 1000)])])
    path, _ = write_image(tmp_path, spec, "oci-archive", "gzip")
    probe = ("import sys; from scanner.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('scanner.layers.walk', 'stream_unzip') if m in sys.modules))")
    args = ["--no-progress", "-f", "json", "-o", str(tmp_path / "r.json"), "--cache-dir", str(tmp_path / "c"), str(path)]
    loaded = [subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True).stdout
              for _ in range(2)]
    assert loaded == ["['scanner.layers.walk', 'stream_unzip']\n", "[]\n"]
