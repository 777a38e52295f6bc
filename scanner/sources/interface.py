"""The source role: turn what the user typed into `Image`s whose layers can be opened."""
from __future__ import annotations

import abc
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
