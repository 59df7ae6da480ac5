"""Reading an uploaded file as rows of text cells: CSV in any common encoding and dialect, or
the first (or named) sheet of an XLSX workbook. Files are read as streams, never whole."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from app.domain.shared.errors import DomainError, ValidationError

SAMPLE_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
XLSX_MAGIC = b"PK\x03\x04"
_DATA_LIKE = re.compile(r"@|\d{6,}|^\+?[\d\s().-]{7,}$")
csv.field_size_limit(1024 * 1024)  # a broken quote must not swallow the rest of the file


class UnsupportedFileError(DomainError):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


@dataclass(frozen=True)
class FileLayout:
    file_format: str  # csv | xlsx
    encoding: str | None
    delimiter: str | None
    has_header: bool
    columns: list[str]
    sheet: str | None = None


def sniff_format(path: Path, filename: str) -> str:
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(XLSX_MAGIC):
        return "xlsx"
    if filename.lower().endswith((".xlsx", ".xlsm", ".xls")):
        raise UnsupportedFileError("this is not an XLSX workbook (old .xls files: save as "
                                   "XLSX or CSV)")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) \
            and not _looks_utf16(head):
        raise UnsupportedFileError("send a CSV or an XLSX file")
    return "csv"


def _looks_utf16(sample: bytes) -> bool:
    return len(sample) >= 4 and (sample[1::2].count(0) >= len(sample) // 4
                                 or sample[0::2].count(0) >= len(sample) // 4)


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 (BOM or the zero bytes of ASCII text), and then
    whatever charset-normalizer finds most likely (Windows-1251, …)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if _looks_utf16(sample[:2000]):
        return "utf-16-le" if sample[1::2].count(0) >= sample[0::2].count(0) else "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    if best is None:
        raise ValidationError.at(["body", "file"], "cannot tell the file's text encoding; "
                                 "give options.encoding")
    return str(best.encoding)


def _sample_text(path: Path, encoding: str) -> str:
    with path.open("rb") as f:
        raw = f.read(SAMPLE_BYTES)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(raw, final=False)
    if len(raw) == SAMPLE_BYTES and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # whole lines only
    return text


def detect_delimiter(text: str) -> str:
    lines = text.splitlines()[:50]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        first = lines[0] if lines else ""
        counts = {d: first.count(d) for d in DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


def looks_like_header(cells: list[str]) -> bool:
    """A first row holding an email, a phone or a long number is data, not names."""
    filled = [c.strip() for c in cells if c and c.strip()]
    return bool(filled) and not any(_DATA_LIKE.search(c) for c in filled)


def inspect_csv(path: Path, *, encoding: str | None, delimiter: str | None,
                has_header: bool | None) -> FileLayout:
    if encoding is None:
        with path.open("rb") as f:
            encoding = detect_encoding(f.read(SAMPLE_BYTES))
    try:
        codecs.lookup(encoding)
    except LookupError as exc:
        raise ValidationError.at(["body", "options", "encoding"],
                                 f"unknown encoding {encoding!r}") from exc
    text = _sample_text(path, encoding)
    delimiter = delimiter or detect_delimiter(text)
    first = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    if not any(c.strip() for c in first):
        raise ValidationError.at(["body", "file"], "the file is empty")
    header = looks_like_header(first) if has_header is None else has_header
    return FileLayout("csv", encoding, delimiter, header, _columns(first, header))


def _columns(first: list[Any], header: bool) -> list[str]:
    if not header:
        return [f"column_{i + 1}" for i in range(len(first))]
    names, seen = [], set()
    for i, cell in enumerate(first):
        name = str(cell).strip() if cell is not None and str(cell).strip() else f"column_{i + 1}"
        while name in seen:
            name += f"_{i + 1}"
        seen.add(name)
        names.append(name)
    return names


def _open_sheet(path: Path, sheet: str | None) -> tuple[Any, Any]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a zip that is not a workbook, or a damaged one
        raise UnsupportedFileError(f"cannot read the workbook: {exc}") from exc
    if sheet is not None and sheet not in workbook.sheetnames:
        workbook.close()
        raise ValidationError.at(["body", "options", "sheet"], f"no sheet {sheet!r}; the "
                                 "workbook has " + ", ".join(workbook.sheetnames))
    return workbook, workbook[sheet] if sheet else workbook.worksheets[0]


def inspect_xlsx(path: Path, *, has_header: bool | None, sheet: str | None) -> FileLayout:
    workbook, worksheet = _open_sheet(path, sheet)
    try:
        first = next(worksheet.iter_rows(values_only=True), None)
    finally:
        workbook.close()
    if first is None or not any(c is not None and str(c).strip() for c in first):
        raise ValidationError.at(["body", "file"], "the first sheet is empty")
    cells = [xlsx_cell(c) for c in first]
    header = looks_like_header(cells) if has_header is None else has_header
    return FileLayout("xlsx", None, None, header, _columns(cells, header), sheet)


def xlsx_cell(value: Any) -> Any:
    """Cells as text, except dates, which transforms read as dates."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date() if value.time() == time(0) else value
    if isinstance(value, date | str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a phone typed as a number
    return str(value)


def iter_rows(path: Path, layout: FileLayout, *, skip: int = 0
              ) -> Iterator[tuple[int, list[Any]]]:
    """(spreadsheet row number, cells) of every data row after the first `skip`; wholly
    empty rows are passed over (they still count for the row numbers)."""
    start = 2 if layout.has_header else 1
    if layout.file_format == "xlsx":
        workbook, worksheet = _open_sheet(path, layout.sheet)
        try:
            rows = worksheet.iter_rows(values_only=True, min_row=start)
            yield from _numbered((list(map(xlsx_cell, r)) for r in rows), start, skip)
        finally:
            workbook.close()
        return
    with path.open("r", encoding=layout.encoding, errors="replace", newline="") as text:
        reader = csv.reader(text, delimiter=layout.delimiter or ",")
        if layout.has_header:
            next(reader, None)
        yield from _numbered(reader, start, skip)


def _numbered(rows: Iterator[list[Any]], start: int, skip: int
              ) -> Iterator[tuple[int, list[Any]]]:
    seen = 0
    for number, cells in enumerate(rows, start):
        if not any(c != "" and (not isinstance(c, str) or c.strip()) for c in cells):
            continue
        seen += 1
        if seen > skip:
            yield number, cells


def count_rows(path: Path, layout: FileLayout) -> int:
    return sum(1 for _ in iter_rows(path, layout))
