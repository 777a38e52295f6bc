"""What `layerscan serve` costs a push: push time through the proxy against a direct push, the
scan time per image, peak memory of the serve process under concurrent pushes.

Not a test: run it by hand, `python bench/serve.py [--pushes 50] [--concurrent 8] [--base-mib 32]`.
It starts a throwaway docker-registry and `layerscan serve` in front of it (tests/services.py,
tests/integration/serving.py), makes images in code (one shared base layer of --base-mib of
text, one small layer of its own each), and pushes them with `skopeo copy`: --pushes images in a
row directly, the same number through the proxy (new repositories, so every blob is uploaded
both times), then --concurrent at once through the proxy.
"""
from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import imagekit as ik  # noqa: E402
from tests import services  # noqa: E402
from tests.integration.serving import Serve  # noqa: E402


def base_layer(mib: int) -> ik.LayerSpec:
    rng = random.Random(7)
    words = [f"word{i:04d}" for i in range(4000)]
    text = " ".join(rng.choice(words) for _ in range(mib * 1024 * 1024 // 9)).encode()
    return ik.LayerSpec("ADD rootfs /", [ik.file("/usr/share/base/words.txt", text)])


def images(work: Path, count: int, base: ik.LayerSpec, prefix: str) -> list[str]:
    out = []
    for i in range(count):
        spec = ik.ImageSpec([base, ik.LayerSpec("ADD app /app", [ik.file("/app/id.txt", f"{prefix}{i}\n".encode())])],
                            tags=[f"b/{prefix}{i}:1"])
        path = work / f"{prefix}{i}.tar"
        ik.write_docker_archive_legacy(spec, path, compression="gzip")
        out.append(f"docker-archive:{path}")
    return out


def push(source: str, dest: str) -> float:
    began = time.monotonic()
    proc = subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", source,
                           f"docker://{dest}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"skopeo copy to {dest} failed: {proc.stderr.strip()[-500:]}")
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pushes", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--base-mib", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ls-bench-serve-") as tmp, services.Registry() as registry:
        work = Path(tmp)
        base = base_layer(args.base_mib)
        row = images(work, args.pushes, base, "row")
        burst = images(work, args.concurrent, base, "burst")
        with Serve(registry.url, work) as serve:
            direct = [push(src, f"{registry.host}/direct/{i}:1") for i, src in enumerate(row)]
            proxied = [push(src, f"{serve.host}/proxied/{i}:1") for i, src in enumerate(row)]
            scans = [d["seconds"] for d in serve.events("decision")]
            rss_row = serve.peak_rss_kib()
            began = time.monotonic()
            with ThreadPoolExecutor(args.concurrent) as pool:
                list(pool.map(lambda p: push(p[1], f"{serve.host}/burst/{p[0]}:1"), enumerate(burst)))
            wall = time.monotonic() - began
            peak = serve.peak_rss_kib()
            scanned = serve.metric("layerscan_serve_layers_total", outcome="scanned")
        med_d, med_p = statistics.median(direct), statistics.median(proxied)
        print(f"{args.pushes} pushes in a row, one {args.base_mib} MiB base layer + one small layer each:")
        print(f"  direct push:        median {med_d:.2f} s, total {sum(direct):.1f} s")
        print(f"  through the proxy:  median {med_p:.2f} s, total {sum(proxied):.1f} s "
              f"(overhead ratio {med_p / med_d:.2f}x median, {sum(proxied) / sum(direct):.2f}x total)")
        print(f"  scan per image:     first {scans[0]:.2f} s (base layer scanned), then median "
              f"{statistics.median(scans[1:]) if len(scans) > 1 else scans[0]:.3f} s (base layer cached)")
        print(f"  peak RSS of serve after the row: {rss_row / 1024:.0f} MiB")
        print(f"{args.concurrent} concurrent pushes through the proxy: {wall:.1f} s wall; "
              f"peak RSS of serve {peak / 1024:.0f} MiB; layers scanned in all: {scanned:.0f}")


if __name__ == "__main__":
    main()
