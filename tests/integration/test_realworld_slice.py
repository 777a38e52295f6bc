"""The CI slice of bench/realworld.py: real packages from PyPI, npm and Debian built into an image
with the real Docker engine, with a secret planted each way a build puts one into a package tree
(a patched package file, files no package lists, packages installed from a local path or a file:
dependency, files written into node_modules by a later layer). Every planted secret must be
reported untriaged.

The image is built once and cached (bench/realworld.py --cache, $LAYERSCAN_BENCH_CACHE); the scan
never uses the layer cache. Needs the network (pip, npm and apt fetch real software).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "realworld.py"
EXPECTED = REPO / "bench" / "realworld" / "expected.json"
TIMEOUT = 1200


def test_slice_reports_every_planted_secret_untriaged(docker_engine, tmp_path):
    figures_file = tmp_path / "figures.json"
    env = {**docker_engine.env(), "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, str(BENCH), "--slice", "--json", str(figures_file)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert figures_file.exists(), f"bench failed ({done.returncode}):\n{done.stderr[-3000:]}"
    figures = json.loads(figures_file.read_text())
    (image,) = figures["images"]
    plants = image["plants"]
    assert len(plants) == 8
    missed = [p for p in plants if not p["ok"]]
    assert not missed, f"planted secrets not reported untriaged:\n{json.dumps(missed, indent=1)}\n{done.stdout}"
    assert done.returncode == 0, done.stderr[-3000:]
    # The target is 0 untriaged false positives. The bound in expected.json is what the slice
    # reports at merge time (the triage and precision work brings it down; lower it with them).
    bound = json.loads(EXPECTED.read_text())["slice_false_positives_max"]
    assert image["false_positives"] <= bound, (
        f"{image['false_positives']} untriaged false positives > {bound} (bench/realworld/expected.json):\n"
        f"{done.stdout}")
