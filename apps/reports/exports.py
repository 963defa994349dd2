"""CSV export of a report's table (the same rows as the table view and the API)."""

from __future__ import annotations

import csv
import io

from .selectors import Report, Table


def table_csv(report: Report, table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column.label for column in table.columns])
    for row in table.rows:
        writer.writerow(["" if row.get(column.key) is None else row.get(column.key) for column in table.columns])
    return buffer.getvalue()


def csv_filename(report: Report, table: Table) -> str:
    return f"{report.key}-{table.name}-{report.period.start}-{report.period.end}.csv"
