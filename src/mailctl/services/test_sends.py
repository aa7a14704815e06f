"""A test send: one message, rendered as a chosen client (or a sample one) would get it,
through the configured transport to one address. It is logged here (`test_sends`), never in
the ledger or the delivery log, and creates no mailing; a user gets a few an hour."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from mailctl.config import Settings
from mailctl.db import utcnow
from mailctl.errors import Conflict
from mailctl.models import TestSend, User
from mailctl.models.delivery import SENT
from mailctl.sending.links import Links
from mailctl.sending.pool import one_off
from mailctl.sending.templates import SAMPLE, Attrs, RenderClient
from mailctl.sending.transport import Transport
from mailctl.services.access import CONTENT_ROLES, require_role
from mailctl.services.clients import get_client
from mailctl.services.messages import get_message, render_limits, render_message
from mailctl.services.validation import clean_email

WINDOW = timedelta(hours=1)


def _check_throttle(session: Session, actor: User, per_hour: int) -> None:
    since = utcnow() - WINDOW
    stmt = select(func.count(), func.min(TestSend.sent_at)).where(
        TestSend.user_id == actor.id, TestSend.sent_at > since
    )
    count, oldest = session.exec(stmt).one()
    if count >= per_hour:
        if per_hour == 0:
            raise Conflict("test sends are turned off (delivery.test_sends_per_hour = 0)")
        wait = math.ceil(max(60.0, (oldest + WINDOW - utcnow()).total_seconds()) / 60)
        raise Conflict(
            f"too many test sends: at most {per_hour} an hour"
            f" (delivery.test_sends_per_hour); try again in {wait} minutes"
        )


def send_test(
    *,
    session: Session,
    actor: User,
    settings: Settings,
    message_id: int,
    to: str | None = None,
    client_id: int | None = None,
    transport: Transport | None = None,
) -> TestSend:
    """Send the message once to `to` (the actor's own address by default), personalised as
    `client_id` (one of the message owner's clients) or a sample client; the row says how
    it went. A refused or failed send is logged too, and reported by its status."""
    require_role(actor, CONTENT_ROLES, "send test messages")
    assert actor.id is not None
    message = get_message(session=session, actor=actor, message_id=message_id)
    to_address = clean_email(to if to is not None else actor.email)
    links = Links.from_settings(settings)
    if client_id is not None:
        client = get_client(session=session, actor=actor, client_id=client_id)
        if client.owner_id != message.owner_id:
            raise Conflict(f"client {client_id} and message {message_id} belong to different users")
        as_client = RenderClient(
            email=client.email, full_name=client.full_name, attrs=Attrs(client.attrs)
        )
        web_url = links.web_url(message_id, client_id)
    else:
        as_client, web_url = SAMPLE, f"{links.base_url}/view/test"
    _check_throttle(session, actor, settings.delivery.test_sends_per_hour)
    delivery = settings.delivery
    rendered = render_message(
        session,
        message,
        as_client,
        from_address=delivery.from_address,
        from_name=delivery.from_name,
        limits=render_limits(settings),
        postal_address=delivery.postal_address,
        # Not the client's real unsubscribe link: whoever tests must not unsubscribe them.
        links=(f"{links.base_url}/unsubscribe/test", web_url),
        to_address=to_address,
    )
    own = transport is None
    transport = transport or one_off(settings)
    try:
        outcome = transport.send(
            sender=delivery.from_address, recipient=to_address, data=rendered.data
        )
    finally:
        if own:
            transport.close()
    row = TestSend(
        user_id=actor.id,
        message_id=message.id,
        to_address=to_address,
        as_client="sample" if client_id is None else as_client.email,
        status=outcome.status,
        response=(outcome.reply or "")[:1000] or None,
    )
    session.add(row)
    session.flush()
    return row


def was_sent(row: TestSend) -> bool:
    return row.status == SENT


def list_test_sends(
    *, session: Session, actor: User, message_id: int, limit: int = 20
) -> Sequence[TestSend]:
    """The latest test sends of a message the actor may see."""
    message = get_message(session=session, actor=actor, message_id=message_id)
    stmt = (
        select(TestSend)
        .where(TestSend.message_id == message.id)
        .order_by(TestSend.id.desc())  # type: ignore[union-attr]
        .limit(limit)
    )
    return session.exec(stmt).all()
