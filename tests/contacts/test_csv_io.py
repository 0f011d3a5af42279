"""contacts.csv_io: decoding, separators, row numbers, errors a person can act on, streaming."""

from __future__ import annotations

import io
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from contacts.csv_io import (
    CsvError,
    Rejection,
    apply_mapping,
    check_mapping,
    neutralise_formula,
    open_csv,
    preview,
    rejected_rows_csv,
)

NAME = "Čebašek Žiga"


def read(data: bytes, **options: object) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    reader = open_csv(io.BytesIO(data), **options)  # type: ignore[arg-type]
    rows = list(reader)
    return rows, [str(problem) for problem in reader.problems]


@pytest.mark.obligation("CNT-2")
@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (f"name;email\n{NAME};z@example.si\n".encode(), "utf-8"),
        (f"\ufeffname;email\n{NAME};z@example.si\n".encode(), "utf-8-sig"),
        (f"name;email\n{NAME};z@example.si\n".encode("cp1250"), "cp1250"),
        (f"name;email\n{NAME};z@example.si\n".encode("utf-16"), "utf-16"),
    ],
    ids=["utf-8", "utf-8-bom", "windows-1250", "utf-16-bom"],
)
def test_encodings_decode_slovenian_letters(data: bytes, encoding: str) -> None:
    reader = open_csv(io.BytesIO(data))
    assert reader.encoding == encoding
    assert reader.header == ["name", "email"]  # BOM not part of the first column's name
    assert list(reader) == [(2, {"name": NAME, "email": "z@example.si"})]


def test_windows_1250_detected_beyond_a_pure_ascii_start() -> None:
    # The only non-ASCII byte is deep in the sample; detection still sees it.
    lines = [f"Ime{i};Novak" for i in range(2000)]
    data = ("first;last\n" + "\n".join(lines) + f"\n{NAME};Š\n").encode("cp1250")
    rows, problems = read(data)
    assert rows[-1] == (2002, {"first": NAME, "last": "Š"})
    assert problems == []


@pytest.mark.obligation("CNT-2")
@pytest.mark.parametrize("separator", [";", ",", "\t"])
def test_separator_detected(separator: str) -> None:
    data = separator.join(["first_name", "last_name", "email"]) + "\n"
    data += separator.join(["Žiga", "Čebašek", "z@example.si"]) + "\n"
    reader = open_csv(io.BytesIO(data.encode()))
    assert reader.delimiter == separator
    assert list(reader) == [
        (2, {"first_name": "Žiga", "last_name": "Čebašek", "email": "z@example.si"})
    ]


def test_separator_vote_prefers_the_consistent_split() -> None:
    # The header has a comma too, but only ';' splits the data rows the same way.
    data = "Priimek, ime;E-pošta\nNovak, Janez;j@example.si\nKos, Ana;a@example.si\n"
    reader = open_csv(io.BytesIO(data.encode()))
    assert reader.delimiter == ";"
    assert reader.header == ["Priimek, ime", "E-pošta"]


@pytest.mark.obligation("CNT-2")
def test_quoted_separator_and_multiline_cell_keep_excel_row_numbers() -> None:
    data = (
        "name;address;note\n"
        '"Novak; Janez";"Slovenska 1\nLjubljana";ok\n'  # row 2 spans two lines
        '"Kos";"Trg 2";"said ""hi"""\n'  # row 3
        "\n"  # row 4: blank, skipped but counted
        "Zupan;Cesta 3;\n"  # row 5
    )
    rows, problems = read(data.encode())
    assert problems == []
    assert rows == [
        (2, {"name": "Novak; Janez", "address": "Slovenska 1\nLjubljana", "note": "ok"}),
        (3, {"name": "Kos", "address": "Trg 2", "note": 'said "hi"'}),
        (5, {"name": "Zupan", "address": "Cesta 3", "note": ""}),
    ]


@pytest.mark.obligation("CNT-2")
def test_too_many_cells_is_a_row_error_and_the_next_rows_are_read() -> None:
    data = "name;email\nAna;a@example.si\nNovak; Janez;j@example.si\nKos;k@example.si\n"
    reader = open_csv(io.BytesIO(data.encode()))
    rows = list(reader)
    assert [row for row, _ in rows] == [2, 4]
    [problem] = reader.problems
    assert problem.row == 3
    assert problem.cells == ["Novak", " Janez", "j@example.si"]
    assert str(problem).startswith("Row 3: this row has 3 cells but the header has 2 columns")


def test_short_rows_and_trailing_empty_cells_are_tolerated() -> None:
    # Excel writes separators for formatted empty columns, in the header and in rows.
    data = "name;email;;\nAna;;;\nKos\n;;;\n"
    rows, problems = read(data.encode())
    assert problems == []
    assert rows == [(2, {"name": "Ana", "email": ""}), (3, {"name": "Kos", "email": ""})]


