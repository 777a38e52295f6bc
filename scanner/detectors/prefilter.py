"""The prefilter: one pass over a whole buffer finds where each rule could match, so that rule
regexes run only in windows around those places.

`RulePrefilter` (Hyperscan): every rule's regex in prefilter mode, in one database, plus extra
shapes (the entropy detector's). `PythonRulePrefilter`, the fallback where Hyperscan does not
install: every rule around its keywords (one `bytes.find` loop per keyword over the lower-cased
buffer, `keywords.PythonPrefilter`); the same findings, slower. `LAYERSCAN_PREFILTER=python`
forces the fallback.
"""
from __future__ import annotations

import os
import re
from typing import Optional, Sequence

from scanner.detectors import stored
from scanner.detectors.keywords import KeywordEnds, KeywordRuns, PythonPrefilter, hs_literal, hyperscan, runs_of

Spans = list[tuple[int, int]]
_TRAILING_LOOKAHEAD = re.compile(rb"\(\?!(?:[^()\\]|\\.)*\)$")
_TRAILING_REPEAT = re.compile(rb"\{(\d+),(\d+)\}(\)*)$")
_LONG_REPEAT = re.compile(rb"(?<!\\)\{(\d+),(\d+)\}")
LONG_REPEAT = 64  # a bounded repeat this long makes Hyperscan's compile slow: unbounded in the superset


def superset_pattern(pattern: bytes) -> bytes:
    """A looser form of a rule's regex for Hyperscan's prefilter mode: whatever the rule matches has
    a prefix this matches, ending at most the rule's width after that prefix starts.

    The trailing lookahead goes (prefilter mode ignores it anyway) and the trailing repeat is cut to
    its minimum, so a long secret makes one report instead of one per character; long bounded
    repeats inside become unbounded, which compiles a hundred times faster."""
    pattern = _TRAILING_LOOKAHEAD.sub(b"", pattern)
    pattern = _TRAILING_REPEAT.sub(lambda m: b"{%s%s}%s" % (m.group(1), b",1" if m.group(1) == b"0" else b"",
                                                               m.group(3)), pattern)
    return _LONG_REPEAT.sub(lambda m: b"{%s,}" % m.group(1) if int(m.group(2)) >= LONG_REPEAT else m.group(0),
                            pattern)


_COMPILED: dict[tuple, dict] = {}  # databases compiled in this process (serialised), by their patterns


class Prescan:
    """What one pass over a buffer found: per rule, the windows its regex needs; per extra shape
    (the entropy detector's), the end offset of each match."""

    __slots__ = ("rules", "shapes")

    def __init__(self, rules: dict[int, Spans], shapes: KeywordEnds) -> None:
        self.rules, self.shapes = rules, shapes

    @property
    def empty(self) -> bool:
        """Nothing found: no rule placed, no shape seen (most buffers)."""
        return not self.rules and not self.shapes


