"""`--verify`: findings in, the same findings with `verification` out.

Per finding whose rule has a verifier: its paired finding from the same place when the verifier
needs one (AWS key id + secret key), canary check, cache, then one request to the provider,
paced per provider (`rps`; providers are asked in parallel, one thread each), retried on 429/5xx (at most `retries` times), every wait bounded by
the call timeout and the scan's --timeout. A value seen twice is asked about once.
"""
from __future__ import annotations

import datetime
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable, Optional

from scanner.models import Finding, LocationKind, Verification
from scanner.verify.interface import ERROR, UNKNOWN, Answer, Credential, Verifier, VerifyError
from scanner.verify.store import VerifyStore, cache_key
from scanner.verify.transport import Transport, scrub

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
MAX_WAIT = 5.0  # longest Retry-After honoured


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def place(f: Finding) -> tuple:
    """Where a pair must be found together: the same file of the same layer, or the image config."""
    h = f.hit
    if h.kind is LocationKind.FILE:
        return (f.image, None if f.layer is None else f.layer.index, h.path, h.inner_path)
    return (f.image, "config")


class Engine:
    def __init__(self, verifiers: list[Verifier], transport: Optional[Transport] = None,
                 store: Optional[VerifyStore] = None, endpoints: Optional[dict[str, str]] = None,
                 rps: float = 2.0, timeout: float = 10.0, retries: int = 2,
                 deadline: Optional[float] = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.by_rule: dict[str, Verifier] = {}
        for v in verifiers:
            for rule in v.rules:
                self.by_rule.setdefault(rule, v)
        self.verifiers = verifiers
        self.transport = transport or Transport()
        self.store = store or VerifyStore(None)
        self.endpoints = dict(endpoints or {})
        self.interval = 1.0 / rps if rps > 0 else 0.0
        self.timeout, self.retries, self.deadline, self.sleep = timeout, retries, deadline, sleep
        self.next_at: dict[str, float] = {}
        self.memo: dict[str, Verification] = {}
        self.calls = 0  # requests sent (tests, and the summary line)
        self.lock = threading.Lock()

    def __call__(self, findings: list[Finding]) -> list[Finding]:
        return self.verify(findings)

    def verify(self, findings: list[Finding]) -> list[Finding]:
        partners: dict[tuple, list[Finding]] = {}
        for f in findings:
            partners.setdefault((place(f), f.hit.rule_id), []).append(f)
        self._ask_all(findings, partners)
        out = list(findings)
        paired: dict[tuple, Verification] = {}  # (place, rule id, secret sha) of partners -> result
        for i, f in enumerate(findings):
            v = self.by_rule.get(f.hit.rule_id)
            if v is None or f.hit.secret.value is None:
                continue
            mates = partners.get((place(f), v.pair), []) if v.pair else []
            result = self._verify_one(v, f, mates)
            out[i] = replace(f, verification=result)
            for m in mates:
                paired.setdefault((place(m), m.hit.rule_id, m.hit.secret.sha256), result)
        for i, f in enumerate(out):  # a partner with no verifier of its own says what its pair found
            if f.verification is None and f.hit.rule_id not in self.by_rule:
                got = paired.get((place(f), f.hit.rule_id, f.hit.secret.sha256))
                if got is not None:
                    out[i] = replace(f, verification=got)
        self.store.save()
        return out

    def _ask_all(self, findings: list[Finding], partners: dict[tuple, list[Finding]]) -> None:
        """Every distinct question first, providers in parallel, each paced on its own thread."""
        groups: dict[str, dict[str, tuple]] = {}
        for f in findings:
            v = self.by_rule.get(f.hit.rule_id)
            if v is None or f.hit.secret.value is None:
                continue
            for job in self._jobs(v, f, partners.get((place(f), v.pair), []) if v.pair else []):
                groups.setdefault(v.provider, {}).setdefault(cache_key(v.id, job[1], job[2]), (v, *job))
        if len(groups) > 1:
            with ThreadPoolExecutor(min(8, len(groups))) as pool:
                list(pool.map(lambda jobs: [self.check(*job) for job in jobs.values()], groups.values()))

    @staticmethod
    def _jobs(v: Verifier, f: Finding, mates: list[Finding]) -> list[tuple[Credential, str, str]]:
        if v.pair is None:
            return [(Credential(f.hit.secret.value or ""), f.hit.secret.sha256, "")]
        return [(Credential(f.hit.secret.value or "", m.hit.secret.value), f.hit.secret.sha256, m.hit.secret.sha256)
                for m in mates if m.hit.secret.value][:3]

    def _verify_one(self, v: Verifier, f: Finding, mates: list[Finding]) -> Verification:
        jobs = self._jobs(v, f, mates)
        if not jobs:
            return Verification(UNKNOWN, "", f"not checked: needs a {v.pair} finding in the same place")
        results = [self.check(v, *job) for job in jobs]
        rank = {"live": 0, "unknown": 1, "error": 2, "invalid": 3}
        return min(results, key=lambda r: rank.get(r.status, 9))

    def check(self, v: Verifier, credential: Credential, secret_sha: str, partner_sha: str) -> Verification:
        if v.canary(credential):
            return Verification(UNKNOWN, "", "known canary token, not called", now_iso(), canary=True)
        key = cache_key(v.id, secret_sha, partner_sha)
        if key in self.memo:
            return self.memo[key]
        cached = self.store.get(key)
        if cached is not None:
            self.memo[key] = cached
            return cached
        result = self._ask(v, credential)
        self.memo[key] = result
        self.store.put(key, result)
        return result

    def _ask(self, v: Verifier, credential: Credential) -> Verification:
        base = self.endpoints.get(v.id) or self.endpoints.get(v.provider)
        try:
            request = v.request(credential, base)
        except VerifyError as exc:
            return Verification(UNKNOWN, "", scrub(f"not checked: {exc}", (credential.secret, credential.partner or "")))
        host = request.url.split("/")[2].rsplit("@", 1)[-1]
        endpoint = scrub(host, request.secrets)
        for attempt in range(self.retries + 1):
            timeout = self._budget()
            if timeout is None:
                return Verification(ERROR, endpoint, "not checked: --timeout reached", now_iso())
            self._pace(v.provider)
            try:
                with self.lock:
                    self.calls += 1
                answer = self.transport.send(request, timeout, allow_private=base is not None)
            except VerifyError as exc:
                if attempt < self.retries and "timed out" not in str(exc).lower() and "refused" not in str(exc):
                    self._wait(0.5 * 2 ** attempt)
                    continue
                return Verification(ERROR, endpoint, scrub(str(exc), request.secrets), now_iso())
            if answer.status in RETRY_STATUS and attempt < self.retries:
                self._wait(_retry_after(answer, 0.5 * 2 ** attempt))
                continue
            status, detail = v.judge(answer)
            return Verification(status, endpoint, scrub(detail, request.secrets), now_iso())
        raise AssertionError("unreachable")  # pragma: no cover

    def _budget(self) -> Optional[float]:
        if self.deadline is None:
            return self.timeout
        left = self.deadline - time.monotonic()
        return None if left <= 0.05 else min(self.timeout, left)

    def _wait(self, seconds: float) -> None:
        if self.deadline is not None:
            seconds = min(seconds, max(0.0, self.deadline - time.monotonic()))
        if seconds > 0:
            self.sleep(seconds)

    def _pace(self, provider: str) -> None:
        """At most `rps` requests a second to one provider."""
        now = time.monotonic()
        at = self.next_at.get(provider, now)
        if at > now:
            self._wait(at - now)
        self.next_at[provider] = max(at, now) + self.interval


def _retry_after(answer: Answer, default: float) -> float:
    try:
        return min(MAX_WAIT, max(0.0, float(answer.headers.get("retry-after", default))))
    except ValueError:
        return default
