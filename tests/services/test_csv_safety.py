"""Every CSV the product writes is safe to open in a spreadsheet; an export imports back to
exactly what it held, for real data that starts with '-', '+', '@' or '='."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlmodel import select

from mailctl.models import Client
from mailctl.services import clients as svc
from mailctl.services.csvfile import TRIGGERS, restore_cell, safe_cell, write_csv
from tests.support import spreadsheet

# What a spreadsheet would run, and real data that merely looks like it.
HOSTILE = [
    '=HYPERLINK("http://evil.example","x")',
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1:A2)",
    "\uff1d1+1",  # a full-width equals sign
]
REAL = [
    "-",
    "- (no name given)",
    "+49 30 1234",
    "@mention in a comment",
    "'quoted already",
    "''=two quotes and an equals",
    "'+49 with a quote typed before",
    "Anne-Marie",
    "plain",
    "",
]


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_guarded(text: str) -> None:
    for row in cells(text):
        for cell in row:
            assert not cell or cell[0] not in TRIGGERS, f"{cell!r} would run in a spreadsheet"


@pytest.mark.parametrize("first", list(TRIGGERS))
def test_every_dangerous_first_character_is_guarded(first: str) -> None:
    value = first + "1+1"
    text = write_csv(["a"], [[value], [None], [3]])
    assert_guarded(text)
    assert [restore_cell(c) for c in cells(text)[1]] == [value]


@given(st.text())
def test_guard_and_restore_are_inverse(value: str) -> None:
    guarded = safe_cell(value)
    assert not guarded or guarded[0] not in TRIGGERS
    assert restore_cell(guarded) == value


@given(st.text())
def test_restore_leaves_what_export_never_guards(value: str) -> None:
    if safe_cell(value) == value:
        assert restore_cell(value) == value


def _add_all(session: Any, actor: Any) -> set[tuple[str, str, str]]:
    rows = set()
    for i, name in enumerate(HOSTILE + REAL):
        comment = REAL[i % len(REAL)] + ("\nsecond line" if i % 3 == 0 else "")
        client = svc.add_client(
            session=session,
            actor=actor,
            email=f"c{i}@example.com",
            full_name=name.strip(),
            comment=comment.strip(),
        )
        rows.add((client.email, client.full_name, client.comment))
    # Addresses may start with a trigger too.
    for address in ("=cmd@example.com", "+tag@example.com", "-dash@example.com"):
        client = svc.add_client(session=session, actor=actor, email=address, full_name="x")
        rows.add((client.email, client.full_name, client.comment))
    return rows


def test_the_client_export_is_guarded_and_imports_back_the_same(session, world) -> None:
    owner = world.users["owner"]
    session.execute(Client.__table__.delete().where(Client.owner_id == owner.id))  # type: ignore[attr-defined]
    wanted = _add_all(session, owner)
    text = svc.export_clients(session=session, actor=owner)
    assert_guarded(text)
    assert "'=HYPERLINK" in text and "'+49 30 1234" in text and "'=cmd@example.com" in text
    session.execute(Client.__table__.delete().where(Client.owner_id == owner.id))  # type: ignore[attr-defined]
    report = svc.import_clients(session=session, actor=owner, data=text.encode(), strict=True)
    assert report.errors == []
    got = {
        (c.email, c.full_name, c.comment)
        for c in session.exec(select(Client).where(Client.owner_id == owner.id)).all()
    }
    assert got == wanted


def test_a_spreadsheet_saved_file_without_guards_imports_as_it_reads(session, world) -> None:
    """A CSV written by a person (no guard quotes): nothing is taken off what they typed."""
    owner = world.users["owner"]
    data = "email,full_name,comment\nzed@example.com,-,+49 30 1234\nyan@example.com,'Yan,'\n"
    report = svc.import_clients(session=session, actor=owner, data=data.encode(), strict=True)
    assert report.added == 2
    added = svc.list_clients(session=session, actor=owner)[-2:]
    assert [(c.full_name, c.comment) for c in added] == [("-", "+49 30 1234"), ("'Yan", "'")]


# -- a spreadsheet whose list separator is ';' (Excel in Russian, German, French) -----------
# There quotes count only at the start of a field, so a ';' or a line break inside one of our
# cells starts a cell of its own: a formula after it must be guarded too (tests/spreadsheet.py
# splits the file every way a spreadsheet may).

BOUNDARIES = ["", ";", "\n", "\r", "\r\n", "\t", "; "]
LEADERS = ["", " ", "'", '"', "  \u3000", "'\"' "]


@pytest.mark.parametrize("boundary", BOUNDARIES, ids=repr)
@pytest.mark.parametrize("leader", LEADERS, ids=repr)
@pytest.mark.parametrize("trigger", list(TRIGGERS), ids=repr)
def test_a_formula_wherever_a_cell_may_start_is_guarded(
    boundary: str, leader: str, trigger: str
) -> None:
    value = ("text" if boundary else "") + boundary + leader + trigger + "cmd|' /C calc'!A0"
    text = write_csv(["email", "full_name"], [["a@example.com", value], [value, "x"]])
    spreadsheet.assert_safe(text)
    assert [[restore_cell(c) for c in row] for row in cells(text)[1:]] == [
        ["a@example.com", value],
        [value, "x"],
    ]


def test_the_guard_never_splits_a_crlf() -> None:
    assert safe_cell("a\r\n=b") == "a\r\n'=b"
    assert safe_cell("a\r=b\n-c") == "a\r'=b\n'-c"


@given(st.lists(st.lists(st.text(), min_size=3, max_size=3), max_size=5))
def test_any_rows_open_safely_and_read_back_the_same(table: list[list[str]]) -> None:
    text = write_csv(["email", "full_name", "comment"], table)
    spreadsheet.assert_safe(text)
    got = [[restore_cell(c) for c in row] for row in cells(text)[1:]]
    assert got == table
