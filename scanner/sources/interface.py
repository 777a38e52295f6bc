"""The source role: turn what the user typed into `Image`s whose layers can be opened."""
from __future__ import annotations

import abc
import sys
from typing import Iterator

from scanner.errors import LayerscanError
from scanner.models import Image


class SourceError(LayerscanError):
    """The image cannot be found, read or trusted (bad format, wrong digest, missing blob)."""


class Source(abc.ABC):
    """Resolves to one or more images. Opening a layer is the blob's job (see `blobs.open_blob`)."""

    @abc.abstractmethod
    def images(self) -> Iterator[Image]:
        """Yield every image this source names, each with its config and ordered layers."""


_warned: set[str] = set()


def warn(message: str) -> None:
    """One `layerscan: warning:` line on stderr, once per run for the same message: something the
    user should know that does not stop the scan (credentials withheld, a helper missing)."""
    if message not in _warned:
        _warned.add(message)
        text = message.encode("ascii", "backslashreplace").decode("ascii")
        print(f"layerscan: warning: {''.join(c if c.isprintable() else '?' for c in text)}", file=sys.stderr)
