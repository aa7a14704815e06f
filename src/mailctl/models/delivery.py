from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class DeliveryState(StrEnum):
    pending = "pending"  # not tried yet
    sending = "sending"  # handed to the mail server right now
    sent = "sent"  # the server accepted it
    failed = "failed"  # permanent refusal, or retries exhausted
    deferred = "deferred"  # temporary failure, retried after next_attempt_at
    unknown = "unknown"  # a crash left it in `sending`: maybe delivered, never resent by itself
    skipped = "skipped"  # not sent on purpose (unsubscribed, client deleted)


# The groups every module asks about, defined once. Plain strings, for SQL `IN (...)`.
PENDING, SENDING, SENT, FAILED, DEFERRED, UNKNOWN, SKIPPED = (s.value for s in DeliveryState)
# A sender may claim these (a deferred one once its next_attempt_at has come).
CLAIMABLE: tuple[str, ...] = (PENDING, DEFERRED)
# Still to be settled by a sender: a run (and a mailing) with none of these left is finished.
OPEN: tuple[str, ...] = (PENDING, SENDING, DEFERRED)
# What `mailctl status` lists as not done: the open ones, and unknown (an operator decides).
WAITING: tuple[str, ...] = (*OPEN, UNKNOWN)
# No sender touches these again by itself.
FINAL: tuple[str, ...] = (SENT, FAILED, UNKNOWN, SKIPPED)
# What one attempt in the log can say (a row is never logged as pending or sending).
LOGGED: tuple[str, ...] = tuple(s.value for s in DeliveryState if s.value not in (PENDING, SENDING))
# Outcomes a success rate counts: skipped rows were never meant to go, deferred ones are undecided.
DECIDED: tuple[str, ...] = (SENT, FAILED, UNKNOWN)

STATE_SQL = ", ".join(f"'{s.value}'" for s in DeliveryState)


class MailingRun(SQLModel, table=True):
    __tablename__ = "mailing_runs"
    __table_args__ = (UniqueConstraint("mailing_id", "scheduled_at", name="uq_runs_mailing_time"),)

    id: int | None = Field(default=None, primary_key=True)
    mailing_id: int = Field(foreign_key="mailings.id", ondelete="CASCADE", index=True)
    scheduled_at: datetime = Field(sa_type=UTCDateTime)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recipients: int = Field(default=0)


class Delivery(SQLModel, table=True):
    """The ledger: one row per (run, client), the truth about what was sent."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("run_id", "client_id", name="uq_deliveries_run_client"),
        CheckConstraint(f"state IN ({STATE_SQL})", name="ck_deliveries_state"),
        Index("ix_deliveries_claim", "state", "next_attempt_at"),
        Index("ix_deliveries_mailing_state", "mailing_id", "state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="mailing_runs.id", ondelete="CASCADE", index=True)
    mailing_id: int = Field(foreign_key="mailings.id", ondelete="CASCADE")
    client_id: int | None = Field(default=None, foreign_key="clients.id", ondelete="SET NULL")
    email: str = Field(max_length=254)
    state: str = Field(default=DeliveryState.pending.value, max_length=16)
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_code: int | None = Field(default=None)
    last_reply: str | None = Field(default=None, sa_type=Text)
    claimed_by: str | None = Field(default=None, max_length=120)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # A message `sent` and later bounced or complained about: hard, soft or complaint (the
    # strongest told; models.bounce), and when. The state stays what the server answered.
    bounce: str | None = Field(default=None, max_length=16)
    bounced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DeliveryAttempt(SQLModel, table=True):
    """The log: one row per attempt, what reports are built from."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (
        CheckConstraint(f"status IN ({STATE_SQL})", name="ck_attempts_status"),
        Index("ix_attempts_mailing_time", "mailing_id", "attempted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="deliveries.id", ondelete="CASCADE", index=True)
    mailing_id: int = Field(foreign_key="mailings.id", ondelete="CASCADE")
    run_id: int = Field(foreign_key="mailing_runs.id", ondelete="CASCADE")
    email: str = Field(max_length=254)
    attempted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: str = Field(max_length=16)
    smtp_code: int | None = Field(default=None)
    response: str | None = Field(default=None, sa_type=Text)
    # The mail server that answered (its name in [[smtp.servers]]); None for the outbox.
    server: str | None = Field(default=None, max_length=200)
