"""Reading contact-import CSV files the way clinics actually save them, and reporting rejected rows.

Pure Python (stdlib and carely.lib.safe_csv): no Django models, so it is tested without a database
and the import worker can stream a file of any length in bounded memory.

Row numbers: every number reported here (iterating a ``CsvReader``, ``CsvError.row``, the
rejected-rows CSV) is the row a person sees in Excel or LibreOffice: the header is row 1 (or
later, if blank rows precede it), every record counts one row including blank ones, and a quoted
cell that contains line breaks stays inside its row. It is therefore not the line number a text
editor shows once such a cell has occurred.

Formulas on input: a cell such as ``=cmd()`` or ``+38641123456`` is stored as typed, leading
character intact (see ``neutralise_formula``). Neutralising happens on the way out, in every CSV
the platform writes (carely.lib.safe_csv), including ``rejected_rows_csv`` here.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from carely.lib.safe_csv import csv_lines

DEFAULT_MAX_PREVIEW = 64 * 1024
DEFAULT_MAX_BYTES = 100 * 1024 * 1024

ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with BOM)",
    "cp1250": "Windows-1250",
    "utf-16": "UTF-16",
}

# Order breaks ties: Slovenian Excel writes ';' (the decimal separator is ',').
_DELIMITERS = (";", ",", "\t")
_DELIMITER_NAMES = {";": "semicolon", ",": "comma", "\t": "tab"}
# How many records of the sample the delimiter vote looks at; enough to see a pattern, cheap.
_DETECT_RECORDS = 50
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_SAVE_AS_HINT = "In Excel choose File > Save As > 'CSV UTF-8' and upload that file."
# An undecodable byte becomes a lone surrogate, which no valid UTF-8, Windows-1250 or UTF-16
# text decodes to, so a row that contains one is known to hold an unreadable byte. Marking instead
# of failing lets that row be reported while the rest of the file is read; the mark is placed as
# the decoder meets the byte, so the row is exact even though decoding runs ahead of parsing.
_UNDECODABLE_MARK = "\udc80"
_DECODE_ERRORS = "carely-csv-mark-undecodable"


def _mark_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return _UNDECODABLE_MARK, error.end


codecs.register_error(_DECODE_ERRORS, _mark_undecodable)


class CsvError(Exception):
    """A problem a person can fix in the file; ``row`` is the Excel row (None: the whole file)."""

    def __init__(self, message: str, *, row: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row

    def __str__(self) -> str:
        return f"Row {self.row}: {self.message}" if self.row is not None else self.message


class CsvRowError(CsvError):
    """One row could not be read; the rest of the file is still read. ``cells`` as found."""

    def __init__(self, message: str, *, row: int, cells: Sequence[str]) -> None:
        super().__init__(message, row=row)
        self.cells = list(cells)

    def as_rejection(self) -> Rejection:
        return Rejection(row=self.row or 0, cells=self.cells, errors={"": self.message})


@dataclass(frozen=True)
class Rejection:
    """A row that will not be imported: its Excel row, original cells, and errors by field.

    ``errors`` maps a field name (or "" for the row as a whole) to one message or several.
    """

    row: int
    cells: Sequence[str]
    errors: Mapping[str, str | Sequence[str]]


class _LimitedPrefixedReader(io.RawIOBase):
    """Serves the detection sample again, then the rest of the stream, and enforces the size limit.

    The caller's stream need not be seekable (a request body, a storage object), so the bytes read
    for detection are replayed instead of seeking back.
    """

    def __init__(self, prefix: bytes, stream: IO[bytes], max_bytes: int | None) -> None:
        self._prefix = memoryview(prefix)
        self._stream = stream
        self._max_bytes = max_bytes
        self._total = len(prefix)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if self._prefix:
            count = min(len(target), len(self._prefix))
            target[:count] = self._prefix[:count]
            self._prefix = self._prefix[count:]
            return count
        chunk = self._stream.read(len(target))
        if not chunk:
            return 0
        self._total += len(chunk)
        if self._max_bytes is not None and self._total > self._max_bytes:
            raise CsvError(_too_large_message(None, self._max_bytes))
        target[: len(chunk)] = chunk
        return len(chunk)


class CsvReader:
    """An opened CSV file: detected ``encoding`` and ``delimiter``, the ``header``, and the rows.

    Iterating yields ``(row_number, {column: cell})`` for each readable data row, once, streaming.
    Blank rows are skipped (they still count for row numbers). Missing trailing cells read as "".
    A row that cannot be read (too many cells, an unreadable byte) is not yielded; it is appended
    to ``problems`` as a ``CsvRowError`` and reading goes on. A ``CsvError`` raised while
    iterating means the rest of the file cannot be trusted (an unclosed quote, the size limit).
    """

    def __init__(
        self,
        *,
        encoding: str,
        delimiter: str,
        header: list[str],
        header_row: int,
        records: Iterator[list[str]],
    ) -> None:
        self.encoding = encoding
        self.delimiter = delimiter
        self.header = header
        self.header_row = header_row
        self.problems: list[CsvRowError] = []
        self.rows_read = 0
        self._records = records
        self._rows = self._generate()

    @property
    def encoding_label(self) -> str:
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    @property
    def delimiter_label(self) -> str:
        return _DELIMITER_NAMES[self.delimiter]

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        return self._rows

    def _generate(self) -> Iterator[tuple[int, dict[str, str]]]:
        header = self.header
        width = len(header)
        padding = [""] * width
        row = self.header_row
        try:
            for cells in self._records:
                row += 1
                joined = "".join(cells)
                if not joined or joined.isspace():
                    continue
                if _UNDECODABLE_MARK in joined:
                    self.problems.append(_undecodable_row(row, cells, self.encoding))
                    continue
                count = len(cells)
                if count > width:
                    extra = cells[width:]
                    if any(cell.strip() for cell in extra):
                        self.problems.append(_too_many_cells(row, cells, width))
                        continue
                    # Trailing empty cells are what Excel writes for formatted empty columns.
                    cells = cells[:width]
                elif count < width:
                    cells = cells + padding[count:]
                self.rows_read += 1
                yield row, dict(zip(header, cells, strict=True))
        except csv.Error as error:  # raised while reading the record after the last one counted
            raise CsvError(_broken_quote_message(error), row=row + 1) from None


def open_csv(
    stream: IO[bytes],
    *,
    max_preview: int = DEFAULT_MAX_PREVIEW,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
) -> CsvReader:
    """Detect encoding and delimiter from the first ``max_preview`` bytes and read the header.

    Raises ``CsvError`` for a file that cannot be imported at all: empty, too large (more than
    ``max_bytes``; None for no limit), not text, or a header with blank or duplicate names.
    The stream is read as the rows are iterated and is not closed here.
    """
    size = _known_size(stream)
    if max_bytes is not None and size is not None and size > max_bytes:
        raise CsvError(_too_large_message(size, max_bytes))
    sample = _read_sample(stream, max_preview)
    at_end = len(sample) < max_preview
    if not sample.strip(b" \t\r\n\xef\xbb\xbf"):
        raise CsvError("The file is empty. Export the list again with a header row and data.")
    if max_bytes is not None and len(sample) > max_bytes:
        raise CsvError(_too_large_message(None, max_bytes))
    encoding = _detect_encoding(sample, at_end=at_end)
    delimiter = _detect_delimiter(_decode_sample(sample, encoding, at_end=at_end), at_end=at_end)
    text = _text_stream(_LimitedPrefixedReader(sample, stream, max_bytes), encoding)
    records = iter(csv.reader(text, delimiter=delimiter))
    header_row = 0
    try:
        for cells in records:
            header_row += 1
            if "".join(cells).strip():
                header = _clean_header(cells)
                break
        else:
            raise CsvError("The file is empty. Export the list again with a header row and data.")
    except csv.Error as error:
        raise CsvError(_broken_quote_message(error), row=header_row + 1) from None
    return CsvReader(
        encoding=encoding,
        delimiter=delimiter,
        header=header,
        header_row=header_row,
        records=records,
    )


@dataclass
class Preview:
    """What the column-mapping screen shows: the header and the first rows, with their numbers."""

    encoding: str
    delimiter: str
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]
    problems: list[CsvRowError] = field(default_factory=list)


def preview(stream: IO[bytes], n: int = 5, **options: Any) -> Preview:
    """The header and the first ``n`` readable rows (``options`` as for ``open_csv``)."""
    reader = open_csv(stream, **options)
    rows: list[tuple[int, dict[str, str]]] = []
    for item in reader:
        rows.append(item)
        if len(rows) >= n:
            break
    return Preview(
        encoding=reader.encoding,
        delimiter=reader.delimiter,
        header=reader.header,
        rows=rows,
        problems=list(reader.problems),
    )


def check_mapping(header: Sequence[str], mapping: Mapping[str, str]) -> None:
    """Raise ``CsvError`` if the mapping names a column the file lacks or maps two to one field.

    ``mapping`` is {file column: field name}; a column mapped to "" is not imported.
    """
    missing = [column for column in mapping if column not in header]
    problems = []
    if missing:
        names = ", ".join(f"'{column}'" for column in missing)
        available = ", ".join(f"'{column}'" for column in header)
        problems.append(
            f"The column mapping uses {names}, which the file does not have "
            f"(its columns are {available})."
        )
    by_field: dict[str, list[str]] = {}
    for column, field_name in mapping.items():
        if field_name:
            by_field.setdefault(field_name, []).append(column)
    for field_name, columns in by_field.items():
        if len(columns) > 1:
            names = " and ".join(f"'{column}'" for column in columns)
            problems.append(f"Columns {names} are all mapped to {field_name}; choose one.")
    if problems:
        raise CsvError(" ".join(problems))


def apply_mapping(row: Mapping[str, str], mapping: Mapping[str, str]) -> dict[str, str]:
    """{field name: trimmed value} for one row; empty cells are left out (missing, not "").

    Raises ``CsvError`` naming a mapped column that the row does not have, so a mapping made
    for another file cannot silently import nothing.
    """
    data: dict[str, str] = {}
    for column, field_name in mapping.items():
        if not field_name:
            continue
        try:
            value = row[column]
        except KeyError:
            raise CsvError(
                f"The column mapping uses '{column}', which the file does not have."
            ) from None
        value = value.strip()
        if value:
            data[field_name] = neutralise_formula(value)
    return data


def neutralise_formula(value: str) -> str:
    """What import does with a cell that a spreadsheet would run as a formula: keep it as typed.

    Stripping the leading = + - @ would lose data (an international phone number begins with +,
    a note may begin with -), and the stored text is harmless where it is stored and shown (HTML
    is escaped). The danger is only a CSV opened in a spreadsheet, so every CSV the platform
    writes neutralises on the way out (carely.lib.safe_csv.safe_cell). This function is the one
    place that policy lives, so changing it changes every import path.
    """
    return value


def rejected_rows_csv(
    rejections: Iterable[Rejection],
    *,
    header: Sequence[str] = (),
    bom: bool = True,
    delimiter: str = ",",
) -> Iterator[str]:
    """The downloadable CSV of rejected rows: row number, errors, then the original cells.

    Errors come before the cells (not after) because a rejected row may have more cells than the
    header; that way the errors column always lines up. Errors read "field: message; field:
    message". Every cell goes through carely.lib.safe_csv, so an ``=cmd()`` cell is written as
    text. ``bom`` starts the file with a byte-order mark, without which Excel reads UTF-8 as
    Windows-1250 and garbles č, š and ž. ``delimiter`` should be the uploaded file's, so the
    report opens in columns wherever the original did. Pass rejections in row order.
    """
    if bom:
        yield "\ufeff"
    rows = (
        [rejection.row, format_errors(rejection.errors), *rejection.cells]
        for rejection in rejections
    )
    yield from csv_lines(["row", "errors", *header], rows, delimiter=delimiter)


def format_errors(errors: Mapping[str, str | Sequence[str]]) -> str:
    parts = []
    for field_name, messages in errors.items():
        for message in [messages] if isinstance(messages, str) else messages:
            parts.append(f"{field_name}: {message}" if field_name else message)
    return "; ".join(parts)


def _known_size(stream: IO[bytes]) -> int | None:
    """The remaining size when the stream can tell it, to refuse a large file before reading it."""
    size = getattr(stream, "size", None)  # Django's UploadedFile
    if isinstance(size, int):
        return size
    try:
        if stream.seekable():
            position = stream.tell()
            end = stream.seek(0, io.SEEK_END)
            stream.seek(position)
            return end - position
    except (AttributeError, OSError, ValueError):
        pass
    return None


def _read_sample(stream: IO[bytes], max_preview: int) -> bytes:
    # read() may return less than asked before the end (sockets, pipes); keep reading.
    parts = []
    remaining = max_preview
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _detect_encoding(sample: bytes, *, at_end: bool) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if sample.startswith(b"PK\x03\x04") or sample.startswith(b"\xd0\xcf\x11\xe0"):
        raise CsvError(f"This is an Excel workbook, not a CSV file. {_SAVE_AS_HINT}")
    if b"\x00" in sample:
        raise CsvError(f"This is not a text (CSV) file. {_SAVE_AS_HINT}")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=at_end)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    # A UTF-8 file with a few stray bytes pasted from elsewhere stays UTF-8 (those rows are
    # reported); decoding it all as Windows-1250 would garble every č in the good rows instead.
    multibyte = _UTF8_MULTIBYTE.findall(sample)
    stray = sum(1 for byte in sample if byte >= 0x80) - sum(len(match) for match in multibyte)
    if len(multibyte) > stray:
        return "utf-8"
    try:
        sample.decode("cp1250")
    except UnicodeDecodeError as error:
        raise CsvError(
            f"The file has a character that is neither UTF-8 nor Windows-1250 "
            f"(byte 0x{sample[error.start]:02X}). {_SAVE_AS_HINT}",
            # Latin-1 maps bytes one to one, so quotes and line breaks stay where they are.
            row=_row_at(sample[: error.start].decode("latin-1")),
        ) from None
    return "cp1250"


def _row_at(before: str) -> int:
    """The Excel row of the character after ``before``: records counted with quotes respected."""
    delimiter = _detect_delimiter(before, at_end=True)
    count = 0
    try:
        for _ in csv.reader(io.StringIO(before, newline=""), delimiter=delimiter):
            count += 1
    except csv.Error:
        pass
    # The row being read when the offset was reached is the last one counted, unless the prefix
    # ends exactly at a line break.
    return count if before and not before.endswith(("\n", "\r")) else count + 1


def _decode_sample(sample: bytes, encoding: str, *, at_end: bool) -> str:
    decoder = codecs.getincrementaldecoder(encoding)(errors=_DECODE_ERRORS)
    return decoder.decode(sample, final=at_end)


def _detect_delimiter(sample: str, *, at_end: bool) -> str:
    """The separator that splits the header into most columns consistently with the next rows."""
    if not at_end:
        # The sample may end inside a record; only whole lines vote.
        cut = max(sample.rfind("\n"), sample.rfind("\r"))
        if cut > 0:
            sample = sample[:cut]
    best: tuple[bool, int, float] | None = None
    chosen = _DELIMITERS[0]
    for delimiter in _DELIMITERS:
        records = _sample_records(sample, delimiter)
        if not records:
            continue
        width = len(_trim_trailing_empty(records[0]))
        following = records[1:]
        if following:
            matching = sum(1 for record in following if len(_trim_trailing_empty(record)) <= width)
            exact = sum(1 for record in following if len(record) == len(records[0]))
            fraction = max(matching, exact) / len(following)
        else:
            fraction = 1.0
        # A data row may legitimately leave trailing cells out, so "at most the header's width"
        # counts as consistent; a row that is wider means the separator is wrong (or the row is).
        score = (width > 1 and fraction >= 0.9, width, fraction)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


def _sample_records(sample: str, delimiter: str) -> list[list[str]]:
    records: list[list[str]] = []
    try:
        for record in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
            if "".join(record).strip():
                records.append(record)
                if len(records) >= _DETECT_RECORDS:
                    break
    except csv.Error:
        pass  # an unclosed quote near the end of the sample; the records before it still vote
    return records


def _trim_trailing_empty(cells: list[str]) -> list[str]:
    end = len(cells)
    while end > 0 and not cells[end - 1].strip():
        end -= 1
    return cells[:end]


def _text_stream(raw: io.RawIOBase, encoding: str) -> io.TextIOWrapper:
    buffered = io.BufferedReader(raw, buffer_size=DEFAULT_MAX_PREVIEW)
    return io.TextIOWrapper(buffered, encoding=encoding, errors=_DECODE_ERRORS, newline="")


def _clean_header(cells: list[str]) -> list[str]:
    names = [cell.replace("\ufeff", "").strip() for cell in cells]
    names = _trim_trailing_empty(names)  # Excel writes separators for formatted empty columns
    problems = []
    blank = [index for index, name in enumerate(names) if not name]
    if blank:
        where = ", ".join(_column_name(index) for index in blank)
        problems.append(f"the header has no name in {where}")
    seen: dict[str, list[int]] = {}
    for index, name in enumerate(names):
        if name:
            seen.setdefault(name.casefold(), []).append(index)
    for indexes in seen.values():
        if len(indexes) > 1:
            where = " and ".join(_column_name(index) for index in indexes)
            problems.append(f"'{names[indexes[0]]}' is in the header more than once ({where})")
    if problems:
        raise CsvError(
            "The header row " + "; ".join(problems) + ". Give every column its own name.",
            row=1,
        )
    return names


def _column_name(index: int) -> str:
    """'column C (3)': the letter Excel shows and the position, for index 2."""
    letters = ""
    number = index + 1
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return f"column {letters} ({index + 1})"


def _too_many_cells(row: int, cells: list[str], width: int) -> CsvRowError:
    count = len(_trim_trailing_empty(cells))
    return CsvRowError(
        f"this row has {count} cells but the header has {width} columns. A value that contains "
        "the separator must be in double quotes.",
        row=row,
        cells=cells,
    )


def _undecodable_row(row: int, cells: list[str], encoding: str) -> CsvRowError:
    label = ENCODING_LABELS.get(encoding, encoding)
    # Surrogates cannot be written out as UTF-8; the report shows the usual replacement mark.
    shown = [cell.replace(_UNDECODABLE_MARK, "\ufffd") for cell in cells]
    return CsvRowError(
        f"this row has characters that are not valid {label} (the rest of the file is); it was "
        f"probably pasted from another program. Retype the marked characters. {_SAVE_AS_HINT}",
        row=row,
        cells=shown,
    )


def _broken_quote_message(error: csv.Error) -> str:
    if "field larger than field limit" in str(error):
        return (
            'a double quote (") opens a cell that is never closed, so the rest of the file '
            "reads as one cell. Remove the stray quote or close it."
        )
    return f"the row cannot be read as CSV ({error}). Check the double quotes in this row."


def _too_large_message(size: int | None, max_bytes: int) -> str:
    limit = f"{max_bytes / 1_000_000:.0f} MB" if max_bytes >= 1_000_000 else f"{max_bytes} bytes"
    actual = f" ({size / 1_000_000:.1f} MB)" if size is not None else ""
    return f"The file{actual} is larger than the {limit} limit. Split it into smaller files."
