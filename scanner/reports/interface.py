"""The report role: render one ScanResult as text."""
from __future__ import annotations

import abc

from scanner.errors import LayerscanError
from scanner.models import ScanResult


class ReportError(LayerscanError):
    """The report cannot be rendered or written."""


class Report(abc.ABC):
    @abc.abstractmethod
    def render(self, result: ScanResult) -> str:
        """The whole report as text."""