@pytest.mark.obligation("CNT-2")
@pytest.mark.parametrize("data", [b"", b"\n\r\n  \n", b"\xef\xbb\xbf"])
def test_empty_file_is_named(data: bytes) -> None:
    with pytest.raises(CsvError, match="The file is empty"):
        open_csv(io.BytesIO(data))


@pytest.mark.obligation("CNT-2")
def test_duplicate_and_blank_header_names_are_named() -> None:
    with pytest.raises(CsvError) as caught:
        open_csv(io.BytesIO(b"email;name;;Email\na;b;c;d\n"))
    assert caught.value.row == 1
    assert "no name in column C (3)" in caught.value.message
    assert "'email' is in the header more than once (column A (1) and column D (4))" in str(
        caught.value
    )


def test_header_after_blank_rows_counts_them() -> None:
    reader = open_csv(io.BytesIO(b"\n\nname;email\nAna;a@example.si\n"))
    assert reader.header_row == 3
    assert list(reader) == [(4, {"name": "Ana", "email": "a@example.si"})]


def test_byte_neither_utf8_nor_windows_1250_names_the_row() -> None:
    data = b'name;email\nAna;a@example.si\n"Kos\nx";k\nBad\x81;b\n'
    with pytest.raises(CsvError) as caught:
        open_csv(io.BytesIO(data))
    assert caught.value.row == 4  # the quoted cell spanning two lines is one row
    assert "neither UTF-8 nor Windows-1250 (byte 0x81)" in caught.value.message


def test_stray_byte_in_a_utf8_file_is_a_row_error_not_mojibake() -> None:
    # The third row holds a Windows-1250 "č" (0xE8) pasted into an otherwise UTF-8 file.
    raw = f"name;email\n{NAME};z@example.si\n".encode() + b"Pasted \xe8;p@example.si\n"
    raw += b"Kos;k@example.si\n"
    reader = open_csv(io.BytesIO(raw))
    assert reader.encoding == "utf-8"
    assert [values["name"] for _, values in reader] == [NAME, "Kos"]
    [problem] = reader.problems
    assert problem.row == 3
    assert problem.cells == ["Pasted \ufffd", "p@example.si"]


def test_unreadable_byte_after_the_sample_is_a_row_error() -> None:
    head = "name;email\n" + "".join(f"Ana{i};a{i}@example.si\n" for i in range(200))
    data = head.encode() + b"Bad\xff;b@example.si\nKos;k@example.si\n"
    reader = open_csv(io.BytesIO(data), max_preview=1024)
    assert reader.encoding == "utf-8"
    rows = list(reader)
    assert rows[-1] == (203, {"name": "Kos", "email": "k@example.si"})
    assert [problem.row for problem in reader.problems] == [202]


def test_broken_utf16_row_is_a_row_error_with_the_exact_row() -> None:
    # Decoding runs ahead of parsing in large chunks; the row must still be the one with the byte.
    data = "name;email\n".encode("utf-16") + "Ana;a\n".encode("utf-16-le") * 8000
    data += b"\x00\xd8A\x00;\x00x\x00\n\x00" + "Kos;k\n".encode("utf-16-le")
    reader = open_csv(io.BytesIO(data))
    rows = list(reader)
    assert rows[-1] == (8003, {"name": "Kos", "email": "k"})
    [problem] = reader.problems
    assert (problem.row, problem.cells) == (8002, ["\ufffdA", "x"])


def test_unclosed_quote_stops_with_the_row() -> None:
    data = b'name;email\nAna;a@example.si\n"Kos;k@example.si\n' + b"x;y\n" * 40_000
    reader = open_csv(io.BytesIO(data))
    with pytest.raises(CsvError, match="never closed") as caught:
        list(reader)
    assert caught.value.row == 3


def test_excel_workbook_is_recognised() -> None:
    with pytest.raises(CsvError, match="Excel workbook, not a CSV file"):
        open_csv(io.BytesIO(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256))))


