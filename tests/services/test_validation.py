"""Bad input is refused with Invalid (or Conflict) and leaves the database as it was."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import Session

from mailctl.db import utcnow
from mailctl.errors import Conflict, Invalid
from mailctl.models import Mailing
from mailctl.schedule import Clock
from mailctl.services import blog, clients, mailings, messages, users
from mailctl.services.validation import clean_email, clean_text
from tests.support.world import World

# The clock every call here runs on: UTC wall time, real periods.
CLOCK = Clock(tz="UTC", period_seconds=None)

LONG = "x" * 64


@pytest.fixture
def owner(world: World) -> Any:
    return world.users["owner"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket (a DNS query, say) fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access during validation")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# -- email syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "plainaddress",
        "@example.com",
        "user@",
        "user@@example.com",
        "us er@example.com",
        "user@exam ple.com",
        "user@example",
        "user@-example.com",
        "user@example..com",
        "user.@example.com",
        "user@example.com\nBcc: victim@example.com",
        "a\rb@example.com",
        f"{LONG}x@example.com",  # local part over 64 characters
        f"user@{'a' * 250}.com",  # address over 254 characters
    ],
)
def test_bad_email_is_refused(
    session: Session, owner: Any, refuse: Any, no_network: None, email: str
) -> None:
    refuse(Invalid, lambda: clients.add_client(session=session, actor=owner, email=email))


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("  Bob@Example.COM ", "Bob@example.com"),
        ("first.last+tag@sub.example.org", "first.last+tag@sub.example.org"),
        # A domain nobody registered is fine: syntax only, no DNS look-up.
        (
            "someone@no-such-domain-for-mailctl-tests.com",
            "someone@no-such-domain-for-mailctl-tests.com",
        ),
    ],
)
def test_good_email_is_normalised_without_dns(no_network: None, given: str, stored: str) -> None:
    assert clean_email(given) == stored


def test_bad_email_in_an_edit_is_refused(session: Session, world: World, refuse: Any) -> None:
    refuse(
        Invalid,
        lambda: clients.edit_client(
            session=session,
            actor=world.users["owner"],
            client_id=world.clients["owner"],
            email="not an email",
        ),
    )


def test_bad_email_for_a_user_is_refused(session: Session, world: World, refuse: Any) -> None:
    admin = world.users["admin"]
    refuse(
        Invalid,
        lambda: users.add_user(
            session=session, actor=admin, email="nope", password="long enough pass"
        ),
    )


# -- lengths and single lines ---------------------------------------------------------------


def test_clean_text_rules() -> None:
    assert clean_text("  padded  ", field="f", max_len=10) == "padded"
    with pytest.raises(Invalid, match="f must not be empty"):
        clean_text("   ", field="f", max_len=10, required=True)
    with pytest.raises(Invalid, match=r"f is too long \(11 characters, at most 10\)"):
        clean_text("x" * 11, field="f", max_len=10)
    with pytest.raises(Invalid, match="single line"):
        clean_text("a\nb", field="f", max_len=10, single_line=True)
    with pytest.raises(Invalid, match="NUL"):
        clean_text("a\x00b", field="f", max_len=10)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("full_name", "n" * 201, "full name is too long"),
        ("comment", "c" * 2001, "comment is too long"),
        ("full_name", "two\nlines", "full name must be a single line"),
    ],
)
def test_client_field_limits(
    session: Session, owner: Any, refuse: Any, field: str, value: str, match: str
) -> None:
    kwargs = {"email": "fresh@example.com", field: value}
    refuse(Invalid, lambda: clients.add_client(session=session, actor=owner, **kwargs), match)


def test_client_fields_at_their_limits_are_accepted(session: Session, owner: Any) -> None:
    client = clients.add_client(
        session=session,
        actor=owner,
        email="fresh@example.com",
        full_name="n" * 200,
        comment="c" * 2000,
    )
    assert len(client.full_name) == 200 and len(client.comment) == 2000


@pytest.mark.parametrize(
    ("subject", "body", "match"),
    [
        ("", "body", "subject must not be empty"),
        ("   ", "body", "subject must not be empty"),
        ("s" * 256, "body", "subject is too long"),
        ("Hello\r\nBcc: victim@example.com", "body", "subject must be a single line"),
        ("Hello\nthere", "body", "subject must be a single line"),
        ("Hello\rthere", "body", "subject must be a single line"),
        ("Subject", "", "body must not be empty"),
        ("Subject", "b" * 200_001, "body is too long"),
    ],
)
def test_message_field_rules(
    session: Session, owner: Any, refuse: Any, subject: str, body: str, match: str
) -> None:
    refuse(
        Invalid,
        lambda: messages.add_message(session=session, actor=owner, subject=subject, body=body),
        match,
    )


def test_subject_with_a_newline_is_refused_on_edit(
    session: Session, world: World, refuse: Any
) -> None:
    refuse(
        Invalid,
        lambda: messages.edit_message(
            session=session,
            actor=world.users["owner"],
            message_id=world.messages["owner"],
            subject="Sale\nBcc: all@example.com",
        ),
        "single line",
    )


@pytest.mark.parametrize(
    ("title", "content", "match"),
    [
        ("", "text", "title must not be empty"),
        ("t" * 201, "text", "title is too long"),
        ("two\nlines", "text", "title must be a single line"),
        ("Title", "  ", "content must not be empty"),
        ("Title", "c" * 100_001, "content is too long"),
    ],
)
def test_blog_post_field_rules(
    session: Session, world: World, refuse: Any, title: str, content: str, match: str
) -> None:
    editor = world.users["editor"]
    refuse(
        Invalid,
        lambda: blog.add_post(session=session, actor=editor, title=title, content=content),
        match,
    )


# -- templates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "Hello {{ client.full_name }}",
        "Hi {{ client.first_name | upper }} <{{ client.email }}>",
        "{% if client.full_name %}Dear {{ client.full_name }}{% else %}Hello{% endif %}",
        "Leave: {{ unsubscribe_url }}",
        "No placeholders at all",
    ],
)
def test_known_placeholders_are_accepted(session: Session, owner: Any, template: str) -> None:
    message = messages.add_message(session=session, actor=owner, subject="S", body=template)
    assert message.body == template


@pytest.mark.parametrize(
    ("template", "match"),
    [
        # unknown names
        ("Hello {{ name }}", "unknown placeholder name"),
        ("{{ user.email }}", "unknown placeholder user"),
        # unknown attributes of the client
        ("{{ client.password }}", "unknown placeholder client.password"),
        ("{{ client.owner_id }}", "owner_id"),
        ("{{ client.fullname }}", "fullname"),
        # syntax errors
        ("{{ client.full_name ", "template error at line 1"),
        ("{% if client.email %}open", "template error"),
        ("{{ client.email | no_such_filter }}", "template error at line 1: No filter named"),
        ("{% if client.email is no_such_test %}x{% endif %}", "No test named"),
        ("line one\n{% for %}", "template error at line 2"),
        # sandbox escapes
        ("{{ client.__class__ }}", "not allowed"),
        ("{{ client.__class__.__mro__ }}", "not allowed"),
        ("{{ client.email.__class__.__mro__[1].__subclasses__() }}", "not allowed"),
        ("{{ client.__init__.__globals__ }}", "not allowed"),
        ("{{ client.email.format.__globals__ }}", "not allowed"),
        ("{{ unsubscribe_url.__class__.__base__.__subclasses__() }}", "not allowed"),
        ("{{ lipsum.__globals__ }}", "not allowed"),
        ("{{ cycler.__init__.__globals__.os }}", "not allowed"),
        # fails when rendered
        ("{{ 1 / 0 }}", "fails to render"),
    ],
)
@pytest.mark.parametrize("where", ["subject", "body"])
def test_bad_template_is_refused(
    session: Session, owner: Any, refuse: Any, template: str, match: str, where: str
) -> None:
    if where == "subject":
        template = template.replace("\n", " ").replace("at line 2", "at line 1")
        match = match.replace("at line 2", "at line 1")
        kwargs = {"subject": template, "body": "body"}
    else:
        kwargs = {"subject": "Subject", "body": template}
    error = refuse(
        Invalid, lambda: messages.add_message(session=session, actor=owner, **kwargs), match
    )
    assert str(error).startswith(f"{where}:")


def test_bad_template_is_refused_on_edit(session: Session, world: World, refuse: Any) -> None:
    refuse(
        Invalid,
        lambda: messages.edit_message(
            session=session,
            actor=world.users["owner"],
            message_id=world.messages["owner"],
            body="{{ client.__class__ }}",
        ),
    )


# -- mailing times and periodicity ----------------------------------------------------------


def _add(session: Session, world: World, **kw: Any) -> Mailing:
    kw.setdefault("start", utcnow() + timedelta(hours=1))
    kw.setdefault("client_ids", [world.clients["owner"]])
    return mailings.add_mailing(
        session=session,
        actor=world.users["owner"],
        message_id=world.messages["owner"],
        **kw,
        clock=CLOCK,
    )


@pytest.mark.parametrize(
    ("end_offset", "match"),
    [(timedelta(0), "end must be after the start"), (-timedelta(minutes=1), "end must be after")],
)
def test_end_must_be_after_start(
    session: Session, world: World, refuse: Any, end_offset: timedelta, match: str
) -> None:
    start = utcnow() + timedelta(days=1)
    refuse(Invalid, lambda: _add(session, world, start=start, end=start + end_offset), match)


def test_end_in_the_past_is_refused(session: Session, world: World, refuse: Any) -> None:
    now = utcnow()
    refuse(
        Invalid,
        lambda: _add(session, world, start=now, end=now - timedelta(seconds=1), now=now),
        "end",
    )


def test_a_start_that_has_passed_is_due_at_once(session: Session, world: World) -> None:
    """The assignment: start passed, end ahead (or none) -> the send begins at once."""
    now = utcnow()
    for every, end in (("once", None), ("once", now + timedelta(hours=1)), ("day", None)):
        mailing = _add(session, world, start=now - timedelta(days=2), end=end, every=every, now=now)
        assert mailing.next_run_at == now - timedelta(days=2)
        assert mailings.is_due(mailing, now)


def test_start_and_end_both_past_are_refused(session: Session, world: World, refuse: Any) -> None:
    now = utcnow()
    refuse(
        Invalid,
        lambda: _add(
            session, world, start=now - timedelta(days=2), end=now - timedelta(days=1), now=now
        ),
        "the start and the end are both in the past: nothing would be sent",
    )


def test_start_a_moment_ago_is_now(session: Session, world: World) -> None:
    now = utcnow()
    mailing = _add(session, world, start=now - timedelta(minutes=1), now=now)
    assert mailing.next_run_at == now - timedelta(minutes=1)
    assert mailings.is_due(mailing, now)


@pytest.mark.parametrize("every", ["yearly", "daily", "", "DAY ", "hour"])
def test_unknown_periodicity_is_refused(
    session: Session, world: World, refuse: Any, every: str
) -> None:
    refuse(Invalid, lambda: _add(session, world, every=every), "unknown periodicity")


def test_unknown_periodicity_is_refused_on_edit(
    session: Session, world: World, refuse: Any
) -> None:
    refuse(
        Invalid,
        lambda: mailings.edit_mailing(
            session=session,
            actor=world.users["owner"],
            mailing_id=world.mailings["owner"],
            every="fortnight",
            clock=CLOCK,
        ),
        "unknown periodicity",
    )


def test_end_before_start_is_refused_on_edit(session: Session, world: World, refuse: Any) -> None:
    mailing = session.get(Mailing, world.mailings["owner"])
    assert mailing is not None
    refuse(
        Invalid,
        lambda: mailings.edit_mailing(
            session=session,
            actor=world.users["owner"],
            mailing_id=world.mailings["owner"],
            end=mailing.start_at - timedelta(hours=1),
            clock=CLOCK,
        ),
        "end must be after the start",
    )


def test_mailing_without_clients_is_refused(session: Session, world: World, refuse: Any) -> None:
    refuse(Invalid, lambda: _add(session, world, client_ids=[]), "at least one client")


def test_unknown_status_filter_is_refused(session: Session, world: World) -> None:
    with pytest.raises(Invalid, match="unknown status"):
        mailings.list_mailings(session=session, actor=world.users["owner"], status="paused")


# -- references -----------------------------------------------------------------------------


def test_message_used_by_a_mailing_cannot_be_deleted(
    session: Session, world: World, refuse: Any
) -> None:
    error = refuse(
        Conflict,
        lambda: messages.delete_message(
            session=session,
            actor=world.users["owner"],
            message_id=world.mailing_messages["owner"],
        ),
    )
    assert f"used by mailing {world.mailings['owner']}" in str(error)


def test_message_is_deletable_once_its_mailing_is_gone(session: Session, world: World) -> None:
    owner = world.users["owner"]
    mailings.delete_mailing(session=session, actor=owner, mailing_id=world.mailings["owner"])
    session.flush()
    messages.delete_message(
        session=session, actor=owner, message_id=world.mailing_messages["owner"]
    )
    session.flush()
    with pytest.raises(Exception, match="not found"):
        messages.get_message(
            session=session, actor=owner, message_id=world.mailing_messages["owner"]
        )


def test_preview_renders_for_one_client(session: Session, world: World) -> None:
    owner = world.users["owner"]
    rendered = messages.preview_message(
        session=session,
        actor=owner,
        message_id=world.messages["owner"],
        client_id=world.clients["owner"],
        from_address="shop@example.com",
        from_name="Shop",
    )
    # A Markdown message (the default): the text part starts with the body, the layout follows.
    assert rendered.body.splitlines()[0] == "Hi Client of owner"
    assert rendered.html is not None and "Hi Client of owner" in rendered.html
    assert b"To: Client of owner <client-of-owner@example.com>" in rendered.data


def test_an_internationalised_domain_is_kept_in_its_ascii_form() -> None:
    from mailctl.services.validation import clean_email

    assert clean_email("user@bücher.de") == "user@xn--bcher-kva.de"
