from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class Every(StrEnum):
    once = "once"
    day = "day"
    week = "week"
    month = "month"


class Audience(StrEnum):
    clients = "clients"  # the clients linked in mailing_clients
    tags = "tags"  # every client with any of the mailing's tags, worked out at each run
    all = "all"  # every client of the owner, worked out at each run


class MailingStatus(StrEnum):
    created = "created"
    started = "started"
    finished = "finished"


class Mailing(SQLModel, table=True):
    __tablename__ = "mailings"
    __table_args__ = (
        CheckConstraint("every IN ('once', 'day', 'week', 'month')", name="ck_mailings_every"),
        CheckConstraint("status IN ('created', 'started', 'finished')", name="ck_mailings_status"),
        CheckConstraint("end_at IS NULL OR end_at > start_at", name="ck_mailings_end_after_start"),
        CheckConstraint("audience IN ('clients', 'tags', 'all')", name="ck_mailings_audience"),
        # Each kind of audience, and the owners of "all clients" ones (migration 0018).
        Index("ix_mailings_audience_owner", "audience", "owner_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    message_id: int = Field(foreign_key="messages.id", ondelete="RESTRICT", index=True)
    every: str = Field(default=Every.once.value, max_length=8)
    # Who a run goes to, resolved when each run starts (runs.start_run); mailings made before
    # audiences existed keep their explicit clients.
    audience: str = Field(
        default=Audience.clients.value,
        max_length=8,
        sa_column_kwargs={"server_default": Audience.clients.value},
    )
    start_at: datetime = Field(sa_type=UTCDateTime)
    end_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    status: str = Field(default=MailingStatus.created.value, max_length=16)
    is_enabled: bool = Field(default=True)
    # The next run to start; NULL once no run is left. Advanced with a compare-and-set so
    # that two schedulers can never start the same run.
    next_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    last_run_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Why the last pass stopped early (circuit breaker, rejected login), shown to the owner.
    last_error: str | None = Field(default=None, max_length=1000)
    # A pass paused by a server's quota (per minute, hour or day) that was full: which server,
    # and when its window opens. A state of its own, not an error; cleared by the next pass.
    quota_server: str | None = Field(default=None, max_length=200)
    quota_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MailingClient(SQLModel, table=True):
    __tablename__ = "mailing_clients"

    mailing_id: int = Field(foreign_key="mailings.id", ondelete="CASCADE", primary_key=True)
    client_id: int = Field(
        foreign_key="clients.id", ondelete="CASCADE", primary_key=True, index=True
    )
