"""`PostgresLayerCache`: the layer cache on a PostgreSQL server, shared by many workers and hosts.

Same keys and the same entries as the SQLite cache (`cache.encode`: path events, hit locations,
secret hashes and redacted forms, never a raw secret; sealed with `LAYERSCAN_CACHE_KEY` when it is
set). A write replaces what the key held: an entry is written only after a miss, and a miss may be
an entry that did not check out (changed, or not sealed with the key), which is then mended.
"""
from __future__ import annotations

import time
from typing import Optional

from scanner.cache import CacheError, LayerCache, decode_row, encode, seal
from scanner.models import LayerScan

SCHEMES = ("postgresql://", "postgres://")
TABLE = "layerscan_layers"


def _redacted(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    scheme, _, rest = dsn.partition("://")
    userinfo, at, host = rest.rpartition("@")
    return f"{scheme}://{userinfo.split(':', 1)[0]}{at}{host}" if at else dsn


class PostgresLayerCache(LayerCache):
    def __init__(self, dsn: str, mac_key: Optional[bytes] = None) -> None:
        self.mac_key = mac_key
        try:
            import psycopg
        except ImportError:
            raise CacheError("a postgresql:// cache needs psycopg: pip install 'layerscan[postgres]'") from None
        self._errors = psycopg.Error
        self.where = _redacted(dsn)
        try:
            self._db = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (key TEXT PRIMARY KEY, scan TEXT NOT NULL, "
                             "stored DOUBLE PRECISION NOT NULL)")
        except psycopg.Error as exc:
            raise CacheError(f"cannot open the layer cache at {self.where}: {_first_line(exc)}") from None

    def get(self, key: str, layer_index: int) -> Optional[LayerScan]:
        try:
            row = self._db.execute(f"SELECT scan FROM {TABLE} WHERE key = %s", (key,)).fetchone()
        except self._errors as exc:
            raise CacheError(f"layer cache read failed ({self.where}): {_first_line(exc)}") from None
        return decode_row(row, layer_index, key, self.mac_key)

    def put(self, key: str, scan: LayerScan) -> None:
        try:
            self._db.execute(f"INSERT INTO {TABLE} (key, scan, stored) VALUES (%s, %s, %s) ON CONFLICT (key) "
                             "DO UPDATE SET scan = EXCLUDED.scan, stored = EXCLUDED.stored",
                             (key, seal(key, encode(scan), self.mac_key), time.time()))
        except self._errors as exc:
            raise CacheError(f"layer cache write failed ({self.where}): {_first_line(exc)}") from None

    def close(self) -> None:
        self._db.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
