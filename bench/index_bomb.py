"""A nested OCI index bomb in a layout: FAN references to the same index, DEPTH levels (FAN^DEPTH
paths, DEPTH documents). Prints the scan's wall time and peak RSS (a child process, `--timeout`
as given). Usage: python bench/index_bomb.py [FAN] [DEPTH] [TIMEOUT]"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests import imagekit as ik  # noqa: E402


def build(root: Path, fan: int, depth: int) -> Path:
    path = root / "bomb"
    spec = ik.ImageSpec([ik.LayerSpec("ADD x", [ik.file("a", b"x")])], tags=["bomb:1"])
    ik.write_oci_layout([spec], path)
    index = json.loads((path / "index.json").read_bytes())
    level = index["manifests"]
    for _ in range(depth):
        body = ik.canonical_json({"schemaVersion": 2, "mediaType": ik.OCI_INDEX, "manifests": level})
        (path / ik.blob_path(ik.sha256(body))).write_bytes(body)
        level = [{"mediaType": ik.OCI_INDEX, "digest": ik.sha256(body), "size": len(body)}] * fan
    index["manifests"] = level
    (path / "index.json").write_bytes(ik.canonical_json(index))
    return path


def main() -> None:
    fan, depth, timeout = (int(a) for a in (sys.argv[1:] + ["40", "5", "120"])[:3])
    with tempfile.TemporaryDirectory() as tmp:
        path = build(Path(tmp), fan, depth)
        start = time.monotonic()
        try:
            done = subprocess.run([sys.executable, "-m", "scanner", str(path), "--no-cache"], capture_output=True,
                                  text=True, timeout=timeout)
            outcome = f"exit {done.returncode} {done.stderr.strip()[-100:]!r}"
        except subprocess.TimeoutExpired:
            outcome = f"killed after {timeout} s"
        took = time.monotonic() - start
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"index bomb {fan}x{depth}: {outcome}, {took:.1f} s, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
