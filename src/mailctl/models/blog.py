from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class BlogPost(SQLModel, table=True):
    __tablename__ = "blog_posts"

    id: int | None = Field(default=None, primary_key=True)
    author_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    title: str = Field(max_length=200)
    content: str = Field(sa_type=Text)
    # A generated file name under the uploads dir, never a name a user chose.
    image: str | None = Field(default=None, max_length=100)
    views: int = Field(default=0)
    # Unpublished while NULL or in the future.
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
