"""The compiled prefilter database kept in the cache dir (`RulePrefilter.store`), so that a warm
run does not compile the rules again; and read back only when it checks out.

The file is data from a directory that others may write (a CI cache restored from elsewhere): a
database rewritten to place nothing would blind every rule in every later scan. So a database read
back is used only when
- (with `LAYERSCAN_CACHE_KEY`) its HMAC-SHA256 seal is valid: checked before Hyperscan reads a byte;
- its tables fit together (keyword ids, rule indexes in range);
- it passes a self-test: every rule it claims to place is placed, in a window where the rule's own
  regex matches, on each of the rule's positive examples; every extra shape that Python's `re`
  finds in those examples is found. A rule it claims to place that has no example to check with
  fails it.
Else the rules are compiled again and the file is overwritten.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import platform
import re
from typing import TYPE_CHECKING, Any, Optional

from scanner.detectors.keywords import hyperscan

if TYPE_CHECKING:
    from scanner.detectors.prefilter import RulePrefilter

SEAL = b"hmac-sha256:"
KEEP = 8  # compiled databases kept in the cache dir (one per rule set in use): the last used


def stored_path(pf: "RulePrefilter") -> Optional[str]:
    if not pf.store:
        return None
    material = repr((pf._key(), hyperscan.__version__ if hasattr(hyperscan, "__version__") else "",
                     platform.machine())).encode()
    return os.path.join(pf.store, f"prefilter-{hashlib.sha256(material).hexdigest()[:32]}.hsdb")


def load(pf: "RulePrefilter") -> bool:
    """The database compiled by an earlier run into `pf` (tables and serialised database, not yet
    loaded into Hyperscan): a JSON head of the tables, then Hyperscan's serialised database. False
    (nothing set) for anything unreadable, unsealed under a key, or whose tables do not fit."""
    path = stored_path(pf)
    if path is None:
        return False
    try:
        with open(path, "rb") as f:
            data = _unsealed(os.path.basename(path), f.read(), pf.mac_key)
        size = int.from_bytes(data[:8], "big")
        head = json.loads(data[8:8 + size])
        tables = _tables(head, len(pf.patterns))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return False
    pf.by_keyword, pf.keyword_len, pf._filtered = tables
    pf._serialized = data[8 + size:]
    try:
        os.utime(path)  # used now: the last to be pruned
    except OSError:
        pass
    return True


def _unsealed(name: str, data: bytes, secret: Optional[bytes]) -> bytes:
    if not data.startswith(SEAL):
        if secret is not None:
            raise ValueError("not sealed")
        return data
    mac, _, payload = data[len(SEAL):].partition(b"\n")
    if secret is not None and not hmac.compare_digest(mac, _mac(secret, name, payload).encode()):
        raise ValueError("seal does not check out")
    return payload


def _mac(secret: bytes, name: str, payload: bytes) -> str:
    return hmac.new(secret, name.encode() + b"\0" + payload, "sha256").hexdigest()


def _tables(head: Any, rules: int) -> tuple[list[list[int]], list[int], set[int]]:
    """The head's tables, each checked: ValueError when they do not fit these rules."""
    by_keyword, keyword_len, filtered = head["by_keyword"], head["keyword_len"], head["filtered"]
    ok = (isinstance(by_keyword, list) and isinstance(keyword_len, list) and isinstance(filtered, list)
          and len(by_keyword) == len(keyword_len)
          and all(isinstance(ids, list) and all(_index(i, rules) for i in ids) for ids in by_keyword)
          and all(_index(n, 1 << 16) and n > 0 for n in keyword_len)
          and all(_index(i, rules) for i in filtered))
    if not ok:
        raise ValueError("tables that do not fit the rules")
    return by_keyword, keyword_len, set(filtered)


def _index(value: Any, bound: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < bound


def passes_self_test(pf: "RulePrefilter") -> bool:
    """The loaded database places each rule it claims to on the rule's own examples (see above)."""
    examples = [[e.encode("utf-8", "surrogateescape") for e in ex] for ex in pf.examples]
    try:
        for i in sorted(pf._filtered):
            rx = re.compile(pf.patterns[i])
            checked = [e for e in (examples[i] if i < len(examples) else []) if rx.search(e)]
            if not checked:
                return False  # nothing to check it with: do not trust a claim we cannot test
            for example in checked:
                spans = pf.scan(example).rules.get(i, [])
                if not any(rx.search(example, lo, hi) for lo, hi in spans):
                    return False
        corpus = b"\n".join(e for ex in examples for e in ex)
        found = pf.scan(corpus).shapes if corpus else {}
        return all(j in found for j, shape in enumerate(pf.shapes) if re.search(shape, corpus))
    except Exception:  # noqa: BLE001 - a database that reports ids no table knows: not ours
        return False


def save(pf: "RulePrefilter") -> None:
    path = stored_path(pf)
    if path is None:
        return
    head = json.dumps({"by_keyword": pf.by_keyword, "keyword_len": pf.keyword_len,
                       "filtered": sorted(pf._filtered)}).encode()
    payload = len(head).to_bytes(8, "big") + head + (pf._serialized or b"")
    if pf.mac_key is not None:
        payload = SEAL + _mac(pf.mac_key, os.path.basename(path), payload).encode() + b"\n" + payload
    try:
        os.makedirs(pf.store, mode=0o700, exist_ok=True)  # type: ignore[arg-type]
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except OSError:  # a read-only or full cache dir: compile next time too
        return
    prune(pf.store, KEEP)  # type: ignore[arg-type]


def prune(directory: str, keep: int) -> None:
    """Delete all but the `keep` compiled databases of `directory` used last: each new rule set
    (another layerscan version, extra rules) writes one, and the cache dir must not grow for ever."""
    try:
        names = [n for n in os.listdir(directory) if n.startswith("prefilter-") and n.endswith(".hsdb")]
        stored = sorted(names, key=lambda n: os.stat(os.path.join(directory, n)).st_mtime, reverse=True)
        for name in stored[keep:]:
            os.unlink(os.path.join(directory, name))
    except OSError:  # another process pruned first, a read-only directory: nothing to do
        pass