class RulePrefilter:
    """Every rule's prefilter in one Hyperscan database, scanned once per buffer.

    A rule whose regex Hyperscan takes in prefilter mode (`superset_pattern`) runs only around the
    places its superset matched, within `widths[i]` of them: far fewer places than its keywords
    (`pass` is everywhere in code, `password = "...` is not). A rule it refuses runs around its
    keywords, as `PythonRulePrefilter` runs every rule. Extra shapes (`add_shape`) ride along."""

    engine = "hyperscan"
    SHAPE_BASE, KEYWORD_BASE = 1 << 20, 2 << 20
    KEEP_STORED = stored.KEEP  # compiled databases kept in the cache dir (one per rule set in use)

    def __init__(self, patterns: Sequence[bytes], keywords: Sequence[Sequence[bytes]],
                 widths: Sequence[int], examples: Sequence[Sequence[str]] = (),
                 by_keywords: Sequence[bool] = ()) -> None:
        self.patterns, self.widths = list(patterns), list(widths)
        # rules placed by their keywords, never by their regex (provider context rules: a name
        # such as `mailjet` is rare enough, and a thousand context regexes take Hyperscan minutes)
        self.by_keywords = frozenset(i for i, flag in enumerate(by_keywords) if flag)
        self.examples = [list(e) for e in examples]  # each rule's positive examples: a stored database's self-test
        self.keywords = [sorted({k.lower() for k in ks}) for ks in keywords]
        self.shapes: list[bytes] = []
        self._db = self._scratch = None
        self._serialized: Optional[bytes] = None
        self.store: Optional[str] = None  # a directory to keep the compiled database in (the cache dir)
        self.mac_key: Optional[bytes] = None  # LAYERSCAN_CACHE_KEY: the kept database is sealed with it

    def add_shape(self, pattern: bytes) -> int:
        """Another pattern for the same pass (prefilter mode); its ends come back in `shapes`."""
        self.shapes.append(pattern)
        self._db = self._serialized = None
        return len(self.shapes) - 1

    def unfiltered(self) -> list[int]:
        """Rules no pass can place: they run over every whole buffer."""
        self._ready()
        return [i for i in range(len(self.patterns)) if i not in self._filtered]

    def _ready(self) -> None:
        if self._db is None:
            self._compile()

    def _keyword_table(self, rules: Sequence[int]) -> list[bytes]:
        """Keyword ids for the rules that are placed by their keywords; fills `by_keyword`."""
        index: dict[bytes, int] = {}
        self.by_keyword: list[list[int]] = []
        for i in rules:
            for k in self.keywords[i]:
                kid = index.setdefault(k, len(index))
                if kid == len(self.by_keyword):
                    self.by_keyword.append([])
                self.by_keyword[kid].append(i)
        self.keyword_len = [len(k) for k in index]
        return list(index)

    def _compile(self) -> None:
        if self._serialized is None and self._key() in _COMPILED:
            self.__dict__.update(_COMPILED[self._key()])
        from_disk = self._serialized is None and stored.load(self)  # checked before it is used
        if self._serialized is not None:
            try:
                self._db = hyperscan.loadb(self._serialized, hyperscan.HS_MODE_BLOCK)
                self._scratch = hyperscan.Scratch(self._db)
                if not from_disk or stored.passes_self_test(self):
                    return
            except hyperscan.error:  # compiled for another CPU: compile here
                pass
            self._db = self._scratch = self._serialized = None
        supersets = [superset_pattern(p) for p in self.patterns]
        try:  # all rules at once: Hyperscan usually takes every one of them
            self._build(supersets, set(range(len(supersets))) - self.by_keywords)
        except hyperscan.error:
            ok = {i for i, superset in enumerate(supersets)
                  if i not in self.by_keywords and _compiles([superset], self.PREFILTER)}
            self._build(supersets, ok)
        self._serialized = hyperscan.dumpb(self._db)
        _COMPILED[self._key()] = self._compiled_state()
        stored.save(self)  # over a file that did not check out, too

    def _compiled_state(self) -> dict:
        return {"_serialized": self._serialized, "by_keyword": self.by_keyword,
                "keyword_len": self.keyword_len, "_filtered": self._filtered}

    PREFILTER = (hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_ALLOWEMPTY) if hyperscan else 0

    def _build(self, supersets: list[bytes], ok: set[int]) -> None:
        """The database: the supersets in `ok`; keywords for the other rules that have some (the
        rest run over whole buffers: `unfiltered`); the extra shapes."""
        exprs, ids, flags = [], [], []
        for i in sorted(ok):
            exprs.append(supersets[i]), ids.append(i), flags.append(self.PREFILTER)
        by_keyword = [i for i in range(len(supersets)) if i not in ok and self.keywords[i]]
        for kid, k in enumerate(self._keyword_table(by_keyword)):
            exprs.append(hs_literal(k)), ids.append(self.KEYWORD_BASE + kid), flags.append(hyperscan.HS_FLAG_CASELESS)
        for j, shape in enumerate(self.shapes):
            exprs.append(shape), ids.append(self.SHAPE_BASE + j), flags.append(self.PREFILTER)
        self._filtered = ok | set(by_keyword)
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=exprs, ids=ids, elements=len(exprs), flags=flags)
        self._db, self._scratch = db, hyperscan.Scratch(db)

    def _key(self) -> tuple:
        return (type(self).__name__, tuple(self.patterns), tuple(map(tuple, self.keywords)), tuple(self.shapes),
                tuple(sorted(self.by_keywords)))

    def scan(self, buf: bytes) -> Prescan:
        self._ready()
        found: KeywordEnds = {}

        def on_match(i: int, start: int, end: int, flags: int, context: object) -> None:
            found.setdefault(i, []).append(end)

        if buf:
            self._db.scan(buf, match_event_handler=on_match, scratch=self._scratch)
        if not found:
            return Prescan({}, {})
        shapes = {i - self.SHAPE_BASE: found.pop(i) for i in [i for i in found if self.SHAPE_BASE <= i < self.KEYWORD_BASE]}
        return Prescan(self._spans(runs_of(found), len(buf)), shapes)

    def _spans(self, runs: KeywordRuns, size: int) -> dict[int, Spans]:
        """Windows per rule: within its width of its superset's ends, or around its keywords
        (from `width` before a keyword's start to `width` after it)."""
        out: dict[int, list[tuple[int, int]]] = {}
        for i, clusters in runs.items():
            if i < self.SHAPE_BASE:
                if i >= len(self.widths):  # an id no table knows (a database read back from disk): ignored
                    continue
                width = self.widths[i]
                out.setdefault(i, []).extend((first - width, last + width) for first, last in clusters)
                continue
            kid = i - self.KEYWORD_BASE
            if kid >= len(self.keyword_len):
                continue
            klen = self.keyword_len[kid]
            for r in self.by_keyword[kid]:
                width = self.widths[r]
                out.setdefault(r, []).extend((first - klen - width, last - klen + width) for first, last in clusters)
        return {i: merge_spans(spans, size) for i, spans in out.items()}

    def __getstate__(self) -> dict:  # a compiled database does not pickle: its serialised form does
        if self._db is not None and self._serialized is None:
            self._serialized = hyperscan.dumpb(self._db)
        state = {k: getattr(self, k) for k in ("patterns", "keywords", "widths", "shapes", "_serialized", "store",
                                               "mac_key", "examples", "by_keywords")}
        if self._serialized is not None:
            state.update(by_keyword=self.by_keyword, keyword_len=self.keyword_len, _filtered=self._filtered)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._db = self._scratch = None


