"""Stream one layer tar once: path events for the overlay, detector hits for every file.

`scan_layer` is a pure function of (layer bytes, detectors): no disk writes, no shared state,
so it can run in any process and its result can be cached by diff_id.
"""
from __future__ import annotations

import hashlib
import posixpath
import tarfile
from dataclasses import replace
from typing import Callable, Optional

from scanner.detectors.content import ContentScanner
from scanner.layers.nested import FileScanner
from scanner.limits import Limits
from scanner.models import EntryKind, FileMeta, Hit, Layer, LayerScan, PathEvent, Skipped
from scanner.sources.blobs import HashingReader, is_document, open_blob, open_layer
from scanner.sources.interface import SourceError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
TAR_BUFSIZE = 1 << 20
SMALL_FILE = 1 << 20  # files up to this size are kept in memory while scanned anyway

Progress = Callable[[int], None]


def norm_path(name: str) -> str:
    """Absolute, normalised POSIX path; `..` can never climb above the image root.

    Bytes that are not UTF-8 (tarfile hands them over as surrogates) are shown as `\\xNN`, like
    `ls -b`: a path must hash, print and serialise like any other string.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return posixpath.normpath("/" + name.lstrip("/")) if name not in ("", ".", "./") else "/"


class _StrictTarInfo(tarfile.TarInfo):
    """tarfile ends a stream quietly at a garbled or cut header past the first: everything after it
    would go unscanned and unreported. Make that an error (a zero block still ends the tar)."""

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> tarfile.TarInfo:
        try:
            return super().fromtarfile(tf)
        except (tarfile.InvalidHeaderError, tarfile.TruncatedHeaderError) as exc:  # type: ignore[attr-defined]
            raise tarfile.ReadError(f"{exc} at byte {tf.offset}") from None


def classify(info: tarfile.TarInfo) -> tuple[str, EntryKind]:
    path = norm_path(info.name)
    base = posixpath.basename(path)
    if base == OPAQUE:
        return posixpath.dirname(path), EntryKind.OPAQUE
    if base.startswith(WHITEOUT):
        return posixpath.join(posixpath.dirname(path), base[len(WHITEOUT):]), EntryKind.WHITEOUT
    if info.isdir():
        return path, EntryKind.DIR
    if info.issym():
        return path, EntryKind.SYMLINK
    if info.islnk():
        return path, EntryKind.HARDLINK
    if info.isreg():
        return path, EntryKind.FILE
    return path, EntryKind.OTHER


def file_meta(info: tarfile.TarInfo, sha256: Optional[str]) -> FileMeta:
    return FileMeta(mode=info.mode, uid=info.uid, gid=info.gid, size=info.size, mtime=float(info.mtime),
                    sha256=sha256, uname=info.uname or "", gname=info.gname or "")


class _HashingRead:
    """The file's sha256 for provenance, at little cost: a small file (most of them) is hashed only
    if it had a hit, from the chunks kept; a large one is hashed as it streams."""

    def __init__(self, f, size: int) -> None:
        self._f = f
        self._size = size
        self._kept: list[bytes] = []
        self._hash = hashlib.sha256() if size > SMALL_FILE else None

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        if self._hash is not None:
            self._hash.update(data)
        else:
            self._kept.append(data)
        return data

    def sha256(self) -> str:
        while self.read(1 << 20):  # the scanner may stop early (limits): hash what it did not read
            pass
        if self._hash is None:
            return hashlib.sha256(b"".join(self._kept)).hexdigest()
        return self._hash.hexdigest()


class _Walk:
    def __init__(self, layer: Layer, content: ContentScanner, limits: Limits = Limits()) -> None:
        self.layer = layer
        self.content = content
        self.file_scanner = FileScanner(content, limits)  # one per layer: it counts the layer's expansion
        self.events: list[PathEvent] = []
        self.hits: list[Hit] = []
        self.skipped: list[Skipped] = []
        self.files = 0
        self.by_path: dict[str, list[Hit]] = {}  # hits of each regular file, for hardlinks to it
        self.regular: set[str] = set()

    def entry(self, tf: tarfile.TarFile, info: tarfile.TarInfo, ordinal: int) -> None:
        path, kind = classify(info)
        if path == "/" and kind is EntryKind.DIR:
            return
        self.events.append(PathEvent(path, kind, ordinal))
        if kind is EntryKind.FILE:
            self.files += 1
            self.regular.add(path)
            f = tf.extractfile(info)
            hits, skipped = self._scan_file(f, info, path, ordinal) if f is not None else ([], [])
            self.skipped.extend(Skipped(s.path, s.reason, self.layer.index) for s in skipped)
            self.by_path[path] = hits
            self.hits.extend(hits)
        elif kind is EntryKind.HARDLINK:
            self.files += 1
            self._hardlink(path, norm_path(info.linkname), ordinal)

    def _scan_file(self, f, info: tarfile.TarInfo, path: str, ordinal: int) -> tuple[list[Hit], list[Skipped]]:
        tee = _HashingRead(f, info.size)
        hits, skipped = self.file_scanner.scan(tee.read, info.size, path, ordinal)
        if not hits:
            return hits, skipped
        meta = file_meta(info, tee.sha256())
        return [replace(h, file=meta) for h in hits], skipped

    def _hardlink(self, path: str, target: str, ordinal: int) -> None:
        if target not in self.regular:
            self.skipped.append(Skipped(path, f"hardlink to {target}, which this layer does not hold",
                                        self.layer.index))
            return
        for h in self.by_path.get(target, ()):
            self.hits.append(replace(h, path=path, ordinal=ordinal))
        self.regular.add(path)
        self.by_path[path] = self.by_path.get(target, [])


def scan_layer(layer: Layer, content: ContentScanner, progress: Optional[Progress] = None, *,
               limits: Limits = Limits()) -> LayerScan:
    """Walk the layer's tar stream once. Raises SourceError on a corrupt layer: never half a result."""
    if is_document(layer.media_type):
        return scan_document(layer, content, progress, limits=limits)
    with open_layer(layer) as stream:
        scan = walk_stream(stream, layer, content, limits, progress)
    # closing the `with` checked the blob digest and the diff_id
    return replace(scan, diff_id=layer.diff_id or scan.diff_id)


