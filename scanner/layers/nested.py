"""Reach the content inside a layer's files: nested archives and compressed files, bounded.

`FileScanner.scan` sniffs a file's magic bytes (never its name) and either opens it as a
container (zip family: zip, jar, war, ear, whl, egg, apk; tar; gzip; zstd) or runs its decoded
text views (scanner.detectors.decode) through the detectors. Everything streams: no file or
member is read whole into memory, nothing is written to disk.

Inner paths: a hit inside an archive keeps `path` = the file in the layer and gets `inner_path`
= the member path, one level per opened container, joined with "!":
`BOOT-INF/lib/inner.jar!application.properties`. A compressed single file is one level named
after its content (the gzip header's name, else the file name less `.gz`/`.zst`); a tar inside
gzip or zstd (tar.gz, tar.zst) is one level whose names are the tar's members. The depth of a
member is its number of levels: a jar in a war in the layer holds members at depth 2.

Limits: what a limit or a corrupt member stops becomes a `Skipped` with the reason; what was read
before the stop is still scanned, and so is the rest of the layer. A layer that cannot be read
(an error of the layer's own tar stream) is not ours to judge: that error propagates.
"""
from __future__ import annotations

import enum
import gzip
import posixpath
import tarfile
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

import stream_inflate
import stream_unzip as su
import zstandard

from scanner.detectors.content import ContentScanner, to_hit
from scanner.detectors.decode import prefixed, scan_bytes, scan_views
from scanner.layers.tarstream import members, open_member, open_tar
from scanner.limits import GiB, MiB, Limits
from scanner.sources.blobs import GzipMembers
from scanner.models import Hit, Skipped

PULL = 1 << 20  # bytes asked of a file, or of a decompressor, at a time
ZIP_READ = 64 << 10  # compressed bytes handed to the unzipper at a time
HEAD = 4096  # bytes sniffed for magic numbers (and a gzip header's file name)
ZSTD_MAX_WINDOW = 1 << 25  # a zstd frame that needs more decoder memory is skipped, not decoded

_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
# stream_inflate (deflate64) can also fail on malformed Huffman tables with a TypeError (fuzzing
# found it): a library's bug on bad data is bad data all the same, never a crash of the scan
_ZIP_MEMBER_ERRORS = (su.UnzipError, stream_inflate.StreamInflateError, TypeError, ValueError, IndexError,
                      KeyError)
_TAR_ERRORS = (tarfile.TarError, UnicodeError)
_REST = "; rest of the archive not scanned"
RATIO_FLOOR = 1 * MiB  # the ratio limit applies once this much is expanded: small files compress well


class ArchiveKind(str, enum.Enum):
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    ZSTD = "zstd"


def archive_kind(head: bytes) -> Optional[ArchiveKind]:
    """The container a file is, from its first bytes; None: scan it as a file."""
    if head.startswith(b"PK\x03\x04"):
        return ArchiveKind.ZIP
    if head.startswith(b"\x1f\x8b\x08"):
        return ArchiveKind.GZIP
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ArchiveKind.ZSTD
    if head[257:262] == b"ustar":
        return ArchiveKind.TAR
    return None


# --- reading with limits ----------------------------------------------------------------------


class _Stop(Exception):
    """A limit reached; the message is the reason."""


class _Full(Exception):
    """The file has reached the most findings reported of one file: the rest of it is not scanned."""


