"""A whole registry: enumerate its images, scan each unique layer once, assemble every image.

`HOST[/PREFIX]` is listed by the distribution API (`/v2/_catalog`, then `/v2/<name>/tags/list`,
both paginated by their `Link` header); `--images-from` gives the references instead. Every
reference is resolved to its manifest(s) (all platforms of an index, or `--platform`), the
layers of all images are collected by diff_id, and the unique ones go through the layer runner
in one batch (its process pool and its cache: a layer in the cache is not scanned again, which
is what makes an interrupted run resumable). Each image is then assembled as always (overlay,
config, provenance): its layers are all in the runner's memory of this run, nothing is fetched
again.
"""
from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any, Iterator, Optional, Protocol, Sequence

from scanner.layers.runner import layer_key
from scanner.limits import NO_DEADLINE, Deadline, ManifestBudget
from scanner.models import Image, Layer, ScanResult
from scanner.pipeline import Scanner
from scanner.reports.grouping import group_by_secret
from scanner.sources.bounded import MAX_LIST, read_body
from scanner.sources.interface import SourceError
from scanner.sources.reference import Reference, parse_reference
from scanner.sources.registry import RegistrySource, endpoint_for
from scanner.sources.registry_http import Endpoint, RegistryClient

SHOWN = 5  # images named per secret in the summary on stderr
PAGE = 100  # entries asked for per catalog or tags page (`n`); the registry may send fewer


class FleetProgress(Protocol):
    """Fleet progress: a stage (`layers` in bytes, `images` in images), advanced, ended."""

    def begin(self, label: str, total: int) -> None: ...
    def advance(self, n: int) -> None: ...
    def end(self) -> None: ...


