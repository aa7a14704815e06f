from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class KeyScope(StrEnum):
    read = "read"  # GET only
    write = "write"  # every call the key's user may make


class ApiKey(SQLModel, table=True):
    """A key for /api/v1: acts as its user, with that user's role, within its scope."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("scope IN ('read', 'write')", name="ck_api_keys_scope"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    name: str = Field(default="", max_length=100)
    scope: str = Field(default=KeyScope.write.value, max_length=8)
    # The key's public part (in the key itself, shown in lists): finds the row to compare with.
    prefix: str = Field(max_length=16, unique=True)
    digest: str = Field(max_length=64)  # HMAC-SHA256 of the whole key (services/apikeys.py)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
