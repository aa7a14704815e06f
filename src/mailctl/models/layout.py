from datetime import datetime

from sqlalchemy import Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class Layout(SQLModel, table=True):
    """An HTML email layout a user wrote: `{{ content }}` plus the footer (sending/compose.py)."""

    __tablename__ = "layouts"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_layouts_owner_id_name"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(max_length=100)
    html: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
