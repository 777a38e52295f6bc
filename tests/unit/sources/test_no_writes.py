"""Scanning never writes: no extraction, no temp files, nothing changed in the image itself."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from scanner.pipeline import ScanOptions, Scanner
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.unit.conftest import FORMATS, write_image

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_MUTATING_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "os.truncate", "os.symlink", "os.link",
                    "os.chmod", "os.utime", "shutil.copyfile", "shutil.move", "shutil.rmtree",
                    "tempfile.mkstemp", "tempfile.mkdtemp"}


class _Recorder:
    active = False
    events: list = []


def _hook(event: str, args: tuple) -> None:
    if not _Recorder.active:
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
            (mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes and not str(path).endswith(".pyc"):
            _Recorder.events.append((event, str(path), mode))
    elif event in _MUTATING_EVENTS:
        _Recorder.events.append((event, str(args[0]) if args else "", None))


sys.addaudithook(_hook)  # cannot be removed: it records only while a test switches it on


def listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


def leaky_spec() -> ik.ImageSpec:
    return ik.ImageSpec([
        ik.LayerSpec("ADD base.tar /", [ik.dir("/app"), ik.file("/app/.env", f"KEY={sc.AWS_KEY_ID}\n".encode()),
                                        ik.hardlink("/app/.env.bak", "/app/.env")]),
        ik.LayerSpec("RUN rm /app/.env", [ik.whiteout("/app/.env")]),
    ], tags=["unit/leaky:1"], env=[f"GH={sc.GITHUB_PAT}"])


@pytest.mark.parametrize("compression", ik.COMPRESSIONS)
@pytest.mark.parametrize("kind", FORMATS)
def test_scan_writes_nothing(tmp_path, unit_rules, kind, compression):
    path, _ = write_image(tmp_path, leaky_spec(), kind, compression)
    scanner = Scanner(unit_rules, ScanOptions(reveal=True))
    before = listing(tmp_path)
    _Recorder.events = []
    _Recorder.active = True
    try:
        result = scanner.scan([str(path)])
    finally:
        _Recorder.active = False
    assert _Recorder.events == []
    assert listing(tmp_path) == before
    assert len(result.findings) == 3  # it did scan: the key, its hardlink, and the Env token


def test_recorder_sees_writes(tmp_path):
    """The check above can fail: a write while recording is caught."""
    _Recorder.events = []
    _Recorder.active = True
    try:
        (tmp_path / "x").write_text("x")
    finally:
        _Recorder.active = False
    assert [e[0] for e in _Recorder.events] == ["open"]
