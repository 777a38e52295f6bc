"""The cache directory is data, never trusted code: tampered rows are misses (scanned again), a
rewritten prefilter database is compiled again, a cache dir that cannot be written leaves the
scan uncached with one warning, entries sealed with LAYERSCAN_CACHE_KEY are checked, and a key
follows the code and rules that make a result."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from scanner import cachekey
from scanner.cache import SqliteLayerCache, open_cache, seal
from scanner.detectors import prefilter, stored
from scanner.detectors.rules import load_rules
from scanner.detectors.signature import SignatureDetector
from scanner.models import LayerScan
from scanner.pathevents import PathEvents
from scanner.pipeline import ScanOptions, Scanner
from tests import secrets_catalog as sc
from tests.hostile import kit
from tests.hostile.test_cli import layerscan

ENV = f"KEY={sc.AWS_KEY_ID}\n".encode()
KEY = "k" * 32


def image(tmp_path: Path) -> Path:
    return kit.write(tmp_path, kit.image_of(kit.tar(kit.member("app/.env", ENV))), name="cached")[0]


def findings(rules, path: Path, cache) -> list[tuple[str, str]]:
    result = Scanner(rules, ScanOptions(workers=1), cache=cache).scan([str(path)])
    return [(f.hit.rule_id, f.hit.path) for f in result.findings]


def rows(cache: SqliteLayerCache) -> list[tuple[str, str]]:
    return list(sqlite3.connect(cache.path).execute("SELECT key, scan FROM layers"))


def rewrite(cache: SqliteLayerCache, change) -> None:
    db = sqlite3.connect(cache.path, isolation_level=None)
    for key, text in rows(cache):
        db.execute("UPDATE layers SET scan = ? WHERE key = ?", (change(text), key))
    db.close()


def _edit(change):
    def apply(text: str) -> str:
        doc = json.loads(text)
        change(doc)
        return json.dumps(doc)
    return apply


def _set(field, value):
    return _edit(lambda d: d.__setitem__(field, value))


def _hit(i, value):
    return _edit(lambda d: d["hits"][0].__setitem__(i, value))


def _meta(key, value):
    return _edit(lambda d: d["hits"][0][11].__setitem__(key, value))


TAMPERED = {
    "not-json": lambda t: t[:-7], "a-list": lambda t: "[1, 2]", "empty": lambda t: "", "deep": lambda t: "[" * 100_000,
    "no-hits": _edit(lambda d: d.pop("hits")), "hits-a-dict": _set("hits", {"a": 1}), "hits-a-string": _set("hits", "x" * 12),
    "hit-short": _edit(lambda d: d["hits"][0].pop()), "rule-a-number": _hit(0, 7), "detector-unknown": _hit(1, "x"),
    "severity-a-list": _hit(2, []), "path-null": _hit(4, None), "line-a-string": _hit(5, "3"), "line-true": _hit(5, True),
    "sha-a-dict": _hit(6, {}), "kind-unknown": _hit(10, "disk"), "meta-a-list": _hit(11, [1]),
    "meta-extra-key": _meta("x", 1), "mtime-infinite": _meta("mtime", float("inf")), "uid-a-string": _meta("uid", "0"),
    "lone-surrogate": _hit(4, "/app/\ud800"), "path-double-slash": _hit(4, "//app/.env"), "path-relative": _hit(4, "app/.env"), "events-short": _edit(lambda d: d["events"].pop()),
    "events-mismatch": _edit(lambda d: d["events"].__setitem__(1, d["events"][1] * 2)),
    "ordinals-not-base64": _edit(lambda d: d["events"].__setitem__(2, "!!")),
    "skipped-a-number": _set("skipped", [[1, 2, 3]]), "files-a-float": _set("files", 1.5),
    "packages-short": _set("packages", [["a"]]), "digest-null": _set("digest", None),
}


@pytest.mark.parametrize("name", sorted(TAMPERED))
def test_a_tampered_row_is_a_miss_and_the_layer_is_scanned_again(tmp_path, unit_rules, name):
    path, cache = image(tmp_path), SqliteLayerCache(str(tmp_path / "cache"))
    cold = findings(unit_rules, path, cache)
    assert cold == [("unit-aws-key-id", "/app/.env")]
    rewrite(cache, TAMPERED[name])
    assert findings(unit_rules, path, SqliteLayerCache(str(tmp_path / "cache"))) == cold


def test_a_row_of_another_type_and_sql_objects_not_ours(tmp_path, unit_rules, capsys):
    path, cache = image(tmp_path), SqliteLayerCache(str(tmp_path / "cache"))
    cold = findings(unit_rules, path, cache)
    db = sqlite3.connect(cache.path, isolation_level=None)
    db.execute("UPDATE layers SET scan = 42")
    assert findings(unit_rules, path, SqliteLayerCache(str(tmp_path / "cache"))) == cold
    db.execute("CREATE TRIGGER t AFTER UPDATE ON layers BEGIN DELETE FROM layers; END")
    db.close()
    assert findings(unit_rules, path, open_cache(str(tmp_path / "cache"))) == cold
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "trigger t" in err and err.startswith("layerscan: warning: ")


def _clean_row(text: str) -> str:
    doc = json.loads(text)
    doc["hits"] = []
    return json.dumps(doc)


def test_with_the_key_an_entry_that_is_not_sealed_by_it_is_a_miss(tmp_path, unit_rules, monkeypatch):
    """A job of less trust rewrites an entry to hide a secret (well formed, just clean): under the
    key it is a miss, whether it is unsealed, sealed with another key, or moved from another key."""
    path = image(tmp_path)
    monkeypatch.setenv("LAYERSCAN_CACHE_KEY", KEY)
    cache = open_cache(str(tmp_path / "cache"))
    cold = findings(unit_rules, path, cache)
    [(key, sealed)] = rows(cache)
    assert sealed.startswith("hmac-sha256:") and findings(unit_rules, path, open_cache(str(tmp_path / "cache"))) == cold
    mac, _, text = sealed.partition("\n")
    cache.put("another-key", LayerScan("sha256:" + "1" * 64, "sha256:" + "2" * 64, PathEvents(), (), (), 0, 0))
    moved = dict(rows(cache))["another-key"]
    for forged in (_clean_row(text), f"{mac}\n{_clean_row(text)}", seal(key, _clean_row(text), b"another key"), moved):
        db = sqlite3.connect(cache.path, isolation_level=None)
        db.execute("UPDATE layers SET scan = ? WHERE key = ?", (forged, key))
        db.close()
        assert findings(unit_rules, path, open_cache(str(tmp_path / "cache"))) == cold
    monkeypatch.delenv("LAYERSCAN_CACHE_KEY")  # a reader without the key trusts the directory: reads sealed entries
    assert open_cache(str(tmp_path / "cache")).get(key, 0) is not None


def test_a_key_that_is_too_short_is_an_error(tmp_path, monkeypatch):
    from scanner.cache import CacheError
    monkeypatch.setenv("LAYERSCAN_CACHE_KEY", "short")
    with pytest.raises(CacheError, match="LAYERSCAN_CACHE_KEY is too short"):
        open_cache(str(tmp_path / "cache"))


def test_a_cache_dir_that_cannot_hold_the_cache_scans_uncached_with_one_warning(tmp_path, unit_rules_path):
    path = image(tmp_path)
    blocked = tmp_path / "blocked"
    (blocked / "layers.sqlite").mkdir(parents=True)  # as root too: no file can be made there
    args = [str(path), "--rules", str(unit_rules_path), "--cache-dir", str(blocked), "-f", "json"]
    done = layerscan(args, tmp_path)
    assert done.returncode == 1 and {f["location"]["path"] for f in json.loads(done.stdout)["findings"]} == {"/app/.env"}
    line, verdict = done.stderr.splitlines()  # one warning, then the gate's verdict
    assert verdict.startswith("gate: FAIL (exit 1): ")
    assert line.startswith("layerscan: warning: cannot open the layer cache in ")
    assert line.endswith("; scanning without the layer cache")


def test_a_full_cache_warns_once_and_the_scan_goes_on(tmp_path, unit_rules, capsys):
    cache = SqliteLayerCache(str(tmp_path / "cache"))
    pages = cache._db.execute("PRAGMA page_count").fetchone()[0]
    cache._db.execute(f"PRAGMA max_page_count = {pages}")  # "database or disk is full" on the first write
    paths = [kit.write(tmp_path, kit.image_of(kit.tar(kit.member(f"app/{i}.env", ENV),
                                                      *[kit.member(f"srv/{i}/{n:04}") for n in range(300)])),
                       name=f"i{i}")[0] for i in range(3)]
    result = Scanner(unit_rules, ScanOptions(workers=1), cache=cache).scan([str(p) for p in paths])
    assert len(result.findings) == 3
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("layerscan: warning: layer cache write failed (database or disk is full)")


def test_a_rewritten_prefilter_database_is_compiled_again(tmp_path):
    """A database that places nothing (another rule set's, under this one's name) fails the
    self-test: the rules are compiled again and the file overwritten."""
    rules = load_rules()
    text = f"token = {sc.GITHUB_PAT}\n".encode()

    def detector(store: Path, rs=rules) -> SignatureDetector:
        prefilter._COMPILED.clear()
        det = SignatureDetector(rs)
        det.prefilter.store = str(store)
        return det

    good = detector(tmp_path / "good")
    assert [m.secret for m in good.scan(text)] == [sc.GITHUB_PAT.encode()]
    (path,) = (tmp_path / "good").glob("prefilter-*.hsdb")
    blind = detector(tmp_path / "blind", type(rules)(rules.rules[:1], "one"))
    list(blind.scan(b"x"))
    (other,) = (tmp_path / "blind").glob("prefilter-*.hsdb")
    head_len = int.from_bytes(path.read_bytes()[:8], "big")
    good_head = path.read_bytes()[8:8 + head_len]
    other_db = other.read_bytes()[8 + int.from_bytes(other.read_bytes()[:8], "big"):]
    path.write_bytes(head_len.to_bytes(8, "big") + good_head + other_db)  # the tables of this set, a db that finds little
    again = detector(tmp_path / "good")
    assert [m.secret for m in again.scan(text)] == [sc.GITHUB_PAT.encode()]
    assert other_db not in path.read_bytes()  # overwritten with the database compiled again


def test_a_sealed_prefilter_database_is_checked_before_hyperscan_reads_it(tmp_path, monkeypatch):
    rules = load_rules()
    prefilter._COMPILED.clear()
    det = SignatureDetector(rules)
    det.prefilter.store, det.prefilter.mac_key = str(tmp_path), KEY.encode()
    det.prefilter._ready()
    (path,) = tmp_path.glob("prefilter-*.hsdb")
    assert path.read_bytes().startswith(b"hmac-sha256:")
    fresh = SignatureDetector(rules)
    fresh.prefilter.store, fresh.prefilter.mac_key = str(tmp_path), KEY.encode()
    assert stored.load(fresh.prefilter)
    fresh.prefilter.mac_key = b"another key entirely"
    assert not stored.load(fresh.prefilter)
    path.write_bytes(path.read_bytes().replace(b"hmac-sha256:", b"hmac-sha256:0", 1))
    fresh.prefilter.mac_key = KEY.encode()
    assert not stored.load(fresh.prefilter)


def test_a_change_of_the_code_or_the_rules_is_another_key(tmp_path, unit_rules, monkeypatch):
    """An entry made by other code (an upgrade, a changed detector) is never served: the key
    holds the digest of the code and rule files; a planted clean entry under the old key is not read."""
    path, cache = image(tmp_path), SqliteLayerCache(str(tmp_path / "cache"))
    cold = findings(unit_rules, path, cache)
    rewrite(cache, _clean_row)
    assert findings(unit_rules, path, cache) == []  # the cache is trusted without a key: served as is
    monkeypatch.setattr(cachekey, "code_digest", lambda: "other code")
    assert findings(unit_rules, path, cache) == cold and len(rows(cache)) == 2
