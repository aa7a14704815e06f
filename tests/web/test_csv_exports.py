"""The panel's CSV downloads open safely in a spreadsheet, and its client export uploads back
to the same values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import select

from mailctl.db import session_scope
from mailctl.models import Client, User
from mailctl.services.csvfile import safe_cell
from tests.support import spreadsheet
from tests.support.web import logged_in, post_form

CLIENTS = [
    ("a@example.com", '=HYPERLINK("http://evil.example","x")', "=cmd|' /C calc'!A0"),
    ("b@example.com", "-", "+49 30 1234"),
    ("c@example.com", "@handle", "-- a note\nwith two lines"),
    ("d@example.com", "'quoted", "''=x"),
    ("=cmd@example.com", "+plus", "@"),
    ("e@example.com", "Ann; -2+3", 'VIP;=HYPERLINK("http://evil.example","x")'),
    ("f@example.com", '"=quoted', "hello\n=cmd|' /C calc'!A0\n  @SUM(1)\r\n\t=x"),
    ("g@example.com", "\uff1d1+1", "a;b; c\n- one\n- two"),
]
EVIL_REPLY = "@SUM(1+1)*cmd|' /C calc'!A0; -2+3"


def guarded(text: str) -> list[list[str]]:
    return spreadsheet.rows(text)


def owned(engine, user_id: int) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        return {
            (c.email, c.full_name, c.comment)
            for c in s.exec(select(Client).where(Client.owner_id == user_id)).all()
        }


def test_the_client_export_is_guarded_and_uploads_back(client, engine, make_user) -> None:
    user = make_user("user", email="csv@example.com")
    logged_in(client, user.email)
    for email, name, comment in CLIENTS:
        response = post_form(
            client, "/clients/new", {"email": email, "full_name": name, "comment": comment}
        )
        assert response.status_code == 303, response.text
    before = owned(engine, user.id)
    exported = client.get("/clients/export.csv")
    assert exported.status_code == 200
    rows = guarded(exported.text)
    assert [r[1] for r in rows if "a@" in r[0]] == ['\'=HYPERLINK("http://evil.example","x")']
    with session_scope(engine) as s:
        for c in s.exec(select(Client).where(Client.owner_id == user.id)).all():
            s.delete(c)
    response = post_form(
        client,
        "/clients/import",
        {"strict": "1"},
        files={"file": ("clients.csv", exported.content, "text/csv")},
    )
    assert response.status_code == 200, response.text
    assert owned(engine, user.id) == before


@pytest.fixture
def hostile_server() -> Iterator[int]:
    from aiosmtpd.controller import Controller

    from tests.support.smtp import free_port

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
            return f"250 {EVIL_REPLY}"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_the_attempts_csv_is_guarded_against_the_mail_server(
    client, engine, make_user, hostile_server, monkeypatch
) -> None:
    from mailctl.config import load_settings
    from mailctl.db import utcnow
    from mailctl.schedule import Clock
    from mailctl.services.clients import add_client
    from mailctl.services.delivery import run_pass
    from mailctl.services.mailings import add_mailing
    from mailctl.services.messages import add_message

    for key, value in {
        "DELIVERY_TRANSPORT": "smtp",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": hostile_server,
    }.items():
        monkeypatch.setenv(f"MAILCTL_{key}", str(value))
    user = make_user("user", email="report@example.com")
    with session_scope(engine) as s:
        actor = s.get(User, user.id)
        ids = [
            add_client(session=s, actor=actor, email=e, full_name=n, comment=c).id
            for e, n, c in CLIENTS
        ]
        message = add_message(session=s, actor=actor, subject="Hi", body="Hello")
        mailing = add_mailing(
            session=s,
            actor=actor,
            message_id=message.id,
            start=utcnow(),
            client_ids=ids,
            clock=Clock(tz="UTC", period_seconds=None),
        )
        mailing_id = mailing.id
    settings = load_settings()
    clock = Clock.from_settings(settings)
    summary = run_pass(engine=engine, settings=settings, clock=clock, worker="test")
    assert summary.sent == len(CLIENTS)
    logged_in(client, user.email)
    response = client.get(f"/mailings/{mailing_id}/attempts.csv")
    assert response.status_code == 200
    header, *rows = guarded(response.text)
    assert header[2] == "email" and header[5] == "response"
    assert (
        {r[5] for r in rows} == {safe_cell(EVIL_REPLY)} == {"'" + EVIL_REPLY.replace("; -", ";' -")}
    )
    assert "'=cmd@example.com" in {r[2] for r in rows}
