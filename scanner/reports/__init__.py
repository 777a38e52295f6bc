"""Report formats: a closed set, an enum mapped to reporter classes."""
from __future__ import annotations

import enum

from scanner.reports.interface import Report, ReportError
from scanner.reports.json import JsonReport
from scanner.reports.sarif import SarifReport
from scanner.reports.table import TableReport


class Format(str, enum.Enum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


REPORTS: dict[Format, type[Report]] = {
    Format.TABLE: TableReport,
    Format.JSON: JsonReport,
    Format.SARIF: SarifReport,
}


def report_for(fmt: Format) -> Report:
    return REPORTS[fmt]()


__all__ = ["Format", "REPORTS", "Report", "ReportError", "report_for"]