def walk_stream(stream: HashingReader, layer: Layer, content: ContentScanner, limits: Limits = Limits(),
                progress: Optional[Progress] = None) -> LayerScan:
    """The walk itself, over an open layer stream (`blobs.layer_stream`): from a blob or from a
    member of a stream that goes past once (`docker save` from the engine). Its diff_id and
    digest are what was read; checking them against a manifest is the opener's job."""
    walk = _Walk(layer, content, limits)
    what = f"layer {layer.index}"
    done = 0
    try:
        tf = tarfile.open(fileobj=stream, mode="r|", bufsize=TAR_BUFSIZE, tarinfo=_StrictTarInfo)
        for ordinal, info in enumerate(tf):
            walk.entry(tf, info, ordinal)
            if progress is not None and stream.raw.count - done >= TAR_BUFSIZE:
                progress(stream.raw.count - done)
                done = stream.raw.count
    except tarfile.TarError as exc:
        raise SourceError(f"{what}: corrupt tar stream ({str(exc)[:120] or exc.__class__.__name__})") from None
    except UnicodeError:
        raise SourceError(f"{what}: corrupt tar header (undecodable name)") from None
    stream.drain()
    stream.raw.drain()
    if progress is not None and stream.raw.count - done > 0:
        progress(stream.raw.count - done)
    return LayerScan(diff_id="sha256:" + stream.hash.hexdigest(), digest="sha256:" + stream.raw.hash.hexdigest(),
                     events=tuple(walk.events), hits=tuple(walk.hits), skipped=tuple(walk.skipped),
                     files=walk.files, bytes=stream.count)


def document_path(digest: Optional[str]) -> str:
    return f"/attestation.{(digest or 'sha256:unknown').split(':', 1)[-1][:16]}.json"


def scan_document(layer: Layer, content: ContentScanner, progress: Optional[Progress] = None, *,
                  limits: Limits = Limits()) -> LayerScan:
    """A layer that is one document (an attestation's in-toto JSON): scanned as one file, whose
    path names its digest. Its diff_id is its digest: there is nothing to decompress."""
    walk = _Walk(layer, content, limits)
    path = document_path(layer.blob.digest)
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size, info.mode = layer.blob.size, 0o644
    with open_blob(layer.blob, f"layer {layer.index} ({(layer.digest or '?')[:19]})") as raw:
        walk.events.append(PathEvent(path, EntryKind.FILE, 0))
        walk.files = 1
        hits, skipped = walk._scan_file(raw, info, path, 0)
        walk.hits.extend(hits)
        walk.skipped.extend(Skipped(s.path, s.reason, layer.index) for s in skipped)
    if progress is not None:
        progress(raw.count)
    digest = "sha256:" + raw.hash.hexdigest()
    return LayerScan(diff_id=digest, digest=digest, events=tuple(walk.events), hits=tuple(walk.hits),
                     skipped=tuple(walk.skipped), files=1, bytes=raw.count)
