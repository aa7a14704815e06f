"""Recipients: unique per owner without regard to case, in Python and in the database; CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from mailctl.db import session_scope
from mailctl.errors import Conflict, Invalid
from mailctl.models import Client
from mailctl.services import clients
from tests.support.world import World


@pytest.fixture
def owner(world: World) -> Any:
    return world.users["owner"]


def _emails(session: Session, actor: Any) -> list[str]:
    return [c.email for c in clients.list_clients(session=session, actor=actor)]


def _added(session: Session, actor: Any, report: Any) -> list[Any]:
    """The clients an import added: the actor's newest, as many as it counted."""
    found = clients.list_clients(session=session, actor=actor)
    return list(found[len(found) - report.added :])


# -- uniqueness -----------------------------------------------------------------------------


def test_email_is_unique_per_owner_without_regard_to_case(
    session: Session, owner: Any, refuse: Any
) -> None:
    clients.add_client(session=session, actor=owner, email="Bob.Smith@example.com")
    for variant in ("bob.smith@example.com", "BOB.SMITH@EXAMPLE.COM", " Bob.Smith@Example.com "):
        refuse(
            Conflict,
            lambda v=variant: clients.add_client(session=session, actor=owner, email=v),
            "already exists",
        )


def test_two_owners_may_have_the_same_email(session: Session, world: World) -> None:
    a = clients.add_client(session=session, actor=world.users["owner"], email="shared@example.com")
    b = clients.add_client(session=session, actor=world.users["other"], email="SHARED@example.com")
    session.flush()
    assert a.id != b.id
    assert a.email_key == b.email_key == "shared@example.com"
    assert b.email == "SHARED@example.com"  # the case the owner typed is kept for sending


def test_edit_into_a_duplicate_is_refused(session: Session, owner: Any, refuse: Any) -> None:
    clients.add_client(session=session, actor=owner, email="one@example.com")
    two = clients.add_client(session=session, actor=owner, email="two@example.com")
    refuse(
        Conflict,
        lambda: clients.edit_client(
            session=session, actor=owner, client_id=two.id or 0, email="ONE@example.com"
        ),
    )


def test_edit_may_change_the_case_of_its_own_email(session: Session, owner: Any) -> None:
    one = clients.add_client(session=session, actor=owner, email="one@example.com")
    edited = clients.edit_client(
        session=session, actor=owner, client_id=one.id or 0, email="One@example.com"
    )
    assert (edited.email, edited.email_key) == ("One@example.com", "one@example.com")


def _insert(engine: Engine, **row: Any) -> None:
    with session_scope(engine) as s:
        s.add(Client(**row))
        s.flush()


def test_the_database_enforces_uniqueness(engine: Engine, world: World) -> None:
    owner_id = world.users["owner"].id
    taken = "client-of-owner@example.com"
    with pytest.raises(IntegrityError):
        _insert(engine, owner_id=owner_id, email=taken.upper(), email_key=taken)
    # The key must be the lower-cased email, so the unique index cannot be side-stepped.
    with pytest.raises(IntegrityError):
        _insert(engine, owner_id=owner_id, email=taken.upper(), email_key="other@example.com")
    # Another owner is free to have it.
    _insert(engine, owner_id=world.users["other"].id, email=taken, email_key=taken)


def test_search_ignores_case(session: Session, owner: Any) -> None:
    clients.add_client(session=session, actor=owner, email="Ann@Example.com", full_name="Ann Lee")
    found = clients.list_clients(session=session, actor=owner, search="ANN")
    assert [c.email for c in found] == ["Ann@example.com"]
    assert clients.count_clients(session=session, actor=owner, search="lee") == 1


# -- CSV import -----------------------------------------------------------------------------

MIXED = (
    "email,full_name,comment\n"  # 1
    "good1@example.com,Good One,vip\n"  # 2
    "not-an-email,Bad,\n"  # 3 invalid address
    'good2@example.com,"Two, Jr.",\n'  # 4 quoted comma
    "good1@EXAMPLE.com,Dup,\n"  # 5 duplicate within the file
    "short@example.com,OnlyTwo\n"  # 6 too few fields
    "client-of-owner@example.com,x,y\n"  # 7 already a client
    '"multi@example.com",Multi,"two-line\n'  # 8 a quoted field over two lines
    'note"\n'  # 9
    "\n"  # 10 blank: ignored
    "toomany@example.com,a,b,c\n"  # 11 too many fields
    '"broken@example.com"x,B,C\n'  # 12 text after a closing quote
    "good3@example.com,Three,\n"  # 13
)
MIXED_ERRORS = {
    3: "invalid email",
    5: "already exists",
    6: "expected 3 fields, found 2",
    7: "already exists",
    11: "expected 3 fields, found 4",
    12: "broken CSV",
}
MIXED_ADDED = ["good1@example.com", "good2@example.com", "multi@example.com", "good3@example.com"]


def test_import_takes_good_rows_and_reports_bad_ones_by_line(session: Session, owner: Any) -> None:
    before = _emails(session, owner)
    report = clients.import_clients(session=session, actor=owner, data=MIXED.encode())
    assert [c.email for c in _added(session, owner, report)] == MIXED_ADDED
    assert [line for line, _ in report.errors] == sorted(MIXED_ERRORS)
    for line, reason in report.errors:
        assert MIXED_ERRORS[line] in reason, (line, reason)
    assert _emails(session, owner) == before + MIXED_ADDED
    two = next(c for c in _added(session, owner, report) if c.email == "good2@example.com")
    multi = next(c for c in _added(session, owner, report) if c.email == "multi@example.com")
    assert (two.full_name, multi.full_name, multi.comment) == (
        "Two, Jr.",
        "Multi",
        "two-line\nnote",
    )


