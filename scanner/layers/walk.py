"""Stream one layer tar once: path events for the overlay, detector hits for every file.

`scan_layer` is a pure function of (layer bytes, detectors): no disk writes, no shared state,
so it can run in any process and its result can be cached by diff_id.
"""
from __future__ import annotations

import io
import math
import posixpath
import tarfile
from dataclasses import replace
from functools import partial
from typing import Callable, Optional

from scanner.detectors.content import ContentScanner
from scanner.layers.digests import HashingRead, held_digests
from scanner.layers.feed import PULL, read_whole
from scanner.layers.nested import FileScanner
from scanner.layers.share import DECLINED, Outbox, Pending, Share, Ticket
from scanner.layers.tarheaders import XGL, Header
from scanner.layers.tarstream import TarStream, members, open_member, open_tar, trailing
from scanner.limits import Limits
from scanner.models import FileMeta, Hit, Layer, LayerScan, PackageDb, Skipped
from scanner.pathevents import EntryKind, PathEvents
from scanner.packagedb import is_package_db, read_package_db
from scanner.sources.blobs import HashingReader, is_document, open_blob, open_layer
from scanner.sources.interface import SourceError

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
TAR_BUFSIZE = 1 << 20  # bytes read from the layer stream at a time

Progress = Callable[[int], None]


# control characters in a name (an escape sequence for the terminal, a newline in a report line)
CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}


def norm_path(name: str) -> str:
    """Absolute, normalised POSIX path; `..` can never climb above the image root.

    Bytes that are not UTF-8 (tarfile hands them over as surrogates) and control characters are
    shown as `\\xNN`, like `ls -b`: a path must hash, print and serialise like any other string.
    """
    if not (name.isascii() and name.isprintable()):  # else nothing to escape (nearly every name)
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        name = name.translate(CONTROL)
    if name in ("", ".", "./"):
        return "/"
    path = "/" + name.lstrip("/")
    if "//" in path or "/." in path or path.endswith("/"):  # else normpath would give it back as is
        return posixpath.normpath(path)
    return path


# what `TarInfo.isdir`, `issym`, `islnk` and `isreg` tell, by the entry's type
_KIND_OF_TYPE = {tarfile.DIRTYPE: EntryKind.DIR, tarfile.SYMTYPE: EntryKind.SYMLINK, tarfile.LNKTYPE: EntryKind.HARDLINK,
                 **{t: EntryKind.FILE for t in tarfile.REGULAR_TYPES}}


def classify(info: Header) -> tuple[str, EntryKind]:
    path = norm_path(info.name)
    if WHITEOUT in path:  # else no whiteout (nearly every entry)
        base = posixpath.basename(path)
        if base == OPAQUE:
            return posixpath.dirname(path), EntryKind.OPAQUE
        if base.startswith(WHITEOUT):
            return posixpath.join(posixpath.dirname(path), base[len(WHITEOUT):]), EntryKind.WHITEOUT
    return path, _KIND_OF_TYPE.get(info.type, EntryKind.OTHER)


def file_meta(info: Header, sha256: Optional[str], md5: Optional[str] = None,
              sha1: Optional[str] = None) -> FileMeta:
    mtime = float(info.mtime)  # a PAX mtime may say 1e400 or nan: JSON has no such numbers
    return FileMeta(mode=info.mode, uid=info.uid, gid=info.gid, size=info.size,
                    mtime=mtime if math.isfinite(mtime) else 0.0,
                    sha256=sha256, uname=_printable(info.uname or ""), gname=_printable(info.gname or ""),
                    md5=md5, sha1=sha1)


