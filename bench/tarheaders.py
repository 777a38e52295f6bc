#!/usr/bin/env python3
"""Micro-benchmark of the tar reader: microseconds per entry over an in-memory tar of many small
files (ustar headers, and PAX headers as `docker build` writes for long names), each header read
and its data read through, as the walk does. Best of --runs, in CPU time (a busy machine
measures wall time badly).

    python bench/tarheaders.py [--entries 20000] [--runs 5]
"""
from __future__ import annotations

import argparse
import io
import tarfile
import time

from scanner.layers.tarstream import members, open_member, open_tar


def stream(entries: int, fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tf:
        for i in range(entries):
            name = f"usr/lib/python3/site-packages/pkg{i % 97}/" + ("m" * (60 if i % 3 else 110)) + f"{i}.py"
            data = b"x = %d\n" % i
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000.5 if fmt == tarfile.PAX_FORMAT else 1_700_000_000
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


def per_entry(data: bytes, entries: int, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        tf = open_tar(io.BytesIO(data), 1 << 20)
        for info in members(tf):
            if info.isreg():
                f, _ = open_member(tf, info)
                f.read()
        best = min(best, time.process_time() - started)
    return best / entries * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for label, fmt in (("gnu/ustar", tarfile.GNU_FORMAT), ("pax", tarfile.PAX_FORMAT)):
        data = stream(args.entries, fmt)
        print(f"{label}: {per_entry(data, args.entries, args.runs):.2f} us per entry")


if __name__ == "__main__":
    main()
