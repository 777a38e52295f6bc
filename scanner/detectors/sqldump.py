"""Credential columns of SQL dumps: the values of `password`, `secret`, `token`, `api_key`...
columns in PostgreSQL `COPY ... FROM stdin` rows (tab-separated, the columns named on the COPY
line) and in `INSERT INTO t [(cols)] VALUES (...), (...)` (without a column list, the columns of
the dump's own `CREATE TABLE t`). `CREATE ROLE ... PASSWORD '...'` and `IDENTIFIED BY` are rules
(`signatures/databases.yaml`): they need no column context.

A value in a credential column that is a stored hash (bcrypt, crypt, PBKDF2, hex digests) or whose
column says so (`password_hash`, `encrypted_password`) is a credential hash, reported low
(`sql-password-hash`): it can be cracked offline, it is not the password. Work is one pass over
the buffer per statement kind; a dump bigger than one read buffer is read per buffer, so a COPY
block whose header is in an earlier buffer is not attributed to its columns (its rows are still
seen by the other detectors).
"""
from __future__ import annotations

import re
from typing import Iterator, Optional

from scanner.detectors.heuristics import is_placeholder, looks_like_hash

PLAIN, HASHED = "sql-dump-credential", "sql-password-hash"
EXT = (".sql", ".psql", ".pgsql", ".mysql", ".dump", ".sql.gz", ".psql.gz", ".pgsql.gz", ".dump.gz")
_CREDENTIAL = re.compile(r"(?i)^(?:[a-z0-9]*_)*(?:pass(?:word|wd)?|pwd|secret|token|api_?key|access_?key|"
                         r"secret_?key|private_?key|client_?secret|auth_?key|credentials?)(?:_[a-z0-9]+)?$")
_NOT_CREDENTIAL = re.compile(r"(?i)(?:_id|_at|_on|_date|_type|_expires?|_expiry|_ttl|_count|_len|_hint|_policy|"
                             r"_changed|_required|_reset_at|_version|_name|_url)$|^(?:is|has)_")
_HASH_COLUMN = re.compile(r"(?i)hash|digest|crypt|salted|_md5|_sha")
_HEX_DIGEST = re.compile(rb"^(?:[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128}|md5[0-9a-f]{32}|\*[0-9A-F]{40})$")
_COPY = re.compile(rb"(?im)^COPY[ \t]+(?P<table>[^\s(]+)[ \t]*\((?P<cols>[^)\n]*)\)[ \t]+FROM[ \t]+stdin;[ \t]*\r?\n")
_INSERT = re.compile(rb"(?i)INSERT[ \t]+(?:IGNORE[ \t]+)?INTO[ \t]+(?P<table>[^\s(]+)[ \t]*(?:\((?P<cols>[^)]*)\)[ \t]*)?"
                     rb"VALUES[ \t]*")
_CREATE = re.compile(rb"(?i)CREATE[ \t]+TABLE[ \t]+(?:IF[ \t]+NOT[ \t]+EXISTS[ \t]+)?(?P<table>[^\s(]+)[ \t]*\(")
_COLUMN_LINE = re.compile(rb"(?m)^[ \t]*(?P<name>[`\"\[]?[A-Za-z_][A-Za-z0-9_]*[`\"\]]?)[ \t]+[A-Za-z]")
_NOT_COLUMN = re.compile(rb"(?i)^(?:PRIMARY|KEY|UNIQUE|CONSTRAINT|INDEX|FOREIGN|CHECK|FULLTEXT|SPATIAL)$")
MAX_ROW = 1 << 16  # a VALUES tuple longer than this is not parsed

Found = Iterator[tuple[str, int, int]]


def may_hold_rows(path: Optional[str], buf: bytes) -> bool:
    return bool(path) and path.lower().endswith(EXT) and (b"COPY " in buf or b"INSERT " in buf or b"insert " in buf)


def credential_values(buf: bytes) -> Found:
    yield from _copy_rows(buf)
    tables = _create_tables(buf)
    for m in _INSERT.finditer(buf):
        cols = _names(m.group("cols")) if m.group("cols") is not None else tables.get(_name(m.group("table")))
        wanted = _wanted(cols or [])
        if wanted:
            yield from _judged(buf, _tuples(buf, m.end()), wanted)


