"""Progress bars on stderr (tqdm), shown only when stderr is a terminal (the CLI decides)."""
from __future__ import annotations

import sys

from scanner.redact import escape


class TqdmProgress:
    """A scan's bytes over layers; with `fleet`, a registry run's stages: its layers in bytes,
    then its images one by one."""

    def __init__(self, fleet: bool = False) -> None:
        self._fleet = fleet
        self._bar = None

    def begin(self, label: str, total: int) -> None:
        from tqdm import tqdm  # imported when a bar is shown: not on the way of a CI run

        in_bytes = not self._fleet or label == "layers"
        label = escape(label)  # an image reference can come from the image (a tag inside an archive)
        self._bar = tqdm(total=total, desc=label if self._fleet else label[-40:], unit="B" if in_bytes else " image",
                         unit_scale=in_bytes, unit_divisor=1024, leave=False, file=sys.stderr)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def end(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
