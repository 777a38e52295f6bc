"""The one result model: images and layers in, path events and hits per layer, findings out.

Everything here is a frozen dataclass or a str-enum so that it pickles (worker processes),
serialises (cache, JSON) and compares (tests) without ceremony.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional

from scanner.pathevents import PathEvents


class SourceKind(str, enum.Enum):
    DOCKER_ARCHIVE = "docker-archive"
    OCI_LAYOUT = "oci-layout"
    OCI_ARCHIVE = "oci-archive"
    DAEMON = "daemon"
    REGISTRY = "registry"


class Severity(str, enum.Enum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.CRITICAL: 4, Severity.HIGH: 3, Severity.MEDIUM: 2, Severity.LOW: 1}


class Confidence(str, enum.Enum):
    """How sure the scanner is that a finding is a usable secret (README, "Detection")."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        return {"high": 3, "medium": 2, "low": 1}[self.value]


class DetectorKind(str, enum.Enum):
    SIGNATURE = "signature"
    ENTROPY = "entropy"
    KEYWORD = "keyword"
    FILE = "file"
    CONFIG = "config"


class Status(str, enum.Enum):
    PRESENT = "present"
    DELETED = "deleted"
    OVERWRITTEN = "overwritten"
    CONFIG = "config"
    HISTORY = "history"


class LocationKind(str, enum.Enum):
    FILE = "file"
    ENV = "env"
    LABEL = "label"
    CMD = "cmd"
    ENTRYPOINT = "entrypoint"
    HEALTHCHECK = "healthcheck"
    USER = "user"
    HISTORY = "history"
    # config fields read later, each named as the Dockerfile instruction that sets it
    ONBUILD = "onbuild"
    WORKDIR = "workdir"
    SHELL = "shell"
    VOLUME = "volume"
    EXPOSE = "expose"
    STOPSIGNAL = "stopsignal"


# --- image model -------------------------------------------------------------------------


class BlobKind(str, enum.Enum):
    """Where a blob's bytes are: what `sources.blobs.open_blob` opens."""

    FILE = "file"  # a byte range of a local file (`path`, `offset`, `size`)
    MEMORY = "memory"  # `data`: a small member kept from a stream (a config, a tiny layer)
    REGISTRY = "registry"  # `path` is the blob's URL; `origin` says how to reach and log in there
    STREAMED = "streamed"  # went past once in a stream and was scanned then; it cannot be opened again


@dataclass(frozen=True)
class Blob:
    """A byte range of a local file: a layer inside a tarball, or a blob file of an OCI layout;
    or, by `kind`, bytes in memory, a registry blob, or a stream member already scanned.

    Picklable on purpose: a worker process opens its layer itself from (path, offset, size), or
    from the registry URL and `origin` (endpoint and credentials, never shown by repr).
    """

    path: str
    offset: int
    size: int
    digest: Optional[str] = None  # "sha256:<hex>" of these bytes, checked while reading
    kind: BlobKind = BlobKind.FILE
    data: Optional[bytes] = field(default=None, repr=False, compare=False)
    origin: Any = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Layer:
    index: int
    blob: Blob
    diff_id: Optional[str]  # sha256 of the uncompressed tar, from the config's rootfs
    media_type: str = ""
    created_by: Optional[str] = None
    created: Optional[str] = None
    history_index: Optional[int] = None

    @property
    def digest(self) -> Optional[str]:
        return self.blob.digest or self.diff_id


@dataclass(frozen=True)
class Image:
    ref: str  # as the user gave it (plus the tag chosen inside a multi-image archive)
    source: SourceKind
    digest: Optional[str]  # manifest digest where the format has one
    config: dict = field(hash=False, compare=False)
    layers: tuple[Layer, ...] = ()
    platform: Optional[str] = None


# --- per-layer scan (pure) ---------------------------------------------------------------


@dataclass(frozen=True)
class Secret:
    sha256: str  # hex digest of the exact secret bytes
    redacted: str
    value: Optional[str] = field(default=None, repr=False, compare=False)  # only kept for --reveal


@dataclass(frozen=True)
class FileMeta:
    """The tar entry that held a secret: what a responder needs to find and judge the file."""

    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    sha256: Optional[str] = None  # of the whole file as stored in the layer
    uname: str = ""
    gname: str = ""
    md5: Optional[str] = None  # what dpkg records of a file it installed (triage: vendor files)
    sha1: Optional[str] = None  # what apk records


@dataclass(frozen=True)
class Hit:
    """One detector match inside one layer (or the config), before the overlay labels it."""

    rule_id: str
    detector: DetectorKind
    severity: Severity
    title: str
    path: str
    line: Optional[int]
    secret: Secret
    inner_path: Optional[str] = None
    ordinal: int = -1  # tar entry that held it, to tell duplicates within a layer apart
    kind: LocationKind = LocationKind.FILE
    file: Optional[FileMeta] = None


@dataclass(frozen=True)
class Skipped:
    """Content that was not scanned, and why. Reports list these: silence is never 'clean'."""

    path: str
    reason: str
    layer: Optional[int] = None


@dataclass(frozen=True)
class LayerScan:
    """Everything the overlay needs from one layer: a pure function of its bytes and the rules."""

    diff_id: str
    digest: str  # sha256 of the blob as stored (compressed), computed while reading
    events: PathEvents
    hits: tuple[Hit, ...]
    skipped: tuple[Skipped, ...]
    files: int
    bytes: int  # uncompressed bytes of the layer tar
    packages: tuple["PackageDb", ...] = ()  # the package databases this layer writes (triage)


