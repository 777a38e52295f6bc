"""The layer cache: a LayerScan is a pure function of (layer bytes, rules, limits, version), so a
layer seen once (a base layer, a re-scan) is never scanned again.

Entries hold path events, hit locations, secret hashes and redacted forms: never a raw secret.
"""
from __future__ import annotations

import abc
import base64
import hashlib
import json
import os
import sqlite3
import time
from dataclasses import asdict
from array import array
from typing import Any, Optional, Sequence

from scanner import __version__
from scanner.errors import LayerscanError
from scanner.limits import Limits
from scanner.models import DetectorKind, FileMeta, Hit, LayerScan, LocationKind, PackageDb, Secret, Severity, Skipped
from scanner.pathevents import PathEvent, PathEvents

FORMAT = 3  # 2: package databases and md5/sha1 of files with hits (triage); 3: path events packed


class CacheError(LayerscanError):
    """The cache cannot be opened or written."""


def cache_key(diff_id: str, rules_digest: str, limits: Limits) -> str:
    material = json.dumps([FORMAT, __version__, diff_id, rules_digest, asdict(limits)], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "layerscan")


# --- codec: LayerScan <-> JSON, values dropped ------------------------------------------------

def encode(scan: LayerScan) -> str:
    return json.dumps({
        "diff_id": scan.diff_id, "digest": scan.digest, "files": scan.files, "bytes": scan.bytes,
        "events": _packed(scan.events),
        "hits": [_hit(h) for h in scan.hits],
        "skipped": [[s.path, s.reason, s.layer] for s in scan.skipped],
        "packages": [[p.path, p.manager, p.files] for p in scan.packages],
    }, separators=(",", ":"), ensure_ascii=False)


def _hit(h: Hit) -> list[Any]:
    meta = None if h.file is None else asdict(h.file)
    return [h.rule_id, h.detector.value, h.severity.value, h.title, h.path, h.line, h.secret.sha256,
            h.secret.redacted, h.inner_path, h.ordinal, h.kind.value, meta]


def decode(text: str, layer_index: int) -> LayerScan:
    d = json.loads(text)
    hits = tuple(Hit(rule_id=r, detector=DetectorKind(det), severity=Severity(sev), title=t, path=p, line=ln,
                     secret=Secret(sha, red), inner_path=ip, ordinal=o, kind=LocationKind(k),
                     file=None if meta is None else FileMeta(**meta))
                 for r, det, sev, t, p, ln, sha, red, ip, o, k, meta in d["hits"])
    return LayerScan(
        diff_id=d["diff_id"], digest=d["digest"],
        events=_unpacked(d["events"]),
        hits=hits,
        skipped=tuple(Skipped(p, r, layer_index) for p, r, _ in d["skipped"]),
        files=d["files"], bytes=d["bytes"],
        packages=tuple(PackageDb(p, m, f) for p, m, f in d.get("packages", ())))


def _packed(events: Sequence[PathEvent]) -> list[str]:
    """Path events as three strings (paths NUL-separated, kind indexes, base64 of the ordinals):
    a layer of a million entries is a few strings, not a million JSON lists, on the way in or out."""
    paths, kinds, ordinals = (events if isinstance(events, PathEvents) else PathEvents(events)).parts()
    return [paths.decode("utf-8", "surrogatepass"), kinds.decode("latin-1"),
            base64.b64encode(ordinals.tobytes()).decode("ascii")]


def _unpacked(value: list[str]) -> PathEvents:
    paths, kinds, ordinals = value
    numbers = array("q")
    numbers.frombytes(base64.b64decode(ordinals, validate=True))
    return PathEvents.from_parts(paths.encode("utf-8", "surrogatepass"), kinds.encode("latin-1"), numbers)


def decode_row(row: Optional[tuple], layer_index: int) -> Optional[LayerScan]:
    """A store's row (or None) as a LayerScan; an entry from a broken write reads as a miss."""
    if row is None:
        return None
    try:
        return decode(row[0], layer_index)
    except (ValueError, KeyError, TypeError):
        return None  # scan again