class LayerReadError(Exception):
    """An error reading the layer's own stream: passes through every handler here, re-raised as is."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Budget:
    """Bytes that may still be expanded (from one archive, or from all archives of a layer)."""

    def __init__(self, limit: int, reason: str) -> None:
        self.limit, self.reason, self.used = limit, reason, 0

    def spend(self, n: int) -> None:
        self.used += n
        if self.used > self.limit:
            raise _Stop(self.reason)


class Ratio:
    """Expanded against compressed bytes of one stream: stops a bomb while it expands."""

    def __init__(self, max_ratio: int, compressed: Callable[[], int]) -> None:
        self.max_ratio, self.compressed, self.expanded = max_ratio, compressed, 0

    def spend(self, n: int) -> None:
        self.expanded += n
        if self.expanded > RATIO_FLOOR and self.expanded > self.max_ratio * max(self.compressed(), 1):
            raise _Stop(f"expansion ratio over {self.max_ratio}:1 (bomb?)")


class Feed:
    """A forward-only reader over `pull` (the next chunk; b"" at the end) with peek, cap and drain.

    A limit (`meters`) or an error of the decoding library (`errors`) ends the stream early: the
    feed reports why (unless the feed it reads from failed first: that one said why) and reads as
    at its end, so what came before is still scanned. `cap` bounds the bytes handed out (max file
    size); `drain` reads on past it, through the meters, so a container can go to its next member.
    """

    def __init__(self, pull: Callable[[], bytes], report: Callable[[str], None], *, label: str = "",
                 suffix: str = "", upstream: Optional["Feed"] = None, meters: tuple = (),
                 errors: tuple = (), describe: Callable[[BaseException], str] = str,
                 cap: Optional[int] = None) -> None:
        self._pull, self._report, self.label, self.suffix = pull, report, label, suffix
        self.upstream, self.meters, self.errors, self.describe = upstream, meters, errors, describe
        self.cap = cap
        self._buf = bytearray()
        self._eof = self.stopped = False
        self._capped: Optional[bool] = None  # None: the cap was not reached
        self.exc: Optional[BaseException] = None
        self.delivered = 0

    @property
    def failed(self) -> bool:
        """The stream ended early: a limit, or an error here or in a feed it reads from."""
        return self.stopped or (self.upstream is not None and self.upstream.failed)

    @property
    def explained(self) -> bool:
        """Why the stream is short was reported already (here or upstream): say nothing more."""
        return self.stopped or bool(self._capped) or (self.upstream is not None and self.upstream.explained)

    def _next(self) -> bytes:
        if self._eof:
            return b""
        try:
            data = self._pull()
            for meter in self.meters:
                meter.spend(len(data))
        except _Stop as stop:
            return self._fail(f"{self.label}: {stop}{self.suffix}" if self.label else str(stop))
        except self.errors as exc:
            self.exc = exc
            return self._fail(self.describe(exc))
        self._eof = not data
        return data

    def _fail(self, reason: str) -> bytes:
        self._eof = self.stopped = True
        if not (self.upstream is not None and self.upstream.explained):
            self._report(reason)
        return b""

    def peek(self, n: int) -> bytes:
        while len(self._buf) < n and not self._eof:
            self._buf += self._next()
        return bytes(self._buf[:n])

    def read(self, n: int = -1) -> bytes:
        n = PULL if n is None or n < 0 else n
        if self.cap is not None:
            if self.delivered >= self.cap:
                self._over_cap()
                return b""
            n = min(n, self.cap - self.delivered)
        while len(self._buf) < n and not self._eof:
            self._buf += self._next()
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.delivered += len(out)
        return out

    def _over_cap(self) -> None:
        if self._capped is None:
            self._capped = bool(self.peek(1))
            if self._capped and self.label:  # a file of the layer itself: its size was reported upfront
                self._report(f"{self.label}: over the max file size: only the first {human_size(self.cap or 0)} scanned")

    def drain(self) -> None:
        self._buf.clear()
        while self._next():
            pass


def human_size(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


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

    def child(self, name: str) -> "_Loc":
        return _Loc(self.path, self.ordinal, self.parts + (name,))


class FileScanner:
    """Scans the files of one layer, archives included. One instance per layer: it keeps the
    count of bytes expanded from the layer's archives (`limits.max_layer_bytes`)."""

    def __init__(self, content: ContentScanner, limits: Limits = Limits()) -> None:
        self.content, self.limits = content, limits
        self._layer = Budget(limits.max_layer_bytes, f"over {human_size(limits.max_layer_bytes)} expanded "
                                                     "from archives in this layer (max layer bytes)")
        self._path = ""
        self._hits: list[Hit] = []
        self._skipped: list[Skipped] = []

    def scan(self, read: Callable[[int], bytes], size: int, path: str,
             ordinal: int) -> tuple[list[Hit], list[Skipped]]:
        """Hits and skipped content of the file `read` streams (`size` bytes at `path` in the layer)."""
        self._path, self._hits, self._skipped = path, [], []
        cap = self.limits.max_file_size
        if size > cap:
            self._skip(f"file of {size} bytes is over the max file size: only the first {human_size(cap)} scanned")
        try:
            if size <= PULL:  # most files: read whole in one go, no layers of readers in between
                data = _read_whole(read, size)
                loc = _Loc(path, ordinal)
                kind = archive_kind(data[:HEAD])
                if kind is None:
                    self._report(scan_bytes(self.content, data[:cap], path, self._room()), loc)
                elif not (kind is ArchiveKind.GZIP and size <= cap and self._small_gzip(data, loc)):
                    self._member(Feed(_iter_pull([data]), self._skip, cap=cap), loc)
            else:
                self._member(Feed(_layer_pull(read), self._skip, cap=cap), _Loc(path, ordinal))
        except LayerReadError as exc:
            raise exc.error
        except _Full:
            most = self.limits.max_file_findings
            self._skip(f"over {most} findings in this file: the first {most} reported, the rest of it not scanned "
                       "(max file findings)")
        return self._hits, self._skipped

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
        members = su.stream_unzip(_chunks(src, ZIP_READ), password=b"", chunk_size=ZIP_READ)
        last: Optional[str] = None
        resumed = False  # going on after a member with a bad CRC or size
        try:
            for raw_name, _size, chunks in members:
                last, resumed = _zip_name(raw_name), False
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
                self._skip(f"zip{loc.at}: {_zip_archive_phrase(exc, last, resumed)}{_REST}")
        finally:
            members.close()

    def _zip_member(self, src: Feed, chunks: Iterable[bytes], loc: _Loc, archive: Budget) -> Feed:
        start = src.delivered
        ratio = Ratio(self.limits.max_ratio, lambda: src.delivered - start + ZIP_READ)
        return Feed(_iter_pull(chunks), self._skip, label=f"zip member {loc.inner}", suffix=_REST,
                    upstream=src, meters=(archive, self._layer, ratio), errors=_ZIP_MEMBER_ERRORS,
                    describe=lambda exc: "zip: " + _zip_member_phrase(exc, loc.inner),
                    cap=self.limits.max_file_size)

    def _tar(self, src: Feed, loc: _Loc) -> None:
        last: Optional[str] = None
        try:
            with open_tar(src) as tf:
                for info in members(tf):
                    if not info.isreg():
                        continue
                    last = _clean(info.name)
                    child = loc.child(last)
                    member, _ = open_member(tf, info)
                    feed = Feed(_read_pull(member.read), self._skip, label=f"tar member {child.inner}",
                                upstream=src, errors=_TAR_ERRORS, cap=self.limits.max_file_size,
                                describe=lambda exc, m=child.inner: f"tar: truncated in member {m}{_REST}")
                    self._member(feed, child)
                    if feed.failed:
                        return
        except _TAR_ERRORS as exc:
            if not src.explained:
                where = f" after member {last}" if last is not None else ""
                self._skip(f"tar{loc.at}: corrupt archive{where} ({_why(exc)}){_REST}")

    def _gzip(self, src: Feed, loc: _Loc) -> None:
        name = _gzip_name(src.peek(HEAD)) or _plain_name(loc, (".gz", ".gzip"), {".tgz": ".tar"})
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
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            text = inflate.decompress(data, most + 1)
        except zlib.error:
            return False
        if not inflate.eof or len(text) > most or inflate.unused_data.strip(b"\0") or archive_kind(text[:HEAD]):
            return False
        self._layer.spend(len(text))
        name = _gzip_name(data[:HEAD]) or _plain_name(loc, (".gz", ".gzip"), {".tgz": ".tar"})
        child = loc.child(name)
        self._report(scan_bytes(self.content, text, name, self._room()), child)
        return True

    def _zstd(self, src: Feed, loc: _Loc) -> None:
        reader = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).stream_reader(
            src, read_size=ZIP_READ, read_across_frames=True, closefd=False)
        name = _plain_name(loc, (".zst", ".zstd"), {".tzst": ".tar"})
        self._expand(ArchiveKind.ZSTD, reader, src, loc, name, (zstandard.ZstdError,))

    def _expand(self, kind: ArchiveKind, reader, src: Feed, loc: _Loc, name: str, errors: tuple) -> None:
        """A compressed stream: a tar inside is this same level (tar.gz), anything else one more."""
        start = src.delivered
        ratio = Ratio(self.limits.max_ratio, lambda: src.delivered - start)
        label = f"{kind.value}{loc.at}"
        feed = Feed(lambda: reader.read(PULL), self._skip, label=label, upstream=src,
                    meters=(self._archive_budget(), self._layer, ratio), errors=errors,
                    describe=lambda exc: _stream_reason(label, exc))
        if archive_kind(feed.peek(HEAD)) is ArchiveKind.TAR:
            self._tar(feed, loc)  # its members are capped one by one
        else:
            feed.cap = self.limits.max_file_size
            self._member(feed, loc.child(name))

    def _archive_budget(self) -> Budget:
        n = self.limits.max_archive_bytes
        return Budget(n, f"over {human_size(n)} expanded from one archive (max archive bytes)")


