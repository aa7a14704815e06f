"""Events for outgoing webhooks: `emit` queues one delivery per webhook of the user that
subscribed to the event, in the caller's transaction (an event of a change that rolls back
is never sent). services/webhooks.py sends the queue from the daemon's tick and `run-due`."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from mailctl.db import utcnow
from mailctl.models import Webhook, WebhookDelivery

RUN_FINISHED = "run.finished"
MESSAGE_BOUNCED = "message.bounced"
CLIENT_SUBSCRIBED = "client.subscribed"
CLIENT_UNSUBSCRIBED = "client.unsubscribed"
EVENTS = (RUN_FINISHED, MESSAGE_BOUNCED, CLIENT_SUBSCRIBED, CLIENT_UNSUBSCRIBED)
TEST = "webhook.test"  # sent only by `mailctl webhook test`, to one webhook


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def body_of(event: str, data: dict[str, Any], *, at: datetime | None = None) -> str:
    """The JSON a receiver gets: a unique id (to spot a retry it already has), the event,
    when it happened and its data. Sent byte for byte on every try (and signed as such)."""
    payload = {
        "id": f"evt_{secrets.token_hex(12)}",
        "event": event,
        "created_at": (at or utcnow()).isoformat(),
        "data": data,
    }
    return json.dumps(payload, default=_jsonable, separators=(",", ":"), sort_keys=True)


def emit(session: Session, user_id: int, event: str, data: dict[str, Any]) -> None:
    """Queue `event` for each enabled webhook of `user_id` that subscribed to it."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    hooks = session.exec(
        select(Webhook).where(Webhook.owner_id == user_id, col(Webhook.is_enabled).is_(True))
    ).all()
    wanted = [h for h in hooks if event in (h.events or [])]
    if not wanted:
        return
    now = utcnow()
    body = body_of(event, data, at=now)
    session.add_all(
        WebhookDelivery(webhook_id=h.id or 0, event=event, body=body, next_attempt_at=now)
        for h in wanted
    )
