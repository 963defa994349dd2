"""CSV downloads streamed row by row (exports of many rows never sit in memory at once)."""

import csv
from collections.abc import Iterable
from typing import Any

from django.http import StreamingHttpResponse


class _Echo:
    """A file-like object whose write returns the text: csv.writer then yields each row as a string."""

    def write(self, value: str) -> str:
        return value


def csv_response(rows: Iterable[list[Any]], *, filename: str) -> StreamingHttpResponse:
    """A `text/csv` attachment streaming `rows` (the first one is the header)."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
