"""The hostile-image suite: images built by an attacker, scanned under watch.

Every scan here runs inside `guard`: an audit hook records any file the process writes, creates,
renames, links or deletes, any program it starts and any socket it opens while the scan runs; the
test's tmp dir, a fresh cwd and a private TMPDIR are listed before and after. A hostile image may
make the scan fail (one error, exit 2) but never write outside the test's temp directory, never run
anything, never reach the network.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Iterator, Optional

import pytest

from scanner.errors import LayerscanError
from scanner.limits import Limits
from scanner.models import ScanResult
from scanner.pipeline import ScanOptions, Scanner
from tests.audit import Guard
from tests.unit.conftest import content, unit_rules, unit_rules_path  # noqa: F401  (fixtures)


@pytest.fixture
def guard(tmp_path, monkeypatch) -> Iterator[Guard]:
    """Use as `with guard: ...`: nothing may be written anywhere while it is on."""
    cwd, tmpdir = tmp_path / "cwd", tmp_path / "tmpdir"
    cwd.mkdir()
    tmpdir.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    yield Guard([tmp_path, cwd, tmpdir])
    assert list(cwd.iterdir()) == [] and list(tmpdir.iterdir()) == []


@dataclass(frozen=True)
class Outcome:
    """A scan's result in the exact terms the tests assert, or its one error line."""

    findings: tuple = ()  # (rule, path, status, layer index, removed_in index)
    skipped: tuple = ()  # (layer, path, reason)
    error: Optional[str] = None
    result: Optional[ScanResult] = field(default=None, compare=False, repr=False)


@pytest.fixture
def scan(unit_rules, guard):  # noqa: F811
    """scan(path, **options) -> Outcome: the pipeline on one image, under `guard`, no cache."""

    def run(path, limits: Limits = Limits(), **options) -> Outcome:
        scanner = Scanner(unit_rules, ScanOptions(limits=limits, workers=options.pop("workers", 1), **options))
        with guard:
            try:
                result = scanner.scan([str(path)])
            except LayerscanError as exc:
                message = str(exc)
                assert "\n" not in message and "Traceback" not in message
                return Outcome(error=message)
        findings = tuple((f.hit.rule_id, f.hit.path, f.status.value, f.layer.index if f.layer else None,
                          f.removed_in.index if f.removed_in else None) for f in result.findings)
        skipped = tuple((s.layer, s.path, s.reason) for s in result.images[0].skipped) if result.images else ()
        return Outcome(findings, skipped, None, result)

    return run