class _Quiet:
    def begin(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class FleetTarget:
    host: str  # "127.0.0.1:5000"
    prefix: str = ""  # repositories whose name starts with this path ("team/" or "team/app")

    def matches(self, repository: str) -> bool:
        p = self.prefix
        return not p or repository == p or repository.startswith(p if p.endswith("/") else p + "/")


def parse_target(text: str) -> FleetTarget:
    """`HOST[:PORT][/REPO_PREFIX]` (a `docker://` or `https://` in front is tolerated)."""
    for scheme in ("docker://", "https://", "http://"):
        text = text.removeprefix(scheme)
    host, _, prefix = text.strip("/").partition("/")
    if not host or "." not in host and ":" not in host and host != "localhost":
        raise SourceError(f"{text!r}: name a registry: HOST[:PORT][/REPO_PREFIX]")
    return FleetTarget(host, prefix.strip("/"))


class _ListClient(RegistryClient):
    """GETs of registry-wide paths (`/v2/_catalog`, `/v2/NAME/tags/list`), token scope as given."""

    def __init__(self, endpoint: Endpoint, scope: str, deadline: Deadline = NO_DEADLINE) -> None:
        super().__init__(endpoint, "", deadline)
        self.list_scope, self.where = scope, endpoint.host

    def url(self, path: str) -> str:
        return f"{self.endpoint.scheme}://{self.endpoint.host}{path}"

    def scope(self) -> str:
        return self.list_scope


def paginated(endpoint: Endpoint, path: str, key: str, scope: str, page: int = PAGE,
              deadline: Deadline = NO_DEADLINE) -> Iterator[str]:
    """The entries under `key` of every page of `path`: follows `Link: <...>; rel="next"`."""
    client = _ListClient(endpoint, scope, deadline)
    url: Optional[str] = f"{path}?n={page}"
    seen: set[str] = set()
    visited: set[str] = set()
    try:
        while url is not None and url not in visited:  # a registry that links a page to itself ends here
            visited.add(url)
            resp = client.get(url, {"Accept": "application/json"})
            what = f"{endpoint.host}{path}"
            if resp.status_code != 200:
                raise client.status_error(resp, what)  # it reads (a bounded part of) the body, and closes
            try:
                doc = json.loads(read_body(resp, MAX_LIST, what, deadline, endpoint.host))
            except ValueError:
                raise SourceError(f"{what}: the answer is not JSON") from None
            entries = doc.get(key) if isinstance(doc, dict) else None
            for entry in entries or []:
                if isinstance(entry, str) and entry not in seen:
                    seen.add(entry)
                    yield entry
            url = _next_link(resp.headers.get("Link", ""), path)
    finally:
        client.close()


def _next_link(header: str, path: str) -> Optional[str]:
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", "") or "rel=next" in params.replace(" ", ""):
            parsed = urllib.parse.urlsplit(target.strip().strip("<>"))
            return f"{parsed.path or path}?{parsed.query}" if parsed.query else None
    return None


def list_references(target: FleetTarget, endpoint: Endpoint, page: int = PAGE,
                    deadline: Deadline = NO_DEADLINE) -> list[str]:
    """`HOST/REPO:TAG` of every tag of every repository under the target's prefix, sorted."""
    refs = []
    repos = paginated(endpoint, "/v2/_catalog", "repositories", "registry:catalog:*", page, deadline)
    for repo in sorted(r for r in repos if target.matches(r)):
        tags = paginated(endpoint, f"/v2/{repo}/tags/list", "tags", f"repository:{repo}:pull", page, deadline)
        refs.extend(f"{target.host}/{repo}:{tag}" for tag in sorted(tags))
    return refs


@dataclass(frozen=True)
class FleetSummary:
    images: int
    layers: int  # layers of all images, counted once per image
    unique_layers: int  # distinct diff_ids
    total_bytes: int  # stored (compressed) layer bytes, counted once per image
    unique_bytes: int  # stored bytes of the distinct layers: what was fetched
    findings: int
    secrets: tuple[tuple[str, str, tuple[str, ...]], ...]  # (sha256, redacted, images carrying it)

    def as_dict(self) -> dict[str, Any]:
        return {"images": self.images, "layers": self.layers, "unique_layers": self.unique_layers,
                "total_bytes": self.total_bytes, "unique_bytes": self.unique_bytes, "findings": self.findings,
                "secrets": [{"sha256": s, "redacted": r, "images": list(i)} for s, r, i in self.secrets]}

    def text(self) -> str:
        ratio = self.unique_bytes / self.total_bytes if self.total_bytes else 1.0
        lines = [f"layerscan registry: {self.images} image(s), {self.unique_layers} unique layer(s) of "
                 f"{self.layers}, {_size(self.unique_bytes)} unique of {_size(self.total_bytes)} "
                 f"({ratio:.0%}), {self.findings} finding(s), {len(self.secrets)} secret(s)"]
        for sha, redacted, images in self.secrets:  # the full lists are in --summary FILE
            more = f" and {len(images) - SHOWN} more" if len(images) > SHOWN else ""
            lines.append(f"  {redacted} (sha256 {sha[:12]}): {len(images)} image(s): "
                         f"{', '.join(images[:SHOWN])}{more}")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


class Fleet:
    """Resolve, dedupe, scan, assemble: one Scanner (its runner, cache and pool) for every image."""

    def __init__(self, scanner: Scanner, progress: Optional[FleetProgress] = None) -> None:
        self.scanner = scanner
        self.progress = progress or _Quiet()
        self.images: list[Image] = []  # of the last scan, for its summary
        self.unique: list[Layer] = []

    def resolve(self, refs: Sequence[str]) -> list[Image]:
        """Every image of `refs`: every platform unless --platform names one (the README's
        promise), one manifest budget and the run's deadline over them all."""
        options = self.scanner.options
        deadline, budget = self.scanner.deadline, ManifestBudget()
        platform = options.platform or "all"
        endpoints: dict[str, Endpoint] = {}
        images: list[Image] = []
        for text in refs:
            ref = parse_reference(text.removeprefix("docker://"))
            if ref.domain not in endpoints:
                endpoints[ref.domain] = endpoint_for(ref, options.registry, deadline)
            source = RegistrySource(ref, _label(ref), options.registry, platform, endpoints[ref.domain],
                                    deadline, budget)
            images.extend(source.images())
        return images

    def scan(self, refs: Sequence[str]) -> ScanResult:
        self.scanner.start_clock()  # --timeout counts from here, as in Scanner.scan
        self.images = images = self.resolve(refs)
        self.unique = unique = unique_layers(images)
        limits = self.scanner.layers.limits

        def advance(nbytes: int) -> None:
            self.progress.advance(nbytes)
            limits.check_time("while scanning the fleet's layers")

        self.progress.begin("layers", sum(layer.blob.size for layer in unique))
        try:
            self.scanner.layers.scan(unique, advance)
        finally:
            self.progress.end()
        results = []
        self.progress.begin("images", len(images))
        try:
            for image in images:  # every layer is in the runner's memory now: nothing fetched again
                results.append(self.scanner.scan_image(image))
                self.progress.advance(1)
        finally:
            self.progress.end()
        options = self.scanner.options
        return ScanResult(tuple(results), reveal=options.reveal, show_triaged=options.show_triaged)

    def summary(self, result: ScanResult) -> "FleetSummary":
        """Of the last scan; `result` as reported (after baseline and allowlist)."""
        return summarize(result, self.images, self.unique)


def _label(ref: Reference) -> str:
    return str(ref)


def unique_layers(images: Sequence[Image]) -> list[Layer]:
    """The first layer of each key its scan is shared under (`runner.layer_key`: a diff_id the
    walk checks, or a document's own blob digest), renumbered so that the runner can take them
    as one batch."""
    out: list[Layer] = []
    seen: set[str] = set()
    for image in images:
        for layer in image.layers:
            key = layer_key(layer) or layer.blob.digest or f"{image.ref}#{layer.index}"
            if key not in seen:
                seen.add(key)
                out.append(replace(layer, index=len(out)))
    return out


def summarize(result: ScanResult, images: Sequence[Image], unique: Sequence[Layer]) -> FleetSummary:
    active = [f for f in result.findings if f.suppressed is None]
    secrets = tuple((g.sha256, g.redacted, g.images) for g in group_by_secret(active))
    return FleetSummary(images=len(images), layers=sum(len(i.layers) for i in images), unique_layers=len(unique),
                        total_bytes=sum(layer.blob.size for i in images for layer in i.layers),
                        unique_bytes=sum(layer.blob.size for layer in unique), findings=len(active),
                        secrets=secrets)
