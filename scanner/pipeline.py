"""The one flow: source -> Image -> per-layer scan -> overlay -> findings, plus the config scan."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import BinaryIO, Callable, Iterable, Optional, Protocol, Sequence

from scanner.cache import LayerCache
from scanner.detectors.config import ConfigScanner
from scanner.detectors.content import ContentScanner
from scanner.detectors.entropy import EntropyDetector
from scanner.detectors.entropy import ENTROPY_RULE, KEYWORD_RULE
from scanner.detectors.files import RULES as FILE_RULES
from scanner.detectors.files import CredentialFileDetector
from scanner.detectors.known import RULES as KNOWN_RULES
from scanner.detectors.known import KnownSecretDetector
from scanner.detectors.rules import RuleSet
from scanner.detectors.signature import SignatureDetector
from scanner.gate import BaseImage
from scanner.layers.overlay import Overlay
from scanner.layers.runner import LayerRunner
from scanner.limits import NO_DEADLINE, Deadline, Limits
from scanner.models import (Finding, HistoryEntry, Hit, Image, ImageResult, LayerInfo, LayerScan, LocationKind,
                            Removal, ScanResult, Secret, Skipped, Status)
from scanner.provenance import Setters, history_index
from scanner.redact import Scrubber
from scanner.sources.remote import RegistryOptions
from scanner.sources.resolve import open_source
from scanner.triage import Triage


MAX_NAMES = 20_000  # distinct names shown of one image that are searched for secrets of their own
DETECTOR_RULES = frozenset({KEYWORD_RULE[0], ENTROPY_RULE[0], *FILE_RULES})  # rules that live in code, not YAML


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
    registry: RegistryOptions = RegistryOptions()  # --insecure-registry, --ca-file, --username...
    timeout: Optional[float] = None  # wall-clock seconds for the whole scan (--timeout); None: none
    show_triaged: bool = False  # the table lists vendor / known-public findings (--show-triaged)
    disabled: frozenset[str] = frozenset()  # --disable-rule ids of the entropy and credential-file detectors
    private_packages: tuple[str, ...] = ()  # --private-package / private-packages: globs, never triaged


class _StreamSink:
    """Layers of a stream that goes past once (the engine's `docker save`) to the layer runner."""

    def __init__(self, runner: LayerRunner, progress: Progress) -> None:
        self.runner, self.progress = runner, progress

    def begin(self, label: str, total_bytes: int) -> None:
        self.progress.begin(label, total_bytes)

    def layer(self, stream: BinaryIO, what: str, expected_diff_id: Optional[str]) -> None:
        self.runner.scan_member(stream, what, self.progress.advance, expected_diff_id)

    def end(self) -> None:
        self.progress.end()


class Scanner:
    def __init__(self, rules: RuleSet, options: ScanOptions = ScanOptions(),
                 progress: Optional[Progress] = None, cache: Optional[LayerCache] = None,
                 known: Optional[KnownSecretDetector] = None,
                 verify: Optional[Callable[[list[Finding]], list[Finding]]] = None) -> None:
        """With `known` (`layerscan find`), the walk looks for the given secrets instead of the
        rules' findings; the rules only feed its hash-only entries. `verify` (--verify,
        scanner/verify/) asks providers about each image's findings while their values are known."""
        self.options = options
        self.verify = verify
        self.progress = progress or NoProgress()
        self.known = known
        detector = SignatureDetector(rules) if known is None else known
        if known is None and cache is not None and cache.directory:  # the compiled rules kept there too
            detector.prefilter.store, detector.prefilter.mac_key = cache.directory, cache.mac_key
        digest = rules.digest if known is None else f"{rules.digest}+known:{known.digest}"
        detectors = [detector]
        if known is None:  # generic secrets and credential files: only what the rules leave
            detectors += [EntropyDetector(detector), CredentialFileDetector(detector)]
            digest = f"{digest}+entropy+files"  # which detectors run; their code is in every key (cachekey)
        self.triage = Triage(rules, private_packages=options.private_packages) if known is None else None
        # values are kept in memory for scrubbing the config; they reach output only with --reveal
        self.content = ContentScanner(detectors, keep_values=True)
        self.config = ConfigScanner(self.content)
        self.layers = LayerRunner(self.content, digest, options.limits, cache, options.workers,
                                  use_cached_values=not options.reveal and verify is None)
        self.deadline: Deadline = NO_DEADLINE  # the run's --timeout, from `start_clock`

    def scan(self, specs: Sequence[str]) -> ScanResult:
        sink = _StreamSink(self.layers, self.progress)
        return self.scan_images(image for spec in specs  # open_source runs once the clock started
                                for image in open_source(spec, self.options.platform, self.options.registry,
                                                         sink, self.deadline).images())

    def scan_images(self, images: Iterable[Image]) -> ScanResult:
        """Images from anywhere (a source, or `layerscan serve`'s pushed manifests), under one --timeout
        clock: it starts before the first image is read."""
        results = []
        self.start_clock()
        for image in images:
            self.layers.limits.check_time(f"before {image.ref}")
            results.append(self.scan_image(image))
        return ScanResult(tuple(results), reveal=self.options.reveal, show_triaged=self.options.show_triaged)

    def inherited_from(self, spec: str) -> BaseImage:
        """A base image's layers (by diff_id) and config/history hits: read, not scanned."""
        diff_ids: set[str] = set()
        hits: set[tuple[str, str]] = set()
        for image in open_source(spec, self.options.platform, self.options.registry).images():
            diff_ids.update(layer.diff_id for layer in image.layers if layer.diff_id)
            hits.update((h.path, h.secret.sha256) for h in self.config.scan(image.config))
        return BaseImage(frozenset(diff_ids), frozenset(hits))

    def start_clock(self) -> Deadline:
        """--timeout counts from here: one `Deadline` for every phase (sources, layer walks, in
        worker processes too, config scan, reports), kept as `self.deadline`."""
        self.deadline = Deadline.start(self.options.timeout)
        self.layers.limits = self.options.limits.until(self.deadline)
        return self.deadline

    def scan_image(self, image: Image) -> ImageResult:
        limits = self.layers.limits

        def advance(nbytes: int) -> None:  # between layers (and within one, when not in a worker)
            self.progress.advance(nbytes)
            limits.check_time(f"in {image.ref}")

        self.progress.begin(image.ref, sum(layer.blob.size for layer in image.layers))
        try:
            scans = self.layers.scan(image.layers, advance)
        finally:
            self.progress.end()
        limits.check_image(image.ref, sum(len(s.events) for s in scans), sum(s.bytes for s in scans))
        config_hits = self.config.scan(image.config)
        if self.known is not None:
            config_hits = [h for h in config_hits if h.rule_id in KNOWN_RULES]
        hits = [h for s in scans for h in s.hits] + list(config_hits)
        found = [(h.secret.value, h.secret.sha256) for h in hits if h.secret.value]
        skipped = tuple(sk for s in scans for sk in s.skipped)
        clean = self._scrubber(found + self._in_names(hits, skipped))
        layer_infos = tuple(_layer_info(layer, s, clean(layer.created_by)) for layer, s in zip(image.layers, scans))
        history = _history(image, clean)
        findings = (self._layer_findings(image, scans, layer_infos)
                    + self._config_findings(image, config_hits, layer_infos))
        setters = Setters(history)
        findings = [_with_provenance(f, image, history, setters) for f in findings]
        if self.options.disabled:
            findings = [f for f in findings if f.hit.rule_id not in self.options.disabled]
        findings, over = _capped(findings, limits.max_findings)
        if self.triage is not None:  # vendor / known-public, confidence and priority
            findings = self.triage.apply(findings, scans)
        skipped += over
        if self.known is not None:
            findings = [_relabelled(f, self.known, clean) for f in findings]
        else:  # a secret in a name (a file named after a token, an Env name) is redacted there too
            findings = [_named(f, clean) for f in findings]
        skipped = tuple(replace(sk, path=clean(sk.path) or sk.path, reason=clean(sk.reason) or sk.reason)
                        for sk in skipped)
        if self.verify is not None:
            findings = self.verify(findings)
        findings = _fingerprinted(findings, self.options.reveal)
        return ImageResult(image.ref, image.source, image.digest, layer_infos, tuple(findings), skipped,
                           image.platform, history)

    def _scrubber(self, found: list[tuple[str, str]]) -> Callable[[Optional[str]], Optional[str]]:
        """Text shown to the user (history lines, paths) less every secret found in the image."""
        if self.known is not None:
            known = self.known
            return lambda text: known.scrub(text, found)
        return Scrubber(v for v, _ in found)

    def _in_names(self, hits: list[Hit], skipped: tuple) -> list[tuple[str, str]]:
        """Secrets that are in the names shown (paths, inner paths, Env and Label names, skipped
        paths) but not in any content: found by running the detectors over those names alone."""
        if self.known is not None:
            return []
        names = {n for h in hits for n in (h.path, h.inner_path) if n}
        names.update(sk.path for sk in skipped)
        out = []
        for name in sorted(names)[:MAX_NAMES]:
            for m in self.content.scan_buffer(name.encode("utf-8", "surrogateescape"), None):
                value = m.secret.decode("utf-8", "surrogateescape")
                out.append((value, hashlib.sha256(m.secret).hexdigest()))
        return out

    def _layer_findings(self, image: Image, scans: list[LayerScan],
                        infos: tuple[LayerInfo, ...]) -> list[Finding]:
        overlay = Overlay(scans)
        out = []
        for i, scan in enumerate(scans):
            for hit in scan.hits:
                label = overlay.label(i, hit)
                removed = None
                if label.removed_in is not None:
                    by = infos[label.removed_in]
                    removed = Removal(label.removed_in, by.created_by, by.digest, by.created)
                out.append(Finding("", hit, image.ref, label.status, infos[i], removed))
        return out

    def _config_findings(self, image: Image, hits: Iterable[Hit],
                         infos: tuple[LayerInfo, ...]) -> list[Finding]:
        """Config findings have no layer; a history entry that made a layer names that layer."""
        made = {layer.history_index: infos[layer.index] for layer in image.layers}
        out = []
        for hit in hits:
            if hit.kind is LocationKind.HISTORY:
                index = history_index(hit.path)
                out.append(Finding("", hit, image.ref, Status.HISTORY, made.get(index)))
            else:
                out.append(Finding("", hit, image.ref, Status.CONFIG, None))
        return out


def _capped(findings: list[Finding], most: int) -> tuple[list[Finding], tuple[Skipped, ...]]:
    """The first `most` findings of an image (layers in order, then the config); the rest counted
    and listed as not reported. Each layer's walk kept at most as many: memory stays bounded."""
    if len(findings) <= most:
        return findings, ()
    return findings[:most], (Skipped("/", f"over {most} findings in this image: the first {most} reported, "
                                          f"{len(findings) - most} more not (max findings)"),)


def _fingerprinted(findings: list[Finding], reveal: bool) -> list[Finding]:
    """Stable ids: what survives a rebuild (rule, location, secret hash, occurrence), never a layer digest."""
    counts: dict[str, int] = {}
    out = []
    for f in findings:
        h = f.hit
        # a history entry by its order among the entries holding this secret, not by its index:
        # a step inserted above it must not turn an accepted finding into a new one
        where = _HISTORY_N.sub("history", h.path) if h.kind is LocationKind.HISTORY else h.path
        key = "\0".join([h.rule_id, h.kind.value, where, h.inner_path or "", h.secret.sha256])
        counts[key] = counts.get(key, 0) + 1
        fp = hashlib.sha256(f"{key}\0{counts[key]}".encode()).hexdigest()[:32]
        hit = h if reveal else _without_value(h)
        out.append(replace(f, fingerprint=fp, hit=hit))
    return out


_HISTORY_N = re.compile(r"^history\[\d+\]")


def _without_value(h: Hit) -> Hit:
    return replace(h, secret=replace(h.secret, value=None))


# --- provenance ---------------------------------------------------------------------------------

def _layer_info(layer, scan: LayerScan, created_by: Optional[str]) -> LayerInfo:
    return LayerInfo(layer.index, layer.blob.digest or scan.digest, layer.diff_id, created_by, scan.files,
                     scan.bytes, layer.created, layer.history_index, layer.blob.size, layer.media_type)


def _history(image: Image, clean: Callable[[Optional[str]], Optional[str]]) -> tuple[HistoryEntry, ...]:
    """The config's history, every entry (empty layers too), scrubbed like the layers' lines."""
    entries = image.config.get("history") if isinstance(image.config, dict) else None
    made = {layer.history_index: layer.index for layer in image.layers if layer.history_index is not None}
    out = []
    for i, h in enumerate(entries if isinstance(entries, list) else ()):
        h = h if isinstance(h, dict) else {}
        created = h.get("created") if isinstance(h.get("created"), str) else None
        created_by = h.get("created_by") if isinstance(h.get("created_by"), str) else None
        out.append(HistoryEntry(i, created, clean(_printable(created_by)), bool(h.get("empty_layer")), made.get(i)))
    return tuple(out)


def _printable(text: Optional[str]) -> Optional[str]:
    if text is None:
        return None
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _with_provenance(f: Finding, image: Image, history: tuple[HistoryEntry, ...], setters: Setters) -> Finding:
    """The image digest, and the history entry behind the finding: the step that made its layer,
    the history line that holds it, or the last step that set the config value it sits in."""
    entry: Optional[HistoryEntry] = None
    h = f.hit
    if h.kind is LocationKind.HISTORY:
        index = history_index(h.path)
        entry = history[index] if 0 <= index < len(history) else None
    elif f.layer is not None and f.layer.history_index is not None and f.layer.history_index < len(history):
        entry = history[f.layer.history_index]
    else:
        entry = setters.of(h.kind, h.path)
    return replace(f, image_digest=image.digest, history=entry)


def _named(f: Finding, clean: Callable[[Optional[str]], Optional[str]]) -> Finding:
    """The finding's path and inner path less every secret of the image (a file named after a
    token, `Env.<token>`, `Labels.<token>`): every report shows the names as they are here."""
    h = f.hit
    path, inner = clean(h.path) or h.path, clean(h.inner_path)
    return f if (path, inner) == (h.path, h.inner_path) else replace(f, hit=replace(h, path=path, inner_path=inner))


def _relabelled(f: Finding, known: KnownSecretDetector, clean: Callable[[Optional[str]], Optional[str]]) -> Finding:
    """`find`: the secret named by its line in the secrets file, never a character of it; the
    paths scrubbed too (a file can be named after a token)."""
    h = f.hit
    secret = Secret(h.secret.sha256, known.label(h.secret.sha256)) if known.is_known(h.secret.sha256) else h.secret
    return replace(f, hit=replace(h, secret=secret, path=clean(h.path) or h.path, inner_path=clean(h.inner_path)))
