"""The package as users get it: a wheel that carries the rules, installed into a fresh venv and run
from another directory."""
from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_images" / "leaky-app.tar"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (whl,) = out.glob("layerscan-*.whl")
    return whl


def test_wheel_carries_every_rule_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    rule_files = sorted(p.name for p in (ROOT / "signatures").glob("*.yaml"))
    assert rule_files, "no rule files in signatures/"
    for name in rule_files:
        assert f"scanner/signatures/{name}" in names
    assert "scanner/signatures/__init__.py" in names
    verifier_files = sorted(p.name for p in (ROOT / "signatures" / "verifiers").glob("*.yaml"))
    assert verifier_files, "no verifier files in signatures/verifiers/"
    for name in verifier_files:
        assert f"scanner/signatures/verifiers/{name}" in names
    assert "scanner/cli.py" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "layerscan = scanner.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_fresh_venv_install_scans_from_another_directory(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    proc = subprocess.run([str(pip), "install", "-q", str(wheel)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and not os.environ.get("CI"):
        pytest.skip(f"cannot install the wheel's dependencies here: {proc.stderr.strip()[-300:]}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    rules = subprocess.run([str(env_dir / "bin" / "layerscan"), "rules"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=120)
    assert rules.returncode == 0, rules.stderr
    assert "github-pat" in rules.stdout
    hosts = subprocess.run([str(env_dir / "bin" / "layerscan"), "verify", "--list-endpoints"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, timeout=120)
    assert hosts.returncode == 0 and "api.github.com" in hosts.stdout.split(), hosts.stderr
    scan = subprocess.run([str(env_dir / "bin" / "layerscan"), "--no-progress", str(SAMPLE)], cwd=elsewhere,
                          env=env, capture_output=True, text=True, timeout=300)
    assert scan.returncode == 1, scan.stderr
    assert "aws-access-key-id" in scan.stdout and "deleted in 9" in scan.stdout
