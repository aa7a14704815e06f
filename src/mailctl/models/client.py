from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Index, UniqueConstraint
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