# --- helpers ----------------------------------------------------------------------------------


def _read_whole(read: Callable[[int], bytes], size: int) -> bytes:
    """All `size` bytes of a small file of the layer (fewer if its stream ends first)."""
    data = read(size)
    while len(data) < size:
        more = read(size - len(data))
        if not more:
            break
        data += more
    return data


def _layer_pull(read: Callable[[int], bytes]) -> Callable[[], bytes]:
    """Reads of the layer's own stream: their errors are marked to pass through every handler."""
    def pull() -> bytes:
        try:
            return read(PULL)
        except Exception as exc:
            raise LayerReadError(exc) from exc
    return pull


def _read_pull(read: Callable[[int], bytes]) -> Callable[[], bytes]:
    return lambda: read(PULL)


def _iter_pull(chunks: Iterable[bytes]) -> Callable[[], bytes]:
    it = iter(chunks)

    def pull() -> bytes:
        for data in it:
            if data:
                return data
        return b""
    return pull


def _chunks(feed: Feed, size: int) -> Iterator[bytes]:
    while data := feed.read(size):
        yield data


_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F]}  # as walk.norm_path: never raw in a report


def _clean(name: str) -> str:
    """A member name as shown in inner paths: relative, undecodable bytes escaped."""
    name = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace").translate(_CONTROL)
    while name.startswith(("./", "/")):
        name = name[2:] if name.startswith("./") else name[1:]
    return name


