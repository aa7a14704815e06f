"""Test sends: one message to one address through the configured transport (a real SMTP
server here), personalised as a client or a sample one, logged as a test, throttled."""

from __future__ import annotations

import email
import email.policy

from sqlmodel import func, select

from mailctl.db import session_scope
from mailctl.models import Delivery, DeliveryAttempt, Mailing, TestSend
from tests.support.cli import fails, new_id, ok
from tests.support.smtp import Sink
from tests.support.web import logged_in, post_form

BODY = "# Hi {{ client.first_name }}\n\nYour address: {{ client.email }}\n"


def _counts(engine) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    with session_scope(engine, readonly=True) as s:
        return tuple(  # type: ignore[return-value]
            s.exec(select(func.count()).select_from(model)).one()
            for model in (Mailing, Delivery, DeliveryAttempt, TestSend)
        )


def test_cli_test_send_reaches_only_the_given_address(
    cli, engine, sink: Sink, smtp_settings
) -> None:
    smtp_settings(sink.port)
    client_id = new_id(cli("client", "add", "ann@example.com", "--name", "Ann Lee"))
    ok(cli("client", "add", "bob@example.com", "--name", "Bob"))
    message_id = new_id(
        cli("message", "add", "--subject", "For {{ client.first_name }}", "--body", BODY)
    )
    result = ok(cli("message", "test", message_id, "--to", "me@example.net", "--client", client_id))
    assert "sent a test of message" in result.stderr
    assert [e.rcpt_tos for e in sink.handler.envelopes] == [["me@example.net"]]
    msg = email.message_from_bytes(sink.handler.envelopes[0].content, policy=email.policy.default)
    assert msg["To"] == "me@example.net" and str(msg["Subject"]) == "For Ann"
    assert "Your address: ann@example.com" in msg.get_body(("plain",)).get_content()
    # The footer's unsubscribe link unsubscribes nobody.
    assert msg["List-Unsubscribe"] == "<https://mail.example.org/unsubscribe/test>"
    assert _counts(engine) == (0, 0, 0, 1)


def test_cli_test_send_defaults_to_the_actor_and_a_sample(
    cli, engine, sink: Sink, smtp_settings
) -> None:
    smtp_settings(sink.port)
    message_id = new_id(cli("message", "add", "--subject", "S", "--body", BODY))
    ok(cli("message", "test", message_id))
    assert sink.handler.rcpts() == ["admin@example.com"]
    msg = email.message_from_bytes(sink.handler.envelopes[0].content, policy=email.policy.default)
    assert "Hi Sample" in msg.get_body(("plain",)).get_content()
    with session_scope(engine, readonly=True) as s:
        row = s.exec(select(TestSend)).one()
    assert (row.to_address, row.as_client, row.status) == ("admin@example.com", "sample", "sent")


def test_cli_test_send_refusals(cli, engine, sink: Sink, smtp_settings, make_user) -> None:
    make_user("user", email="user1@example.com")
    smtp_settings(sink.port, delivery_test_sends_per_hour=2)
    message_id = new_id(cli("message", "add", "--subject", "S", "--body", BODY))
    fails(cli("message", "test", message_id, "--to", "not an address"), "invalid email")
    fails(cli("message", "test", 999), "message 999 not found")
    other = new_id(cli("client", "add", "x@example.com", as_="user1@example.com"))
    fails(cli("message", "test", message_id, "--client", other), "belong to different users")
    ok(cli("message", "test", message_id))
    ok(cli("message", "test", message_id))
    fails(cli("message", "test", message_id), "too many test sends: at most 2 an hour")
    assert len(sink.handler.envelopes) == 2


def test_a_refused_test_is_logged_and_reported(cli, engine, smtp_settings) -> None:
    from tests.support.smtp import free_port

    smtp_settings(free_port())  # nothing listens there
    message_id = new_id(cli("message", "add", "--subject", "S", "--body", BODY))
    fails(cli("message", "test", message_id), "the test to admin@example.com was not sent")
    with session_scope(engine, readonly=True) as s:
        assert s.exec(select(TestSend.status)).one() == "deferred"


def test_panel_send_me_a_test_and_its_throttle(
    engine, make_user, sink: Sink, smtp_settings
) -> None:
    from starlette.testclient import TestClient

    from mailctl.web.app import create_app

    settings = smtp_settings(sink.port, delivery_test_sends_per_hour=1)
    with TestClient(create_app(settings), follow_redirects=False) as client:
        _panel_test_send(client, engine, make_user, sink)


def _panel_test_send(client, engine, make_user, sink: Sink) -> None:  # type: ignore[no-untyped-def]
    user = make_user(email="writer@example.com")
    logged_in(client, user.email)
    made = post_form(client, "/messages/new", {"subject": "S", "body": BODY, "format": "markdown"})
    message_id = int(made.headers["location"].rsplit("/", 1)[1])
    page = client.get(f"/messages/{message_id}").text
    assert "Send me a test" in page and f'action="/messages/{message_id}/test"' in page
    first = post_form(client, f"/messages/{message_id}/test", {"to": "", "client": "sample"})
    assert first.status_code == 303
    assert sink.handler.rcpts() == ["writer@example.com"]
    assert "Sent a test to writer@example.com" in client.get(first.headers["location"]).text
    second = post_form(client, f"/messages/{message_id}/test", {"to": "a@example.com"})
    assert "too many test sends" in client.get(second.headers["location"]).text
    assert sink.handler.rcpts() == ["writer@example.com"]
    assert _counts(engine) == (0, 0, 0, 1)
    # Without the form's CSRF token nothing is sent.
    assert client.post(f"/messages/{message_id}/test", data={}).status_code == 403
    assert len(sink.handler.envelopes) == 1
