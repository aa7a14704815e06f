from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class SuppressionReason(StrEnum):
    unsubscribed = "unsubscribed"
    bounce = "bounce"  # a hard bounce
    complaint = "complaint"  # marked as spam: only an admin may lift it
    manual = "manual"  # added by hand


class Suppression(SQLModel, table=True):
    """An address one owner must never mail, independent of any client row."""

    __tablename__ = "suppressions"
    __table_args__ = (
        UniqueConstraint("owner_id", "email_hash", name="uq_suppressions_owner_hash"),
        CheckConstraint(
            "reason IN ('unsubscribed', 'bounce', 'complaint', 'manual')",
            name="ck_suppressions_reason",
        ),
        Index("ix_suppressions_owner_email", "owner_id", "email_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    # lower(address); NULL once the person was erased, when only the keyed hash is left.
    email_key: str | None = Field(default=None, max_length=254)
    email_hash: str = Field(max_length=64)  # tokens.address_hash of email_key
    reason: str = Field(max_length=16)
    note: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Lifted entries stay, with why, so the list keeps its history; they block nothing.
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    removed_note: str = Field(default="", max_length=500)
