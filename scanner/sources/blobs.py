"""Reading blobs: a byte range of a local file, checked against its digest, decompressed by magic.

Every read of image content goes through here, so every byte is hashed on its way to the walker:
the compressed blob against the manifest's digest, the uncompressed tar against the config's
diff_id. A mismatch is an error, never a partial result.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import queue
import threading
from typing import BinaryIO, Iterator, Optional

import zstandard

from scanner import inflate
from scanner.models import Blob, BlobKind, Layer
from scanner.sources.interface import SourceError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
READ_SIZE = 1 << 20
GZIP_STEP = 256 << 10  # compressed bytes inflated at a time: larger steps copy the inflater's unconsumed input more


class RawReader(io.RawIOBase):
    """A raw stream whose subclass implements `read` (the bytes it gives are used as they are, no
    copy); `readinto`, for buffered readers built on top, copies what `read` gives."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class HashingReader(RawReader):
    """Passes reads through, hashing and counting them. `limit` caps the bytes read (None: no cap)."""

    def __init__(self, inner: BinaryIO, limit: Optional[int] = None, decoding: Optional[str] = None,
                 same_as: Optional["HashingReader"] = None) -> None:
        self._inner = inner
        self._left = limit
        self._decoding = decoding  # set: `inner` decompresses; its errors become a SourceError naming this
        # `same_as`: these are the very bytes that reader hashes (an uncompressed layer): share its hash
        self._hashing = same_as is None
        self.hash = hashlib.sha256() if same_as is None else same_as.hash
        self.count = 0
        self.raw: "HashingReader" = self

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if size is None or size < 0:
            return self.readall()
        if self._left is not None:
            size = min(size, self._left)
        if size <= 0:
            return b""
        data = self._read(size)
        if self._hashing:
            self.hash.update(data)
        self.count += len(data)
        if self._left is not None:
            self._left -= len(data)
        return data

    def _read(self, want: int) -> bytes:
        if self._decoding is None:
            return self._inner.read(want)
        try:  # raised here, not in the caller: tarfile would re-label an inflate error as a tar error
            return self._inner.read(want)
        except DECODE_ERRORS as exc:
            raise SourceError(f"{self._decoding}: corrupt compressed stream ({_reason(exc)})") from None

    def drain(self) -> None:
        while self.read(READ_SIZE):
            pass

    def check(self, expected: Optional[str], what: str) -> None:
        if expected is None:
            return
        algo, _, want = expected.partition(":")
        if algo != "sha256":
            raise SourceError(f"{what}: unsupported digest algorithm {algo!r}")
        got = self.hash.hexdigest()
        if got != want:
            raise SourceError(f"{what}: digest mismatch (expected sha256:{want[:16]}…, got sha256:{got[:16]}…)")


@contextlib.contextmanager
def open_blob(blob: Blob, what: str) -> Iterator[HashingReader]:
    """The blob's bytes, hashed as read; the digest (and full length) is checked on a clean exit."""
    with _raw(blob, what) as f:
        reader = HashingReader(f, blob.size)
        yield reader
        reader.drain()
        if reader.count != blob.size:
            raise SourceError(f"{what}: truncated ({reader.count} of {blob.size} bytes)")
        reader.check(blob.digest, what)


@contextlib.contextmanager
def _raw(blob: Blob, what: str) -> Iterator[BinaryIO]:
    """The blob's stored bytes from wherever its kind says they are, positioned at its start."""
    if blob.kind is BlobKind.MEMORY:
        yield io.BytesIO((blob.data or b"")[blob.offset:blob.offset + blob.size])
    elif blob.kind is BlobKind.REGISTRY:
        from scanner.sources.registry_blob import open_remote  # the HTTP client only where needed

        with open_remote(blob, what) as f:
            yield f
    elif blob.kind is BlobKind.STREAMED:
        raise SourceError(f"{what}: went past once in a stream and cannot be read again")
    else:
        try:
            f = open(blob.path, "rb")
        except OSError as exc:
            raise SourceError(f"{what}: cannot open {blob.path}: {exc.strerror}") from None
        with f:
            f.seek(blob.offset)
            yield f


def read_blob(blob: Blob, what: str, max_size: int = 64 << 20) -> bytes:
    """A small blob (manifest, config) read whole and verified."""
    if blob.size > max_size:
        raise SourceError(f"{what}: {blob.size} bytes is too large for a JSON document")
    with open_blob(blob, what) as r:
        return r.read()


def sniff(stream: io.BufferedReader) -> str:
    head = stream.peek(4)[:4]
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def decompress(raw: BinaryIO) -> BinaryIO:
    """A reader of the uncompressed bytes: gzip, zstd or plain, told apart by magic bytes."""
    buffered = io.BufferedReader(raw, READ_SIZE)  # type: ignore[arg-type]
    kind = sniff(buffered)
    if kind == "gzip":
        return GzipMembers(buffered, GZIP_STEP)  # type: ignore[return-value]
    if kind == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
    return buffered


