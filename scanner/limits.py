"""Bounds on how deep and how much the scanner expands. Whatever a limit stops becomes a `Skipped`,
except the image-wide bounds (bytes, entries, time): those stop the scan with a `LimitError`.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Optional

from scanner.errors import LayerscanError

MiB = 1 << 20
GiB = 1 << 30


class LimitError(LayerscanError):
    """An image-wide limit stopped the scan: what was read is not the whole image, so nothing is
    reported as if it were (exit 2, one line naming the limit and its flag)."""


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

    # A run's deadline is no field: it is not part of what a layer's scan depends on, so it stays
    # out of the cache key (built from the fields). It rides along to worker processes all the same.
    def until(self, deadline: Optional[float], timeout: Optional[float]) -> "Limits":
        """These limits with a wall-clock deadline (`time.monotonic()`), set for `timeout` seconds."""
        out = copy.copy(self)
        object.__setattr__(out, "_deadline", None if deadline is None else (deadline, timeout))
        return out

    @property
    def timed(self) -> bool:
        """A deadline is set (`until`): `check_time` may raise."""
        return self.__dict__.get("_deadline") is not None

    def check_time(self, where: str) -> None:
        deadline = self.__dict__.get("_deadline")
        if deadline is not None and time.monotonic() > deadline[0]:
            raise LimitError(f"incomplete scan: the --timeout of {deadline[1]:g} s ran out {where}; "
                             "nothing reported")

    def check_image(self, what: str, entries: int, nbytes: int) -> None:
        """Raise if `entries` tar entries or `nbytes` layer bytes are over the image-wide bounds."""
        if entries > self.max_image_files:
            raise LimitError(f"incomplete scan: {what} holds over {self.max_image_files} files and other "
                             "tar entries (--max-image-files); nothing reported")
        if nbytes > self.max_image_bytes:
            raise LimitError(f"incomplete scan: {what} holds over {self.max_image_bytes} bytes of layers "
                             "(--max-image-bytes); nothing reported")
