"""The labelled corpus through the real pipeline: every kind found, every decoy silent, the targets
of `bench/quality.py` met (recall >= 98% overall, >= 90% per category, no decoy reported)."""
from __future__ import annotations

from collections import defaultdict

import pytest

from scanner.cache import NullCache
from scanner.detectors.rules import load_rules
from scanner.limits import Limits
from scanner.pipeline import ScanOptions, Scanner
from tests.corpus.build import LOCATIONS, build_corpus, layout
from tests.corpus.score import score
from tests.corpus.decoys import CATEGORIES as DECOY_CATEGORIES
from tests.corpus.kinds import KINDS

UNCAPPED = Limits(max_findings=1_000_000)  # the corpus holds more findings than one image's default cap

LAYOUT = layout(0)  # the labels, to parametrize on (the scan itself runs once, below)
KIND_IDS = sorted({f"{p.category}/{p.kind}" for p in LAYOUT.plants})
DECOY_IDS = [d.id for d in LAYOUT.decoys]


@pytest.fixture(scope="module")
def quality(tmp_path_factory):
    corpus = build_corpus(tmp_path_factory.mktemp("corpus"), seed=0)
    result = Scanner(load_rules(), ScanOptions(workers=1, limits=UNCAPPED), cache=NullCache()).scan([str(corpus.image)])
    return score(corpus, result.findings)


def test_the_corpus_covers_every_rule_location_and_decoy_category() -> None:
    rules = {r.id for r in load_rules().rules}
    assert rules <= {k.id for k in KINDS}
    assert {p.location for p in LAYOUT.plants} == set(LOCATIONS)
    assert {p.status for p in LAYOUT.plants} == {"present", "deleted", "overwritten", "config", "history"}
    assert {d.category for d in LAYOUT.decoys} == set(DECOY_CATEGORIES)
    for category in ("doc-example", "placeholder", "lockfile", "public-key", "uuid-sha", "vendor"):
        assert sum(d.category == category for d in LAYOUT.decoys) >= 3, category


@pytest.mark.parametrize("kind", KIND_IDS)
def test_every_kind_found_in_every_location(quality, kind: str) -> None:
    missed = [f"{p.location} {p.path}" for p in quality.missed if f"{p.category}/{p.kind}" == kind]
    assert missed == []


@pytest.mark.parametrize("decoy", DECOY_IDS)
def test_every_decoy_silent(quality, decoy: str) -> None:
    reported = {d.id: rules for d, rules in quality.reported.items()}
    assert reported[decoy] == []


def test_targets(quality) -> None:
    hit, total = quality.recall(quality.found)
    assert hit >= 0.98 * total
    for category, (h, t) in quality.by("category").items():
        assert h >= 0.90 * t, category
    assert quality.noisy == {}


def test_score_counts_triaged_findings_as_not_found() -> None:
    from tests.corpus.build import Corpus, Placed, Planted

    plant = Planted("k", "c", "present", "/a", None, "present", "f" * 64)
    decoy = Placed("d", "lockfile", "/b")
    corpus = Corpus(None, [plant], [decoy])  # type: ignore[arg-type]
    finding = lambda path, triage: {"location": {"path": path, "inner_path": None}, "status": "present",  # noqa: E731
                                    "secret": {"sha256": "f" * 64}, "triage": triage, "rule_id": "r"}
    assert score(corpus, [finding("/a", "vendor"), finding("/b", "vendor")]).found[plant] is False
    s = score(corpus, [finding("/a", None), finding("/b", None)])
    assert s.found[plant] and s.noisy == {decoy: ["r"]}


def test_labels_are_deterministic() -> None:
    again = layout(0)
    assert [p.sha256 for p in again.plants] == [p.sha256 for p in LAYOUT.plants]
    by_kind: dict[str, set[str]] = defaultdict(set)
    for p in LAYOUT.plants:
        by_kind[p.kind].add(p.location)
    assert all(locations for locations in by_kind.values())
