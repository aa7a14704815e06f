"""Where a spreadsheet may start a cell when it opens one of our CSV files, and the check that
none of those cells would be run as a formula.

Excel splits a .csv at the list separator of the system's locale: `,` in English, `;` in
Russian, German or French Windows, where quotes count only at the start of a field (so a `;`
or a line break inside a quoted cell of ours starts a new cell or row). Import dialogs also
offer tab, and some tools split lines without regard to quotes. Each view is modelled here
with the csv module (which treats quotes the same way) or plainly by lines.
"""

from __future__ import annotations

import csv
import io
import re
import string

from mailctl.services.csvfile import TRIGGERS

# What an importer may trim or unquote before it looks at a cell's first character: so a tab
# or line break before a formula counts as nothing, and a cell of only such is harmless.
_SKIPPED = string.whitespace + '"\xa0\u3000'


def cell_starts(text: str) -> list[str]:
    """Every cell of `text` as each kind of spreadsheet would split it."""
    cells: list[str] = []
    for delimiter in (",", ";", "\t"):
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            cells.extend(row)
    for line in re.split("[\r\n]", text):
        cells.extend(re.split("[;\t]", line))
    return cells


def assert_safe(text: str) -> None:
    for cell in cell_starts(text):
        first = cell.lstrip(_SKIPPED)[:1]
        assert not first or first not in TRIGGERS, f"{cell[:80]!r} would run in a spreadsheet"


def rows(text: str) -> list[list[str]]:
    """The file as mailctl's own importer (and an English-locale spreadsheet) reads it."""
    assert_safe(text)
    return list(csv.reader(io.StringIO(text, newline="")))
