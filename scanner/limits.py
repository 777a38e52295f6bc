"""Bounds on how deep and how much the scanner expands. Whatever a limit stops becomes a `Skipped`,
except the image-wide bounds (bytes, entries, time): those stop the scan with a `LimitError`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from typing import Optional

from scanner.errors import LayerscanError

MiB = 1 << 20
GiB = 1 << 30


class LimitError(LayerscanError):
    """An image-wide limit stopped the scan: what was read is not the whole image, so nothing is
    reported as if it were (exit 2, one line naming the limit and its flag)."""


@dataclass(frozen=True)
class Deadline:
    """The run's wall-clock end (`--timeout`): one object every phase checks (resolving, manifests,
    layer walks, the config scan, reports). `at` is a `time.monotonic()` value of this process;
    `NO_DEADLINE` never runs out. Another process gets it through `portable()`/`resumed()`: the
    seconds left travel, not the clock reading."""

    at: Optional[float] = None
    timeout: Optional[float] = None  # the seconds the user gave, for messages

    @classmethod
    def start(cls, timeout: Optional[float]) -> "Deadline":
        return cls() if timeout is None else cls(time.monotonic() + timeout, timeout)

    @property
    def set(self) -> bool:
        return self.at is not None

    def left(self) -> Optional[float]:
        """Seconds left (never below 0), or None when there is no deadline."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def cap(self, seconds: float) -> float:
        """`seconds`, or the time left if that is shorter: a wait that never outlasts the run."""
        left = self.left()
        return seconds if left is None else min(seconds, left)

    def error(self, where: str) -> LimitError:
        return LimitError(f"incomplete scan: the --timeout of {self.timeout:g} s ran out {where}; nothing reported")

    def check(self, where: str) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise self.error(where)

    def portable(self) -> Optional[tuple[float, float]]:
        """(seconds left, timeout) for another process, whose monotonic clock is not ours."""
        return None if self.at is None else (self.at - time.monotonic(), self.timeout or 0.0)

    @classmethod
    def resumed(cls, sent: Optional[tuple[float, float]]) -> "Deadline":
        return cls() if sent is None else cls(time.monotonic() + sent[0], sent[1])


NO_DEADLINE = Deadline()


@dataclass(frozen=True)
class Limits:
    max_depth: int = 3  # nested archives: a jar in a war in a layer is depth 2
    max_file_size: int = 8 * GiB  # bytes of one file (or archive member) that are scanned
    max_archive_bytes: int = 2 * GiB  # bytes expanded from one nested archive, all members together
    max_layer_bytes: int = 64 * GiB  # bytes expanded from nested archives within one layer
    max_ratio: int = 200  # expanded / compressed size of a nested archive or compressed file (bombs)
    max_file_findings: int = 1000  # findings of one file of a layer, its archive members included
    max_findings: int = 10_000  # findings of one image; of each layer too, as its walk collects them
    max_image_bytes: int = 256 * GiB  # uncompressed layer tar bytes of one image, all layers together
    max_image_files: int = 4_000_000  # tar entries (files, dirs, links...) of one image, all layers
    # The run's --timeout. Not part of what a layer's scan depends on: `key()` leaves it out of the
    # cache key. It rides along to worker processes with the limits all the same.
    deadline: Deadline = field(default=NO_DEADLINE, compare=False)

    def until(self, deadline: Deadline) -> "Limits":
        """These limits with the run's deadline."""
        return replace(self, deadline=deadline)

    def key(self) -> dict:
        """The fields a layer's result depends on (the cache key's part): every bound, no deadline."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "deadline"}

    @property
    def timed(self) -> bool:
        """A deadline is set: `check_time` may raise."""
        return self.deadline.set

    def check_time(self, where: str) -> None:
        self.deadline.check(where)

    def check_image(self, what: str, entries: int, nbytes: int) -> None:
        """Raise if `entries` tar entries or `nbytes` layer bytes are over the image-wide bounds."""
        if entries > self.max_image_files:
            raise LimitError(f"incomplete scan: {what} holds over {self.max_image_files} files and other "
                             "tar entries (--max-image-files); nothing reported")
        if nbytes > self.max_image_bytes:
            raise LimitError(f"incomplete scan: {what} holds over {self.max_image_bytes} bytes of layers "
                             "(--max-image-bytes); nothing reported")


MAX_REFERENCE_MANIFESTS = 256  # manifests and indexes read for one image reference (a real one: ~20)
MAX_RUN_MANIFESTS = 20_000  # ... for a whole run (a fleet scan of thousands of images)
MAX_INDEX_DEPTH = 4  # an index in an index in ... (real ones: 1, an OCI layout of indexes: 2)


class ManifestBudget:
    """How many manifests and image indexes the sources may read: `per_reference` for one image
    reference, `per_run` in all. A source calls `begin` once per reference and `take` before each
    read; past either bound the scan stops (`LimitError`): an index that fans out (an index bomb)
    is never read to its end."""

    def __init__(self, per_reference: int = MAX_REFERENCE_MANIFESTS, per_run: int = MAX_RUN_MANIFESTS) -> None:
        self.per_reference, self.per_run = per_reference, per_run
        self.reference = self.run = 0

    def begin(self) -> None:
        self.reference = 0

    def take(self, where: str) -> None:
        self.reference += 1
        self.run += 1
        if self.reference > self.per_reference:
            raise LimitError(f"incomplete scan: {where}: over {self.per_reference} manifests and indexes for "
                             "one image; nothing reported")
        if self.run > self.per_run:
            raise LimitError(f"incomplete scan: over {self.per_run} manifests and indexes in this run "
                             f"(at {where}); nothing reported")
