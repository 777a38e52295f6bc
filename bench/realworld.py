#!/usr/bin/env python3
"""How quiet is layerscan on real software, and does it still report what a build planted?

Builds ordinary application images with the real Docker engine from real software (Debian
packages with apt, the top PyPI and npm packages, the SDKs of credential-issuing services, a
Django + data stack, an Express/React app, automation tools and test doubles; every name and
version pinned in bench/realworld/), plus one image with secrets planted into its package trees
(bench/realworld_plants.py). Scans each with `python -m scanner --format json --no-cache` and
prints (a) findings by triage, (b) untriaged findings by rule and by package or file, (c) the
planted-secret checks. On the clean images every untriaged finding is a false positive.

    python bench/realworld.py                      # all images (cold: builds them, ~20 min)
    python bench/realworld.py --slice              # the small slice CI runs (planted image)
    python bench/realworld.py --images sdks,npm-top --json out.json
    python bench/realworld.py --python /work/wt/x/.venv/bin/python   # another checkout's layerscan

Images are cached as `docker save` tarballs under $LAYERSCAN_BENCH_CACHE (default
~/.cache/layerscan-bench/realworld); --publish DIR also links each into DIR as NAME.tar.
Exit status: 0, or 1 when a planted secret is not reported untriaged.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realworld_build as build  # noqa: E402
import realworld_plants  # noqa: E402

TRIAGES = ("none", "vendor", "package", "known-public")
DEFAULT_CACHE = Path.home() / ".cache" / "layerscan-bench" / "realworld"


REPO = Path(__file__).resolve().parents[1]


def environment(python: str) -> dict[str, str]:
    """The bench's own interpreter scans this checkout (its code on PYTHONPATH, installed or not);
    another `--python` scans the layerscan installed for it."""
    env = dict(os.environ)
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def scan(python: str, tarball: Path, timeout: float) -> tuple[dict, float]:
    """One cold scan (no layer cache, no settings file) of TARBALL; the JSON report and seconds."""
    with tempfile.TemporaryDirectory(prefix="realworld-scan-") as tmp:
        out = Path(tmp) / "report.json"
        argv = [python, "-m", "scanner", "scan", "--format", "json", "--no-cache", "--no-progress",
                "--fail-on", "never", "-o", str(out), str(tarball)]
        began = time.monotonic()
        # cwd: an empty dir, so the interpreter's installed layerscan runs and no ./.layerscan.yaml
        try:
            done = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, env=environment(python))
        except subprocess.TimeoutExpired:
            raise SystemExit(f"realworld: scanning {tarball.name} took over {timeout:.0f} s") from None
        seconds = time.monotonic() - began
        if done.returncode not in (0, 1) or not out.exists():
            raise SystemExit(f"realworld: scanning {tarball.name} failed ({done.returncode}): "
                             f"{done.stderr.strip()[-2000:]}")
        return json.loads(out.read_text()), seconds


def layerscan_commit(python: str) -> str:
    code = "import os, scanner; print(os.path.dirname(os.path.dirname(os.path.abspath(scanner.__file__))))"
    with tempfile.TemporaryDirectory() as tmp:
        where = subprocess.run([python, "-c", code], cwd=tmp, capture_output=True, text=True,
                               env=environment(python)).stdout.strip()
    git = subprocess.run(["git", "-C", where, "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", where, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return f"{where} @ {git.stdout.strip()[:90] or '?'}{' (uncommitted changes)' if dirty else ''}"


def where(finding: dict) -> str:
    """The package (by its directory) or the file's directory an untriaged finding sits in."""
    path = (finding.get("location") or {}).get("path") or ""
    for marker, eco in (("/site-packages/", "pypi"), ("/dist-packages/", "pypi"), ("/node_modules/", "npm")):
        if marker in path:
            rest = path.rsplit(marker, 1)[1].split("/")
            # a scoped npm package is two levels; ansible's collections are one package per NS/NAME
            depth = 2 if rest[0].startswith("@") else 3 if rest[0] == "ansible_collections" else 1
            name = "/".join(rest[:depth]) if len(rest) > depth else rest[0]
            return f"{eco}:{name.removesuffix('.py')}" if len(rest) > 1 or eco == "pypi" else f"{eco}:(top level)"
    if finding.get("layer") is None:
        return f"config:{path}"
    return "file:" + "/".join(path.split("/")[:4])


def bytecode_of(path: str) -> str:
    """The directory and name stem `pip` compiles PATH to: DIR/__pycache__/STEM."""
    head, _, name = path.rpartition("/")
    return f"{head}/__pycache__/{name.removesuffix('.py')}."


def is_planted(finding: dict, plants: list[realworld_plants.Plant]) -> bool:
    """A planted secret: by its digest, or in the bytecode compiled from a planted file (where
    the detector may take a neighbouring marshal byte into the value: still the planted secret)."""
    sha = (finding.get("secret") or {}).get("sha256")
    path = (finding.get("location") or {}).get("path") or ""
    return any(sha == p.sha256 or (p.path.endswith(".py") and path.startswith(bytecode_of(p.path)))
               for p in plants)


def tally(spec: build.Spec, report: dict, plants: list[realworld_plants.Plant]) -> dict:
    findings = report["findings"]
    by_triage = Counter(f.get("triage") or "none" for f in findings)
    untriaged = [f for f in findings if not f.get("triage")]
    false_pos = [f for f in untriaged if not (spec.planted and is_planted(f, plants))]
    triaged_pkgs = Counter(f"{p['ecosystem']}:{p['name']}" for f in findings
                           if f.get("triage") and (p := f.get("package")))
    return {
        "image": spec.name, "planted_image": spec.planted, "findings": len(findings),
        "by_triage": {t: by_triage.get(t, 0) for t in TRIAGES},
        "false_positives": len(false_pos),
        "fp_by_rule": dict(Counter(f["rule_id"] for f in false_pos).most_common()),
        "fp_by_where": dict(Counter(where(f) for f in false_pos).most_common()),
        "fp_by_file": dict(Counter((f.get("location") or {}).get("path", "") for f in false_pos).most_common(50)),
        "triaged_by_package": dict(triaged_pkgs.most_common(20)),
        "skipped": sum(len(i.get("skipped") or []) for i in report.get("images", [])),
        "plants": check_plants(findings, plants) if spec.planted else [],
    }


