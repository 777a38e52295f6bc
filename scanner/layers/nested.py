"""Reach the content inside a layer's files: nested archives and compressed files, bounded.

`FileScanner.scan` sniffs a file's magic bytes (never its name) and either opens it as a
container (zip family: zip, jar, war, ear, whl, egg, apk; tar; gzip; zstd) or runs its decoded
text views (scanner.detectors.decode) through the detectors. A file or member of up to one read
(1 MiB) is held whole, anything larger streams through `feed.Feed`; nothing is written to disk.

Inner paths: a hit inside an archive keeps `path` = the file in the layer and gets `inner_path`
= the member path, one level per opened container, joined with "!":
`BOOT-INF/lib/inner.jar!application.properties`. A compressed single file is one level named
after its content (the gzip header's name, else the file name less `.gz`/`.zst`); a tar inside
gzip or zstd (tar.gz, tar.zst) is one level whose names are the tar's members. The depth of a
member is its number of levels: a jar in a war in the layer holds members at depth 2.

Limits (metered in `scanner.layers.feed`; reasons worded in `scanner.layers.naming`): what a limit
or a corrupt member stops becomes a `Skipped` with the reason; what was read before the stop is
still scanned, and so is the rest of the layer. A layer that cannot be read
(an error of the layer's own tar stream) is not ours to judge: that error propagates.
"""
from __future__ import annotations

import enum
import gzip
import posixpath
import tarfile
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import stream_inflate
import stream_unzip as su
import zstandard

from scanner import inflate
from scanner.detectors.content import ContentScanner, to_hit
from scanner.detectors.decode import prefixed, scan_bytes, scan_views
from scanner.layers.feed import (PULL, RATIO_FLOOR, Budget, Feed, LayerReadError, Ratio, feed_chunks, human_size,
                                 iter_pull, layer_pull, read_pull, read_whole)
from scanner.layers.naming import (REST, ZSTD_MAX_WINDOW, clean, gzip_name, plain_name, stream_reason, why,
                                   zip_archive_phrase, zip_member_phrase, zip_name)
from scanner.layers.tarstream import members, open_member, open_tar
from scanner.limits import Limits
from scanner.models import Hit, Skipped
from scanner.sources.blobs import GzipMembers

ZIP_READ = 64 << 10  # compressed bytes handed to the unzipper at a time
HEAD = 4096  # bytes sniffed for magic numbers (and a gzip header's file name)

_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, *inflate.ERRORS)
# stream_inflate (deflate64) can also fail on malformed Huffman tables with a TypeError (fuzzing
# found it): a library's bug on bad data is bad data all the same, never a crash of the scan
_ZIP_MEMBER_ERRORS = (su.UnzipError, stream_inflate.StreamInflateError, TypeError, ValueError, IndexError,
                      KeyError)
_TAR_ERRORS = (tarfile.TarError, UnicodeError)


class ArchiveKind(str, enum.Enum):
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    ZSTD = "zstd"


def archive_kind(head: bytes) -> Optional[ArchiveKind]:
    """The container a file is, from its first bytes (it reads 262 at most); None: scan it as a file."""
    if head.startswith(b"PK\x03\x04"):
        return ArchiveKind.ZIP
    if head.startswith(b"\x1f\x8b\x08"):
        return ArchiveKind.GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ArchiveKind.ZSTD
    if head[257:262] == b"ustar":
        return ArchiveKind.TAR
    return None


class _Full(Exception):
    """The file has reached the most findings reported of one file: the rest of it is not scanned."""


@dataclass(frozen=True)
class _Loc:
    """Where content sits: the file in the layer and the member path inside it, level by level."""

    path: str
    ordinal: int
    parts: tuple[str, ...] = ()

    @property
    def inner(self) -> Optional[str]:
        return "!".join(self.parts) or None

    @property
    def at(self) -> str:
        return f" {self.inner}" if self.parts else ""

    @property
    def base(self) -> str:
        """The file name of the innermost level: the member's, else the layer file's."""
        return posixpath.basename(self.parts[-1] if self.parts else self.path)

    def child(self, name: str) -> "_Loc":
        return _Loc(self.path, self.ordinal, self.parts + (name,))


