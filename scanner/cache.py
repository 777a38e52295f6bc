"""The layer cache: a LayerScan is a pure function of (layer bytes, rules, limits, code), so a
layer seen once (a base layer, a re-scan) is never scanned again (the key: `scanner/cachekey.py`).

Entries hold path events, hit locations, secret hashes and redacted forms: never a raw secret.
The cache directory is data, never trusted code: an entry is JSON read field by field into the
model (any entry that does not fit is a miss, scanned again); with `LAYERSCAN_CACHE_KEY` every
entry is sealed with an HMAC-SHA256 over its key and text, and one without a valid seal is a miss.
A cache directory that cannot be opened or written (read-only, full) leaves the scan uncached,
with one warning line.
"""
from __future__ import annotations

import abc
import base64
import dataclasses
import hmac
import json
import math
import os
import posixpath
import sqlite3
import sys
import time
import types
import typing
from array import array
from typing import Any, Optional, Sequence, Union

from scanner.cachekey import FORMAT, cache_key  # noqa: F401 - the key is the cache's, re-exported
from scanner.errors import LayerscanError
from scanner.models import DetectorKind, FileMeta, Hit, LayerScan, LocationKind, PackageDb, Secret, Severity, Skipped
from scanner.pathevents import PathEvent, PathEvents

KEY_ENV = "LAYERSCAN_CACHE_KEY"  # the secret that seals entries (a cache shared by jobs of different trust)
MIN_KEY = 16  # characters of it, at least
SEAL = "hmac-sha256:"


class CacheError(LayerscanError):
    """The cache cannot be opened or written."""


def warn(message: str) -> None:
    """One line on stderr: what the cache could not do, and that the scan goes on without it."""
    print(f"layerscan: warning: {message}", file=sys.stderr)


def mac_key_from_env() -> Optional[bytes]:
    value = os.environ.get(KEY_ENV)
    if not value:
        return None
    if len(value) < MIN_KEY:
        raise CacheError(f"{KEY_ENV} is too short: at least {MIN_KEY} characters (32 random ones are better)")
    return value.encode("utf-8", "surrogateescape")


def default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "layerscan")


# --- seal: an HMAC over each entry (with LAYERSCAN_CACHE_KEY) ------------------------------------

def seal(key: str, text: str, secret: Optional[bytes]) -> str:
    """The entry as stored under `key`: `text`, sealed when there is a secret."""
    if secret is None:
        return text
    return f"{SEAL}{_mac(secret, key, text)}\n{text}"


def unseal(key: str, stored: str, secret: Optional[bytes]) -> Optional[str]:
    """The entry's text, or None when a secret is set and the entry's seal is not valid for it
    and this key (an entry moved from another key, written without the secret, or changed)."""
    if not stored.startswith(SEAL):
        return stored if secret is None else None
    mac, _, text = stored[len(SEAL):].partition("\n")
    if secret is None:  # no secret here: the directory is trusted as it is
        return text
    given = mac.encode("utf-8", "surrogatepass")  # bytes: compare_digest refuses non-ASCII str
    return text if hmac.compare_digest(given, _mac(secret, key, text).encode()) else None


def _mac(secret: bytes, key: str, text: str) -> str:
    return hmac.new(secret, key.encode() + b"\0" + text.encode("utf-8", "surrogatepass"), "sha256").hexdigest()


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
    meta = None if h.file is None else dataclasses.asdict(h.file)
    return [h.rule_id, h.detector.value, h.severity.value, h.title, h.path, h.line, h.secret.sha256,
            h.secret.redacted, h.inner_path, h.ordinal, h.kind.value, meta]


def decode(text: str, layer_index: int) -> LayerScan:
    """An entry back as a LayerScan; ValueError, KeyError or TypeError for one that does not fit
    the model (every field of every record is checked against its declared type)."""
    d = json.loads(text)
    hits = tuple(_located(Hit(rule_id=r, detector=DetectorKind(det), severity=Severity(sev), title=t, path=p,
                              line=ln, secret=Secret(sha, red), inner_path=ip, ordinal=o, kind=LocationKind(k),
                              file=None if meta is None else FileMeta(**meta)))
                 for r, det, sev, t, p, ln, sha, red, ip, o, k, meta in d["hits"])
    return _checked(LayerScan(
        diff_id=d["diff_id"], digest=d["digest"],
        events=_unpacked(d["events"]),
        hits=hits,
        skipped=tuple(_checked(Skipped(p, r, layer_index)) for p, r, _ in d["skipped"]),
        files=d["files"], bytes=d["bytes"],
        packages=tuple(_checked(PackageDb(p, m, f)) for p, m, f in d.get("packages", ()))))


def _located(hit: Hit) -> Hit:
    """A layer hit checked, its path as the walk makes them: absolute and normalised (the overlay
    climbs a path to `/`: `//x` would never get there)."""
    path = _checked(hit).path
    if not path.startswith("/") or path.startswith("//") or posixpath.normpath(path) != path:
        raise ValueError("cache entry: a hit path that is not absolute and normalised")
    return hit


_HINTS: dict[type, dict[str, Any]] = {}


def _checked(record: Any) -> Any:
    """`record` (a model dataclass made from an entry) if each field holds its declared type."""
    hints = _HINTS.get(type(record))
    if hints is None:
        hints = _HINTS[type(record)] = typing.get_type_hints(type(record))
    for name, hint in hints.items():
        if not _fits(getattr(record, name), hint):
            raise ValueError(f"cache entry: {type(record).__name__}.{name} of the wrong type")
    return record


