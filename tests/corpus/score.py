"""Match a scan's findings against the corpus labels.

A plant is found when a finding at its location (path and member, or config entry), with its
status, carries the sha256 of its exact secret and is not triaged. A decoy is reported when any
untriaged finding sits at its location.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable

from tests.corpus.build import Corpus, Placed, Planted


@dataclass
class Score:
    found: dict[Planted, bool]
    reported: dict[Placed, list[str]]  # decoy -> rule ids of the untriaged findings at it

    def recall(self, plants: Iterable[Planted]) -> tuple[int, int]:
        plants = list(plants)
        return sum(self.found[p] for p in plants), len(plants)

    def by(self, attribute: str) -> dict[str, tuple[int, int]]:
        groups: dict[str, list[Planted]] = defaultdict(list)
        for p in self.found:
            groups[getattr(p, attribute)].append(p)
        return {key: self.recall(plants) for key, plants in sorted(groups.items())}

    @property
    def missed(self) -> list[Planted]:
        return [p for p, ok in self.found.items() if not ok]

    @property
    def noisy(self) -> dict[Placed, list[str]]:
        return {d: rules for d, rules in self.reported.items() if rules}


def score(corpus: Corpus, findings: Iterable) -> Score:
    """Match findings (the JSON report's dicts or `Finding` objects) against the labels."""
    seen: dict[tuple, set[str]] = defaultdict(set)
    at: dict[str, list[str]] = defaultdict(list)
    for f in findings:
        path, inner, status, sha, triage, rule = _fields(f)
        if triage:
            continue
        seen[(path, inner, status)].add(sha)
        at[path].append(rule)
    found = {p: p.sha256 in seen[(p.path, p.inner, p.status)] for p in corpus.plants}
    return Score(found, {d: at.get(d.path, []) for d in corpus.decoys})


def _fields(f) -> tuple:
    if isinstance(f, dict):
        loc = f["location"]
        return loc["path"], loc["inner_path"], f["status"], f["secret"]["sha256"], f.get("triage"), f["rule_id"]
    return f.hit.path, f.hit.inner_path, f.status.value, f.hit.secret.sha256, f.triage, f.hit.rule_id
