"""Outgoing webhooks: a user's URLs for events, and the delivery of the queue `events.emit`
fills. Each delivery is a JSON POST signed with HMAC-SHA256 over "<timestamp>.<body>"
(README, "Webhooks", says how a receiver checks it), tried until the receiver answers 2xx,
with doubling waits, at most `api.webhook_max_attempts` times; a webhook whose tries keep
failing (`api.webhook_disable_after` in a row) is disabled, and says why.

Sending happens outside any transaction: a row is claimed first (compare-and-set on its next
try time, so two daemons never post it at once), then posted with bounded timeouts, then its
outcome written. A crash between the post and the write means one more try later: receivers
tell a repeat by the event's id.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from mailctl import __version__
from mailctl.config import Settings
from mailctl.db import rowcount, session_scope, utcnow
from mailctl.errors import Invalid, NotFound
from mailctl.models import HookState, User, Webhook, WebhookDelivery
from mailctl.services.access import CONTENT_ROLES, require_role
from mailctl.services.events import EVENTS, TEST, body_of

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "Mailctl-Signature"
URL_MAX = 2000
BATCH = 50  # deliveries one pass claims
PASS_BUDGET = 60.0  # seconds one pass spends posting before it leaves the rest for the next
RETRY_MAX = timedelta(hours=6)


# -- the user's webhooks ----------------------------------------------------------------------


@dataclass(frozen=True)
class NewWebhook:
    webhook: Webhook
    secret: str  # to give the receiver; shown once


def clean_url(url: str) -> str:
    """An absolute http(s) URL with a host and no credentials in it (they would be logged)."""
    url = (url or "").strip()
    if len(url) > URL_MAX:
        raise Invalid(f"url is too long (at most {URL_MAX} characters)")
    if any(ch in url for ch in "\r\n\t "):
        raise Invalid("url must not contain spaces or line breaks")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"url must be an http:// or https:// address, not {url!r}")
    if parts.username or parts.password:
        raise Invalid("url must not carry a user name or password; the signature proves us")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise Invalid(f"url has a bad port: {url!r}") from None
    return url


def clean_events(names: Sequence[str]) -> list[str]:
    chosen = [n.strip() for n in names if n.strip()] or list(EVENTS)
    unknown = [n for n in chosen if n not in EVENTS]
    if unknown:
        raise Invalid(f"unknown event {unknown[0]!r}: use {', '.join(EVENTS)}")
    return [e for e in EVENTS if e in chosen]


def add_webhook(
    *, session: Session, actor: User, url: str, events: Sequence[str] = ()
) -> NewWebhook:
    require_role(actor, CONTENT_ROLES, "add webhooks")
    assert actor.id is not None
    secret = f"whsec_{secrets.token_urlsafe(32)}"
    hook = Webhook(
        owner_id=actor.id, url=clean_url(url), events=clean_events(events), secret=secret
    )
    session.add(hook)
    session.flush()
    return NewWebhook(hook, secret)


def list_webhooks(*, session: Session, actor: User) -> Sequence[Webhook]:
    require_role(actor, CONTENT_ROLES, "list webhooks")
    return session.exec(
        select(Webhook).where(Webhook.owner_id == actor.id).order_by(col(Webhook.id))
    ).all()


def get_webhook(*, session: Session, actor: User, webhook_id: int) -> Webhook:
    """One of the actor's own webhooks; anyone else's is "not found" (an admin's included:
    a webhook carries its owner's secret)."""
    require_role(actor, CONTENT_ROLES, "see webhooks")
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.owner_id != actor.id:
        raise NotFound(f"webhook {webhook_id} not found")
    return hook


def remove_webhook(*, session: Session, actor: User, webhook_id: int) -> None:
    session.delete(get_webhook(session=session, actor=actor, webhook_id=webhook_id))


def enable_webhook(*, session: Session, actor: User, webhook_id: int) -> Webhook:
    hook = get_webhook(session=session, actor=actor, webhook_id=webhook_id)
    hook.is_enabled, hook.failures, hook.disabled_reason = True, 0, ""
    session.add(hook)
    return hook


def last_deliveries(
    *, session: Session, actor: User, webhook_id: int, limit: int = 20
) -> Sequence[WebhookDelivery]:
    """The log: the latest deliveries with their tries and the last response code."""
    get_webhook(session=session, actor=actor, webhook_id=webhook_id)
    return session.exec(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(col(WebhookDelivery.id).desc())
        .limit(limit)
    ).all()


def queue_test(*, session: Session, actor: User, webhook_id: int) -> WebhookDelivery:
    """A `webhook.test` event for this webhook only, due at once."""
    hook = get_webhook(session=session, actor=actor, webhook_id=webhook_id)
    row = WebhookDelivery(
        webhook_id=hook.id or 0,
        event=TEST,
        body=body_of(TEST, {"webhook_id": hook.id, "url": hook.url}),
    )
    session.add(row)
    session.flush()
    return row


# -- signing ----------------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: str) -> str:
    """The signature header's value: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


# -- sending the queue ------------------------------------------------------------------------


@dataclass
class HookSummary:
    delivered: int = 0
    failed: int = 0  # tries that failed (to be retried, or given up)
    disabled: int = 0  # webhooks disabled by this pass

    @property
    def busy(self) -> bool:
        return bool(self.delivered or self.failed)


@dataclass(frozen=True)
class _Claimed:
    id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    body: str


def _claim(engine: Engine, now: datetime, lease: timedelta, only: int | None) -> list[_Claimed]:
    with session_scope(engine) as session:
        stmt = (
            select(WebhookDelivery, Webhook)
            .join(Webhook, col(Webhook.id) == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.state == HookState.pending.value,
                col(WebhookDelivery.next_attempt_at) <= now,
                col(Webhook.is_enabled).is_(True),
            )
            .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id))
            .limit(BATCH)
        )
        if only is not None:
            stmt = stmt.where(WebhookDelivery.id == only)
        claimed = []
        for row, hook in session.exec(stmt).all():
            taken = session.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.id) == row.id,
                    col(WebhookDelivery.next_attempt_at) == row.next_attempt_at,
                )
                .values(next_attempt_at=now + lease)
            )
            if rowcount(taken) == 1:
                claimed.append(
                    _Claimed(row.id or 0, hook.id or 0, hook.url, hook.secret, row.event, row.body)
                )
        return claimed


def _post(client: httpx.Client, item: _Claimed) -> tuple[int | None, str]:
    """(HTTP status or None, error text). Only the status is read: a receiver's body,
    however long, is never downloaded."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"mailctl-webhooks/{__version__}",
        "Mailctl-Event": item.event,
        "Mailctl-Delivery": str(item.id),
        SIGNATURE_HEADER: sign(item.secret, int(time.time()), item.body),
    }
    try:
        with client.stream("POST", item.url, content=item.body.encode(), headers=headers) as r:
            status = r.status_code
    except httpx.TimeoutException:
        return None, "timed out"
    except httpx.HTTPError as exc:
        return None, (str(exc) or type(exc).__name__)[:500]
    if 200 <= status < 300:
        return status, ""
    return status, f"answered {status}"