class FileScanner:
    """Scans the files of one layer, archives included. One instance per layer: it keeps the
    count of bytes expanded from the layer's archives (`limits.max_layer_bytes`)."""

    def __init__(self, content: ContentScanner, limits: Limits = Limits(), layer_bytes: Optional[int] = None) -> None:
        """`layer_bytes`: what may be expanded from archives, when not the layer's whole budget (a
        helper given one file of the layer: what the layer's walk set aside for it)."""
        self.content, self.limits = content, limits
        self._layer = Budget(limits.max_layer_bytes if layer_bytes is None else layer_bytes,
                             f"over {human_size(limits.max_layer_bytes)} expanded "
                             "from archives in this layer (max layer bytes)")
        self._path = ""
        self._hits: list[Hit] = []
        self._skipped: list[Skipped] = []

    def scan(self, read: Callable[[int], bytes], size: int, path: str,
             ordinal: int) -> tuple[list[Hit], list[Skipped]]:
        """Hits and skipped content of the file `read` streams (`size` bytes at `path` in the layer)."""
        if size <= PULL:  # most files: read whole in one go, no layers of readers in between
            return self.scan_held(read_whole(read, size), path, ordinal)
        self._start(path, size)
        try:
            self._member(Feed(layer_pull(read), self._skip, cap=self.limits.max_file_size), _Loc(path, ordinal))
        except LayerReadError as exc:
            raise exc.error
        except _Full:
            self._full()
        return self._hits, self._skipped

    def scan_held(self, data: bytes, path: str, ordinal: int) -> tuple[list[Hit], list[Skipped]]:
        """`scan` of a file of up to one read (`PULL`), its bytes `data` already read whole."""
        self._start(path, len(data))
        cap = self.limits.max_file_size
        try:
            kind = archive_kind(data)
            if kind is None:
                found = scan_bytes(self.content, data[:cap], path, self._room())
                if found:
                    self._report(found, _Loc(path, ordinal))
            else:
                loc = _Loc(path, ordinal)
                if not (kind is ArchiveKind.GZIP and len(data) <= cap and self._small_gzip(data, loc)):
                    self._member(Feed(iter_pull([data]), self._skip, cap=cap), loc)
        except _Full:
            self._full()
        return self._hits, self._skipped

    def _start(self, path: str, size: int) -> None:
        self._path, self._hits, self._skipped = path, [], []
        cap = self.limits.max_file_size
        if size > cap:
            self._skip(f"file of {size} bytes is over the max file size: only the first {human_size(cap)} scanned")

    def _full(self) -> None:
        most = self.limits.max_file_findings
        self._skip(f"over {most} findings in this file: the first {most} reported, the rest of it not scanned "
                   "(max file findings)")

    @property
    def expanded(self) -> int:
        """Bytes expanded from archives so far (set aside included)."""
        return self._layer.used

    def set_aside(self, n: int) -> bool:
        """Hold `n` bytes of the layer's expansion budget for a file scanned elsewhere (by a
        helper, `walk.scan_sent`); False, nothing held, when fewer than twice that are left."""
        if self._layer.limit - self._layer.used < 2 * n:
            return False
        self._layer.used += n
        return True

    def settle_aside(self, n: int, expanded: int) -> None:
        """The file `n` bytes were held for expanded `expanded` bytes."""
        self._layer.used += expanded - n

    def _skip(self, reason: str) -> None:
        self._skipped.append(Skipped(self._path, reason))

    def _member(self, feed: Feed, loc: _Loc) -> None:
        kind = archive_kind(feed.peek(HEAD))
        if kind is None:
            return self._text(feed, loc)
        if len(loc.parts) >= self.limits.max_depth:
            what = f"archive member {loc.inner}" if loc.parts else f"{kind.value} archive"
            self._skip(f"{what}: nested deeper than {self.limits.max_depth}")
            return self._text(feed, loc)  # not opened; its raw bytes (stored members) still scanned
        {ArchiveKind.ZIP: self._zip, ArchiveKind.TAR: self._tar,
         ArchiveKind.GZIP: self._gzip, ArchiveKind.ZSTD: self._zstd}[kind](feed, loc)

    def _text(self, feed: Feed, loc: _Loc) -> None:
        """A member's views; one that fits one read (most archive members) is scanned whole."""
        name = loc.parts[-1] if loc.parts else loc.path
        data = feed.read(PULL)
        if not feed.peek(1):
            return self._report(scan_bytes(self.content, data, name, self._room()), loc)
        self._report(scan_views(self.content, prefixed(data, feed.read), name, self._room()), loc)

    def _room(self) -> int:
        """Findings this file may still report (`scan_views` stops reading soon after more)."""
        return self.limits.max_file_findings - len(self._hits)

    def _report(self, located: list, loc: _Loc) -> None:
        keep = self.content.keep_values
        for found in located[:self._room() + 1]:
            self._hits.append(to_hit(found.match, loc.path, found.line, loc.ordinal, keep, loc.inner))
        if self._room() < 0:
            del self._hits[self.limits.max_file_findings:]
            raise _Full

    # --- containers ------------------------------------------------------------------------

    def _zip(self, src: Feed, loc: _Loc) -> None:
        archive = self._archive_budget()
        # a password (none is right) makes an encrypted member fail by name, not the whole archive
        members = su.stream_unzip(feed_chunks(src, ZIP_READ), password=b"", chunk_size=ZIP_READ)
        last: Optional[str] = None
        resumed = False  # going on after a member with a bad CRC or size
        try:
            for raw_name, _size, chunks in members:
                last, resumed = zip_name(raw_name), False
                feed = self._zip_member(src, chunks, loc.child(last), archive)
                if not last.endswith("/"):
                    self._member(feed, loc.child(last))
                feed.drain()
                if feed.failed:
                    if not isinstance(feed.exc, (su.CRC32IntegrityError, su.SizeIntegrityError)):
                        return
                    resumed = True
        except _ZIP_MEMBER_ERRORS as exc:
            if not src.explained:
                self._skip(f"zip{loc.at}: {zip_archive_phrase(exc, last, resumed)}{REST}")
        finally:
            members.close()

    def _zip_member(self, src: Feed, chunks: Iterable[bytes], loc: _Loc, archive: Budget) -> Feed:
        start = src.delivered
        ratio = Ratio(self.limits.max_ratio, lambda: src.delivered - start + ZIP_READ)
        return Feed(iter_pull(chunks), self._skip, label=f"zip member {loc.inner}", suffix=REST,
                    upstream=src, meters=(archive, self._layer, ratio), errors=_ZIP_MEMBER_ERRORS,
                    describe=lambda exc: "zip: " + zip_member_phrase(exc, loc.inner),
                    cap=self.limits.max_file_size)

    def _tar(self, src: Feed, loc: _Loc) -> None:
        last: Optional[str] = None
        try:
            with open_tar(src) as tf:
                for info in members(tf):
                    if not info.isreg():
                        continue
                    last = clean(info.name)
                    child = loc.child(last)
                    member, _ = open_member(tf, info)
                    feed = Feed(read_pull(member.read), self._skip, label=f"tar member {child.inner}",
                                upstream=src, errors=_TAR_ERRORS, cap=self.limits.max_file_size,
                                describe=lambda exc, m=child.inner: f"tar: truncated in member {m}{REST}")
                    self._member(feed, child)
                    if feed.failed:
                        return
        except _TAR_ERRORS as exc:
            if not src.explained:
                where = f" after member {last}" if last is not None else ""
                self._skip(f"tar{loc.at}: corrupt archive{where} ({why(exc)}){REST}")

    def _gzip(self, src: Feed, loc: _Loc) -> None:
        name = gzip_name(src.peek(HEAD)) or plain_name(loc.base, (".gz", ".gzip"), {".tgz": ".tar"})
        self._expand(ArchiveKind.GZIP, GzipMembers(src, ZIP_READ), src, loc, name, _GZIP_ERRORS)

    def _small_gzip(self, data: bytes, loc: _Loc) -> bool:
        """A small gzip file of the layer (a man page, a changelog) holding plain text, inflated in
        one call: what `_gzip` finds in it, without its streams, when no limit can be reached on
        the way (it expands to at most RATIO_FLOOR, the max file size and what the layer's budget
        has left). False, nothing done: anything else (several members, damage, an archive
        inside, a limit in reach) takes the streaming path, which says why."""
        limits = self.limits
        most = min(RATIO_FLOOR, limits.max_file_size, limits.max_archive_bytes, self._layer.limit - self._layer.used)
        if limits.max_depth < 1 or most <= 0:
            return False
        inflater = inflate.gzip_inflater()
        try:
            text = inflater.decompress(data, most + 1)
        except inflate.ERRORS:
            return False
        if not inflater.eof or len(text) > most or inflater.unused_data.strip(b"\0") or archive_kind(text):
            return False
        self._layer.spend(len(text))
        name = gzip_name(data[:HEAD]) or plain_name(loc.base, (".gz", ".gzip"), {".tgz": ".tar"})
        child = loc.child(name)
        self._report(scan_bytes(self.content, text, name, self._room()), child)
        return True

    def _zstd(self, src: Feed, loc: _Loc) -> None:
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            src, read_size=ZIP_READ, read_across_frames=True, closefd=False)
        name = plain_name(loc.base, (".zst", ".zstd"), {".tzst": ".tar"})
        self._expand(ArchiveKind.ZSTD, reader, src, loc, name, (zstandard.ZstdError,))

    def _expand(self, kind: ArchiveKind, reader, src: Feed, loc: _Loc, name: str, errors: tuple) -> None:
        """A compressed stream: a tar inside is this same level (tar.gz), anything else one more."""
        start = src.delivered
        ratio = Ratio(self.limits.max_ratio, lambda: src.delivered - start)
        label = f"{kind.value}{loc.at}"
        feed = Feed(lambda: reader.read(PULL), self._skip, label=label, upstream=src,
                    meters=(self._archive_budget(), self._layer, ratio), errors=errors,
                    describe=lambda exc: stream_reason(label, exc))
        if archive_kind(feed.peek(HEAD)) is ArchiveKind.TAR:
            self._tar(feed, loc)  # its members are capped one by one
        else:
            feed.cap = self.limits.max_file_size
            self._member(feed, loc.child(name))

    def _archive_budget(self) -> Budget:
        n = self.limits.max_archive_bytes
        return Budget(n, f"over {human_size(n)} expanded from one archive (max archive bytes)")
