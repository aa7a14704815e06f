"""Bulk import of clients given as records (the API's JSON) under the CSV import's rules.

The records are written as the CSV that `import_clients` reads, through the product's one CSV
writer (whose guard quotes the reader takes off again), so both imports share every rule:
addresses checked, duplicates refused by row, custom fields made as columns, tags, `strict`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from mailctl.errors import Invalid
from mailctl.models import User
from mailctl.services.clients import CSV_HEADER, check_may_import, import_clients
from mailctl.services.csvfile import write_csv


@dataclass(frozen=True)
class Record:
    email: str
    full_name: str = ""
    comment: str = ""
    tags: Sequence[str] = ()
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RecordReport:
    added: int = 0
    ids: list[int] = field(default_factory=list)  # of the clients added
    errors: list[tuple[int, str]] = field(default_factory=list)  # (index of the record, why)


def import_records(
    *, session: Session, actor: User, records: Sequence[Record], strict: bool = False
) -> RecordReport:
    check_may_import(actor=actor)
    extra = sorted({name.strip().lower() for r in records for name in r.attrs})
    header = CSV_HEADER + tuple(extra)
    lines = [write_csv(header, []).rstrip("\n")]
    line_of: dict[int, int] = {}  # the CSV line a record starts on: its index
    line = 2
    refused: list[tuple[int, str]] = []
    for index, record in enumerate(records):
        if any(";" in tag for tag in record.tags):
            refused.append((index, "a tag has no ';' in it"))
            continue
        attrs = {k.strip().lower(): v for k, v in record.attrs.items()}
        row = (
            record.email,
            record.full_name,
            record.comment,
            ";".join(record.tags),
            *(attrs.get(name, "") for name in extra),
        )
        text = write_csv(header, [row]).split("\n", 1)[1].rstrip("\n")
        line_of[line] = index
        lines.append(text)
        line += text.count("\n") + 1
    if strict and refused:
        index, why = refused[0]
        raise Invalid(f"clients.{index}: {why} ({len(refused)} bad rows in all; nothing imported)")
    try:
        report = import_clients(
            session=session, actor=actor, data="\n".join(lines).encode(), strict=strict
        )
    except Invalid as exc:
        # Strict mode names the CSV line; the caller sent records, so name the record.
        message = str(exc)
        if message.startswith("line "):
            number, _, rest = message[5:].partition(":")
            if number.isdigit() and int(number) in line_of:
                message = f"clients.{line_of[int(number)]}:{rest}"
        raise Invalid(message) from None
    errors = refused + [(line_of.get(n, -1), why) for n, why in report.errors]
    return RecordReport(added=report.added, ids=report.ids, errors=sorted(errors))
