#!/usr/bin/env python3
"""The work under any scan of the speed benchmark's images, measured part by part.

A scan that checks the digests and looks at every byte must at least: decompress the layers,
hash each blob (its digest) and each tar (its diff_id) with sha256, inflate the gzip files inside
(man pages, changelogs), and pass its multi-pattern prefilter over every file's content. These
parts run in C (zstandard, ISA-L or zlib, OpenSSL, Hyperscan), each timed here alone on one core,
with the same calls layerscan makes; and layerscan's start (interpreter, imports, compiling the
rules) is timed as a whole process. Everything else a scan does is Python (tar headers, the walk,
the detectors around prefilter hits, the report).

It prints, per image, the CPU seconds of each part, and what the speed issue's target leaves for
all of that Python: the target's wall time, less the start, times the cores, less the C work.

    python bench/work.py [--workdir DIR] [--images python,node] [--compression zstd,gzip]

The images are `bench/speed.py`'s (built there, or here the same way, cached in --workdir).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed import build_archive, floor  # noqa: E402  (the benchmark's own images and floor)

from scanner import inflate  # noqa: E402
from scanner.cpus import available_cpus  # noqa: E402
from scanner.detectors.rules import load_rules  # noqa: E402
from scanner.layers.feed import RATIO_FLOOR, PULL  # noqa: E402
from scanner.pipeline import ScanOptions, Scanner  # noqa: E402
from scanner.sources.blobs import GzipMembers  # noqa: E402

TARGET = {"gzip": 1.0, "zstd": 2.5}  # the speed issue's: cold scan wall time over the floor's
# what a cold scan does before its workers start: imports, the rules loaded, then the rules compiled
# on a thread while the walk is imported (as `runner.LayerRunner` does)
START = ("import scanner.cli, threading\n"
         "from scanner.detectors.rules import load_rules\nfrom scanner.pipeline import Scanner, ScanOptions\n"
         "compiling = threading.Thread(target=Scanner(load_rules(), ScanOptions()).content.prepare)\n"
         "compiling.start()\nimport scanner.layers.walk, scanner.layers.share\ncompiling.join()")


def cpu(fn, *args):
    """(result, CPU seconds of this thread) of fn(*args)."""
    t0 = time.thread_time()
    out = fn(*args)
    return out, time.thread_time() - t0


def layer_reader(comp: bytes, compression: str):
    """The layer's tar, read with the reader layerscan uses."""
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(comp), read_across_frames=True)
    return GzipMembers(io.BufferedReader(io.BytesIO(comp)))  # type: ignore[arg-type]


def decompress(comp: bytes, compression: str) -> None:
    """The layer's tar read through, in the chunks layerscan reads it in."""
    reader = layer_reader(comp, compression)
    while reader.read(PULL):
        pass


class _HashedTar(io.RawIOBase):
    """The layer's tar (decompressed again: not timed), with the CPU time of its sha256 counted."""

    def __init__(self, comp: bytes, compression: str) -> None:
        self.reader, self.hash, self.seconds = layer_reader(comp, compression), hashlib.sha256(), 0.0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.reader.read(len(buffer))
        t0 = time.thread_time()
        self.hash.update(data)
        self.seconds += time.thread_time() - t0
        buffer[:len(data)] = data
        return len(data)


def files_of(tar: _HashedTar) -> list[bytes]:
    """The content of every regular file (the parsing is not timed: it is the walk's Python)."""
    out = []
    with tarfile.open(fileobj=io.BufferedReader(tar, PULL), mode="r|") as tf:
        for info in tf:
            if info.isreg() and info.size:
                out.append(tf.extractfile(info).read())  # type: ignore[union-attr]
    return out


def pass_of(prefilter):
    """One buffer's prefilter pass: Hyperscan's alone, with no match handler (no Python per match);
    the pure-Python fallback's as it runs."""
    if prefilter.engine != "hyperscan":
        return prefilter.scan
    prefilter.unfiltered()  # compiled
    db, scratch = prefilter._db, prefilter._scratch
    return lambda buf: db.scan(buf, scratch=scratch)


def inflate_and_pass(scan, files: list[bytes]) -> tuple[float, float]:
    """CPU seconds of inflating what layerscan inflates in one call (`nested._small_gzip`: gzip
    files of up to one read), and of the prefilter pass over every file and every inflated one.
    Each output is dropped once passed over, as in a scan (no memory growing)."""
    inflating = passing = 0.0
    clock = time.thread_time
    for data in files:
        t0 = clock()
        scan(data)
        t1 = clock()
        passing += t1 - t0
        if data[:3] == b"\x1f\x8b\x08" and len(data) <= PULL:
            try:
                text = inflate.gzip_inflater().decompress(data, RATIO_FLOOR + 1)
            except inflate.ERRORS:
                continue
            t2 = clock()
            scan(text)
            t3 = clock()
            inflating, passing = inflating + t2 - t1, passing + t3 - t2
    return inflating, passing


def start_seconds() -> float:
    """Wall seconds of a process that starts layerscan: interpreter, imports, rules compiled."""
    t0 = time.perf_counter()  # no cache given: the rules are compiled, as in a cold scan
    subprocess.run([sys.executable, "-c", START], check=True)
    return time.perf_counter() - t0


def run(kind: str, compression: str, work: Path, cores: int, prefilter) -> None:
    _, layers, total = build_archive(kind, compression, work)
    base = floor(layers, compression)
    parts = {"decompress the layers": 0.0, "sha256 of every blob and tar": 0.0,
             "inflate the small gzip files": 0.0, "prefilter pass over every file": 0.0}
    files = 0
    for layer in layers:
        comp = layer.read_bytes()
        parts["decompress the layers"] += cpu(decompress, comp, compression)[1]
        tar = _HashedTar(comp, compression)
        contents = files_of(tar)
        parts["sha256 of every blob and tar"] += cpu(lambda: hashlib.sha256(comp).hexdigest())[1] + tar.seconds
        files += len(contents)
        inflating, passing = inflate_and_pass(prefilter, contents)
        parts["inflate the small gzip files"] += inflating
        parts["prefilter pass over every file"] += passing
    start = start_seconds()
    c_work = sum(parts.values())
    wall = TARGET[compression] * base
    left = (wall - start) * cores - c_work
    print(f"\n== {kind} image, {compression} layers: {total / 1e6:.0f} MB uncompressed, {files} files")
    print(f"   floor ({'gzip -dc' if compression == 'gzip' else 'zstd -dc'}, one core): {base:5.2f} s; "
          f"target {TARGET[compression]}x: {wall:.2f} s wall")
    for name, seconds in parts.items():
        print(f"   {name + ':':34} {seconds:5.2f} CPU-s")
    print(f"   {'C work, all parts:':34} {c_work:5.2f} CPU-s ({c_work / cores:.2f} s on {cores} cores)")
    print(f"   {'start (one core):':34} {start:5.2f} s")
    print(f"   left for the Python of the scan:   {left:5.2f} CPU-s in the target "
          f"({max(left, 0) / files * 1e6:.0f} us per file)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "layerscan-bench"))
    ap.add_argument("--images", default="python,node")
    ap.add_argument("--compression", default="zstd,gzip")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    cores = available_cpus()
    rules = Scanner(load_rules(), ScanOptions()).content.detectors[0].prefilter  # the entropy shapes added
    print(f"{cores} cores; gzip inflated by {inflate.engine_name()}; prefilter: {rules.engine}")
    prefilter = pass_of(rules)
    for kind in args.images.split(","):
        for compression in args.compression.split(","):
            run(kind, compression, work, cores, prefilter)


if __name__ == "__main__":
    main()
