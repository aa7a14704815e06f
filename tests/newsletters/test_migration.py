"""Revision 0013: messages written before formats existed become `text` and keep sending as
one text/plain part; the revision goes down and up again cleanly."""

from __future__ import annotations

import email
import email.policy

from sqlalchemy import text
from sqlmodel import select

from mailctl import migrations
from mailctl.db import make_engine, session_scope
from mailctl.models import Message
from mailctl.sending.render import MessageContent, MessageRenderer
from mailctl.sending.templates import RenderClient


def test_old_messages_migrate_as_text_and_new_ones_default_to_markdown(settings) -> None:
    engine = make_engine(settings, create=True)
    try:
        migrations.upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (email, full_name, password_hash, role, is_active,"
                    " is_verified, date_joined, session_version) VALUES ('old@example.com', '',"
                    " 'x', 'user', true, true, '2026-01-01 00:00:00', 0)"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO messages (owner_id, subject, body, created_at, updated_at)"
                    " VALUES (1, 'Old', '# not a heading {{ client.email }}',"
                    " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
        migrations.upgrade(engine)
        with session_scope(engine) as session:
            old = session.get(Message, 1)
            assert old is not None and (old.format, old.layout_id) == ("text", None)
            data = (
                MessageRenderer(MessageContent.of(old), from_address="a@example.org", from_name="A")
                .render(RenderClient("c@example.com", "C"))
                .data
            )
            msg = email.message_from_bytes(data, policy=email.policy.default)
            assert msg.get_content_type() == "text/plain"
            assert msg.get_content().strip() == "# not a heading c@example.com"
            new = Message(owner_id=1, subject="New", body="B")
            session.add(new)
            session.flush()
            assert new.format == "markdown"
        migrations.downgrade(engine, "0001")
        migrations.upgrade(engine)
        with session_scope(engine, readonly=True) as session:
            assert set(session.exec(select(Message.format)).all()) == {"text"}
    finally:
        engine.dispose()
