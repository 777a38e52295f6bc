"""The pre-push gate: which findings are accepted (baseline, allowlist, base image) and whether
what is left fails the run.

Default policy: every finding fails, whatever its status. A secret in a deleted or overwritten
layer is still in the image, readable by anyone who pulls it: `--status present` narrows the gate
to what a running container sees, for teams that rotate such secrets instead of rebuilding.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Iterable, Optional

from scanner.errors import ExitCode
from scanner.models import Finding, ImageResult, ScanResult, Severity, Status
from scanner.redact import escape


@dataclass(frozen=True)
class Policy:
    fail_on: Optional[Severity] = Severity.LOW  # None: never fail on findings
    statuses: frozenset[Status] = frozenset(Status)
    fail_on_incomplete: bool = False
    fail_on_triaged: bool = False  # vendor / known-public findings gate only when asked
    fail_on_verified: bool = False  # --verify: keys the provider rejected (invalid) do not gate


@dataclass(frozen=True)
class Allowlist:
    """A user's accepted findings: by secret hash, rule, or path pattern (all optional)."""

    secrets: frozenset[str] = frozenset()  # sha256 hex of the secret
    rules: frozenset[str] = frozenset()
    paths: tuple[re.Pattern, ...] = field(default=())

    def matches(self, f: Finding) -> bool:
        if f.hit.secret.sha256 in self.secrets or f.hit.rule_id in self.rules:
            return True
        return any(p.search(f.hit.path) for p in self.paths)


@dataclass(frozen=True)
class BaseImage:
    """What an image inherits from its base: layers by diff_id, config/history hits by (path, secret)."""

    diff_ids: frozenset[str] = frozenset()
    config_hits: frozenset[tuple[str, str]] = frozenset()


def suppress(result: ScanResult, baseline: Iterable[str] = (), allowlist: Optional[Allowlist] = None,
             base: BaseImage = BaseImage()) -> ScanResult:
    """Mark accepted findings `suppressed` (they stay in the report, counted apart)."""
    known = set(baseline)
    images = []
    for image in result.images:
        findings = tuple(replace(f, suppressed=_reason(f, known, allowlist, base)) for f in image.findings)
        images.append(replace(image, findings=findings))
    return replace(result, images=tuple(images))


def _reason(f: Finding, baseline: set[str], allowlist: Optional[Allowlist], base: BaseImage) -> Optional[str]:
    if f.layer is not None and f.layer.diff_id in base.diff_ids and f.hit.kind.value == "file":
        return "inherited"
    if f.hit.kind.value != "file" and (f.hit.path, f.hit.secret.sha256) in base.config_hits:
        return "inherited"
    if f.fingerprint in baseline:
        return "baseline"
    if allowlist is not None and allowlist.matches(f):
        return "allowlist"
    return None


def gating(result: ScanResult, policy: Policy) -> list[Finding]:
    """The active findings the policy fails on."""
    if policy.fail_on is None:
        return []
    return [f for f in result.active
            if f.hit.severity.rank >= policy.fail_on.rank and f.status in policy.statuses
            and (policy.fail_on_triaged or not f.triage) and not _rejected(f, policy)]


def _rejected(f: Finding, policy: Policy) -> bool:
    """Only a definite `invalid` answer lets a finding pass: unknown, error and unchecked still gate."""
    return policy.fail_on_verified and f.verification is not None and f.verification.status == "invalid"


def mark(result: ScanResult, policy: Policy) -> ScanResult:
    """Every finding flagged `gating` or not, as the policy decides: what the reports mark."""
    fails = {id(f) for f in gating(result, policy)}
    images = tuple(replace(i, findings=tuple(replace(f, gating=id(f) in fails) for f in i.findings))
                   for i in result.images)
    return replace(result, images=images)


def incomplete(result: ScanResult) -> list[ImageResult]:
    return [i for i in result.images if i.skipped]


@dataclass(frozen=True)
class Verdict:
    """What the gate decided, and why: the findings that fail it, the images it could not fully read."""

    code: ExitCode
    gating: tuple[Finding, ...] = ()
    incomplete: tuple[ImageResult, ...] = ()  # only when the policy asks for full coverage
    policy: Policy = Policy()
    active: int = 0  # findings not accepted by a baseline, an allowlist or a base image
    triaged: int = 0  # of those, the vendor / known-public ones

    def line(self) -> str:
        """The last line of every scan, what the exit status means:
        `gate: FAIL (exit 1): 6 findings at or above high in present, deleted, history`."""
        word = "pass" if self.code is ExitCode.CLEAN else "FAIL"
        head = f"gate: {word} (exit {int(self.code)}): "
        if self.incomplete:
            return head + f"{_n(self.skipped, 'item')} not scanned in {_n(len(self.incomplete), 'image')} (--fail-on-incomplete)"
        p = self.policy
        if self.gating:
            return head + (f"{_n(len(self.gating), 'finding')} at or above {p.fail_on.value if p.fail_on else '?'} "
                           f"in {_statuses(f.status for f in self.gating)}")
        if not self.active:
            return head + "no findings"
        if p.fail_on is None:
            return head + f"{_n(self.active, 'finding')}, none gating (--fail-on never)"
        narrowed = f" in {_statuses(p.statuses)}" if p.statuses != frozenset(Status) else ""
        triaged = f" ({self.triaged} triaged: not gating)" if self.triaged and not p.fail_on_triaged else ""
        return head + f"{_n(self.active, 'finding')}, none at or above {p.fail_on.value}{narrowed}{triaged}"

    @property
    def skipped(self) -> int:
        return sum(len(i.skipped) for i in self.incomplete)

    def reasons(self) -> list[str]:
        """One line per blocking finding or incompletely read image: what a blocked push prints."""
        lines = [f"{escape(i.ref)}: {len(i.skipped)} item(s) not scanned (--fail-on-incomplete)" for i in self.incomplete]
        for f in sorted(self.gating, key=lambda f: (-f.hit.severity.rank, f.image, f.hit.path)):
            where = escape(f.hit.path + (f"!{f.hit.inner_path}" if f.hit.inner_path else ""))
            layer = f", layer {f.layer.index}" if f.layer is not None else ""
            lines.append(f"{escape(f.image)}: {f.hit.severity.value} {f.hit.rule_id} at {where} "
                         f"({f.status.value}{layer}) fingerprint {f.fingerprint}")
        return lines


def verdict(result: ScanResult, policy: Policy) -> Verdict:
    """2 when coverage is incomplete and the policy asks for full coverage, else 1 on gating findings."""
    blocking = tuple(gating(result, policy))
    partial = tuple(incomplete(result)) if policy.fail_on_incomplete else ()
    code = ExitCode.ERROR if partial else ExitCode.FINDINGS if blocking else ExitCode.CLEAN
    return Verdict(code, blocking, partial, policy, len(result.active), sum(1 for f in result.active if f.triage))


def _n(count: int, what: str) -> str:
    return f"{count} {what}" + ("" if count == 1 else "s")


def _statuses(statuses: Iterable[Status]) -> str:
    given = set(statuses)
    return ", ".join(s.value for s in Status if s in given)


def decide(result: ScanResult, policy: Policy) -> ExitCode:
    return verdict(result, policy).code