class LayerCache(abc.ABC):
    @abc.abstractmethod
    def get(self, key: str, layer_index: int) -> Optional[LayerScan]:
        """The cached scan for `key`, its skipped entries re-labelled with `layer_index`."""

    @abc.abstractmethod
    def put(self, key: str, scan: LayerScan) -> None:
        """Store a scan (raw secret values are never stored)."""

    @property
    def directory(self) -> Optional[str]:
        """A local directory of this cache, where other derived data (compiled rules) may be kept."""
        return None


class NullCache(LayerCache):
    def get(self, key: str, layer_index: int) -> Optional[LayerScan]:
        return None

    def put(self, key: str, scan: LayerScan) -> None:
        pass


DEFAULT_MAX_BYTES = 2 << 30  # of entries in a SQLite cache (--cache-max-size)
PRUNE_TO = 0.9  # past the bound, entries are deleted down to this share of it


class SqliteLayerCache(LayerCache):
    """One SQLite file in the user cache dir; safe for several processes (WAL, short transactions).

    Bounded: past `max_bytes` of entries, the ones used longest ago go (a read marks its entry
    used: `stored` is when it was last written or read), so a CI runner's cache does not grow with
    every image it ever saw; entries of older layerscan versions, never read again, go first."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self._directory = directory
            self.path = os.path.join(directory, "layers.sqlite")
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS layers (key TEXT PRIMARY KEY, scan TEXT NOT NULL, "
                             "stored REAL NOT NULL, size INTEGER NOT NULL DEFAULT -1)")
            if "size" not in {row[1] for row in self._db.execute("PRAGMA table_info(layers)")}:
                self._db.execute("ALTER TABLE layers ADD COLUMN size INTEGER NOT NULL DEFAULT -1")  # a cache of 0.1
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open the layer cache in {directory}: {exc}") from None

    @property
    def directory(self) -> Optional[str]:
        return self._directory

    def get(self, key: str, layer_index: int) -> Optional[LayerScan]:
        try:
            row = self._db.execute("SELECT scan FROM layers WHERE key = ?", (key,)).fetchone()
            if row is not None:
                self._db.execute("UPDATE layers SET stored = ? WHERE key = ?", (time.time(), key))
        except sqlite3.Error as exc:
            raise CacheError(f"layer cache read failed: {exc}") from None
        return decode_row(row, layer_index)

    def put(self, key: str, scan: LayerScan) -> None:
        text = encode(scan)
        try:
            self._db.execute("INSERT OR REPLACE INTO layers (key, scan, stored, size) VALUES (?, ?, ?, ?)",
                             (key, text, time.time(), len(text.encode("utf-8", "surrogatepass"))))
            self._prune(key)
        except sqlite3.Error as exc:
            raise CacheError(f"layer cache write failed: {exc}") from None

    def _prune(self, kept: str) -> None:
        """Past `max_bytes`, delete the entries used longest ago (never `kept`, just written)."""
        self._db.execute("UPDATE layers SET size = length(CAST(scan AS BLOB)) WHERE size < 0")
        total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM layers").fetchone()[0]
        if total <= self.max_bytes:
            return
        over, gone = total - int(self.max_bytes * PRUNE_TO), []
        for key, size in self._db.execute("SELECT key, size FROM layers WHERE key != ? ORDER BY stored", (kept,)):
            if over <= 0:
                break
            gone.append((key,))
            over -= size
        self._db.executemany("DELETE FROM layers WHERE key = ?", gone)


def open_cache(location: Optional[str], max_bytes: Optional[int] = None) -> LayerCache:
    """`--cache-dir DIR` / `--cache-url postgresql://...`: SQLite in a directory (at most
    `max_bytes` of entries), or a PostgreSQL server shared by many workers (its size is its
    administrator's); None: SQLite in the user cache dir."""
    if location and location.startswith(("postgresql://", "postgres://")):
        from scanner.cache_pg import PostgresLayerCache

        return PostgresLayerCache(location)
    return SqliteLayerCache(location or default_cache_dir(), DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)
