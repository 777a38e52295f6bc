"""Keyword finders: where each of a list of keywords occurs in a buffer, case-insensitively.

`HyperscanPrefilter` (one Hyperscan database of literals) or `PythonPrefilter` (a `bytes.find`
loop per keyword over the lower-cased buffer; the same ends). They serve the UTF-16 keyword test
of binaries, and `prefilter.PythonRulePrefilter` places the rules around their keywords with them.
"""
from __future__ import annotations

import os
from typing import Sequence

try:  # an optional fast path: same results without it
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform's wheels
    hyperscan = None

KeywordEnds = dict[int, list[int]]  # keyword index -> offsets just past each occurrence
KeywordRuns = dict[int, list[list[int]]]  # keyword index -> [first end, last end] of each cluster
RUN_GAP = 64  # occurrences of a keyword this close together make one cluster (one window)


def runs_of(found: KeywordEnds, gap: int = RUN_GAP) -> KeywordRuns:
    out: KeywordRuns = {}
    for kid, ends in found.items():
        runs: list[list[int]] = []
        for end in sorted(ends):
            if runs and end - runs[-1][1] <= gap:
                runs[-1][1] = end
            else:
                runs.append([end, end])
        out[kid] = runs
    return out


class PythonPrefilter:
    engine = "python"

    def __init__(self, keywords: Sequence[bytes]) -> None:
        self.keywords = [k.lower() for k in keywords]

    def find(self, buf: bytes) -> KeywordEnds:
        low = buf.lower()
        out: KeywordEnds = {}
        for i, k in enumerate(self.keywords):
            at = low.find(k)
            while at != -1:
                out.setdefault(i, []).append(at + len(k))
                at = low.find(k, at + 1)
        return out

    def find_runs(self, buf: bytes) -> KeywordRuns:
        return runs_of(self.find(buf))


class HyperscanPrefilter:
    engine = "hyperscan"

    def __init__(self, keywords: Sequence[bytes]) -> None:
        self.keywords = [k.lower() for k in keywords]
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=[hs_literal(k) for k in self.keywords],
            ids=list(range(len(self.keywords))),
            elements=len(self.keywords),
            flags=[hyperscan.HS_FLAG_CASELESS] * len(self.keywords),
        )
        self._scratch = hyperscan.Scratch(self._db)

    def find(self, buf: bytes) -> KeywordEnds:
        out: KeywordEnds = {}

        def on_match(kid: int, start: int, end: int, flags: int, context: object) -> None:
            out.setdefault(kid, []).append(end)

        if buf:
            self._db.scan(buf, match_event_handler=on_match, scratch=self._scratch)
        return out

    def __getstate__(self) -> dict:  # a compiled database does not pickle: rebuild in the worker
        return {"keywords": self.keywords}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["keywords"])


def hs_literal(keyword: bytes) -> bytes:
    return b"".join(b"\\x%02x" % c for c in keyword)


def make_prefilter(keywords: Sequence[bytes]):
    if hyperscan is not None and os.environ.get("LAYERSCAN_PREFILTER", "auto") != "python" and keywords:
        try:
            return HyperscanPrefilter(keywords)
        except Exception:  # hyperscan.error or a CPU it does not support: the fallback is exact too
            pass
    return PythonPrefilter(keywords)
