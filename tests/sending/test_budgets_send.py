"""Budgets at send time: a recipient whose message is over budget fails with the reason in
the log; the others are sent, the run goes on, and nothing over the size cap reaches a server."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import update

from mailctl.config import load_settings
from mailctl.db import session_scope
from mailctl.models import Mailing, Message
from mailctl.schedule import Clock
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.templates import RenderClient, RenderFailed
from mailctl.sending.transport import OutboxTransport, SmtpTransport
from mailctl.services.delivery import run_pass
from tests.support.faultserver import FaultServer
from tests.support.ledger import attempts, states


def _outbox(settings) -> list[Path]:  # type: ignore[no-untyped-def]
    folder = Path(settings.delivery.outbox_dir)
    return sorted(folder.glob("*.eml")) if folder.is_dir() else []


def _store_body(engine, mailing_id: int, body: str) -> None:  # type: ignore[no-untyped-def]
    """A body saved before the budgets existed (or under bigger ones): no validation."""
    with session_scope(engine) as session:
        message_id = session.get(Mailing, mailing_id).message_id  # type: ignore[union-attr]
        session.execute(update(Message).where(Message.id == message_id).values(body=body))


def test_only_the_recipient_over_budget_fails(engine, make_mailing, monkeypatch) -> None:
    body = (
        "{% if client.full_name == 'Bomb' %}{{ 'x' * 2000000 }}{% endif %}"
        "Hello {{ client.first_name }}"
    )
    mailing_id = make_mailing(
        [("ann@example.com", "Ann"), ("bomb@example.com", "Bomb"), ("bob@example.com", "Bob")],
        body=body,
    )
    settings = load_settings()
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert (summary.sent, summary.failed, summary.stopped) == (2, 1, None)
    assert states(engine, mailing_id) == {
        "ann@example.com": "sent",
        "bomb@example.com": "failed",
        "bob@example.com": "sent",
    }
    (failed,) = [a for a in attempts(engine, mailing_id) if a["status"] == "failed"]
    assert failed["response"] == (
        "refused before sending: the template builds a value of more than 1,000,000 bytes"
        " (render.max_output_bytes)"
    )
    assert len(_outbox(settings)) == 2


def test_a_stored_template_over_the_time_budget_costs_one_budget_per_recipient(
    engine, make_mailing, monkeypatch
) -> None:
    emails = [f"r{i}@example.com" for i in range(3)]
    mailing_id = make_mailing(emails, body="Hello")
    _store_body(
        engine,
        mailing_id,
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    )
    monkeypatch.setenv("MAILCTL_RENDER_TIME_BUDGET_SECONDS", "0.3")
    settings = load_settings()
    began = time.monotonic()
    summary = run_pass(
        engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
    )
    assert time.monotonic() - began < 3 * 0.3 + 10  # a bound on runaway work, not a speed test
    assert (summary.failed, summary.sent, summary.stopped) == (3, 0, None)
    assert set(states(engine, mailing_id).values()) == {"failed"}
    for attempt in attempts(engine, mailing_id):
        assert (
            "takes longer than 0.3s to render (render.time_budget_seconds)" in (attempt["response"])
        )
    assert _outbox(settings) == []


def test_a_message_over_the_size_cap_never_reaches_the_server(
    engine, make_mailing, smtp_settings
) -> None:
    with FaultServer("ok") as server:
        settings = smtp_settings(server.port, render_max_message_bytes=3000)
        mailing_id = make_mailing(["big@example.com"], body="y" * 4000)
        summary = run_pass(
            engine=engine, settings=settings, clock=Clock.from_settings(settings), worker="test"
        )
        assert summary.failed == 1
        assert server.connections == 0 and server.messages == []
    (attempt,) = attempts(engine, mailing_id)
    assert attempt["status"] == "failed"
    assert attempt["response"].startswith("refused before sending: the message is ")
    assert attempt["response"].endswith("bytes, more than 3,000 (render.max_message_bytes)")


def test_the_transports_refuse_oversized_data_before_any_byte(
    smtp_settings, tmp_path, monkeypatch
) -> None:
    big = b"Subject: x\r\n\r\n" + b"z" * 5000
    with FaultServer("ok") as server:
        settings = smtp_settings(server.port, render_max_message_bytes=4096)
        transport = SmtpTransport(
            settings.smtp.servers[0],
            deadline=settings.delivery.attempt_deadline_seconds,
            max_bytes=settings.render.max_message_bytes,
        )
        try:
            outcome = transport.send(sender="a@example.org", recipient="r@example.com", data=big)
        finally:
            transport.close()
        assert outcome.status == "failed" and "more than 4,096" in outcome.reply
        assert server.connections == 0
    outbox = OutboxTransport(tmp_path / "outbox", max_bytes=4096)
    assert outbox.send(sender="a@example.org", recipient="r@example.com", data=big).status == (
        "failed"
    )
    assert list((tmp_path / "outbox").iterdir()) == []


def test_many_placeholders_for_a_long_address_are_over_the_output_budget() -> None:
    renderer = MessageRenderer(
        MessageContent(subject="S", body="{{ client.email }}" * 5000),
        from_address="a@example.org",
        from_name="",
    )
    renderer.render(RenderClient("ann@example.com", "Ann"))  # 75 kB: fine
    with pytest.raises(RenderFailed, match="renders to more than 1,000,000 bytes"):
        renderer.render(RenderClient("x" * 64 + "@" + "d" * 180 + ".com", "Long"))


def test_a_subject_over_998_characters_fails_the_recipient() -> None:
    renderer = MessageRenderer(
        MessageContent(subject="{{ client.full_name * 10 }}", body="b"),
        from_address="a@example.org",
        from_name="",
    )
    renderer.render(RenderClient("a@example.com", "x" * 99))
    with pytest.raises(RenderFailed, match="the subject renders to 1,000 characters"):
        renderer.render(RenderClient("a@example.com", "x" * 100))


# -- RFC 5322 line lengths --------------------------------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=998
    ),
    name=st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=200),
    body=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000),
)
def test_every_line_of_every_message_fits_rfc_5322(subject: str, name: str, body: str) -> None:
    subject = subject.strip() or "s"
    name = name.strip()
    renderer = MessageRenderer(
        MessageContent(
            subject="{{ s }}".replace("{{ s }}", subject.replace("{", "(")),
            body=body.replace("{", "("),
        ),
        from_address="news@example.org",
        from_name=name,
    )
    data = renderer.render(RenderClient("ann@example.com", name)).data
    assert all(len(line) <= 998 for line in _lines(data))
    headers = data.split(b"\r\n\r\n", 1)[0]
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert str(parsed["Subject"]) == subject.replace("{", "(")
    # Folded where it can be: a plain ASCII subject of words keeps every line short.
    short_words = all(
        text.isascii() and text.isprintable() and max(map(len, text.split(" "))) < 60
        for text in (subject, name or "x")
    )
    if short_words:
        assert all(len(line) <= 78 for line in _lines(headers)), headers


def test_a_long_plain_subject_is_folded_at_its_spaces() -> None:
    subject = " ".join(["word"] * 150)
    renderer = MessageRenderer(
        MessageContent(subject=subject, body="b"), from_address="a@example.org", from_name=""
    )
    data = renderer.render(RenderClient("ann@example.com", "Ann")).data
    headers = data.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" not in headers  # readable, not encoded
    assert all(len(line) <= 78 for line in _lines(headers))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert str(parsed["Subject"]) == subject