def _zip_name(raw: bytes) -> str:
    try:
        return _clean(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return _clean(raw.decode("cp437"))


def _gzip_name(head: bytes) -> Optional[str]:
    """The original file name a gzip header carries (FNAME), if any."""
    if len(head) < 10 or not head[3] & 0x08:
        return None
    pos = 10
    if head[3] & 0x04:
        pos += 2 + int.from_bytes(head[10:12], "little")
    end = head.find(b"\0", pos)
    name = posixpath.basename(head[pos:end].decode("latin-1").replace("\\", "/")) if end > 0 else ""
    return name or None


def _plain_name(loc: _Loc, suffixes: tuple[str, ...], renames: dict[str, str]) -> str:
    """The name of a compressed file's content: its own name less the compression suffix."""
    base = posixpath.basename(loc.parts[-1] if loc.parts else loc.path)
    stem, ext = posixpath.splitext(base)
    if ext.lower() in renames:
        return stem + renames[ext.lower()]
    return stem if ext.lower() in suffixes and stem else base


def _stream_reason(label: str, exc: BaseException) -> str:
    if isinstance(exc, zstandard.ZstdError) and "too much memory" in str(exc):
        return f"{label}: a frame needs over {human_size(ZSTD_MAX_WINDOW)} of decoder memory: not decoded"
    return f"{label}: corrupt stream ({_why(exc)})"


def _why(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, EOFError):
        return "truncated"
    return text[:120] or exc.__class__.__name__


_MEMBER_PHRASES: tuple[tuple[type, str], ...] = (
    (su.CRC32IntegrityError, "corrupt member {m} (bad CRC)"),
    (su.SizeIntegrityError, "corrupt member {m} (size mismatch)"),
    (su.TruncatedDataError, "truncated in member {m}" + _REST),
    (su.PasswordError, "encrypted member {m} (no password)" + _REST),
    (su.MissingPasswordError, "encrypted member {m} (no password)" + _REST),
    (su.UnsupportedFeatureError, "member {m} uses an unsupported zip feature ({cls})" + _REST),
)


def _zip_member_phrase(exc: BaseException, member: Optional[str]) -> str:
    for cls, phrase in _MEMBER_PHRASES:
        if isinstance(exc, cls):
            return phrase.format(m=member, cls=exc.__class__.__name__)
    return f"corrupt member {member} (bad compressed data: {exc.__class__.__name__}){_REST}"


def _zip_archive_phrase(exc: BaseException, last: Optional[str], resumed: bool) -> str:
    """What stopped a zip between members (the next local header could not be read)."""
    where = f"after member {last}" if last is not None else "at its start"
    if resumed:
        return f"cannot go on after the corrupt member {last}"
    if isinstance(exc, su.TruncatedDataError):
        return f"truncated {where}"
    if isinstance(exc, su.NotStreamUnzippable):
        name = _zip_name(exc.args[0]) if exc.args and isinstance(exc.args[0], bytes) else "?"
        return f"stored member {name} has a data descriptor (cannot be streamed)"
    if isinstance(exc, su.UnsupportedCompressionTypeError):
        return f"unsupported compression method {exc.args[0]} {where}"
    if isinstance(exc, su.UnexpectedSignatureError):
        return f"corrupt archive {where} (unexpected signature)"
    return f"corrupt archive {where} ({exc.__class__.__name__})"
