"""Run every fuzz target under atheris (coverage-guided libFuzzer) for a bounded time each.

    python fuzz/run.py                     # every target, 10 s each (CI: scripts/test.sh)
    python fuzz/run.py --seconds 300 tar_walk sources

Each target runs in a process of its own, seeded from fuzz/seeds.py, in a scratch directory that
is removed afterwards. Prints executions per target; exits 1 if any target crashed (an exception
other than LayerscanError, a hang past --timeout, or memory past --rss-limit-mb), and keeps the
crashing input under fuzz/crashes/<target>/ to be turned into a regression test.
Without atheris (no wheel for this Python), says so and exits 0: the hypothesis side of the same
targets (tests/hostile/test_fuzz.py) runs in every test run anyway.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CRASHES = REPO / "fuzz" / "crashes"


def _one(target: str, argv: list[str]) -> None:
    """In the child process: instrument layerscan (and the stdlib parsers it drives), then fuzz."""
    import atheris

    with atheris.instrument_imports(include=["scanner", "tarfile", "gzip", "json", "zipfile", "stream_unzip",
                                             "stream_inflate", "fuzz"]):
        from fuzz.targets import TARGETS
    atheris.Setup([sys.argv[0], *argv], TARGETS[target])
    atheris.Fuzz()


def run(target: str, seconds: int, timeout: int, rss_mb: int) -> tuple[int, list[Path]]:
    from fuzz.seeds import SEEDS

    work = Path(tempfile.mkdtemp(prefix=f"layerscan-fuzz-{target}-"))
    try:
        corpus, artifacts = work / "corpus", work / "artifacts"
        corpus.mkdir()
        artifacts.mkdir()
        for i, seed in enumerate(SEEDS[target]()):
            (corpus / f"seed{i}").write_bytes(seed)
        args = [f"-max_total_time={seconds}", f"-timeout={timeout}", f"-rss_limit_mb={rss_mb}",
                "-max_len=65536", f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(corpus)]
        env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(work)}
        done = subprocess.run([sys.executable, __file__, "--child", target, *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=seconds + timeout + 120)
        log = done.stdout + done.stderr
        execs = _execs(log)
        crashes = []
        for found in sorted(artifacts.iterdir()):
            keep = CRASHES / target / found.name
            keep.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found, keep)
            crashes.append(keep)
        if done.returncode != 0 and not crashes:
            sys.stderr.write(log[-4000:])
            crashes.append(Path(f"<{target}: fuzzer exited {done.returncode}>"))
        elif crashes:
            sys.stderr.write(log[-4000:])
        return execs, crashes
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _execs(log: str) -> int:
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", log) or re.search(r"Done (\d+) runs", log)
    return int(m.group(1)) if m else 0


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _one(sys.argv[2], sys.argv[3:])
        return 0
    sys.path.insert(0, str(REPO))
    from fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", choices=[[]] + list(TARGETS), default=[], metavar="TARGET")
    parser.add_argument("--seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "10")))
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take")
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    args = parser.parse_args()
    if args.seconds <= 0:  # libFuzzer would take 0 for "no limit"
        print("fuzz: --seconds 0: skipped")
        return 0
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("fuzz: atheris is not installed (no wheel for this Python): skipped; "
              "the hypothesis targets run with the tests")
        return 0
    failed = False
    for target in args.targets or list(TARGETS):
        execs, crashes = run(target, args.seconds, args.timeout, args.rss_limit_mb)
        status = "ok" if not crashes else f"CRASH: {', '.join(str(c) for c in crashes)}"
        print(f"fuzz: {target:12} {execs:8d} executions in {args.seconds} s  {status}", flush=True)
        failed = failed or bool(crashes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
