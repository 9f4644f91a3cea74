"""CSV exports: streamed row by row, with cells that spreadsheets cannot mistake for formulas."""

import csv
import unicodedata
from collections.abc import Iterable, Iterator

from django.http import StreamingHttpResponse


class Echo:
    """A file-like object whose write() returns the line, so csv.writer can feed a streaming response."""

    def write(self, value):
        return value


_FORMULA_STARTS = ("=", "+", "-", "@")
_CONTROL_STARTS = ("\t", "\r", "\n")


def csv_cell(value) -> str:
    """Neutralise spreadsheet formulas: a cell that starts with = + - @ (or a tab or line break) is read as text.

    Spreadsheets fold compatibility forms (with East Asian input a fullwidth equals sign starts a formula) and skip
    leading blanks and invisible format characters, so the test runs on the NFKC form past those; the cell keeps its
    text.
    """
    text = "" if value is None else str(value)
    folded = unicodedata.normalize("NFKC", text)
    if folded.startswith(_CONTROL_STARTS) or _first_visible(folded) in _FORMULA_STARTS:
        return "'" + text
    return text


def _first_visible(text: str) -> str:
    for char in text:
        if not (char.isspace() or unicodedata.category(char) == "Cf"):
            return char
    return ""


def csv_response(filename: str, header: list[str], rows: Iterable[list]) -> StreamingHttpResponse:
    writer = csv.writer(Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([csv_cell(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
