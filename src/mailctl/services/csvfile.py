"""Every CSV mailctl writes, made safe to open in a spreadsheet, and read back losslessly.

A cell that starts with `=`, `+`, `-`, `@`, a tab, CR, LF or NUL (or the full-width forms
of the first four, which some spreadsheets also take for a formula) is run by Excel,
LibreOffice and Google Sheets: `=HYPERLINK(...)` or `=cmd|' /C calc'!A0` in a client's name
would act when the export is opened. OWASP's rule: prefix such a cell with a single quote,
which a spreadsheet shows as text.

Where a cell starts depends on who opens the file. Excel splits a .csv at the list separator
of the system's locale, which is `;` in Russian, German or French Windows; it honours quotes
only at the start of a field, so there a `;` or a line break inside one of our cells starts a
new cell or row (`VIP;=HYPERLINK(...)`, or a comment's second line). Importers may also trim
spaces or take a quoted field's quotes off before they look. So the guard quote goes at every
place a cell may start: the start of ours and after each `;`, tab, CR or LF inside it, when
what follows is zero or more spaces and quotes, then one of those characters.

The rule is reversible, so that an export imports back to exactly what it held: on import
one quote is taken off at each such place where the guard would have put one. A real comment
like `+49 30 1234` goes out as `'+49 30 1234` and comes back as `+49 30 1234`; a value that
itself began with `'+` goes out with two quotes and comes back with one.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

# The characters a spreadsheet reads as the start of a formula (or a DDE call).
TRIGGERS = "=+-@\t\r\n\x00\uff1d\uff0b\uff0d\uff20"
# Where a cell may start, for a spreadsheet splitting at commas, semicolons, tabs or lines
# (a CRLF is one line break: nothing goes between its two characters).
BOUNDARIES = ";\t\r\n"
_START = "(?:^|(?<=[;\t\n])|(?<=\r)(?!\n))"
# What may come before the character a spreadsheet looks at: spaces it trims, quotes.
_FORMULA = f"(?=[\\s'\"]*[{re.escape(TRIGGERS)}])"
_GUARD = re.compile(_START + _FORMULA)
_GUARDED = re.compile(_START + "'" + _FORMULA)


def safe_cell(value: Any) -> str:
    """A value as a CSV cell that no spreadsheet evaluates, whatever its list separator."""
    text = "" if value is None else str(value)
    return _GUARD.sub("'", text)


def restore_cell(text: str) -> str:
    """The value `safe_cell` was given (its guard quotes taken off, and only those)."""
    return _GUARDED.sub("", text)


def write_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """The whole file as one string (small files; `iter_csv` streams a big one)."""
    return "".join(iter_csv(header, rows))


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of `size` items in order (itertools.batched arrived in Python 3.12)."""
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


class CsvStream(Iterator[str]):
    """The pieces of a CSV file as `iter_csv` makes them; `rows` counts the data rows written
    so far (a cell's line breaks make more lines than rows)."""

    def __init__(self, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
        self.rows = 0
        self._pieces = iter_csv(header, self._counted(rows))

    def _counted(self, rows: Iterable[Iterable[Any]]) -> Iterator[Iterable[Any]]:
        for row in rows:
            yield row
            self.rows += 1

    def __next__(self) -> str:
        return next(self._pieces)


def iter_csv(
    header: Iterable[str], rows: Iterable[Iterable[Any]], *, chunk: int = 64 * 1024
) -> Iterator[str]:
    """The one CSV writer of the product, every cell through `safe_cell`, as pieces of about
    `chunk` characters: a file of any length is written without being held whole."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # Python 3.11's writer leaves a lone CR unquoted when lines end in LF, which breaks the
    # row for every reader: such a row is written with every field quoted.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in itertools.chain((header,), rows):
        guarded = [safe_cell(cell) for cell in row]
        (quoted if any("\r" in cell for cell in guarded) else writer).writerow(guarded)
        if out.tell() >= chunk:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    if out.tell():
        yield out.getvalue()