def check_plants(findings: list[dict], plants: list[realworld_plants.Plant]) -> list[dict]:
    rows = []
    for plant in plants:
        hits = [f for f in findings if (f.get("secret") or {}).get("sha256") == plant.sha256
                and (f.get("location") or {}).get("path") == plant.path]
        triages = sorted({f.get("triage") or "none" for f in hits})
        rows.append({"case": plant.case, "path": plant.path, "how": plant.how, "reported": len(hits),
                     "triage": triages, "rules": sorted({f["rule_id"] for f in hits}),
                     "ok": bool(hits) and triages == ["none"]})
    return rows


def table(headers: list[str], rows: list[list]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    fmt = lambda row: "  ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                                for i, (x, w) in enumerate(zip(row, widths))).rstrip()
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def top(counter: Counter, n: int) -> list[list]:
    return [[k, v] for k, v in counter.most_common(n)]


def render(results: list[dict], commit: str, top_n: int) -> str:
    out = [f"layerscan: {commit}", ""]
    rows = [[r["image"] + (" (planted)" if r["planted_image"] else ""), r["findings"],
             *(r["by_triage"][t] for t in TRIAGES), r["false_positives"], r["scan_seconds"]]
            for r in results]
    out += ["(a) Findings by triage (none = untriaged)",
            table(["image", "findings", *TRIAGES, "untriaged FP", "scan s"], rows), ""]
    total = sum(r["false_positives"] for r in results)
    out += [f"Untriaged false positives: {total} (target 0)", ""]
    for key, title in (("fp_by_rule", "rule"), ("fp_by_where", "package or file"),
                       ("fp_by_file", "file")):
        merged = Counter()
        for r in results:
            merged.update(r[key])
        out += [f"(b) Untriaged false positives by {title} (top {top_n} of {len(merged)})",
                table([title, "findings"], top(merged, top_n)) if merged else "(none)", ""]
    triaged = Counter()
    for r in results:
        triaged.update(r["triaged_by_package"])
    if triaged:
        out += [f"Triaged findings by package (top {top_n})", table(["package", "findings"], top(triaged, top_n)), ""]
    plants = [p for r in results for p in r["plants"]]
    if plants:
        out += ["(c) Planted secrets (each must be reported, untriaged, at its path)",
                table(["case", "reported", "triage", "rule", "ok", "how"],
                      [[p["case"], p["reported"], ",".join(p["triage"]) or "-", ",".join(p["rules"]) or "-",
                        "ok" if p["ok"] else "MISSED", p["how"]] for p in plants]),
                f"planted: {sum(p['ok'] for p in plants)}/{len(plants)} reported untriaged", ""]
    return "\n".join(out)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", help="comma-separated image names [default: all: "
                    + ", ".join(s.name for s in build.IMAGES) + "]")
    ap.add_argument("--slice", action="store_true", help="only the small slice CI runs: "
                    + ", ".join(build.SLICE))
    ap.add_argument("--python", default=sys.executable, help="interpreter whose layerscan scans")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("LAYERSCAN_BENCH_CACHE", DEFAULT_CACHE)),
                    help="cache dir of the rootfs and image tarballs [$LAYERSCAN_BENCH_CACHE or %(default)s]")
    ap.add_argument("--publish", type=Path, help="also link each image tarball into DIR as NAME.tar")
    ap.add_argument("--build-only", action="store_true", help="build and save the images; scan nothing")
    ap.add_argument("--json", type=Path, help="write the figures to FILE")
    ap.add_argument("--latest", type=Path, help="also write the printed output to FILE")
    ap.add_argument("--top", type=int, default=20, help="rows of the by-rule/by-package tables")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds one scan may take")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    specs = build.select(args.images, args.slice)
    plants = realworld_plants.plants()
    tarballs, results = {}, []
    began = time.monotonic()
    with build.context_dir() as context, build.Builder(args.cache, args.publish) as builder:
        for spec in specs:
            tarballs[spec.name] = builder.tarball(spec, context)
        build_seconds = dict(builder.build_seconds)
    build.log(f"images ready in {time.monotonic() - began:.0f} s (built: "
              + (", ".join(f"{k} {v:.0f} s" for k, v in build_seconds.items()) or "none, all cached") + ")")
    if args.build_only:
        return 0
    commit = layerscan_commit(args.python)
    for spec in specs:
        build.log(f"scanning {spec.name}")
        report, seconds = scan(args.python, tarballs[spec.name], args.timeout)
        results.append({**tally(spec, report, plants), "scan_seconds": round(seconds, 1),
                        "tarball": str(tarballs[spec.name]), "bytes": tarballs[spec.name].stat().st_size})
    text = render(results, commit, args.top)
    print(text)
    if args.latest:
        args.latest.parent.mkdir(parents=True, exist_ok=True)
        args.latest.write_text(f"$ python bench/realworld.py {' '.join(argv or sys.argv[1:])}\n{text}\n")
    figures = {"layerscan": commit, "images": results, "build_seconds": build_seconds,
               "false_positives": sum(r["false_positives"] for r in results),
               "plants_ok": all(p["ok"] for r in results for p in r["plants"])}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if figures["plants_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