def test_a_multi_line_row_is_reported_by_its_first_line(session: Session, owner: Any) -> None:
    data = b'email,full_name,comment\nok@example.com,Ok,\n"bad@example.com","Two\nLines",\n'
    report = clients.import_clients(session=session, actor=owner, data=data)
    assert report.errors == [(3, "full name must be a single line")]


def test_strict_import_imports_nothing(session: Session, owner: Any, refuse: Any) -> None:
    error = refuse(
        Invalid,
        lambda: clients.import_clients(
            session=session, actor=owner, data=MIXED.encode(), strict=True
        ),
    )
    assert str(error).startswith("line 3: invalid email")
    assert f"{len(MIXED_ERRORS)} bad rows" in str(error)
    assert "nothing imported" in str(error)


def test_strict_import_of_a_clean_file(session: Session, owner: Any) -> None:
    data = b"email,full_name,comment\na@example.com,A,\nb@example.com,B,\n"
    report = clients.import_clients(session=session, actor=owner, data=data, strict=True)
    assert [c.email for c in _added(session, owner, report)] == ["a@example.com", "b@example.com"]
    assert report.errors == []


def test_unclosed_quote_is_reported_where_it_opens(session: Session, owner: Any) -> None:
    data = (
        b"email,full_name,comment\n"
        b"first@example.com,First,\n"
        b'"open@example.com,Never closed,\n'
        b"swallowed@example.com,x,y\n"
    )
    report = clients.import_clients(session=session, actor=owner, data=data)
    assert [c.email for c in _added(session, owner, report)] == ["first@example.com"]
    assert len(report.errors) == 1
    line, reason = report.errors[0]
    assert line == 3 and "broken CSV" in reason


@pytest.mark.parametrize("strict", [False, True])
def test_non_utf8_file_is_refused(session: Session, owner: Any, refuse: Any, strict: bool) -> None:
    data = "email,full_name,comment\ncafe@example.com,Café Crème,\n".encode("latin-1")
    refuse(
        Invalid,
        lambda: clients.import_clients(session=session, actor=owner, data=data, strict=strict),
        "not UTF-8",
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "file is empty"),
        (b"name,comment\nx,y\n", "header must be email,full_name,comment"),
        # Other columns are custom fields, but only under names a template can use.
        (b"email,2nd phone\na@example.com,123\n", "line 1: field name '2nd phone'"),
        (b"email,tags,email\na@example.com,x,b@example.com\n", "appears twice"),
        (b"email,comment,id\na@example.com,x,1\n", "taken by a built-in"),
    ],
)
def test_bad_header_is_refused(
    session: Session, owner: Any, refuse: Any, data: bytes, match: str
) -> None:
    refuse(Invalid, lambda: clients.import_clients(session=session, actor=owner, data=data), match)


def test_tags_and_custom_field_columns_are_imported_and_exported(
    session: Session, owner: Any
) -> None:
    from mailctl.services import fields
    from mailctl.services.tagging import tags_of

    data = (
        b"email,city,tags,full_name\nann@example.com,Riga,news; VIP ,Ann\nbob@example.com,,,Bob\n"
    )
    report = clients.import_clients(session=session, actor=owner, data=data)
    assert report.errors == []
    ann, bob = _added(session, owner, report)
    assert ann.attrs == {"city": "Riga"} and bob.attrs == {}
    assert tags_of(session, [ann.id or 0, bob.id or 0]) == {ann.id: ["news", "VIP"], bob.id: []}
    assert [f.name for f in fields.list_fields(session=session, actor=owner)] == ["city"]
    exported = clients.export_clients(session=session, actor=owner)
    assert exported.splitlines()[0] == "email,full_name,comment,tags,city"
    assert "ann@example.com,Ann,,news;VIP,Riga" in exported.splitlines()
    with pytest.raises(Invalid, match="no custom field 'zip'"):
        clients.edit_client(session=session, actor=owner, client_id=ann.id or 0, attrs={"zip": "1"})
    clients.edit_client(session=session, actor=owner, client_id=ann.id or 0, attrs={"city": ""})
    assert ann.attrs == {}


def test_bom_column_order_and_unicode_are_accepted(session: Session, owner: Any) -> None:
    data = "\ufeffcomment,EMAIL,full_name\nnote,zoe@example.com,Zoë Ångström\n".encode()
    report = clients.import_clients(session=session, actor=owner, data=data)
    assert report.errors == []
    (zoe,) = _added(session, owner, report)
    assert (zoe.email, zoe.full_name, zoe.comment) == ("zoe@example.com", "Zoë Ångström", "note")


def test_export_round_trips_through_import(session: Session, world: World) -> None:
    owner, other = world.users["owner"], world.users["other"]
    clients.add_client(
        session=session,
        actor=owner,
        email="q@example.com",
        full_name='Quote "Q", Esq.',
        comment="a\nb",
        tags=["news", "Vip list"],
    )
    exported = clients.export_clients(session=session, actor=owner)
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == ["email", "full_name", "comment", "tags"]
    assert ["q@example.com", 'Quote "Q", Esq.', "a\nb", "news;Vip list"] in rows
    report = clients.import_clients(session=session, actor=other, data=exported.encode())
    assert report.errors == []
    theirs = {
        (c.email, c.full_name, c.comment)
        for c in clients.list_clients(session=session, actor=other)
    }
    mine = {
        (c.email, c.full_name, c.comment)
        for c in clients.list_clients(session=session, actor=owner)
    }
    assert mine <= theirs
