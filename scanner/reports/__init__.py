"""Report formats: a closed set, an enum mapped to reporter classes."""
from __future__ import annotations

import enum

from scanner.reports.fit import Terminal
from scanner.reports.grouping import GroupBy
from scanner.reports.html import HtmlReport
from scanner.reports.interface import Report, ReportError
from scanner.reports.json import JsonReport
from scanner.reports.sarif import SarifReport
from scanner.reports.table import TableReport


class Format(str, enum.Enum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    HTML = "html"


REPORTS: dict[Format, type[Report]] = {
    Format.TABLE: TableReport,
    Format.JSON: JsonReport,
    Format.SARIF: SarifReport,
    Format.HTML: HtmlReport,
}
GROUPABLE = (Format.TABLE, Format.JSON)  # the formats with a `--group-by secret` view (HTML always has both)


def report_for(fmt: Format, group_by: GroupBy = GroupBy.FINDING, terminal: Terminal = Terminal()) -> Report:
    """The reporter of `fmt`; the table also takes where it goes (width, colour)."""
    if fmt is Format.TABLE:
        return TableReport(group_by=group_by, terminal=terminal)
    if fmt in GROUPABLE:
        return REPORTS[fmt](group_by=group_by)  # type: ignore[call-arg]
    return REPORTS[fmt]()


__all__ = ["Format", "GroupBy", "REPORTS", "Report", "ReportError", "Terminal", "report_for"]
