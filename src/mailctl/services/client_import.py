"""CSV import of clients, streamed: memory stays flat however long the file is.

The file is read row by row and handled in batches of BATCH rows. Each batch is validated,
checked for addresses already taken with ONE query (`email_key IN (...)` over the batch, on
the owner's unique key), and written with one multi-row INSERT for the clients and one for
their tags. Nothing grows with the file: a duplicate inside the file is caught by the same
query, because the earlier batches are already in the (one, still open) transaction; inside a
batch a set of its keys catches it. A bad row is handed to `on_error` as soon as it is read
(the CLI prints it at once) and only the first ERRORS_KEPT are kept for the panel's table.

Without `strict`, and when the caller asks (`commit_batches`: the CLI, the panel), each batch
is committed as it is written (a client and its tags always
together), so a long import holds no lock for long and an interrupted one can simply be run
again: what went in is then reported as already there. `strict` is one transaction (a
savepoint): the whole file is read and checked the same way, and the first bad row's error is
raised at the end, which rolls everything back. (Before, the import built
one ORM object per row and flushed them all at once: 499 MB for 100,000 rows.)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import insert
from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.errors import Invalid
from mailctl.models import Client, ClientTag, User
from mailctl.services.access import CONTENT_ROLES, require_role
from mailctl.services.csvfile import restore_cell
from mailctl.services.fields import clean_field_name, clean_value, ensure_fields
from mailctl.services.tagging import clean_tags, ensure_tags
from mailctl.services.validation import clean_email, clean_text

CSV_HEADER = ("email", "full_name", "comment", "tags")  # tags: ";"-separated
BATCH = 1000
LINK_CHUNK = 5000  # tag links per INSERT: 10,000 parameters, under SQLite's and PostgreSQL's
ERRORS_KEPT = 1000  # the panel lists these; the CLI prints every one as it goes
_CHUNK = 1 << 20

Row = tuple[str, str, str, str, dict[str, str]]  # email, name, comment, tags, custom fields


@dataclass
class ImportReport:
    added: int = 0
    rejected: int = 0
    ids: list[int] = field(default_factory=list)  # of the clients added, when asked (keep_ids)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, reason), the first ones

    @property
    def more_errors(self) -> int:
        """Bad rows beyond those kept in `errors`."""
        return self.rejected - len(self.errors)


class ImportProgress:
    """What an import tells as it goes; the default listens to nothing."""

    def rows(self, done: int, position: int) -> None:
        """`done` rows read so far, `position` bytes of the file."""

    def error(self, line: int, reason: str) -> None:
        """A bad row, by the line it starts on."""


def clean_row(email: str, full_name: str | None, comment: str | None) -> tuple[str, str, str]:
    return (
        clean_email(email),
        clean_text(full_name, field="full name", max_len=200, single_line=True),
        clean_text(comment, field="comment", max_len=2000),
    )


def check_utf8(stream: IO[bytes]) -> None:
    """Invalid unless the whole file is UTF-8, checked a block at a time before a row is
    written (a bad byte at the end must not leave half a file imported)."""
    offset, carry = 0, b""
    while True:
        block = stream.read(_CHUNK)
        data = carry + block
        if not data:
            break
        try:
            data.decode("utf-8")
            carry = b""
        except UnicodeDecodeError as exc:
            # A character cut by the block's end: finish it with the next block.
            if block and exc.reason == "unexpected end of data":
                carry = data[exc.start :]
                data = data[: exc.start]
            else:
                raise Invalid(
                    f"the file is not UTF-8 (byte {offset + exc.start}); save it as UTF-8 CSV"
                ) from None
        offset += len(data)
        if not block:
            break
    stream.seek(0)


def import_stream(
    *,
    session: Session,
    actor: User,
    stream: IO[bytes],
    strict: bool = False,
    progress: ImportProgress | None = None,
    commit_batches: bool = False,
    keep_ids: bool = False,
) -> ImportReport:
    """Import `email,full_name,comment,tags,<custom fields>` rows from a seekable binary file.

    Bad rows are reported by line and skipped; with strict, one bad row rejects the whole file
    and nothing is written (Invalid, naming the first one and the count). `commit_batches`
    (the CLI, the panel) commits each batch unless strict; `keep_ids` lists the new clients'
    ids (for a bounded import, the API's)."""
    require_role(actor, CONTENT_ROLES, "import clients")
    check_utf8(stream)
    if not strict:
        return _import(
            session,
            actor,
            stream,
            progress or ImportProgress(),
            commit=commit_batches,
            keep=keep_ids,
        )
    # A savepoint: a bad row anywhere takes back every row written before it was found.
    with session.begin_nested():
        report = _import(
            session, actor, stream, progress or ImportProgress(), commit=False, keep=keep_ids
        )
        if report.errors:
            line, reason = report.errors[0]
            raise Invalid(
                f"line {line}: {reason} ({report.rejected} bad rows in all; nothing imported)"
            )
    return report


def _import(
    session: Session,
    actor: User,
    stream: IO[bytes],
    listener: ImportProgress,
    *,
    commit: bool,
    keep: bool,
) -> ImportReport:
    assert actor.id is not None
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    try:
        extra, rows = _csv_rows(text)
        # Every column besides the known ones is a custom field, made if the owner lacks it.
        ensure_fields(session, actor.id, extra)
        report = ImportReport()
        writer = _Writer(session, actor.id, report.ids if keep else None)
        batch: list[tuple[int, Row]] = []
        done = 0

        pending: list[tuple[int, str]] = []  # this batch's bad rows, told in line order

        def flush() -> None:
            report.added += writer.write(batch, lambda line, reason: pending.append((line, reason)))
            for line, reason in sorted(pending):
                report.rejected += 1
                if len(report.errors) < ERRORS_KEPT:
                    report.errors.append((line, reason))
                listener.error(line, reason)
            batch.clear()
            pending.clear()
            if commit:
                # Each batch is its own short transaction: a long import never holds the
                # database (on SQLite, the one writer's lock) from the senders.
                session.commit()
            listener.rows(done, stream.tell())

        for line, row in rows:
            done += 1
            if isinstance(row, str):
                pending.append((line, row))
            else:
                batch.append((line, row))
            if len(batch) + len(pending) >= BATCH:
                flush()
        flush()
    finally:
        text.detach()  # the caller owns the file
    return report


class _Writer:
    """Validates a batch, checks it against the owner's addresses in one query, inserts it."""

    def __init__(self, session: Session, owner_id: int, ids: list[int] | None) -> None:
        self.session = session
        self.owner_id = owner_id
        self.ids = ids
        self.tag_ids: dict[str, int] = {}  # by name_key: bounded by the owner's tags

    def write(self, batch: list[tuple[int, Row]], bad: Callable[[int, str], None]) -> int:
        good: list[tuple[int, dict[str, Any], list[str]]] = []
        for line, (email, name, note, tags, attrs) in batch:
            try:
                address, full_name, comment = clean_row(email, name, note)
                labels = clean_tags(t for t in tags.split(";") if t.strip())
                values = {k: clean_value(k, v) for k, v in attrs.items() if v.strip()}
            except Invalid as exc:
                bad(line, str(exc))
                continue
            row = {"email": address, "email_key": address.lower(), "full_name": full_name}
            good.append((line, row | {"comment": comment, "attrs": values}, labels))
        taken = self._taken([row["email_key"] for _, row, _ in good])
        fresh: list[tuple[dict[str, Any], list[str]]] = []
        for line, row, labels in good:
            if row["email_key"] in taken:
                bad(line, f"client {row['email']} already exists")
                continue
            taken.add(row["email_key"])  # a repeat later in this batch
            fresh.append((row, labels))
        if not fresh:
            return 0
        now = utcnow()
        rows = [
            row | {"owner_id": self.owner_id, "created_at": now, "unsubscribed_at": None}
            for row, _ in fresh
        ]
        # On the Table, not the entity: a plain executemany (multi-row VALUES), no ORM
        # bookkeeping per row.
        clients = Client.__table__  # type: ignore[attr-defined]
        ids = (
            self.session.execute(
                insert(clients).returning(clients.c.id, sort_by_parameter_order=True), rows
            )
            .scalars()
            .all()
        )
        if self.ids is not None:
            self.ids.extend(ids)
        self._link([(client_id, labels) for client_id, (_, labels) in zip(ids, fresh, strict=True)])
        return len(fresh)

    def _taken(self, keys: list[str]) -> set[str]:
        if not keys:
            return set()
        return set(
            self.session.exec(
                select(Client.email_key).where(
                    Client.owner_id == self.owner_id, col(Client.email_key).in_(keys)
                )
            ).all()
        )

    def _link(self, tagged: list[tuple[int, list[str]]]) -> None:
        wanted = {label.lower(): label for _, labels in tagged for label in labels}
        missing = [label for key, label in wanted.items() if key not in self.tag_ids]
        if missing:
            for tag in ensure_tags(self.session, self.owner_id, missing):
                self.tag_ids[tag.name_key] = tag.id or 0
        links = [
            {"client_id": client_id, "tag_id": self.tag_ids[label.lower()]}
            for client_id, labels in tagged
            for label in labels
        ]
        # One multi-row INSERT per chunk, not an executemany (which psycopg sends row by row):
        # on PostgreSQL the tag links' trigger (migration 0018) then runs once per chunk.
        table = ClientTag.__table__  # type: ignore[attr-defined]
        for start in range(0, len(links), LINK_CHUNK):
            self.session.execute(insert(table).values(links[start : start + LINK_CHUNK]))


def _csv_rows(text: Iterable[str]) -> tuple[list[str], Iterator[tuple[int, Row | str]]]:
    """The custom field columns, and the rows by the line each starts on."""
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("the file is empty; expected a header email,full_name,comment") from None
    except csv.Error as exc:
        raise Invalid(f"line 1: not CSV: {exc}") from None
    names = [h.strip().lower() for h in header]
    if "email" not in names:
        raise Invalid(
            "line 1: header must be email,full_name,comment,tags and any custom fields, with"
            f" an email column (got {','.join(header)})"
        )
    extra = [n for n in names if n not in CSV_HEADER]
    try:
        fields = [clean_field_name(n) for n in extra]
    except Invalid as exc:
        raise Invalid(f"line 1: {exc}") from None
    if len(set(names)) != len(names):
        raise Invalid(f"line 1: a column appears twice in {','.join(header)}")
    return fields, _rows(reader, names)


def _rows(reader: Any, names: list[str]) -> Iterator[tuple[int, Row | str]]:
    index = {n: i for i, n in enumerate(names)}
    extra = [n for n in names if n not in CSV_HEADER]

    def cell(row: list[str], name: str) -> str:
        return restore_cell(row[index[name]]) if name in index else ""

    while True:
        # A row is reported by the line it starts on: a quoted field may span lines, and an
        # unclosed quote runs on to the end of the file.
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield line, f"broken CSV: {exc}"
            continue
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield line, f"expected {len(names)} fields, found {len(row)}"
            continue
        # Undo the guard quote our export puts before formula-like cells (csvfile.py).
        yield (
            line,
            (
                cell(row, "email"),
                cell(row, "full_name"),
                cell(row, "comment"),
                cell(row, "tags"),
                {n: cell(row, n) for n in extra},
            ),
        )
