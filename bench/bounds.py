"""Time and peak RSS of two hostile images that were unbounded: a findings bomb and a config whose
provenance was quadratic.

Not a test: run it by hand, `python bench/bounds.py [findings|provenance ...] [--files 600]
[--keys 1000] [--entries 12000]`. Each case is written to a temporary directory as an OCI
archive and scanned by the real CLI (`--no-cache --format json -o FILE`) under `/usr/bin/time -v`;
prints the wall time, peak RSS, findings, report size and exit status.

- findings: one small layer of `--files` files, each holding `--keys` distinct AWS key ids;
- provenance: a config of `--entries` Env entries holding a key each, and a history of as many
  `ENV` lines (each Env finding looks for the step that set it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import imagekit as ik  # noqa: E402
from tests.hostile import kit  # noqa: E402

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def key_id(n: int) -> str:
    """A distinct AWS-shaped key id per n (AKIA + 16 base-32 characters)."""
    digits = []
    for _ in range(16):
        n, r = divmod(n, 32)
        digits.append(ALPHABET[(r * 7 + len(digits) * 3) % 32])
    return "AKIA" + "".join(digits)


def findings_bomb(files: int, keys: int) -> ik.ImageSpec:
    members = []
    for f in range(files):
        body = "".join(f"KEY_{k}={key_id(f * keys + k)}\n" for k in range(keys)).encode()
        members.append(kit.member(f"srv/keys{f}.env", body))
    return kit.image_of(kit.tar(*members))


def provenance(entries: int) -> ik.ImageSpec:
    env = [f"AWS_KEY_{i}={key_id(i)}" for i in range(entries)]
    steps: list = [ik.LayerSpec("ADD base /", tar=kit.tar(kit.member("etc/hostname", b"x\n")))]
    steps += [ik.EmptyLayer(f"ENV {e}") for e in env]
    return ik.ImageSpec(steps, tags=["bench/provenance:1"], env=env)


def run(name: str, spec: ik.ImageSpec, extra: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="layerscan-bounds-") as tmp:
        path, _ = kit.write(Path(tmp), spec, "oci-archive", "gzip")
        report = Path(tmp) / "report.json"
        cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "scanner", "scan", "--no-cache", "--no-progress",
               "--format", "json", "-o", str(report), *extra, str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", proc.stderr)
        rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        status = re.search(r"Exit status: (\d+)", proc.stderr)
        found = skipped = "-"
        size = report.stat().st_size if report.exists() else 0
        if size:
            doc = json.loads(report.read_text())
            found = str(len(doc["findings"]))
            skipped = "; ".join(s["reason"] for i in doc["images"] for s in i["skipped"])[:160] or "none"
        errors = [line for line in proc.stderr.splitlines() if line.startswith("layerscan:")]
        print(f"{name}: wall {wall.group(1) if wall else '?'}, peak RSS {int(rss.group(1)) // 1024 if rss else '?'} MB, "
              f"exit {status.group(1) if status else '?'}, findings {found}, report {size / 1e6:.1f} MB, "
              f"skipped: {skipped}{' ' + errors[0] if errors else ''}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cases", nargs="*", default=["findings", "provenance"])
    p.add_argument("--files", type=int, default=600)
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--entries", type=int, default=12000)
    p.add_argument("--extra", default="", help="more CLI flags, e.g. '--max-findings 1000'")
    args = p.parse_args()
    os.environ.setdefault("PYTHONHASHSEED", "0")
    for case in args.cases:
        spec = findings_bomb(args.files, args.keys) if case == "findings" else provenance(args.entries)
        run(case, spec, args.extra.split())


if __name__ == "__main__":
    main()