@dataclass(frozen=True)
class PackageDb:
    """What one package evidence file of a layer says its packages installed (`scanner.packages`):
    the digest of each file as shipped, or the directories and files the package wrote in this layer.
    Triage marks a finding `vendor` (distro) or `package` (language package) by it.

    `files`, one record a line (`scanner.packages.records` writes and reads them):
    `@<TAB>name<TAB>version<TAB>key[<TAB>local]` names the package of the lines after it (`key` joins
    the records of one package across files, e.g. a dist-info directory; `local`: installed from a
    local path or a VCS, never triaged); `<algo>:<hex> <absolute path>` a file's digest;
    `tree: <dir>` every file under the directory that this same layer wrote (layer evidence);
    `file: <path>` that one file, if this same layer wrote it."""

    path: str  # the evidence file in the layer ("/var/lib/dpkg/info/openssl.md5sums", ".../RECORD")
    manager: str  # "dpkg", "apk", "rpm", "pip", "npm", "maven", "gem", "go", "composer" or "cargo"
    files: str = field(default="", repr=False)


@dataclass(frozen=True)
class PackageRef:
    """The package a finding's file came from, as the image's own evidence names it."""

    ecosystem: str  # "debian", "alpine", "rpm", "pypi", "npm", "maven", "gem", "golang", "composer", "cargo"
    name: str
    version: Optional[str] = None


# --- findings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerInfo:
    index: int
    digest: Optional[str]
    diff_id: Optional[str]
    created_by: Optional[str]  # already scrubbed of every secret found
    files: int = 0
    bytes: int = 0
    created: Optional[str] = None  # the history entry's timestamp, as the config gives it
    history_index: Optional[int] = None  # index into the config's history (empty layers counted)
    blob_size: Optional[int] = None  # bytes of the layer as stored (compressed)
    media_type: str = ""


@dataclass(frozen=True)
class Removal:
    index: int
    created_by: Optional[str]
    digest: Optional[str] = None
    created: Optional[str] = None


@dataclass(frozen=True)
class HistoryEntry:
    """One entry of the config's history: a Dockerfile step, whether it made a layer or not."""

    index: int
    created: Optional[str]
    created_by: Optional[str]  # scrubbed like LayerInfo.created_by
    empty_layer: bool = False
    layer: Optional[int] = None  # index of the layer it made


@dataclass(frozen=True)
class Verification:
    """What the provider said of a found credential (`--verify`, scanner/verify/): never the secret."""

    status: str  # "live", "invalid", "unknown" or "error"
    endpoint: str  # the host asked ("api.github.com"), or "" when nothing was sent
    detail: str = ""  # account name or scope the provider gave, or why the answer is unknown
    checked_at: str = ""  # ISO 8601 UTC time of the answer (of the cached answer when cached)
    canary: bool = False  # a known canary token: never called


@dataclass(frozen=True)
class Finding:
    fingerprint: str
    hit: Hit
    image: str
    status: Status
    layer: Optional[LayerInfo]
    removed_in: Optional[Removal] = None
    triage: Optional[str] = None
    image_digest: Optional[str] = None
    history: Optional[HistoryEntry] = None  # the step that made its layer, or that set/holds a config value
    suppressed: Optional[str] = None  # "baseline", "allowlist" or "inherited" (from --base-image)
    confidence: Optional[Confidence] = None  # how sure it is a usable secret (set by triage.py)
    priority: Optional[int] = None  # 1 (act first) to 5 (triaged): severity, confidence and status (triage.py)
    package: Optional[PackageRef] = None  # the package the file came from, by evidence (triage.py)
    gating: Optional[bool] = None  # fails the gate's policy (gate.mark); None where no gate was decided
    verification: Optional[Verification] = None  # only with --verify, for rules that have a verifier


@dataclass(frozen=True)
class ImageResult:
    ref: str
    source: SourceKind
    digest: Optional[str]
    layers: tuple[LayerInfo, ...]
    findings: tuple[Finding, ...]
    skipped: tuple[Skipped, ...]
    platform: Optional[str] = None
    history: tuple[HistoryEntry, ...] = ()


@dataclass(frozen=True)
class ScanResult:
    images: tuple[ImageResult, ...]
    reveal: bool = False
    show_triaged: bool = False  # the table lists triaged findings (else only counts them)

    @property
    def findings(self) -> tuple[Finding, ...]:
        return tuple(f for image in self.images for f in image.findings)

    @property
    def active(self) -> tuple[Finding, ...]:
        """Findings not suppressed by a baseline, an allowlist or a base image."""
        return tuple(f for f in self.findings if f.suppressed is None)

    def summary(self) -> dict[str, Any]:
        """Counts of the active findings; suppressed ones are counted apart, never hidden."""
        by_severity: dict[str, int] = {}
        by_status: dict[str, int] = {}
        suppressed: dict[str, int] = {}
        triaged: dict[str, int] = {}
        for f in self.findings:
            if f.suppressed is not None:
                suppressed[f.suppressed] = suppressed.get(f.suppressed, 0) + 1
                continue
            by_severity[f.hit.severity.value] = by_severity.get(f.hit.severity.value, 0) + 1
            by_status[f.status.value] = by_status.get(f.status.value, 0) + 1
            if f.triage:
                triaged[f.triage] = triaged.get(f.triage, 0) + 1
        return {
            "findings": len(self.active),
            "by_severity": by_severity,
            "by_status": by_status,
            "skipped": sum(len(i.skipped) for i in self.images),
            "suppressed": suppressed,
            "triaged": triaged,
        }
