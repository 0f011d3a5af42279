"""CSV output that a spreadsheet cannot turn into a formula (CSV/formula injection).

A cell that starts with = + - @, a tab or a carriage return is run as a formula by Excel and
LibreOffice; a leading apostrophe makes it text and shows the value unchanged. Every CSV the
platform writes for people (exports, rejected-row reports, logs) goes through here.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose write returns the line, for streaming responses."""

    def write(self, value: str) -> str:
        return value


def csv_lines(
    header: Iterable[str], rows: Iterable[Iterable[Any]], *, delimiter: str = ","
) -> Iterator[str]:
    """Yield CSV text line by line (for StreamingHttpResponse), header first, every cell safe.

    ``delimiter``: Slovenian Excel lists with ";", so a file that goes back to the person who
    uploaded one (rejected import rows) uses the separator their file had.
    """
    writer = csv.writer(_Echo(), delimiter=delimiter)
    yield writer.writerow([safe_cell(cell) for cell in header])
    for row in rows:
        yield writer.writerow([safe_cell(cell) for cell in row])
