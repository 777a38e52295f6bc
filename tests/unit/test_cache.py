"""The SQLite layer cache: entries round-trip; past its bound, the entries used longest ago go."""
from __future__ import annotations

import sqlite3
import time

from scanner.cache import SqliteLayerCache, encode, open_cache
from scanner.models import LayerScan
from scanner.pathevents import EntryKind, PathEvent, PathEvents


def scan(n: int, files: int = 50) -> LayerScan:
    events = PathEvents(PathEvent(f"/layer{n}/file{i}", EntryKind.FILE, i) for i in range(files))
    return LayerScan(f"sha256:{n:064x}", f"sha256:{n + 1:064x}", events, (), (), files, 1 << 20)


def keys(cache: SqliteLayerCache) -> list[str]:
    return [k for (k,) in sqlite3.connect(cache.path).execute("SELECT key FROM layers ORDER BY key")]


def test_entries_come_back(tmp_path):
    cache = SqliteLayerCache(str(tmp_path))
    cache.put("k", scan(1))
    assert cache.get("k", 0) == scan(1) and cache.get("other", 0) is None


def test_past_the_bound_the_entries_used_longest_ago_go(tmp_path):
    size = len(encode(scan(0)))
    cache = SqliteLayerCache(str(tmp_path), max_bytes=3 * size + size // 2)  # room for three
    for n in "abc":
        cache.put(n, scan(ord(n)))
        time.sleep(0.01)
    assert keys(cache) == ["a", "b", "c"]
    assert cache.get("a", 0) is not None  # a read is a use: "b" is now the one used longest ago
    time.sleep(0.01)
    cache.put("d", scan(ord("d")))
    assert keys(cache) == ["a", "c", "d"]
    assert cache.get("b", 0) is None and cache.get("d", 0) == scan(ord("d"))


def test_an_entry_over_the_bound_is_kept_alone(tmp_path):
    cache = SqliteLayerCache(str(tmp_path), max_bytes=1000)
    cache.put("small", scan(1, files=2))
    cache.put("big", scan(2, files=500))  # just written: never pruned, whatever its size
    assert keys(cache) == ["big"]


def test_a_cache_of_an_older_version_is_taken_over_and_its_entries_go_first(tmp_path):
    """The table of layerscan 0.1 had no size column: it is added, and its entries (keys no
    version reads now) are counted and, being the oldest, pruned first."""
    db = sqlite3.connect(tmp_path / "layers.sqlite")
    db.execute("CREATE TABLE layers (key TEXT PRIMARY KEY, scan TEXT NOT NULL, stored REAL NOT NULL)")
    db.executemany("INSERT INTO layers VALUES (?, ?, ?)", [(f"old{i}", "x" * 10_000, 1.0 + i) for i in range(5)])
    db.commit()
    db.close()
    cache = SqliteLayerCache(str(tmp_path), max_bytes=40_000)
    cache.put("new", scan(1))  # 50,000 and the new entry: down to 90 % of 40,000, the oldest first
    assert keys(cache) == ["new", "old2", "old3", "old4"]
    assert cache.get("new", 0) == scan(1)


def test_the_bound_from_the_flag_and_the_default(tmp_path):
    assert open_cache(str(tmp_path / "a")).max_bytes == 2 << 30
    assert open_cache(str(tmp_path / "b"), 5 << 20).max_bytes == 5 << 20


# --- the key follows the code and the rules ---------------------------------------------------------

def test_the_code_digest_follows_the_detectors_the_walk_and_the_rules(tmp_path):
    """A copy of the package: a changed detector, walk, data file or rule file is another digest;
    a changed report module (no part of a layer's result) is not."""
    import shutil
    from pathlib import Path

    import scanner
    from scanner.cachekey import code_digest, source_digest
    from scanner.detectors.rules import builtin_rule_files

    package = tmp_path / "scanner"
    shutil.copytree(Path(scanner.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    rules = tmp_path / "rules"
    rules.mkdir()
    for f in builtin_rule_files():
        shutil.copy(f, rules)
    files = lambda: sorted(rules.iterdir())  # noqa: E731
    first = source_digest(package, files())
    assert first == code_digest() == source_digest(package, files())
    digests = {first}
    for changed in ("detectors/entropy.py", "layers/walk.py", "data/known-public.tsv", "packagedb.py",
                    "sources/blobs.py", "../rules/generic.yaml"):
        target = package / changed
        target.write_bytes(target.read_bytes() + b"\n# changed\n")
        digests.add(source_digest(package, files()))
    assert len(digests) == 7
    report = package / "reports" / "table.py"
    before = source_digest(package, files())
    report.write_bytes(report.read_bytes() + b"\n# changed\n")
    assert source_digest(package, files()) == before


def test_the_key_holds_the_code_digest(monkeypatch):
    from scanner import cachekey
    from scanner.limits import Limits

    key = cachekey.cache_key("sha256:" + "a" * 64, "rules", Limits())
    monkeypatch.setattr(cachekey, "code_digest", lambda: "other code")
    assert cachekey.cache_key("sha256:" + "a" * 64, "rules", Limits()) != key
    assert cachekey.cache_key("sha256:" + "a" * 64, "rules", Limits(max_findings=5)) != cachekey.cache_key(
        "sha256:" + "a" * 64, "rules", Limits())


def test_sealed_entries(tmp_path):
    from scanner.cache import seal, unseal

    sealed = seal("k1", "text", b"s" * 16)
    assert unseal("k1", sealed, b"s" * 16) == "text" and unseal("k1", sealed, None) == "text"
    assert unseal("k2", sealed, b"s" * 16) is None and unseal("k1", sealed, b"t" * 16) is None
    assert unseal("k1", "text", b"s" * 16) is None and unseal("k1", "text", None) == "text"
    cache = SqliteLayerCache(str(tmp_path), mac_key=b"s" * 16)
    cache.put("k", scan(1))
    assert cache.get("k", 0) == scan(1)
