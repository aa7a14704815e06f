"""Header injection: refused when saved, refused again at send time, nothing goes out."""

from __future__ import annotations

import email
import email.policy
from email.headerregistry import Address

import pytest
from sqlalchemy import update

from mailctl.db import session_scope
from mailctl.errors import Invalid
from mailctl.models import Client, Delivery, Message, User
from mailctl.schedule import Clock
from mailctl.sending.mime import HeaderInjection, check_header, encode_header, format_address
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.templates import RenderClient
from mailctl.services.clients import add_client, edit_client
from mailctl.services.messages import add_message, edit_message
from tests.support.ledger import attempts, ledger
from tests.support.smtp import Sink

EVIL_NAMES = ["Eve\r\nBcc: victim@example.com", "Eve\nBcc: victim@example.com", "Eve\rX: y"]


# -- format_address / encode_header -------------------------------------------------------------


def _parse_to(header: str) -> Address:
    msg = email.message_from_bytes(f"To: {header}\r\n\r\n".encode(), policy=email.policy.default)
    assert not msg.defects, msg.defects
    return msg["To"].addresses[0]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Ann Lee",
        'Smith, "Bob" Jr.',
        "O'Neil (the boss) <ceo>",
        "back\\slash",
        "José Müller",
        "山田 優希",
        "=?utf-8?b?RXZl?=",  # an encoded-word lookalike stays literal
    ],
)
def test_format_address_round_trips(name: str) -> None:
    header = format_address(name, "ann@example.com")
    assert header.isascii()
    parsed = _parse_to(header)
    assert parsed.addr_spec == "ann@example.com"
    assert parsed.display_name == name.strip() or parsed.display_name == name


def test_long_non_ascii_name_is_split_per_rfc_2047() -> None:
    from email.header import decode_header, make_header

    name = ("Ünïcödé " * 20).strip()
    header = format_address(name, "ann@example.com")
    phrase, _, address = header.rpartition(" ")
    assert address == "<ann@example.com>"
    words = phrase.split("\r\n ")
    assert len(words) > 1 and all(len(w) <= 75 for w in words)
    # Whitespace between adjacent encoded words is not part of the text (RFC 2047 6.2);
    # email.headerregistry gets this wrong for display names, email.header does not.
    assert str(make_header(decode_header(phrase))) == name


def test_format_address_shapes() -> None:
    assert format_address("", "a@example.com") == "<a@example.com>"
    assert format_address("Ann Lee", "a@example.com") == "Ann Lee <a@example.com>"
    assert format_address("Lee, Ann", "a@example.com") == '"Lee, Ann" <a@example.com>'
    assert format_address('Say "hi"', "a@example.com") == '"Say \\"hi\\"" <a@example.com>'
    assert format_address("Zoë", "a@example.com") == "=?utf-8?b?Wm/Dqw==?= <a@example.com>"


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_format_address_refuses_line_breaks(name: str) -> None:
    with pytest.raises(HeaderInjection, match="display name contains a line break"):
        format_address(name, "a@example.com")
    with pytest.raises(HeaderInjection, match="address contains a line break"):
        format_address("Eve", "a@example.com\r\nBcc: victim@example.com")


def test_encode_header_never_lets_a_line_break_through() -> None:
    # Encoded words carry CR/LF as data, not as a new header line.
    encoded = encode_header("Hi ä\r\nBcc: victim@example.com")
    assert "\r\n " in encoded or "\n" not in encoded
    assert "\r\nBcc" not in encoded
    with pytest.raises(HeaderInjection):
        check_header("a\nb", "the subject")
    assert check_header("fine", "the subject") == "fine"


def test_renderer_refuses_injected_subject_name_and_address() -> None:
    renderer = MessageRenderer(
        MessageContent(subject="Hello {{ client.full_name }}", body="b"),
        from_address="news@example.org",
        from_name="News",
    )
    with pytest.raises(HeaderInjection, match="subject"):
        renderer.render(RenderClient("a@example.com", EVIL_NAMES[0]))
    plain = MessageRenderer(
        MessageContent(subject="Hello", body="b"), from_address="news@example.org", from_name="News"
    )
    with pytest.raises(HeaderInjection, match="display name"):
        plain.render(RenderClient("a@example.com", EVIL_NAMES[1]))
    with pytest.raises(HeaderInjection, match="recipient address"):
        plain.render(RenderClient("a@example.com\r\nBcc: v@example.com", "Eve"))
    with pytest.raises(HeaderInjection, match="unsubscribe"):
        MessageRenderer(
            MessageContent(subject="s", body="b"),
            from_address="n@example.org",
            from_name="N",
            unsubscribe=True,
        ).render(RenderClient("a@example.com", "A"), unsubscribe_url="https://x/\r\nBcc: v")
    with pytest.raises(HeaderInjection):
        MessageRenderer(
            MessageContent(subject="s", body="b"), from_address="n@example.org", from_name="N\nX"
        )


