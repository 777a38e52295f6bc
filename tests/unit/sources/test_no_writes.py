"""Scanning never writes: no extraction, no temp files, nothing changed in the image itself."""
from __future__ import annotations

import pytest

from scanner.pipeline import ScanOptions, Scanner
from tests import imagekit as ik
from tests import secrets_catalog as sc
from tests.audit import Guard
from tests.unit.conftest import FORMATS, write_image


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
    with Guard([tmp_path]):  # nothing written, run or connected; nothing under tmp_path changed
        result = scanner.scan([str(path)])
    assert len(result.findings) == 3  # it did scan: the key, its hardlink, and the Env token


def test_guard_sees_writes(tmp_path):
    """The check above can fail: a write while guarded is caught."""
    guard = Guard([tmp_path])
    with pytest.raises(AssertionError, match="wrote"):
        with guard:
            (tmp_path / "x").write_text("x")
    assert [e[0] for e in guard.events] == ["open"]
