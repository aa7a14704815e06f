from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Index, Text
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class HookState(StrEnum):
    pending = "pending"  # waiting for its (next) try
    delivered = "delivered"  # the receiver answered 2xx
    failed = "failed"  # gave up: out of tries, or the webhook was disabled meanwhile


class Webhook(SQLModel, table=True):
    """A URL of one user's that is sent the events it subscribed to."""

    __tablename__ = "webhooks"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    url: str = Field(max_length=2000)
    events: list[str] = Field(default_factory=list, sa_type=JSON)
    # The signing secret: the receiver needs the same one, so it is kept as it is (a hash
    # could not sign). Shown once at creation.
    secret: str = Field(max_length=64)
    is_enabled: bool = Field(default=True)
    failures: int = Field(default=0)  # consecutive failed deliveries; reset by a success
    disabled_reason: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class WebhookDelivery(SQLModel, table=True):
    """One event for one webhook: the queue and its log (tries, last response code)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')", name="ck_webhook_deliveries_state"
        ),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    webhook_id: int = Field(foreign_key="webhooks.id", ondelete="CASCADE", index=True)
    event: str = Field(max_length=40)
    body: str = Field(sa_type=Text)  # the exact JSON sent (and signed) on every try
    state: str = Field(default=HookState.pending.value, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_status: int | None = Field(default=None)  # the receiver's HTTP code, if it answered
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
