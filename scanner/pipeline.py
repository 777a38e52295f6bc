"""The one flow: source -> Image -> per-layer scan -> overlay -> findings, plus the config scan."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Iterable, Optional, Protocol, Sequence

from scanner.cache import LayerCache
from scanner.detectors.config import ConfigScanner
from scanner.detectors.content import ContentScanner
from scanner.detectors.rules import RuleSet
from scanner.detectors.signature import SignatureDetector
from scanner.layers.overlay import Overlay
from scanner.layers.runner import LayerRunner
from scanner.limits import Limits
from scanner.models import (Finding, Hit, Image, ImageResult, LayerInfo, LayerScan, LocationKind,
                            Removal, ScanResult, Status)
from scanner.redact import scrub
from scanner.sources.resolve import open_source


class Progress(Protocol):
    """What the pipeline tells the UI. tqdm lives in the CLI; tests pass a recorder or nothing."""

    def begin(self, label: str, total_bytes: int) -> None: ...
    def advance(self, nbytes: int) -> None: ...
    def end(self) -> None: ...


class NoProgress:
    def begin(self, label: str, total_bytes: int) -> None:
        pass

    def advance(self, nbytes: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass(frozen=True)
class ScanOptions:
    reveal: bool = False
    platform: Optional[str] = None
    limits: Limits = Limits()
    workers: Optional[int] = None  # worker processes for layers; None: one per core


class Scanner:
    def __init__(self, rules: RuleSet, options: ScanOptions = ScanOptions(),
                 progress: Optional[Progress] = None, cache: Optional[LayerCache] = None) -> None:
        self.options = options
        self.progress = progress or NoProgress()
        # values are kept in memory for scrubbing the config; they reach output only with --reveal
        self.content = ContentScanner([SignatureDetector(rules)], keep_values=True)
        self.config = ConfigScanner(self.content)
        self.layers = LayerRunner(self.content, rules.digest, options.limits, cache, options.workers,
                                  use_cached_values=not options.reveal)

    def scan(self, specs: Sequence[str]) -> ScanResult:
        results = []
        for spec in specs:
            for image in open_source(spec, self.options.platform).images():
                results.append(self.scan_image(image))
        return ScanResult(tuple(results), reveal=self.options.reveal)

    def scan_image(self, image: Image) -> ImageResult:
        self.progress.begin(image.ref, sum(layer.blob.size for layer in image.layers))
        try:
            scans = self.layers.scan(image.layers, self.progress.advance)
        finally:
            self.progress.end()
        config_hits = self.config.scan(image.config)
        values = [h.secret.value for s in scans for h in s.hits] + [h.secret.value for h in config_hits]
        secrets = [v for v in values if v]
        layer_infos = tuple(
            LayerInfo(layer.index, layer.blob.digest or s.digest, layer.diff_id, scrub(layer.created_by, secrets),
                      s.files, s.bytes)
            for layer, s in zip(image.layers, scans))
        findings = (self._layer_findings(image, scans, layer_infos)
                    + self._config_findings(image, config_hits, layer_infos))
        findings = _fingerprinted(findings, self.options.reveal)
        skipped = tuple(sk for s in scans for sk in s.skipped)
        return ImageResult(image.ref, image.source, image.digest, layer_infos, tuple(findings), skipped,
                           image.platform)

    def _layer_findings(self, image: Image, scans: list[LayerScan],
                        infos: tuple[LayerInfo, ...]) -> list[Finding]:
        overlay = Overlay(scans)
        out = []
        for i, scan in enumerate(scans):
            for hit in scan.hits:
                label = overlay.label(i, hit)
                removed = None
                if label.removed_in is not None:
                    removed = Removal(label.removed_in, infos[label.removed_in].created_by)
                out.append(Finding("", hit, image.ref, label.status, infos[i], removed))
        return out

    def _config_findings(self, image: Image, hits: Iterable[Hit],
                         infos: tuple[LayerInfo, ...]) -> list[Finding]:
        """Config findings have no layer; a history entry that made a layer names that layer."""
        made = {layer.history_index: infos[layer.index] for layer in image.layers}
        out = []
        for hit in hits:
            if hit.kind is LocationKind.HISTORY:
                index = int(hit.path[len("history["):-1])
                out.append(Finding("", hit, image.ref, Status.HISTORY, made.get(index)))
            else:
                out.append(Finding("", hit, image.ref, Status.CONFIG, None))
        return out


def _fingerprinted(findings: list[Finding], reveal: bool) -> list[Finding]:
    """Stable ids: what survives a rebuild (rule, location, secret hash, occurrence), never a layer digest."""
    counts: dict[str, int] = {}
    out = []
    for f in findings:
        h = f.hit
        key = "\0".join([h.rule_id, h.kind.value, h.path, h.inner_path or "", h.secret.sha256])
        counts[key] = counts.get(key, 0) + 1
        fp = hashlib.sha256(f"{key}\0{counts[key]}".encode()).hexdigest()[:32]
        hit = h if reveal else _without_value(h)
        out.append(Finding(fp, hit, f.image, f.status, f.layer, f.removed_in, f.triage))
    return out


def _without_value(h: Hit) -> Hit:
    return replace(h, secret=replace(h.secret, value=None))