class Prefetch(RawReader):
    """Reads `inner` ahead in a thread of its own, `depth` chunks at most: decompression and the
    blob's hashing (the inflaters, zstd and hashlib let go of the GIL) run on another core while the walk
    parses and scans. An error of `inner` is raised by the `read` that reaches it."""

    def __init__(self, inner: BinaryIO, chunk: int = READ_SIZE, depth: int = 16) -> None:
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._buf, self._pos, self._eof = b"", 0, False
        self._thread = threading.Thread(target=self._produce, args=(inner, chunk), daemon=True,
                                        name="layerscan-prefetch")
        self._thread.start()

    def _produce(self, inner: BinaryIO, chunk: int) -> None:
        try:
            while not self._stop.is_set():
                data = inner.read(chunk)
                self._put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the reader, raised there
            self._put(exc)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if size is None or size < 0:
            return self.readall()
        if self._pos >= len(self._buf):
            if self._eof:
                return b""
            item = self._queue.get()
            if isinstance(item, BaseException):
                self._eof = True
                raise item
            if not item:
                self._eof = True
                return b""
            self._buf, self._pos = item, 0
        out = self._buf[self._pos:self._pos + size]
        self._pos += len(out)
        return out

    def close(self) -> None:
        """Stop the thread (it may wait to hand over a chunk) before the blob it reads closes."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get_nowait()
            except queue.Empty:
                self._thread.join(0.05)
        super().close()


class GzipMembers(RawReader):
    """gzip members back to back (zero padding between them allowed), as `gzip.GzipFile` reads
    them, but inflated in large steps by `scanner.inflate` (ISA-L or zlib), which parses each
    member's header and checks its CRC-32 and length itself. Errors: `inflate.ERRORS`, EOFError
    (cut), gzip.BadGzipFile (garbage)."""

    def __init__(self, raw: BinaryIO, step: int = READ_SIZE) -> None:
        self._raw = raw
        self.STEP = step  # compressed bytes fed at a time
        self._z = inflate.gzip_inflater()
        self._input = b""  # compressed bytes read but not yet fed to the inflater
        self._done = False

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        if size is None or size < 0:
            return self.readall()
        while size and not self._done:
            z = self._z
            if z.eof:
                self._next_member(z.unused_data)
                continue
            data = z.unconsumed_tail or self._input or self._raw.read(self.STEP)
            self._input = b""
            if not data:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            out = z.decompress(data, size)
            if out:
                return out
        return b""

    def _next_member(self, rest: bytes) -> None:
        """After a member: only zero padding up to the end, or another member."""
        rest = rest.lstrip(b"\0")
        while not rest:
            rest = self._raw.read(self.STEP)
            if not rest:
                self._done = True
                return
            rest = rest.lstrip(b"\0")
        if len(rest) < 2:
            rest += self._raw.read(1)
        if rest[:2] != GZIP_MAGIC:
            raise gzip.BadGzipFile(f"Not a gzipped file ({rest[:2]!r})")
        self._z = inflate.gzip_inflater()
        self._input = rest


DECODE_ERRORS = (gzip.BadGzipFile, *inflate.ERRORS, EOFError, zstandard.ZstdError)


@contextlib.contextmanager
def open_layer(layer: Layer) -> Iterator[HashingReader]:
    """The layer's uncompressed tar stream; blob digest and diff_id both checked on a clean exit."""
    what = f"layer {layer.index} ({(layer.digest or '?')[:19]})"
    with open_blob(layer.blob, what) as raw:
        with layer_stream(raw, what) as tar:
            yield tar
    # the blob's own digest (checked on leaving open_blob) first: it is what the manifest pins
    tar.check(layer.diff_id, f"{what} diff_id")


@contextlib.contextmanager
def layer_stream(raw: HashingReader, what: str) -> Iterator[HashingReader]:
    """The uncompressed side of an open blob (any source, a stream member too), hashed as read."""
    stages: list[Prefetch] = []
    try:
        plain = decompress(raw)
        if isinstance(plain, io.BufferedReader):  # not compressed: read and hashed (the blob's hash
            stages.append(Prefetch(plain))           # is the tar's) on another core, ahead of the walk
            tar = HashingReader(stages[-1], decoding=what, same_as=raw)
        else:  # decompressed on another core, and hashed on a third, ahead of the walk
            stages.append(Prefetch(plain, depth=8))
            ahead = HashingReader(stages[-1], decoding=what)
            stages.append(Prefetch(ahead, depth=8))
            tar = HashingReader(stages[-1], same_as=ahead)
        tar.raw = raw  # the compressed side, for progress in blob bytes
        yield tar
        tar.drain()
    except DECODE_ERRORS as exc:
        raise SourceError(f"{what}: corrupt compressed stream ({_reason(exc)})") from None
    finally:
        for stage in reversed(stages):
            stage.close()


def is_document(media_type: str) -> bool:
    """A layer that is one document, not a tar: an attestation's in-toto JSON, an artifact's JSON."""
    media = media_type.lower()
    return "in-toto" in media or media.endswith("json")


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    return text[:120]
