"""Scans per second and the unique/total layer-byte ratio of `layerscan registry` on a fleet.

Not a test: run it by hand, `python bench/fleet.py [--images 60] [--base-mib 8] [--dask]`.
It starts a throwaway docker-registry (tests/services.py), uploads a fleet made in code (the
integration test's: a shared base layer, three shared middle layers, one own layer per image),
scans it with a fresh cache through the real CLI, and prints images per second, unique layers
per second, and the ratio of unique to total stored layer bytes. A second run shows the
resumed (all cached) rate.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import imagekit as ik  # noqa: E402
from tests import services  # noqa: E402
from tests.integration.test_fleet import fleet_specs, upload  # noqa: E402


def scan(host: str, work: Path, dask: bool, label: str) -> dict:
    argv = [sys.executable, "-m", "scanner", "registry", f"{host}/team", "--no-progress", "--insecure-registry", host,
            "--format", "json", "--output", str(work / "report.json"), "--summary", str(work / "summary.json"),
            "--cache-dir", str(work / "cache")]
    if dask:
        argv += ["--workers", "2", "--dask"]
    began = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    seconds = time.monotonic() - began
    if proc.returncode not in (0, 1):
        raise SystemExit(f"layerscan registry failed: {proc.stderr.strip()[-800:]}")
    summary = json.loads((work / "summary.json").read_text())
    ratio = summary["unique_bytes"] / summary["total_bytes"]
    print(f"{label:>9}: {summary['images']} images in {seconds:.2f}s = {summary['images'] / seconds:.1f} scans/s, "
          f"{summary['unique_layers'] / seconds:.1f} unique layers/s; layers {summary['unique_layers']}/"
          f"{summary['layers']}, unique/total bytes {summary['unique_bytes']}/{summary['total_bytes']} = {ratio:.3f}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=60)
    parser.add_argument("--base-mib", type=float, default=8.0, help="size of the shared base layer's blob")
    parser.add_argument("--dask", action="store_true", help="scan layers on a local 2-worker Dask cluster")
    args = parser.parse_args()
    with services.Registry() as registry, tempfile.TemporaryDirectory(prefix="ls-bench-") as tmp:
        began = time.monotonic()
        for name, spec in fleet_specs(args.images, int(args.base_mib * (1 << 20))):
            repo, tag = name.split(":")
            upload(registry.url, repo, tag, ik.build_image(spec))
        print(f"uploaded {args.images} images in {time.monotonic() - began:.1f}s")
        scan(registry.host, Path(tmp), args.dask, "cold")
        scan(registry.host, Path(tmp), args.dask, "cached")


if __name__ == "__main__":
    main()
