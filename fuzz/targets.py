"""Fuzz targets: one per parser of hostile input, each a function of bytes.

A target may end in a `LayerscanError` (bad input, said in one line): anything else escaping it
is a crash. The same functions run under atheris (`fuzz/run.py`, coverage-guided, bounded time)
and under hypothesis (`tests/hostile/test_fuzz.py`, in every test run). Every crash either found
is kept as a regression test in `tests/hostile/test_regressions.py`.

Targets work in memory (blobs of kind MEMORY, an in-memory store), except `archive`, which needs
a file on disk for the image archive it parses: the runner gives it one scratch file.
"""
from __future__ import annotations

import atexit
import io
import json
import os
import tempfile
from typing import Any, Callable, Optional

from scanner.detectors.content import ContentScanner
from scanner.detectors.rules import parse_rule_file, RuleSet
from scanner.detectors.signature import SignatureDetector
from scanner.errors import LayerscanError
from scanner.layers.nested import FileScanner
from scanner.layers.overlay import Overlay
from scanner.layers.walk import scan_layer
from scanner.limits import Limits
from scanner.models import (Blob, BlobKind, DetectorKind, Finding, Hit, ImageResult, Layer, LayerScan, ScanResult,
                            Secret, Severity, SourceKind, Status)
from scanner.pathevents import EntryKind, PathEvent, PathEvents
from scanner.sources.docker_archive import DockerArchiveSource
from scanner.sources.oci import OciSource
from scanner.sources.stores import Store, TarStore

RULES = b"""
rules:
  - id: fuzz-aws-key-id
    title: AWS access key id (fuzz)
    severity: critical
    keywords: [akia]
    regex: '(?P<secret>AKIA[0-9A-Z]{16})'
"""
# small limits: a target explores limits and bombs without spending seconds on one input
LIMITS = Limits(max_depth=3, max_file_size=1 << 20, max_archive_bytes=4 << 20, max_layer_bytes=8 << 20,
                max_ratio=50, max_image_bytes=64 << 20, max_image_files=20_000)

_content: Optional[ContentScanner] = None


def content() -> ContentScanner:
    global _content
    if _content is None:
        rules = parse_rule_file(RULES, "fuzz.yaml")
        _content = ContentScanner([SignatureDetector(RuleSet(tuple(rules), "fuzz"))], keep_values=False,
                                  chunk=4096, overlap=256)
    return _content


def memory_blob(data: bytes, digest: Optional[str] = None) -> Blob:
    return Blob("<fuzz>", 0, len(data), digest, kind=BlobKind.MEMORY, data=data)


# --- the tar stream walk (a layer: plain, gzip or zstd, told apart by magic) -------------------------

def tar_walk(data: bytes) -> None:
    try:
        scan = scan_layer(Layer(0, memory_blob(data), None), content(), limits=LIMITS)
    except LayerscanError:
        return
    for event in scan.events:  # what reaches the overlay and the reports is clean
        assert event.path.startswith("/") and "/../" not in event.path + "/", event.path
        event.path.encode("utf-8")
    for s in scan.skipped:
        s.path.encode("utf-8"), s.reason.encode("utf-8")


# --- the tar reader alone (Go's archive/tar rules: scanner/layers/tarstream.py, tarheaders.py) ---------

def tar_reader(data: bytes) -> None:
    """Every entry read through; the reader ends cleanly or in a ReadError, and what it gives is
    sane: entries in stream order, data exactly as long as said (or an error: the stream is cut),
    names that encode back to their bytes."""
    import tarfile

    from scanner.layers.tarstream import members, open_member, open_tar

    last = -1
    try:
        tf = open_tar(io.BytesIO(data), 512)
        for h in members(tf):
            assert h.offset > last and h.stored >= 0 and h.offset_data >= h.offset + 512, (h.offset, h.stored)
            last = h.offset
            h.name.encode("utf-8", "surrogateescape"), h.linkname.encode("utf-8", "surrogateescape")
            f, n = open_member(tf, h)
            assert len(f.read()) == n
    except tarfile.ReadError:
        pass


# --- nested archives (a file of a layer: zip, jar, tar, gzip, zstd inside each other) ----------------

def nested(data: bytes) -> None:
    scanner = FileScanner(content(), LIMITS)
    hits, skipped = scanner.scan(io.BytesIO(data).read, len(data), "/srv/file", 0)
    for h in hits:
        (h.inner_path or "").encode("utf-8")
    for s in skipped:
        s.reason.encode("utf-8")


# --- whiteouts and opaque dirs: the overlay over fuzzed path events ----------------------------------

_KINDS = list(EntryKind)
_NAMES = ["/", "/a", "/a/b", "/a/b/c", "/a/.env", "/b", "/a/b/.env"]


