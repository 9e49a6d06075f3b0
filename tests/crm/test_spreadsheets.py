import csv
import io

import pytest
import tablib

from crm.spreadsheets import FormulaEscapedCSV, escape_formula, unescape_formula


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1:A3)", "'@SUM(A1:A3)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("+49 30 1234", "'+49 30 1234"),
        ("Ann", "Ann"),
        ("a=b", "a=b"),
        ("'t Hooft", "'t Hooft"),
        ("", ""),
        (-5, -5),
        (None, None),
    ],
)
def test_escape_formula_quotes_cells_a_spreadsheet_would_run(value, expected):
    assert escape_formula(value) == expected


@pytest.mark.parametrize("value", ["=1+1", "+49 30 1234", "-2", "@SUM(A1)", "'t Hooft", "Ann"])
def test_unescape_formula_reverses_escape_formula(value):
    assert unescape_formula(escape_formula(value)) == value


def test_unescape_formula_keeps_a_quote_that_does_not_guard_a_formula():
    assert unescape_formula("'quoted'") == "'quoted'"


def test_csv_format_escapes_every_cell_of_an_export():
    dataset = tablib.Dataset(
        ['=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)", "plain", 7], headers=list("abcdef")
    )

    exported = FormulaEscapedCSV().export_data(dataset)

    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == list("abcdef")
    assert rows[1] == ['\'=HYPERLINK("http://evil")', "'+1", "'-2", "'@SUM(A1)", "plain", "7"]
    assert dataset[0][0] == '=HYPERLINK("http://evil")', "the caller's dataset is left as it was"


def test_csv_format_exports_a_dataset_without_headers():
    exported = FormulaEscapedCSV().export_data(tablib.Dataset(["=1"]))

    assert exported.strip() == "'=1"
