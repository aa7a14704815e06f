from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class Tag(SQLModel, table=True):
    """A label on clients, per owner; a mailing may be addressed to tags."""

    __tablename__ = "tags"
    __table_args__ = (UniqueConstraint("owner_id", "name_key", name="uq_tags_owner_name"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=64)
    name_key: str = Field(max_length=64)  # lower(name): "News" and "news" are one tag
    # Public tags are offered on the preference page, for leaving one list but not all.
    is_public: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClientTag(SQLModel, table=True):
    __tablename__ = "client_tags"

    client_id: int = Field(foreign_key="clients.id", ondelete="CASCADE", primary_key=True)
    tag_id: int = Field(foreign_key="tags.id", ondelete="CASCADE", primary_key=True, index=True)


class MailingTag(SQLModel, table=True):
    """The tags a mailing with audience `tags` goes to (any of them)."""

    __tablename__ = "mailing_tags"

    mailing_id: int = Field(foreign_key="mailings.id", ondelete="CASCADE", primary_key=True)
    tag_id: int = Field(foreign_key="tags.id", ondelete="CASCADE", primary_key=True, index=True)
