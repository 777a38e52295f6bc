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