def _copy_rows(buf: bytes) -> Found:
    for m in _COPY.finditer(buf):
        wanted = _wanted(_names(m.group("cols")))
        if not wanted:
            continue
        end = buf.find(b"\n\\.", m.end() - 1)
        end = len(buf) if end < 0 else end
        rows = []
        for row in re.finditer(rb"[^\n]+", buf[m.end():end]):
            at, fields = m.end() + row.start(), []
            for field in re.finditer(rb"[^\t\r]*", row.group()):
                if field.start() == 0 or row.group()[field.start() - 1:field.start()] == b"\t":
                    fields.append((at + field.start(), at + field.end()))
            rows.append(fields)
        yield from _judged(buf, rows, wanted, null=b"\\N")


def _judged(buf: bytes, rows, wanted: dict[int, str], null: bytes = b"NULL") -> Found:
    for fields in rows:
        for i, column in wanted.items():
            if i >= len(fields):
                continue
            start, end = fields[i]
            value = buf[start:end]
            if len(value) < 4 or value.upper() == null.upper() or is_placeholder(value):
                continue
            hashed = _HASH_COLUMN.search(column) or looks_like_hash(value) or _HEX_DIGEST.match(value)
            yield (HASHED if hashed else PLAIN), start, end


def _wanted(cols: list[str]) -> dict[int, str]:
    return {i: c for i, c in enumerate(cols) if _CREDENTIAL.match(c) and not _NOT_CREDENTIAL.search(c)}


def _name(raw: bytes) -> str:
    """A table or column name without quotes and schema: `public`.`users` -> users."""
    return raw.decode("latin-1").rsplit(".", 1)[-1].strip().strip('`"[]')


def _names(raw: bytes) -> list[str]:
    return [_name(c) for c in raw.split(b",")]


def _create_tables(buf: bytes) -> dict[str, list[str]]:
    tables = {}
    for m in _CREATE.finditer(buf):
        end = buf.find(b";", m.end(), m.end() + MAX_ROW)
        body = buf[m.end():end if end > 0 else m.end() + MAX_ROW]
        cols = [_name(c.group("name")) for c in _COLUMN_LINE.finditer(body)
                if not _NOT_COLUMN.match(c.group("name").strip(b"`\"[]"))]
        tables[_name(m.group("table"))] = cols
    return tables


def _tuples(buf: bytes, at: int) -> Iterator[list[tuple[int, int]]]:
    """The value spans of each `(v, v, ...)` of a VALUES list starting at `at`, strings unquoted."""
    n = len(buf)
    while at < n and buf[at:at + 1] == b"(":
        row, at = _row(buf, at + 1, min(n, at + MAX_ROW))
        if row is None:
            return
        yield row
        while at < n and buf[at:at + 1] in b" \t\r\n":
            at += 1
        if buf[at:at + 1] != b",":
            return
        at += 1
        while at < n and buf[at:at + 1] in b" \t\r\n":
            at += 1


def _row(buf: bytes, at: int, stop: int) -> tuple[Optional[list[tuple[int, int]]], int]:
    fields, depth = [], 0
    start = at
    while at < stop:
        c = buf[at]
        if c == 0x27:  # a quoted string: '' and \' escapes
            end = at + 1
            while end < stop and not (buf[end] == 0x27 and buf[end + 1:end + 2] != b"'"):
                end += 2 if buf[end] in (0x5C, 0x27) else 1
            if end >= stop:
                return None, at
            fields.append((at + 1, end))
            at, start = end + 1, -1
            continue
        if c == 0x28:
            depth += 1
        elif c == 0x29 and depth:
            depth -= 1
        elif (c == 0x2C or c == 0x29) and not depth:
            if start >= 0:
                fields.append(_stripped(buf, start, at))
            if c == 0x29:
                return fields, at + 1
            start = at + 1
        at += 1
    return None, at


def _stripped(buf: bytes, start: int, end: int) -> tuple[int, int]:
    while start < end and buf[start] in b" \t\r\n":
        start += 1
    while end > start and buf[end - 1] in b" \t\r\n":
        end -= 1
    return start, end
