"""Spreadsheet-safe CSV: escape cells a spreadsheet would run as formulas (CSV injection).

Any text we export may come from the public (a form field, an API call), and
Excel, LibreOffice and Google Sheets run a cell that begins with one of
FORMULA_PREFIXES as a formula. Following OWASP's CSV injection guidance, such a
cell gets a leading single quote, which spreadsheets show as plain text.
django-import-export's IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only strips a
leading "=", so every export format here goes through escape_formula instead.
"""

import csv
from collections.abc import Iterable, Iterator
from typing import Any

import tablib
from import_export.formats.base_formats import CSV

#: A cell starting with one of these is run as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: Any) -> Any:
    """Return text that a spreadsheet would run as a formula with a leading quote.

    Only text is escaped: a cell exported as a number (a lead score of -5) cannot hold a
    formula, and quoting it would turn it into text.
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def unescape_formula(value: Any) -> Any:
    """Undo escape_formula, so an exported file imports back unchanged.

    A quote is removed only in front of a formula character: "'+49 30 1234" reads
    back as "+49 30 1234", while a name such as "'t Hooft" is left alone.
    """
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        return value[1:]
    return value


def escape_dataset(dataset: tablib.Dataset) -> tablib.Dataset:
    """Return a copy of the dataset with every cell, headers included, escaped."""
    escaped = tablib.Dataset(*[[escape_formula(cell) for cell in row] for row in dataset])
    if dataset.headers:
        escaped.headers = [escape_formula(header) for header in dataset.headers]
    return escaped


class _Echo:
    """A file-like object whose write returns the line: csv.writer one row at a time."""

    def write(self, value: str) -> str:
        return value


def csv_stream(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """CSV lines, formulas escaped, for a StreamingHttpResponse: one row in memory at a time.

    The first line starts with a byte-order mark, so Excel reads the file as UTF-8.
    """
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([escape_formula(cell) for cell in header])
    for row in rows:
        yield writer.writerow([escape_formula(cell) for cell in row])


class FormulaEscapedCSV(CSV):
    """CSV that escapes formula cells on export; use it for every admin export."""

    def export_data(self, dataset, **kwargs):
        return super().export_data(escape_dataset(dataset), **kwargs)
