from datetime import datetime

from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class SignupForm(SQLModel, table=True):
    """A public sign-up form of one owner: who confirms through it gets the form's tags."""

    __tablename__ = "signup_forms"

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    # The form's public URL is /subscribe/<public_id>: random, so forms cannot be counted.
    public_id: str = Field(max_length=32, unique=True)
    title: str = Field(default="", max_length=200)
    redirect_url: str = Field(default="", max_length=500)  # where a confirmed visitor goes
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SignupFormTag(SQLModel, table=True):
    __tablename__ = "signup_form_tags"

    form_id: int = Field(foreign_key="signup_forms.id", ondelete="CASCADE", primary_key=True)
    tag_id: int = Field(foreign_key="tags.id", ondelete="CASCADE", primary_key=True, index=True)


class Consent(SQLModel, table=True):
    """Proof of a double opt-in: when it was asked and confirmed, through which form, from
    which IP. Goes with the client (erasure removes it)."""

    __tablename__ = "consents"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="clients.id", ondelete="CASCADE", index=True)
    form_id: int | None = Field(default=None, foreign_key="signup_forms.id", ondelete="SET NULL")
    ip: str = Field(default="", max_length=45)
    requested_at: datetime = Field(sa_type=UTCDateTime)
    confirmed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SpentToken(SQLModel, table=True):
    """Confirmation links already used (a hash of their nonce): each works once."""

    __tablename__ = "spent_tokens"

    digest: str = Field(primary_key=True, max_length=64)
    spent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
