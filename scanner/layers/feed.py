"""Reading with limits: `Feed`, a forward-only reader over the chunks a file or a decoder gives,
with the meters that stop a bomb while it expands (`Budget`, `Ratio`) and the cap of the bytes
scanned of one file. What a limit stops ends the stream early and is reported once; what came
before is still scanned. An error of the layer's own stream is not ours to judge:
`LayerReadError` carries it through every handler, to be raised as it came.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator, Optional

from scanner.limits import GiB, MiB

PULL = 1 << 20  # bytes asked of a file, or of a decompressor, at a time
RATIO_FLOOR = 1 * MiB  # the ratio limit applies once this much is expanded: small files compress well


class Stop(Exception):
    """A limit reached; the message is the reason."""


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
            raise Stop(self.reason)


class Ratio:
    """Expanded against compressed bytes of one stream: stops a bomb while it expands."""

    def __init__(self, max_ratio: int, compressed: Callable[[], int]) -> None:
        self.max_ratio, self.compressed, self.expanded = max_ratio, compressed, 0

    def spend(self, n: int) -> None:
        self.expanded += n
        if self.expanded > RATIO_FLOOR and self.expanded > self.max_ratio * max(self.compressed(), 1):
            raise Stop(f"expansion ratio over {self.max_ratio}:1 (bomb?)")


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
        except Stop as stop:
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


def read_whole(read: Callable[[int], bytes], size: int) -> bytes:
    """All `size` bytes of a small file of the layer (fewer if its stream ends first)."""
    data = read(size)
    while len(data) < size:
        more = read(size - len(data))
        if not more:
            break
        data += more
    return data


def layer_pull(read: Callable[[int], bytes]) -> Callable[[], bytes]:
    """Reads of the layer's own stream: their errors are marked to pass through every handler."""
    def pull() -> bytes:
        try:
            return read(PULL)
        except Exception as exc:
            raise LayerReadError(exc) from exc
    return pull


def read_pull(read: Callable[[int], bytes]) -> Callable[[], bytes]:
    return lambda: read(PULL)


def iter_pull(chunks: Iterable[bytes]) -> Callable[[], bytes]:
    it = iter(chunks)

    def pull() -> bytes:
        for data in it:
            if data:
                return data
        return b""
    return pull


def feed_chunks(feed: Feed, size: int) -> Iterator[bytes]:
    while data := feed.read(size):
        yield data
