"""The gate of one manifest `PUT`: the images it makes (an image, or every child of an index),
read back from the upstream, scanned by the same pipeline and layer cache as `layerscan scan`,
judged by the repository's policy. Runs on a scan thread: everything here is blocking.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterator, Optional

from scanner.cache import LayerCache
from scanner.detectors.rules import RuleSet
from scanner.errors import LayerscanError
from scanner.gate import Allowlist, Verdict, suppress, verdict
from scanner.limits import LimitError
from scanner.models import Image, ScanResult
from scanner.pipeline import ScanOptions, Scanner
from scanner.serve.layercache import ServeCache
from scanner.serve.policy import RepositoryPolicy
from scanner.sources.auth import Credentials
from scanner.sources.oci import INDEX_TYPES, MANIFEST_TYPES
from scanner.sources.registry import REFERENCE_TYPE, artifact_from, fetch_manifest, manifest_image
from scanner.sources.registry_http import Endpoint, RegistryClient, sha256_digest
from scanner.sources.stores import parse_json

IMAGE_CONFIGS = {"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"}
SHOWN = 5  # blocking findings named in a denial; the rest are counted


@dataclass(frozen=True)
class Push:
    """A manifest on its way to the upstream."""

    repository: str
    reference: str  # tag or digest, as the client put it
    body: bytes
    media_type: str  # the client's Content-Type
    authorization: str = field(default="", repr=False)  # the client's, as is

    @property
    def digest(self) -> str:
        return sha256_digest(self.body)

    @property
    def name(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.repository}{sep}{self.reference}"


@dataclass(frozen=True)
class Decision:
    verdict: str  # pass, deny, timeout-allow, timeout-deny, error
    message: str  # for the client (a denial's reason) and the log
    seconds: float
    result: Optional[ScanResult] = None
    gate: Optional[Verdict] = None

    @property
    def allowed(self) -> bool:
        return self.verdict in ("pass", "timeout-allow")


class Checker:
    def __init__(self, rules: RuleSet, options: ScanOptions, endpoint: Endpoint,
                 cache_factory: Callable[[], LayerCache], allowlist: Allowlist = Allowlist(),
                 upstream_credentials: Optional[Credentials] = None) -> None:
        self.rules, self.options, self.endpoint = rules, options, endpoint
        self.allowlist, self.upstream_credentials = allowlist, upstream_credentials
        self._cache_factory = cache_factory
        self._local = threading.local()  # a layer cache per scan thread (SQLite connections are)

    def check(self, push: Push, gate: RepositoryPolicy, timeout: float) -> Decision:
        began = time.monotonic()
        cache = self._cache()
        scanner = Scanner(self.rules, replace(self.options, timeout=timeout), None, cache)
        try:
            result = scanner.scan_images(self.images(push))
        except LimitError as exc:
            if time.monotonic() - began >= timeout:
                return timed_out(push, gate, time.monotonic() - began)
            return Decision("error", f"layerscan: {push.name} not scanned: {exc}", time.monotonic() - began)
        except LayerscanError as exc:
            return Decision("error", f"layerscan: {push.name} not scanned: {exc}", time.monotonic() - began)
        finally:
            if isinstance(cache, ServeCache):  # layers it meant to scan and did not: others may now
                cache.release()
        result = suppress(result, gate.baseline, self.allowlist)
        decided = verdict(result, gate.policy)
        seconds = time.monotonic() - began
        if decided.gating or decided.incomplete:
            return Decision("deny", denial(decided, gate), seconds, result, decided)
        return Decision("pass", f"layerscan: {push.name} passed", seconds, result, decided)

    def _cache(self) -> LayerCache:
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = self._cache_factory()
        return cache

    def client(self, push: Push) -> RegistryClient:
        """Reads as the proxy's own upstream account when it has one, else with the client's token."""
        creds = self.upstream_credentials
        if creds is None and push.authorization:
            creds = Credentials(authorization=push.authorization, source="the pushing client")
        return RegistryClient(replace(self.endpoint, credentials=creds), push.repository)

    def images(self, push: Push) -> Iterator[Image]:
        client = self.client(push)
        try:
            yield from pushed_images(client, push)
        finally:
            client.close()


def pushed_images(client: RegistryClient, push: Push) -> Iterator[Image]:
    """The images of a pushed manifest: itself, or each manifest its index lists (read from the
    upstream: a client pushes an index's children first)."""
    where = f"{push.name}: manifest"
    doc = parse_json(push.body, where)
    if not isinstance(doc, dict):
        raise LayerscanError(f"{where} is not a JSON object")
    media = doc.get("mediaType") if isinstance(doc.get("mediaType"), str) else push.media_type
    if media in INDEX_TYPES or (not media and isinstance(doc.get("manifests"), list)):
        for desc in doc.get("manifests") or []:
            if not isinstance(desc, dict) or not isinstance(desc.get("digest"), str):
                raise LayerscanError(f"{where}: bad descriptor in the image index")
            body, child_media, digest = fetch_manifest(client, desc["digest"], f"{where} {desc['digest'][:19]}")
            annotations = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
            platform = _platform(desc) if annotations.get(REFERENCE_TYPE) is None else None
            yield _one(client, parse_json(body, where), child_media, digest, f"{push.name} [{platform or digest[:19]}]",
                       platform)
        return
    yield _one(client, doc, media, push.digest, push.name, None)


def _one(client: RegistryClient, doc: dict, media: str, digest: str, label: str, platform: Optional[str]) -> Image:
    if media in INDEX_TYPES:
        raise LayerscanError(f"{label}: nested image indexes are not supported")
    config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    if media in MANIFEST_TYPES and config.get("mediaType") not in IMAGE_CONFIGS:
        return artifact_from(client, doc, digest, label)  # an attestation, a signature, a report
    return manifest_image(client, doc, media, digest, label, platform)


def _platform(desc: dict) -> Optional[str]:
    p = desc.get("platform") if isinstance(desc.get("platform"), dict) else {}
    if not p.get("os") or not p.get("architecture"):
        return None
    return "/".join(str(x) for x in (p["os"], p["architecture"], p.get("variant")) if x)


def timed_out(push: Push, gate: RepositoryPolicy, seconds: float) -> Decision:
    if gate.on_timeout == "allow":
        return Decision("timeout-allow", f"layerscan: {push.name} not fully scanned in time "
                        f"({seconds:.0f} s): let through (on-timeout: allow)", seconds)
    return Decision("timeout-deny", f"layerscan: {push.name} not scanned in time ({seconds:.0f} s): "
                    "denied (on-timeout: deny); push again to resume (scanned layers are cached)", seconds)


def denial(decided: Verdict, gate: RepositoryPolicy) -> str:
    """`layerscan: 2 findings at or above low: github-pat in /app/.env (layer 3), ...`: redacted
    (rule, place, layer: never a value), escaped (it reaches the pusher's terminal)."""
    floor = gate.policy.fail_on.value if gate.policy.fail_on is not None else "never"
    shown = []
    for f in sorted(decided.gating, key=lambda f: (-f.hit.severity.rank, f.hit.path))[:SHOWN]:
        where = f.hit.path + (f"!{f.hit.inner_path}" if f.hit.inner_path else "")
        layer = f"layer {f.layer.index}" if f.layer is not None else f.status.value
        shown.append(f"{f.hit.rule_id} in {escape(where)} ({layer}, {f.status.value})")
    more = len(decided.gating) - len(shown)
    parts = []
    if shown:
        parts.append(f"{len(decided.gating)} finding(s) at or above {floor}: " + ", ".join(shown)
                     + (f", and {more} more" if more > 0 else ""))
    if decided.incomplete:
        parts.append(f"{decided.skipped} item(s) not scanned (fail-on-incomplete)")
    return "layerscan: " + "; ".join(parts)


def escape(text: str, most: int = 200) -> str:
    """Printable ASCII only: anything else spelt as a JSON escape would be."""
    out = json.dumps(text, ensure_ascii=True)[1:-1]
    out = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in out)
    return out if len(out) <= most else out[:most] + "..."


def by_severity(result: Optional[ScanResult]) -> dict[str, int]:
    return dict(result.summary()["by_severity"]) if result is not None else {}
