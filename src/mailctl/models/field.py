from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class ClientField(SQLModel, table=True):
    """A custom field an owner's clients may have (`{{ client.attrs.<name> }}`); the values
    live in clients.attrs, checked against these names whenever they are saved."""

    __tablename__ = "client_fields"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_client_fields_owner_name"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=40)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