class PythonRulePrefilter(RulePrefilter):
    """The same answers without Hyperscan: every rule runs around its keywords (`bytes.find` in
    the lower-cased buffer), rules without keywords over whole buffers, shapes with `re`."""

    engine = "python"

    def _compile(self) -> None:  # nothing worth keeping on disk
        keyed = [i for i, ks in enumerate(self.keywords) if ks]
        self._find = PythonPrefilter(self._keyword_table(keyed))
        self._shape_res = [re.compile(s) for s in self.shapes]
        self._filtered = set(keyed)
        self._db = True

    def scan(self, buf: bytes) -> Prescan:
        self._ready()
        runs = {self.KEYWORD_BASE + kid: r for kid, r in self._find.find_runs(buf).items()}
        shapes = {j: ends for j, rx in enumerate(self._shape_res) if (ends := [m.end() for m in rx.finditer(buf)])}
        return Prescan(self._spans(runs, len(buf)), shapes)

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in ("patterns", "keywords", "widths", "shapes", "examples")} | {
            "_serialized": None, "store": None, "mac_key": None}


prune_stored = stored.prune


def merge_spans(spans: list[tuple[int, int]], size: int) -> Spans:
    """Sorted, overlapping or touching spans joined, clipped to [0, size]."""
    out: list[list[int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1][1] = hi
        else:
            out.append([lo, hi])
    return [(lo if lo > 0 else 0, hi if hi < size else size) for lo, hi in out]


def _compiles(patterns: list[bytes], flags: int) -> bool:
    if not patterns:
        return True
    try:
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=patterns, ids=list(range(len(patterns))), elements=len(patterns),
                   flags=[flags] * len(patterns))
        return True
    except Exception:  # a construct even prefilter mode refuses
        return False


def make_rule_prefilter(patterns: Sequence[bytes], keywords: Sequence[Sequence[bytes]],
                        widths: Sequence[int], examples: Sequence[Sequence[str]] = (),
                        by_keywords: Sequence[bool] = ()) -> RulePrefilter:
    """`examples`: each rule's positive examples, the self-test of a database read from the cache dir;
    `by_keywords`: which rules are placed by their keywords alone."""
    if hyperscan is not None and os.environ.get("LAYERSCAN_PREFILTER", "auto") != "python":
        return RulePrefilter(patterns, keywords, widths, examples, by_keywords)
    return PythonRulePrefilter(patterns, keywords, widths, examples, by_keywords)