def _record(
    engine: Engine, settings: Settings, item: _Claimed, status: int | None, error: str
) -> str:
    """Write a try's outcome; returns "delivered", "retry", "failed" or "disabled"."""
    api = settings.api
    now = utcnow()
    with session_scope(engine) as session:
        row = session.get(WebhookDelivery, item.id)
        if row is None:  # the webhook was removed meanwhile
            return "failed"
        hook = session.get(Webhook, row.webhook_id)
        row.attempts += 1
        row.last_status, row.last_error = status, error
        if not error:
            row.state, row.delivered_at = HookState.delivered.value, now
            if hook is not None:
                hook.failures = 0
                session.add(hook)
            session.add(row)
            return "delivered"
        outcome = "retry"
        if row.attempts >= api.webhook_max_attempts:
            row.state, outcome = HookState.failed.value, "failed"
        else:
            wait = timedelta(seconds=api.webhook_retry_first_seconds * 2 ** (row.attempts - 1))
            row.next_attempt_at = now + min(wait, RETRY_MAX)
        session.add(row)
        if hook is not None:
            hook.failures += 1
            if hook.is_enabled and hook.failures >= api.webhook_disable_after:
                hook.is_enabled = False
                hook.disabled_reason = (
                    f"disabled after {hook.failures} failed tries in a row "
                    f"(last: {error}); `mailctl webhook enable {hook.id}` turns it on again"
                )[:300]
                outcome = "disabled"
                # What was still queued for it will not be sent: say so in its log.
                session.execute(
                    update(WebhookDelivery)
                    .where(
                        col(WebhookDelivery.webhook_id) == hook.id,
                        col(WebhookDelivery.state) == HookState.pending.value,
                    )
                    .values(state=HookState.failed.value, last_error="webhook disabled")
                )
                log.warning("webhook %s (%s) %s", hook.id, hook.url, hook.disabled_reason)
            session.add(hook)
        return outcome


def deliver_due(
    *, engine: Engine, settings: Settings, only: int | None = None, now: datetime | None = None
) -> HookSummary:
    """Post what is due (or the one delivery `only`), within one pass's budget."""
    timeout = max(settings.api.webhook_timeout_seconds, 0.1)
    lease = timedelta(seconds=timeout * 4 + 30)  # each httpx phase may take `timeout`
    summary = HookSummary()
    began = time.monotonic()
    items = _claim(engine, now or utcnow(), lease, only)
    if not items:
        return summary
    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
        disabled: set[int] = set()
        for index, item in enumerate(items):
            if item.webhook_id in disabled:
                continue  # disabled by an earlier try of this pass: its queue is closed
            if time.monotonic() - began > PASS_BUDGET:
                # Unsent claims are given back: due again at once for the next pass.
                _release(engine, [i.id for i in items[index:]])
                break
            status, error = _post(client, item)
            outcome = _record(engine, settings, item, status, error)
            if outcome == "delivered":
                summary.delivered += 1
            else:
                summary.failed += 1
                if outcome == "disabled":
                    summary.disabled += 1
                    disabled.add(item.webhook_id)
                log.info("webhook delivery %s to %s failed: %s", item.id, item.url, error)
    return summary


def _release(engine: Engine, ids: list[int]) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id).in_(ids))
            .values(next_attempt_at=utcnow())
        )
