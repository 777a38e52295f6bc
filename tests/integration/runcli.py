"""`layerscan` run as a user runs it, for the integration tests: a process of its own, a TMPDIR of
its own (anything left there is reported), and the checks every test makes of its output."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from tests.gateline import gate_only

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli(*args, stdin: str = "", env: Optional[dict] = None) -> subprocess.CompletedProcess:
    """`layerscan ARGS` with a TMPDIR of its own; `.leftovers` lists what it left there."""
    tmp = Path(tempfile.mkdtemp(prefix="ls-tmp-"))
    environ = {**os.environ, "TMPDIR": str(tmp), **(env or {})}
    try:
        proc = subprocess.run([sys.executable, "-m", "scanner", "--no-progress", *map(str, args)], input=stdin,
                              capture_output=True, text=True, env=environ, cwd=REPO_ROOT, timeout=300)
        proc.leftovers = sorted(p.name for p in tmp.iterdir())  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return proc


def report(proc: subprocess.CompletedProcess) -> dict:
    """The JSON report of a scan that found secrets (exit 1), nothing on stderr, nothing left."""
    assert proc.returncode == 1, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    assert proc.leftovers == [], "temp files left behind"
    # nothing logged on success but the gate's verdict (no warnings, never a credential)
    assert gate_only(proc.stderr) == "FAIL", proc.stderr
    return json.loads(proc.stdout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 2, one `layerscan: error: ` line holding each fragment, no report, nothing left."""
    assert proc.returncode == 2, f"exit {proc.returncode}: {proc.stderr[-1500:]}"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("layerscan: error: "), proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert proc.stdout == ""
    assert proc.leftovers == [], "temp files left behind"
    return lines[0]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
