"""Every CSV mailctl writes, made safe to open in a spreadsheet, and read back losslessly.

A cell that starts with `=`, `+`, `-`, `@`, a tab, CR or LF (or their full-width forms,
which some spreadsheets also take for a formula) is run by Excel, LibreOffice and Google
Sheets: `=HYPERLINK(...)` or `=cmd|' /C calc'!A0` in a client's name would act when the
export is opened. OWASP's rule: prefix such a cell with a single quote, which a spreadsheet
shows as text and drops.

The rule is made reversible so that an export imports back to exactly what it held:
a quote is added before any cell that is zero or more quotes followed by one of those
characters, and one leading quote is taken off such a cell on import. A real comment like
`+49 30 1234` goes out as `'+49 30 1234` and comes back as `+49 30 1234`; a value that
itself began with `'+` goes out with two quotes and comes back with one.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

# The characters a spreadsheet reads as the start of a formula (or a DDE call).
TRIGGERS = "=+-@\t\r\n\uff1d\uff0b\uff0d\uff20"
_GUARDED = re.compile(f"'*[{re.escape(TRIGGERS)}]")


def safe_cell(value: Any) -> str:
    """A value as a CSV cell that no spreadsheet evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if _GUARDED.match(text) else text


def restore_cell(text: str) -> str:
    """The value `safe_cell` was given (one guard quote taken off where it added one)."""
    if text.startswith("'") and _GUARDED.match(text[1:]):
        return text[1:]
    return text


def write_csv(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    """The one CSV writer of the product: every cell through `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # Python 3.11's writer leaves a lone CR unquoted when lines end in LF, which breaks the
    # row for every reader: such a row is written with every field quoted.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in (header, *rows):
        guarded = [safe_cell(cell) for cell in row]
        (quoted if any("\r" in cell for cell in guarded) else writer).writerow(guarded)
    return out.getvalue()