def overlay(data: bytes) -> None:
    """Bytes -> layers of path events and hits; every label must be one the contract allows."""
    layers: list[list[PathEvent]] = [[]]
    hits: list[list[Hit]] = [[]]
    for i in range(0, len(data) - 1, 2):
        op, arg = data[i], data[i + 1]
        if op % 11 == 0:
            layers.append([])
            hits.append([])
            continue
        path = _NAMES[arg % len(_NAMES)]
        kind = _KINDS[op % len(_KINDS)]
        ordinal = len(layers[-1])
        layers[-1].append(PathEvent(path, kind, ordinal))
        if kind is EntryKind.FILE and arg & 0x80:
            hits[-1].append(Hit("r", DetectorKind.SIGNATURE, Severity.LOW, "t", path, 1, Secret("0", "x"),
                                ordinal=ordinal))
    scans = [LayerScan("d", "d", PathEvents(ev), tuple(h), (), 0, 0) for ev, h in zip(layers, hits)]
    ov = Overlay(scans)
    for i, scan in enumerate(scans):
        for hit in scan.hits:
            label = ov.label(i, hit)
            assert label.status in (Status.PRESENT, Status.DELETED, Status.OVERWRITTEN)
            assert (label.removed_in is None) == (label.status is Status.PRESENT)
            assert label.removed_in is None or i <= label.removed_in < len(scans)


# --- manifest / index / config JSON through the sources ----------------------------------------------

class MemoryStore(Store):
    def __init__(self, files: dict[str, bytes]) -> None:
        self.location = "<fuzz>"
        self.files = files

    def get(self, name: str, digest: Optional[str] = None) -> Optional[Blob]:
        data = self.files.get(name.lstrip("./"))
        return None if data is None else memory_blob(data, digest)


def _documents(data: bytes) -> dict[str, bytes]:
    """Split the input into documents at NUL bytes: index.json/manifest.json first, then blobs
    stored under their own digest (so that digests in fuzzed JSON can name them)."""
    import hashlib

    parts = data.split(b"\0")
    files = {"index.json": parts[0], "manifest.json": parts[0]}
    for part in parts[1:]:
        files["blobs/sha256/" + hashlib.sha256(part).hexdigest()] = part
    return files


def sources(data: bytes) -> None:
    files = _documents(data)
    for make in (lambda s: OciSource(s, "fuzz", SourceKind.OCI_ARCHIVE, platform="all"),
                 lambda s: DockerArchiveSource(s, "fuzz", platform="all")):  # type: ignore[arg-type]
        try:
            for image in make(MemoryStore(files)).images():
                _check_image(image)
        except LayerscanError:
            pass


def _check_image(image: Any) -> None:
    assert isinstance(image.config, dict)
    for layer in image.layers:
        assert layer.diff_id is None or layer.diff_id.startswith("sha256:")
    json.dumps(image.config)  # what the config scan and the reports read


def config_json(data: bytes) -> None:
    """A config document alone, through build_image and the config scan."""
    from scanner.detectors.config import ConfigScanner
    from scanner.sources.config import build_image
    from scanner.sources.stores import parse_json

    try:
        doc = parse_json(data, "<fuzz>: config")
        image = build_image("fuzz", SourceKind.OCI_LAYOUT, None, doc, [], None, "<fuzz>")
    except LayerscanError:
        return
    for hit in ConfigScanner(content()).scan(image.config):
        hit.path.encode("utf-8")


# --- the image archive itself (a tarball on disk) -------------------------------------------------------

_scratch: Optional[str] = None


def archive(data: bytes) -> None:
    global _scratch
    if _scratch is None:
        fd, _scratch = tempfile.mkstemp(prefix="layerscan-fuzz-", suffix=".tar")
        os.close(fd)
        atexit.register(os.unlink, _scratch)
    with open(_scratch, "wb") as f:
        f.write(data)
    try:
        store = TarStore(_scratch)
        for name in store.names()[:8]:
            store.get(name)
        if store.has("manifest.json"):
            for image in DockerArchiveSource(store, "fuzz", platform="all").images():
                _check_image(image)
    except LayerscanError:
        pass


# --- a layer cache row (the cache dir is data: whatever a row holds is a LayerScan or a miss) --------

CACHE_SECRET = b"fuzz-cache-key-0123456789"


def cache_row(data: bytes) -> None:
    """Bytes as a stored row, read without and with a key: a miss (None) or a LayerScan that the
    overlay, the codec and the JSON report take as any other."""
    from scanner.cache import decode_row, encode
    from scanner.reports.json import JsonReport

    text = data.decode("utf-8", "surrogateescape")
    for secret in (None, CACHE_SECRET):
        scan = decode_row((text,), 0, "fuzz-key", secret)
        if scan is None:
            continue
        ov = Overlay([scan])
        findings = []
        for hit in scan.hits:
            label = ov.label(0, hit)
            findings.append(Finding("f", hit, "fuzz", label.status, None))
        result = ScanResult((ImageResult("fuzz", SourceKind.OCI_LAYOUT, None, (), tuple(findings), scan.skipped),))
        json.loads(JsonReport().render(result))
        encode(scan)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "tar_walk": tar_walk, "nested": nested, "overlay": overlay, "sources": sources, "config_json": config_json,
    "archive": archive, "cache_row": cache_row, "tar_reader": tar_reader,
}