def _fits(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return any(_fits(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is str:  # text that prints and serialises: no lone surrogates from a JSON escape
        return isinstance(value, str) and (value.isascii() or _utf8(value))
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint) and _checked(value) is value
    if origin is tuple:  # tuples of records: each checked where it is made
        return isinstance(value, tuple)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


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


_UNFIT = (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError, OverflowError)


def decode_row(row: Optional[tuple], layer_index: int, key: str = "",
               secret: Optional[bytes] = None) -> Optional[LayerScan]:
    """A store's row (or None) as a LayerScan. An entry from a broken write, one changed by hand,
    or (with a `secret`) one whose seal is not valid for `key` reads as a miss: scanned again."""
    if row is None or not isinstance(row[0], str):
        return None
    text = unseal(key, row[0], secret)
    if text is None:
        return None
    try:
        return decode(text, layer_index)
    except _UNFIT:
        return None


class LayerCache(abc.ABC):
    mac_key: Optional[bytes] = None  # LAYERSCAN_CACHE_KEY: entries are sealed and checked with it

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
# what a cache file may hold: the table and its key's index. Anything else (a trigger, a view: SQL
# that would run on our reads and writes) was not made by layerscan, and the file is not used.
OURS = {("table", "layers"), ("index", "sqlite_autoindex_layers_1")}


class SqliteLayerCache(LayerCache):
    """One SQLite file in the user cache dir; safe for several processes (WAL, short transactions).

    Bounded: past `max_bytes` of entries, the ones used longest ago go (a read marks its entry
    used: `stored` is when it was last written or read), so a CI runner's cache does not grow with
    every image it ever saw; entries of older layerscan versions, never read again, go first.
    A read or a write that fails (a damaged file, a full disk) is said once, on stderr, and the
    scan goes on: a failed read is a miss, and after a failed write nothing more is written."""

    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES, mac_key: Optional[bytes] = None) -> None:
        self.max_bytes, self.mac_key = max_bytes, mac_key
        self._reads = self._writes = True
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            self._directory = directory
            self.path = os.path.join(directory, "layers.sqlite")
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA trusted_schema = OFF")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS layers (key TEXT PRIMARY KEY, scan TEXT NOT NULL, "
                             "stored REAL NOT NULL, size INTEGER NOT NULL DEFAULT -1)")
            if "size" not in {row[1] for row in self._db.execute("PRAGMA table_info(layers)")}:
                self._db.execute("ALTER TABLE layers ADD COLUMN size INTEGER NOT NULL DEFAULT -1")  # a cache of 0.1
            others = set(self._db.execute("SELECT type, name FROM sqlite_master")) - OURS
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open the layer cache in {directory}: {exc}") from None
        if others:
            raise CacheError(f"the layer cache {self.path} holds SQL objects layerscan did not make "
                             f"({', '.join(sorted(f'{t} {n}' for t, n in others))[:200]}); not used")

    @property
    def directory(self) -> Optional[str]:
        return self._directory

    def get(self, key: str, layer_index: int) -> Optional[LayerScan]:
        if not self._reads:
            return None
        try:
            row = self._db.execute("SELECT scan FROM layers WHERE key = ?", (key,)).fetchone()
            if row is not None and self._writes:
                self._db.execute("UPDATE layers SET stored = ? WHERE key = ?", (time.time(), key))
        except sqlite3.Error as exc:
            self._reads = self._writes = False
            warn(f"layer cache read failed ({exc}): {self.path} not used, layers scanned again")
            return None
        return decode_row(row, layer_index, key, self.mac_key)

    def put(self, key: str, scan: LayerScan) -> None:
        if not self._writes:
            return
        text = seal(key, encode(scan), self.mac_key)
        try:
            self._db.execute("INSERT OR REPLACE INTO layers (key, scan, stored, size) VALUES (?, ?, ?, ?)",
                             (key, text, time.time(), len(text.encode("utf-8", "surrogatepass"))))
            self._prune(key)
        except (sqlite3.Error, UnicodeError) as exc:
            self._writes = False
            warn(f"layer cache write failed ({exc}): nothing more is stored in {self.path} in this run")

    def _prune(self, kept: str) -> None:
        """Past `max_bytes`, delete the entries used longest ago (never `kept`, just written)."""
        self._db.execute("UPDATE layers SET size = length(CAST(scan AS BLOB)) WHERE size < 0")
        total = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM layers").fetchone()[0]
        if not isinstance(total, int) or total <= self.max_bytes:
            return
        over, gone = total - int(self.max_bytes * PRUNE_TO), []
        for key, size in self._db.execute("SELECT key, size FROM layers WHERE key != ? ORDER BY stored", (kept,)):
            if over <= 0:
                break
            gone.append((key,))
            over -= size if isinstance(size, int) else 0
        self._db.executemany("DELETE FROM layers WHERE key = ?", gone)


def open_cache(location: Optional[str], max_bytes: Optional[int] = None) -> LayerCache:
    """`--cache-dir DIR` / `--cache-url postgresql://...`: SQLite in a directory (at most
    `max_bytes` of entries), or a PostgreSQL server shared by many workers (its size is its
    administrator's); None: SQLite in the user cache dir. A directory that cannot hold the
    cache (read-only, full, a file not ours): one warning, and the scan runs uncached."""
    secret = mac_key_from_env()
    if location and location.startswith(("postgresql://", "postgres://")):
        from scanner.cache_pg import PostgresLayerCache

        return PostgresLayerCache(location, secret)
    try:
        return SqliteLayerCache(location or default_cache_dir(),
                                DEFAULT_MAX_BYTES if max_bytes is None else max_bytes, secret)
    except CacheError as exc:
        warn(f"{exc}; scanning without the layer cache")
        return NullCache()
