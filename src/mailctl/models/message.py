from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Text
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class BodyFormat(StrEnum):
    markdown = "markdown"
    html = "html"
    text = "text"


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("format IN ('markdown', 'html', 'text')", name="ck_messages_format"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    subject: str = Field(max_length=255)
    body: str = Field(sa_type=Text)
    # Markdown for new messages; rows from before formats existed migrate as text.
    format: str = Field(default=BodyFormat.markdown.value, max_length=8)
    # NULL: the default layout that ships with mailctl (text messages have none).
    layout_id: int | None = Field(
        default=None, foreign_key="layouts.id", ondelete="RESTRICT", index=True
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