def _printable(text: str) -> str:
    """Owner names that are not UTF-8 spelt out like paths: they go to the cache and the reports."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").translate(CONTROL)


class _Walk:
    def __init__(self, layer: Layer, content: ContentScanner, limits: Limits = Limits(),
                 share: Optional[Share] = None) -> None:
        self.layer = layer
        self.content = content
        self.file_scanner = FileScanner(content, limits)  # one per layer: it counts the layer's expansion
        self.events = PathEvents()
        self.hits: list[Hit] = []
        self.skipped: list[Skipped] = []
        self.files = 0
        self.by_path: dict[str, list[Hit] | int] = {}  # hits of each file that has some (a count once full), for hardlinks
        self.most, self.dropped = limits.max_findings, 0  # hits the layer keeps; hits past them, counted
        self.regular: set[str] = set()
        self.tick: Optional[Callable[[], None]] = None
        self.packages: list[PackageDb] = []  # the package databases of the layer, for triage
        # with idle workers to help (`share`): small files go to them; what follows a file still
        # out waits in `pending`, so that every outcome lands in stream order
        self.outbox = Outbox(share, self.file_scanner) if share is not None else None
        self.pending = Pending(self.outbox, self._settle) if self.outbox is not None else None

    def entry(self, tf: TarStream, info: Header, ordinal: int) -> None:
        if info.skipped:
            self._then(self.skipped.extend, [Skipped(norm_path(info.name), f"PAX record {s} too big to read: "
                                                     "not scanned", self.layer.index) for s in info.skipped])
        if info.type == XGL:  # a PAX global header: an entry that applies to no file (Go, moby)
            return
        path, kind = classify(info)
        if path == "/" and kind is EntryKind.DIR:
            return
        self.events.add(path, kind, ordinal)
        if self.pending:
            self.pending.settle()
        if kind is EntryKind.FILE:
            self.files += 1
            self.regular.add(path)
            f, size = open_member(tf, info)
            data: Optional[bytes] = None  # the file read whole (most files), else streamed from `f`
            if size and is_package_db(path, size):
                data = self._package_db(path, f)
            elif self.outbox is not None and self.outbox.wants(size):
                data = read_whole(f.read, size)
                ticket = self.outbox.send(path, ordinal, info, data)
                if ticket is not None:
                    self.pending.add(ticket)  # type: ignore[union-attr]
                    return
            elif 0 < size <= PULL:
                data = read_whole(f.read, size)
            if not size:  # an empty file holds nothing to find
                hits, skipped = [], []
            else:
                if self.outbox is not None:
                    self.outbox.flush()  # the batch open goes to its helper now, not after this file
                hits, skipped = (self._scan_file(f, info, path, ordinal, size) if data is None
                                 else self._scan_data(data, info, path, ordinal))
            self._then(self._file_done, path, hits, skipped)
        elif kind is EntryKind.HARDLINK:
            self.files += 1
            target = norm_path(info.linkname)
            if target not in self.regular:
                self._then(self.skipped.append, Skipped(
                    path, f"hardlink to {target}, which this layer does not hold", self.layer.index))
                return
            self.regular.add(path)
            self._then(self._hardlink, path, target, ordinal)
        elif info.type not in tarfile.SUPPORTED_TYPES and info.stored:  # Docker refuses to apply it
            self._then(self.skipped.append, Skipped(
                path, f"tar entry of unknown type {info.type.decode('latin-1')!r}: its {info.stored} bytes not scanned",
                self.layer.index))

    def _then(self, outcome: Callable[..., None], *args) -> None:
        """An entry's outcome, `outcome(*args)`: now, or after those of the files before it that
        are still out (bound then; nothing is bound when it runs now, as for nearly every file)."""
        if self.pending:
            self.pending.add(partial(outcome, *args))
        else:
            outcome(*args)

    def finish(self) -> None:
        """Every file back from the helpers, and settled; the hits past `--max-findings` counted."""
        if self.pending is not None:
            self.pending.finish()
        if self.dropped:
            self.skipped.append(Skipped("/", f"over {self.most} findings in this layer: the first {self.most} "
                                             f"reported, {self.dropped} more not (max findings)", self.layer.index))

    def _file_done(self, path: str, hits: list[Hit], skipped: list[Skipped]) -> None:
        if skipped:
            self.skipped.extend(Skipped(s.path, s.reason, self.layer.index) for s in skipped)
        self._add(path, hits)

    def _settle(self, ticket: Ticket) -> None:
        """A file back from a helper (`scan_sent`): its outcome, or, declined, scanned here now."""
        if ticket.reply is DECLINED:
            self.file_scanner.settle_aside(ticket.held, 0)
            hits, skipped = self._scan_data(ticket.data or b"", ticket.info, ticket.path, ticket.ordinal)
        else:
            hits, skipped, digests, expanded = ticket.reply
            self.file_scanner.settle_aside(ticket.held, expanded)
            hits = _provenance(hits, ticket.info, digests)
        self._file_done(ticket.path, hits, skipped)

    def _package_db(self, path: str, f) -> bytes:
        """Read a package database whole (it is small) for triage; it is then scanned like any file."""
        data = f.read()
        db = read_package_db(path, data)
        if db is not None:
            self.packages.append(db)
        return data

    def _scan_file(self, f, info: Header, path: str, ordinal: int,
                   size: Optional[int] = None) -> tuple[list[Hit], list[Skipped]]:
        size = info.size if size is None else size  # a sparse file: the bytes it stores
        hits, skipped, digests = _scan_hashed(self.file_scanner, f, size, path, ordinal, self.tick)
        return _provenance(hits, info, digests), skipped

    def _scan_data(self, data: bytes, info: Header, path: str, ordinal: int) -> tuple[list[Hit], list[Skipped]]:
        """`_scan_file` of a file already read whole."""
        hits, skipped, digests = _scan_bytes(self.file_scanner, data, path, ordinal, self.tick)
        return _provenance(hits, info, digests), skipped

    def _hardlink(self, path: str, target: str, ordinal: int) -> None:
        """A hardlink to a regular file of this layer: the hits of that file, at this path too."""
        hits = self.by_path.get(target, [])
        self._add(path, hits if isinstance(hits, int) else [replace(h, path=path, ordinal=ordinal) for h in hits])

    def _add(self, path: str, hits: list[Hit] | int) -> None:
        """The hits of the file now at `path` (an entry may replace an earlier one of the same path),
        as many as the layer has room for; past that only counted (a count is all a hardlink needs
        then: memory stays bounded however many files are full of secrets)."""
        room = self.most - len(self.hits)
        n = hits if isinstance(hits, int) else len(hits)
        if n > room:
            self.dropped += n - room
            if not isinstance(hits, int):
                self.hits.extend(hits[:room])
            hits = n
        elif n:
            self.hits.extend(hits)  # type: ignore[arg-type]
        if n:
            self.by_path[path] = hits
        else:
            self.by_path.pop(path, None)


def _scan_hashed(files: FileScanner, f, size: int, path: str, ordinal: int,
                 tick: Optional[Callable[[], None]] = None) -> tuple[list[Hit], list[Skipped], Optional[tuple]]:
    """The hits and skipped content of the file `f` reads, and its digests when it has hits."""
    tee = HashingRead(f, path, tick)
    hits, skipped = files.scan(tee.read, size, path, ordinal)
    return hits, skipped, tee.digests() if hits else None


def _scan_bytes(files: FileScanner, data: bytes, path: str, ordinal: int, tick: Optional[Callable[[], None]] = None
                ) -> tuple[list[Hit], list[Skipped], Optional[tuple]]:
    """`_scan_hashed` of a file read whole: one of up to one read is scanned as it is held."""
    if len(data) > PULL:
        return _scan_hashed(files, io.BytesIO(data), len(data), path, ordinal, tick)
    hits, skipped = files.scan_held(data, path, ordinal)
    return hits, skipped, held_digests(data) if hits else None


def _provenance(hits: list[Hit], info: Header, digests: Optional[tuple]) -> list[Hit]:
    """The hits of one file, each with the file's tar header and digests."""
    if not hits:
        return hits
    meta = file_meta(info, *digests)  # type: ignore[misc]
    return [replace(h, file=meta) for h in hits]


