"""The pure-Python prefilter gives the same findings as Hyperscan: the whole labelled corpus (every
credential kind in every location, decoys, config and history) scanned once with each engine."""
from __future__ import annotations

import pytest

from scanner.cache import NullCache
from scanner.detectors.prefilter import hyperscan
from scanner.detectors.rules import load_rules
from scanner.limits import Limits
from scanner.pipeline import ScanOptions, Scanner
from tests.corpus.build import build_corpus

pytestmark = pytest.mark.skipif(hyperscan is None, reason="only one engine on this platform")


def findings(image: str, monkeypatch, engine: str) -> set[tuple]:
    monkeypatch.setenv("LAYERSCAN_PREFILTER", engine)
    result = Scanner(load_rules(), ScanOptions(workers=1, limits=Limits(max_findings=1_000_000)),
                     cache=NullCache()).scan([image])  # the corpus: over one image's default cap
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


def test_compiled_rules_are_kept_in_the_cache_dir(tmp_path, monkeypatch) -> None:
    """The next run loads the compiled database from the cache dir instead of compiling; a damaged
    file there is compiled again, never an error."""
    from scanner.detectors import prefilter
    from scanner.detectors.signature import SignatureDetector
    from tests import secrets_catalog as catalog

    rules = load_rules()
    text = f"token = {catalog.GITHUB_PAT}\n".encode()

    def detector() -> SignatureDetector:
        prefilter._COMPILED.clear()  # this process's own copies: only the disk may help
        det = SignatureDetector(rules)
        det.prefilter.store = str(tmp_path)
        return det

    first = [m.secret for m in detector().scan(text)]
    assert first == [catalog.GITHUB_PAT.encode()]
    (stored,) = tmp_path.glob("prefilter-*.hsdb")
    with monkeypatch.context() as m:
        m.setattr(prefilter.RulePrefilter, "_build", lambda *a: pytest.fail("compiled again"))
        assert [m.secret for m in detector().scan(text)] == first
    stored.write_bytes(b"\0\0\0\0\0\0\0\x02{}garbage")
    assert [m.secret for m in detector().scan(text)] == first


def test_only_the_last_used_compiled_databases_are_kept(tmp_path):
    """Each rule set writes its compiled database to the cache dir; the dir keeps the KEEP_STORED
    used last (loading one counts as a use), not one per rule set ever seen."""
    import os
    from scanner.detectors import prefilter
    from scanner.detectors.rules import RuleSet
    from scanner.detectors.signature import SignatureDetector

    rules = load_rules().rules
    keep = prefilter.RulePrefilter.KEEP_STORED
    clock = iter(range(1000, 2000, 10))
    files: dict[int, str] = {}

    def run(n: int) -> None:
        """A scan with a rule set of its own (the first n rules); its file's use time set in order."""
        prefilter._COMPILED.clear()  # this process's copies: only the disk may help
        before = stored()
        det = SignatureDetector(RuleSet(rules[:n], f"digest-{n}"))
        det.prefilter.store = str(tmp_path)
        list(det.scan(b"x"))
        if n not in files:
            (files[n],) = stored() - before
        t = next(clock)
        os.utime(tmp_path / files[n], (t, t))

    def stored() -> set[str]:
        return {p.name for p in tmp_path.glob("prefilter-*.hsdb")}

    for n in range(1, keep + 1):
        run(n)
    assert stored() == {files[n] for n in range(1, keep + 1)}
    run(1)  # loaded again: now the last used
    run(keep + 1)  # a new rule set: the one used longest ago (2) goes, not 1
    assert stored() == {files[n] for n in [1, *range(3, keep + 2)]}
