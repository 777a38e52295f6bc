"""One secret, many sightings: findings grouped by `secret.sha256`, across places and images.

A responder asks "where is this key?", not "what is at this path?": the same token in a deleted
`.env`, a build arg and an `ENV` line of three images is one secret to revoke, seen nine times.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Iterable, Optional

from scanner.models import Finding, Severity, Status


class GroupBy(str, enum.Enum):
    FINDING = "finding"  # one row per finding (the default)
    SECRET = "secret"  # one block per secret, its sightings below it


@dataclass(frozen=True)
class SecretGroup:
    sha256: str
    redacted: str
    value: Optional[str]  # only from a result made with --reveal
    severity: Severity  # the highest of its sightings
    rule_ids: tuple[str, ...]  # in order of first sighting
    sightings: tuple[Finding, ...]  # in report order

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f.image for f in self.sightings))

    @property
    def visible(self) -> bool:
        """Present in a final filesystem or in a config: what a running container exposes."""
        return any(f.status in (Status.PRESENT, Status.CONFIG) for f in self.sightings)

    @property
    def first_added(self) -> Optional[Finding]:
        """The sighting in the lowest layer (config-only secrets: the first sighting)."""
        layered = [f for f in self.sightings if f.layer is not None]
        return min(layered, key=lambda f: f.layer.index) if layered else (self.sightings[0] if self.sightings else None)


def group_by_secret(findings: Iterable[Finding]) -> list[SecretGroup]:
    """Groups in order: most severe first, then most sightings, then first seen."""
    order: dict[str, list[Finding]] = {}
    for f in findings:
        order.setdefault(f.hit.secret.sha256, []).append(f)
    groups = [_group(sha, fs) for sha, fs in order.items()]
    first = {sha: i for i, sha in enumerate(order)}
    return sorted(groups, key=lambda g: (-g.severity.rank, -len(g.sightings), first[g.sha256]))


def _group(sha: str, findings: list[Finding]) -> SecretGroup:
    secret = findings[0].hit.secret
    value = next((f.hit.secret.value for f in findings if f.hit.secret.value is not None), None)
    severity = max((f.hit.severity for f in findings), key=lambda s: s.rank)
    rules = tuple(dict.fromkeys(f.hit.rule_id for f in findings))
    return SecretGroup(sha, secret.redacted, value, severity, rules, tuple(findings))
