"""Peak memory and throughput of a scan of one layer holding a single 1 GiB file.

Not a test: run it by hand, `python bench/memory.py [--size-mib 1024] [--compression none|gzip]`.
It writes an OCI layout to a temporary directory (the layer streamed to disk, never held in
memory), scans it with the real CLI in a child process, prints the child's peak RSS
(getrusage of children, ru_maxrss) and the throughput, checks every planted secret was found at
its line, and deletes the layout. The target is a peak under 200 MB.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import imagekit as ik  # noqa: E402
from tests import secrets_catalog as sc  # noqa: E402

MiB = 1 << 20
LINE = 100  # every line of the file is 100 bytes, so a byte offset tells its line
CHUNK = 1 << 20  # ContentScanner's chunk: the secret below straddles a multiple of it
TARGET_MB = 200
FILE_PATH = "/data/huge.log"
RULES = r"""
rules:
  - id: bench-aws-key-id
    title: AWS access key id (bench)
    severity: critical
    keywords: [akia]
    regex: '(?P<secret>AKIA[0-9A-Z]{16})'
  - id: bench-github-pat
    title: GitHub token (bench)
    severity: high
    keywords: [ghp_]
    regex: '(?P<secret>ghp_[0-9A-Za-z]{36})'
"""


def plants(size: int) -> dict[int, bytes]:
    """Byte offset -> secret: near the start, straddling the middle chunk border, near the end.

    Each sits inside one line (a secret never covers a newline: the line numbers stay offset // LINE).
    """
    border = (size // 2) // CHUNK * CHUNK
    while not 20 <= border % LINE <= LINE - 21:  # the chunk border nearest the middle inside a line
        border += CHUNK
    return {
        7 * LINE + 10: sc.AWS_KEY_ID.encode(),
        border - 20: sc.GITHUB_PAT.encode(),  # 40 bytes: 20 before the border, 20 after
        (size // LINE - 3) * LINE + 5: sc.AWS_KEY_ID.encode(),
    }


class Content(io.RawIOBase):
    """`size` bytes of 64-byte log lines with the planted secrets, generated as read."""

    def __init__(self, size: int, planted: dict[int, bytes]) -> None:
        self.size, self.pos, self.planted = size, 0, planted
        line = b"2024-05-01T12:00:00Z INFO GET /api/items/000123 200 in 3 ms".ljust(LINE - 1, b" ") + b"\n"
        self.block = line * (CHUNK // LINE)  # the content repeats every len(block) bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        at = self.pos % len(self.block)
        n = min(len(buffer), self.size - self.pos, len(self.block) - at)
        data = bytearray(self.block[at:at + n])
        for offset, secret in self.planted.items():
            lo, hi = max(offset, self.pos), min(offset + len(secret), self.pos + n)
            if lo < hi:
                data[lo - self.pos:hi - self.pos] = secret[lo - offset:hi - offset]
        buffer[:n] = data
        self.pos += n
        return n


class HashingWriter:
    """A file object for tarfile (write, tell) that hashes what goes to disk."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.hash, self.count = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.count += len(data)
        return self.f.write(data)

    def tell(self) -> int:
        return self.count


def write_layout(root: Path, size: int, compression: str) -> None:
    """An OCI layout with one layer holding FILE_PATH; the layer is streamed to disk."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    tmp = blobs / "layer.tmp"
    with open(tmp, "wb") as raw:
        blob = HashingWriter(raw)
        sink = gzip.GzipFile(fileobj=blob, mode="wb", compresslevel=1, mtime=0) if compression == "gzip" else blob
        tar_hash = HashingWriter(sink)  # type: ignore[arg-type]
        with tarfile.open(fileobj=tar_hash, mode="w", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            info = tarfile.TarInfo(FILE_PATH.lstrip("/"))
            info.size = size
            tf.addfile(info, io.BufferedReader(Content(size, plants(size)), CHUNK))
        if sink is not blob:
            sink.close()
    layer_digest, diff_id = "sha256:" + blob.hash.hexdigest(), "sha256:" + tar_hash.hash.hexdigest()
    tmp.rename(blobs / layer_digest.split(":")[1])
    spec = ik.ImageSpec([ik.LayerSpec(f"ADD huge.log {FILE_PATH}")], tags=["bench:1"])
    config = ik.canonical_json(ik.image_config(spec, [diff_id]))
    media = ik.layer_media_type(compression)
    manifest = ik.canonical_json({
        "schemaVersion": 2, "mediaType": ik.OCI_MANIFEST,
        "config": ik.descriptor(ik.OCI_CONFIG, config),
        "layers": [{"mediaType": media, "digest": layer_digest, "size": blob.count}]})
    for doc in (config, manifest):
        (blobs / hashlib.sha256(doc).hexdigest()).write_bytes(doc)
    index = {"schemaVersion": 2, "mediaType": ik.OCI_INDEX,
             "manifests": [ik.descriptor(ik.OCI_MANIFEST, manifest, annotations={ik.REF_NAME: "bench:1"})]}
    (root / "index.json").write_bytes(ik.canonical_json(index))
    (root / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')


def scan(layout: Path, rules: Path) -> tuple[dict, float, int]:
    """The CLI on the layout in a child process: its JSON report, seconds, peak RSS in KiB."""
    cmd = [sys.executable, "-m", "scanner", "scan", str(layout), "--format", "json", "--no-cache",
           "--no-progress", "--rules", str(rules)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.exit(f"scan failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return json.loads(proc.stdout), elapsed, peak_kib


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--compression", choices=("none", "gzip"), default="none")
    args = parser.parse_args()
    size = args.size_mib * MiB
    with tempfile.TemporaryDirectory(prefix="layerscan-bench-") as tmp:
        root = Path(tmp)
        (root / "rules.yaml").write_text(RULES)
        t0 = time.perf_counter()
        write_layout(root / "layout", size, args.compression)
        print(f"wrote a {args.size_mib} MiB file in a {args.compression} layer in {time.perf_counter() - t0:.1f} s")
        report, elapsed, peak_kib = scan(root / "layout", root / "rules.yaml")
    found = {(f["rule_id"], f["location"]["path"], f["location"]["line"])
             for f in report["findings"] if f["rule_id"].startswith("bench-")}
    want = {("bench-aws-key-id" if s.startswith(b"AKIA") else "bench-github-pat", FILE_PATH, off // LINE + 1)
            for off, s in plants(size).items()}
    peak_mb = peak_kib * 1024 / 1e6
    print(f"scan: {elapsed:.1f} s, {size / MiB / elapsed:.0f} MiB/s, peak RSS {peak_mb:.0f} MB "
          f"(target < {TARGET_MB} MB: {'ok' if peak_mb < TARGET_MB else 'OVER'})")
    print(f"planted secrets found at their lines: {len(want & found)}/{len(want)}"
          + ("" if want <= found else f"; missing {sorted(want - found)}"))
    skipped = [s for image in report["images"] for s in image.get("skipped", [])]
    if skipped:
        print(f"skipped: {skipped}")
    return 0 if want <= found and peak_mb < TARGET_MB else 1


if __name__ == "__main__":
    sys.exit(main())