# -- refused when saved ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", EVIL_NAMES)
def test_validation_refuses_line_breaks_in_names(engine, owner, name: str) -> None:
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        with pytest.raises(Invalid, match="single line"):
            add_client(session=session, actor=actor, email="eve@example.com", full_name=name)  # type: ignore[arg-type]
        client = add_client(session=session, actor=actor, email="eve@example.com")  # type: ignore[arg-type]
        with pytest.raises(Invalid, match="single line"):
            edit_client(session=session, actor=actor, client_id=client.id or 0, full_name=name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "address", ["eve@example.com\r\nBcc: victim@example.com", "eve@example.com\nRCPT TO:<x@y>"]
)
def test_validation_refuses_line_breaks_in_addresses(engine, owner, address: str) -> None:
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        with pytest.raises(Invalid, match="line break|invalid email"):
            add_client(session=session, actor=actor, email=address)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "subject", ["Hi\r\nBcc: victim@example.com", "Hi{{ '\\r\\n' }}Bcc: victim@example.com"]
)
def test_validation_refuses_subjects_that_break_lines(engine, owner, subject: str) -> None:
    with session_scope(engine) as session:
        actor = session.get(User, owner.id)
        with pytest.raises(Invalid, match="single line"):
            add_message(session=session, actor=actor, subject=subject, body="b")  # type: ignore[arg-type]
        message = add_message(session=session, actor=actor, subject="ok", body="b")  # type: ignore[arg-type]
        with pytest.raises(Invalid, match="single line"):
            edit_message(session=session, actor=actor, message_id=message.id or 0, subject=subject)  # type: ignore[arg-type]


def test_cli_refuses_an_injected_name_in_one_line(cli) -> None:
    result = cli("client", "add", "eve@example.com", "--name", "Eve\r\nBcc: victim@example.com")
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


# -- refused at send time, when the database was changed behind the service's back -----------------


def test_injected_name_in_the_database_fails_only_that_recipient(
    engine, sink: Sink, smtp_settings, make_mailing
) -> None:
    from mailctl.services.delivery import run_pass

    settings = smtp_settings(sink.port)
    emails = ["ann@example.com", "eve@example.com", "bob@example.com"]
    mailing_id = make_mailing(emails, subject="Hello", body="Hi {{ client.full_name }}")
    with session_scope(engine) as session:
        session.execute(
            update(Client).where(Client.email == "eve@example.com").values(full_name=EVIL_NAMES[0])  # type: ignore[arg-type]
        )
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert (summary.sent, summary.failed) == (2, 1)
    assert sorted(sink.handler.rcpts()) == ["ann@example.com", "bob@example.com"]
    for env in sink.handler.envelopes:
        assert b"victim" not in env.content
    row = ledger(engine, mailing_id)["eve@example.com"]
    assert row["state"] == "failed"
    assert row["last_reply"] == "refused before sending: a display name contains a line break"
    log = [a for a in attempts(engine, mailing_id) if a["email"] == "eve@example.com"]
    assert [(a["status"], a["smtp_code"]) for a in log] == [("failed", None)]


def test_injected_subject_or_address_in_the_database_sends_nothing(
    engine, sink: Sink, smtp_settings, make_mailing
) -> None:
    from mailctl.services.delivery import run_pass

    settings = smtp_settings(sink.port)
    mailing_id = make_mailing(
        ["ann@example.com", "bob@example.com"], subject="Hi {{ client.full_name }}"
    )
    with session_scope(engine) as session:
        session.execute(
            update(Message).values(subject="Hi\r\nBcc: victim@example.com")  # type: ignore[arg-type]
        )
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert summary.failed == 2 and summary.sent == 0
    assert sink.handler.envelopes == []
    for row in ledger(engine, mailing_id).values():
        assert row["state"] == "failed"
        assert row["last_reply"] == "refused before sending: the subject contains a line break"

    # An address edited in the ledger itself is refused too, before any SMTP command.
    from mailctl.services.runs import start_due_runs

    other = make_mailing(["carl@example.com"])
    assert start_due_runs(
        engine, clock=Clock(tz="UTC", period_seconds=None)
    )  # the ledger rows exist from here on
    with session_scope(engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.mailing_id == other)  # type: ignore[arg-type]
            .values(email="carl@example.com\r\nRCPT TO:<victim@example.com>")
        )
    from mailctl.services.delivery import run_pass as again

    summary = again(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert summary.failed == 1
    assert sink.handler.envelopes == []
    (row,) = ledger(engine, other).values()
    assert row["state"] == "failed"
    assert "recipient address contains a line break" in row["last_reply"]


def test_a_non_ascii_address_in_the_ledger_fails_only_that_recipient(
    engine, sink: Sink, smtp_settings, make_mailing
) -> None:
    """An address stored in Unicode (before addresses were kept in ASCII form) must not look
    like a connection failure: the others go out, and the circuit breaker stays shut."""
    from mailctl.services.delivery import run_pass
    from mailctl.services.runs import start_due_runs

    settings = smtp_settings(sink.port, delivery_circuit_breaker=1)
    mailing_id = make_mailing(["ann@example.com", "old@example.com", "bob@example.com"])
    assert start_due_runs(engine, clock=Clock(tz="UTC", period_seconds=None))
    with session_scope(engine) as session:
        session.execute(
            update(Delivery)
            .where(Delivery.email == "old@example.com")  # type: ignore[arg-type]
            .values(email="old@bücher.de")
        )
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert (summary.sent, summary.failed, summary.stopped) == (2, 1, None)
    assert sorted(sink.handler.rcpts()) == ["ann@example.com", "bob@example.com"]
    row = ledger(engine, mailing_id)["old@bücher.de"]
    assert row["state"] == "failed"
    assert row["last_reply"] == "refused before sending: the address is not ASCII"