def scan_sent(content: ContentScanner, limits: Limits, path: str, ordinal: int, data: bytes, held: int):
    """A helper's scan of a file a walk sent it (`share`): what `_Walk._scan_file` finds in it
    (the walk adds the provenance: the tar header stays with it), its digests and the bytes it
    expanded; DECLINED when its archives expand past the `held` bytes of budget."""
    files = FileScanner(content, limits, layer_bytes=held)
    hits, skipped, digests = _scan_bytes(files, data, path, ordinal)
    if files.expanded > held:  # the walk's own budget may allow more: it scans this one itself
        return DECLINED
    return hits, skipped, digests, files.expanded


def scan_layer(layer: Layer, content: ContentScanner, progress: Optional[Progress] = None, *,
               limits: Limits = Limits(), share: Optional[Share] = None) -> LayerScan:
    """Walk the layer's tar stream once. Raises SourceError on a corrupt layer: never half a result.
    `share`: idle workers that scan small files for the walk."""
    if is_document(layer.media_type):
        return scan_document(layer, content, progress, limits=limits)
    with open_layer(layer) as stream:
        scan = walk_stream(stream, layer, content, limits, progress, share=share)
    # closing the `with` checked the blob digest and the diff_id
    return replace(scan, diff_id=layer.diff_id or scan.diff_id)


