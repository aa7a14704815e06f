from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class Role(StrEnum):
    user = "user"
    manager = "manager"
    editor = "editor"
    admin = "admin"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'manager', 'editor', 'admin')", name="ck_users_role"),
        CheckConstraint("email = lower(email)", name="ck_users_email_lower"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    full_name: str = Field(default="", max_length=200)
    password_hash: str = Field(default="", max_length=255)
    role: str = Field(default=Role.user.value, max_length=16)
    is_active: bool = Field(default=True)
    is_verified: bool = Field(default=False)
    date_joined: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Bumped by logout-everywhere, password changes and blocking: older sessions stop working.
    session_version: int = Field(default=0)