def test_file_too_large_when_size_is_known_and_when_streaming() -> None:
    data = b"name;email\n" + b"Ana;a@example.si\n" * 1000
    with pytest.raises(CsvError, match="larger than the 5000 bytes limit"):
        open_csv(io.BytesIO(data), max_bytes=5000)

    class Unseekable(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            return self._inner.readinto(buffer)

    reader = open_csv(Unseekable(data), max_bytes=5000, max_preview=1024)  # type: ignore[arg-type]
    with pytest.raises(CsvError, match="larger than the 5000 bytes limit"):
        list(reader)


def test_preview_returns_header_and_first_rows() -> None:
    data = "name;email\n" + "".join(f"Ana{i};a{i}@example.si\n" for i in range(20))
    shown = preview(io.BytesIO(data.encode()), n=3)
    assert shown.header == ["name", "email"]
    assert shown.delimiter == ";"
    assert [row for row, _ in shown.rows] == [2, 3, 4]


def test_apply_mapping_trims_drops_empty_and_names_a_missing_column() -> None:
    row = {"Ime": "  Žiga ", "Priimek": "", "E-pošta": " z@example.si", "Opomba": "x"}
    mapping = {"Ime": "first_name", "Priimek": "last_name", "E-pošta": "email", "Opomba": ""}
    assert apply_mapping(row, mapping) == {"first_name": "Žiga", "email": "z@example.si"}
    with pytest.raises(CsvError, match="'Telefon', which the file does not have"):
        apply_mapping(row, {"Telefon": "phone"})
    with pytest.raises(CsvError, match="'Telefon', which the file does not have"):
        check_mapping(list(row), {"Telefon": "phone"})
    with pytest.raises(CsvError, match="'Ime' and 'Priimek' are all mapped to first_name"):
        check_mapping(list(row), {"Ime": "first_name", "Priimek": "first_name"})


@pytest.mark.obligation("CNT-2")
def test_formula_cell_kept_as_text_on_input_and_neutralised_in_rejected_rows_csv() -> None:
    data = "name;phone;note\nAna;+38641123456;=cmd()\n".encode("cp1250")
    reader = open_csv(io.BytesIO(data))
    [(row, values)] = list(reader)
    mapped = apply_mapping(values, {"name": "first_name", "phone": "phone", "note": "address"})
    # Stored as typed: stripping would lose the + of every international phone number.
    assert mapped == {"first_name": "Ana", "phone": "+38641123456", "address": "=cmd()"}
    assert neutralise_formula("=cmd()") == "=cmd()"

    rejection = Rejection(
        row=row,
        cells=list(values.values()),
        errors={"phone": "not reachable", "address": ["too odd", "too short"]},
    )
    lines = list(rejected_rows_csv([rejection], header=reader.header))
    assert lines[0] == "\ufeff"
    assert lines[1] == "row,errors,name,phone,note\r\n"
    assert lines[2] == (
        "2,phone: not reachable; address: too odd; address: too short,Ana,'+38641123456,'=cmd()\r\n"
    )


@pytest.mark.obligation("CNT-2")
def test_row_problems_become_rejected_rows_with_their_cells() -> None:
    data = b"name;email\nNovak; Janez;=HYPERLINK(x)\n"
    reader = open_csv(io.BytesIO(data))
    assert list(reader) == []
    rejections = [problem.as_rejection() for problem in reader.problems]
    lines = list(rejected_rows_csv(rejections, header=reader.header, bom=False))
    assert lines[1].startswith("2,this row has 3 cells but the header has 2 columns")
    assert lines[1].endswith(",Novak, Janez,'=HYPERLINK(x)\r\n")


class _GeneratedCsv(io.RawIOBase):
    """A CSV of ``rows`` contacts produced as it is read, so the test itself holds no file."""

    def __init__(self, rows: int) -> None:
        self._lines = self._generate(rows)
        self._pending = b""

    @staticmethod
    def _generate(rows: int) -> Iterator[bytes]:
        yield "first_name;last_name;email;phone;birth_date;note\n".encode("cp1250")
        for i in range(rows):
            line = f'Žiga{i};Čebašek{i};ziga{i}@example.si;+38641{i:06d};1980-01-01;"a;b"\n'
            yield line.encode("cp1250")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while len(self._pending) < len(buffer):
            chunk = next(self._lines, None)
            if chunk is None:
                break
            self._pending += chunk
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def _count_rows(rows: int) -> int:
    reader = open_csv(io.BufferedReader(_GeneratedCsv(rows)))
    assert reader.encoding == "cp1250"
    count = 0
    last: tuple[int, dict[str, str]] | None = None
    for last in reader:
        count += 1
    assert last is not None and last[0] == rows + 1
    assert last[1]["last_name"] == f"Čebašek{rows - 1}"
    assert reader.problems == []
    return count


@pytest.mark.obligation("CNT-2")
def test_200k_rows_stream_in_bounded_memory_and_fast() -> None:
    rows = 200_000
    started = time.perf_counter()
    assert _count_rows(rows) == rows
    elapsed = time.perf_counter() - started
    rate = rows / elapsed

    tracemalloc.start()
    try:
        _count_rows(rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"csv_io: {rate:,.0f} rows/s, tracemalloc peak {peak / 1_000_000:.2f} MB")
    assert peak < 20_000_000
    # Well over 100,000 rows/s on the 2-core machine; the floor leaves room for a busy CI runner.
    assert rate > 50_000