def walk_stream(stream: HashingReader, layer: Layer, content: ContentScanner, limits: Limits = Limits(),
                progress: Optional[Progress] = None, what: Optional[str] = None,
                share: Optional[Share] = None) -> LayerScan:
    """The walk itself, over an open layer stream (`blobs.layer_stream`): from a blob or from a
    member of a stream that goes past once (`docker save` from the engine). Its diff_id and
    digest are what was read; checking them against a manifest is the opener's job."""
    walk = _Walk(layer, content, limits, share)
    what = what or f"layer {layer.index}"
    done = ordinal = 0

    timed, most_files, most_bytes = limits.timed, limits.max_image_files, limits.max_image_bytes

    def tick() -> None:  # the image-wide bounds: one layer alone may not pass them either
        if timed:
            limits.check_time(f"in {what}")
        if ordinal >= most_files or stream.count > most_bytes:  # over: it raises
            limits.check_image(what, ordinal + 1, stream.count)

    walk.tick = tick
    try:
        tf = open_tar(stream, TAR_BUFSIZE)
        for ordinal, info in enumerate(members(tf)):
            tick()
            walk.entry(tf, info, ordinal)
            if progress is not None and stream.raw.count - done >= TAR_BUFSIZE:
                progress(stream.raw.count - done)
                done = stream.raw.count
        walk.finish()
        hidden = trailing(tf)
    except tarfile.TarError as exc:
        raise SourceError(f"{what}: corrupt tar stream ({str(exc)[:120] or exc.__class__.__name__})") from None
    except UnicodeError:
        raise SourceError(f"{what}: corrupt tar header (undecodable name)") from None
    if hidden:
        walk.skipped.append(Skipped("/", f"data after the tar's end-of-archive marker ({hidden} non-zero bytes): "
                                         "in the image, but no tar tool reads it; not scanned", layer.index))
    stream.drain()
    stream.raw.drain()
    if progress is not None and stream.raw.count - done > 0:
        progress(stream.raw.count - done)
    return LayerScan(diff_id="sha256:" + stream.hash.hexdigest(), digest="sha256:" + stream.raw.hash.hexdigest(),
                     events=walk.events, hits=tuple(walk.hits), skipped=tuple(walk.skipped),
                     files=walk.files, bytes=stream.count, packages=tuple(walk.packages))


def document_path(digest: Optional[str]) -> str:
    return f"/attestation.{(digest or 'sha256:unknown').split(':', 1)[-1][:16]}.json"


def scan_document(layer: Layer, content: ContentScanner, progress: Optional[Progress] = None, *,
                  limits: Limits = Limits()) -> LayerScan:
    """A layer that is one document (an attestation's in-toto JSON): scanned as one file, whose
    path names its digest. Its diff_id is its digest: there is nothing to decompress."""
    walk = _Walk(layer, content, limits)
    path = document_path(layer.blob.digest)
    info = Header(path.lstrip("/"), size=layer.blob.size)
    info.mode = 0o644
    with open_blob(layer.blob, f"layer {layer.index} ({(layer.digest or '?')[:19]})") as raw:
        walk.events.add(path, EntryKind.FILE, 0)
        walk.files = 1
        hits, skipped = walk._scan_file(raw, info, path, 0)
        walk._file_done(path, hits, skipped)
        walk.finish()
    if progress is not None:
        progress(raw.count)
    digest = "sha256:" + raw.hash.hexdigest()
    return LayerScan(diff_id=digest, digest=digest, events=walk.events, hits=tuple(walk.hits),
                     skipped=tuple(walk.skipped), files=1, bytes=raw.count)
