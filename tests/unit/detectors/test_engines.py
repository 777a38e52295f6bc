"""The pure-Python prefilter gives the same findings as Hyperscan: the whole labelled corpus (every
credential kind in every location, decoys, config and history) scanned once with each engine."""
from __future__ import annotations

import pytest

from scanner.cache import NullCache
from scanner.detectors.prefilter import hyperscan
from scanner.detectors.rules import load_rules
from scanner.pipeline import ScanOptions, Scanner
from tests.corpus.build import build_corpus

pytestmark = pytest.mark.skipif(hyperscan is None, reason="only one engine on this platform")


def findings(image: str, monkeypatch, engine: str) -> set[tuple]:
    monkeypatch.setenv("LAYERSCAN_PREFILTER", engine)
    result = Scanner(load_rules(), ScanOptions(workers=1), cache=NullCache()).scan([image])
    out = {(f.hit.rule_id, f.hit.path, f.hit.inner_path, f.hit.line, f.status.value, f.hit.secret.sha256, f.triage)
           for f in result.findings}
    assert out  # the corpus is full of secrets: an empty set would compare equal too easily
    return out


def test_python_prefilter_finds_what_hyperscan_finds(tmp_path, monkeypatch) -> None:
    corpus = build_corpus(tmp_path, seed=3)
    fast = findings(str(corpus.image), monkeypatch, "auto")
    slow = findings(str(corpus.image), monkeypatch, "python")
    assert fast - slow == set()
    assert slow - fast == set()
    assert len(fast) >= len(corpus.plants)
