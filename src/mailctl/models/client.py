from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Index, UniqueConstraint, false
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class Client(SQLModel, table=True):
    __tablename__ = "clients"
    __table_args__ = (
        # email_key is lower(email), kept as a column so the unique key is plain and portable.
        UniqueConstraint("owner_id", "email_key", name="uq_clients_owner_email"),
        CheckConstraint("email_key = lower(email)", name="ck_clients_email_key"),
        # The home figure counts distinct addresses in this order (migration 0018).
        Index("ix_clients_email_key", "email_key", "owner_id"),
        # The owner's clients outside every audience, found when an "all clients" mailing
        # is added (migration 0018's triggers).
        Index("ix_clients_owner_reached", "owner_id", "reached"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    email: str = Field(max_length=254)
    email_key: str = Field(max_length=254)
    full_name: str = Field(default="", max_length=200)
    comment: str = Field(default="", max_length=2000)
    # Custom field values by name (models/field.py has the names an owner's clients may have).
    attrs: dict[str, str] = Field(
        default_factory=dict, sa_type=JSON, sa_column_kwargs={"server_default": "{}"}
    )
    unsubscribed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # In the audience of some mailing of its owner. Kept by the database's triggers
    # (migration 0018), never written by mailctl's code, and counted in ReachCount.
    reached: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class ReachEmail(SQLModel, table=True):
    """How many reached clients (of any owner) have this address; kept by triggers."""

    __tablename__ = "reach_emails"

    email_key: str = Field(primary_key=True, max_length=254)
    clients: int


class ReachCount(SQLModel, table=True):
    """The home figure "unique client emails across mailings", kept by triggers: per owner
    (that owner's reached clients) and, in the row of owner 0, across everyone (the
    addresses in reach_emails). Reading it costs one row, however many clients there are."""

    __tablename__ = "reach_counts"

    owner_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    clients: int
