from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class BounceKind(StrEnum):
    hard = "hard"  # permanent (5.x.x): suppressed at once
    soft = "soft"  # temporary (4.x.x): suppressed past [bounces] soft_limit in the window
    complaint = "complaint"  # marked as spam (an ARF report): suppressed at once


KIND_SQL = ", ".join(f"'{k.value}'" for k in BounceKind)
# A ledger row keeps the strongest it was told: a complaint outranks a hard bounce.
RANK = {BounceKind.soft.value: 1, BounceKind.hard.value: 2, BounceKind.complaint.value: 3}


class Bounce(SQLModel, table=True):
    """One bounce or complaint for one address of one owner, from a DSN, an ARF report or a
    relay's webhook. The address is kept only as its keyed hash (erasure leaves it as is)."""

    __tablename__ = "bounces"
    __table_args__ = (
        UniqueConstraint("ref", name="uq_bounces_ref"),
        CheckConstraint(f"kind IN ({KIND_SQL})", name="ck_bounces_kind"),
        Index("ix_bounces_owner_hash_time", "owner_id", "email_hash", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    delivery_id: int | None = Field(
        default=None, foreign_key="deliveries.id", ondelete="SET NULL", index=True
    )
    mailing_id: int | None = Field(default=None, foreign_key="mailings.id", ondelete="SET NULL")
    run_id: int | None = Field(default=None, foreign_key="mailing_runs.id", ondelete="SET NULL")
    email_hash: str = Field(max_length=64)  # tokens.address_hash
    kind: str = Field(max_length=16)
    status: str = Field(default="", max_length=16)  # the DSN's status code, 5.1.1
    reason: str = Field(default="", sa_type=Text)  # the diagnostic, for the record
    source: str = Field(max_length=32)  # mail, ses, postmark, sendgrid, mailgun, webhook
    # Makes a second import of the same report (or a webhook sent twice) count once.
    ref: str = Field(max_length=200)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BounceMailbox(SQLModel, table=True):
    """The bounce mailbox as the last fetch found it, for `mailctl status`."""

    __tablename__ = "bounce_mailboxes"

    name: str = Field(primary_key=True, max_length=300)  # protocol://user@host:port/folder
    last_fetch_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_ok_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=1000)
    last_summary: str = Field(default="", max_length=300)
    processed_total: int = Field(default=0)


class HookReceipt(SQLModel, table=True):
    """A relay webhook's token or message id already accepted: a replay of it is refused."""

    __tablename__ = "hook_receipts"
    __table_args__ = (UniqueConstraint("provider", "key", name="uq_hook_receipts_key"),)

    id: int | None = Field(default=None, primary_key=True)
    provider: str = Field(max_length=32)
    key: str = Field(max_length=200)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
