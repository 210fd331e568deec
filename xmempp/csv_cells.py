"""Text in the CSV files xmempp writes (objects.csv, mattes/objects.csv), safe to open in a spreadsheet.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is a formula to Excel, LibreOffice and
Google Sheets: an object named `=HYPERLINK("http://evil.example","x")` became a live link in objects.csv. Such a
cell is written with a leading apostrophe, which spreadsheets read as "this is text" and do not show; a cell
that starts with an apostrophe gets one more, so xmempp's readers, which remove one leading apostrophe, give
back every name exactly as it was. Numbers are written as they are (-0.5 stays a number).
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_MARK = "'"  # a spreadsheet's "the rest is text"


def written_cell(value: object) -> object:
    """`value` as a CSV cell: text that a spreadsheet would take for a formula (or that starts with the text
    mark) behind an apostrophe; anything else as it is."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, TEXT_MARK)):
        return TEXT_MARK + value
    return value


def read_cell(text: str) -> str:
    """The text `written_cell` was given: one leading apostrophe removed."""
    return text[1:] if text.startswith(TEXT_MARK) else text
