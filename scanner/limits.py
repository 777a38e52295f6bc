"""Bounds on how deep and how much the scanner expands. Whatever a limit stops becomes a `Skipped`."""
from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    max_depth: int = 3  # nested archives: a jar in a war in a layer is depth 2
    max_file_size: int = 8 * GiB  # bytes of one file (or archive member) that are scanned
    max_archive_bytes: int = 2 * GiB  # bytes expanded from one nested archive, all members together
    max_layer_bytes: int = 64 * GiB  # bytes expanded from nested archives within one layer
    max_ratio: int = 200  # expanded / compressed size of a nested archive or compressed file (bombs)
