from datetime import datetime

from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class TestSend(SQLModel, table=True):
    """One test send of a message: logged here, never in the ledger or the delivery log."""

    __tablename__ = "test_sends"
    __test__ = False  # not a pytest test class, whatever its name

    id: int | None = Field(default=None, primary_key=True)
    # Who asked (the panel throttles per user); the message may be someone else's (an admin).
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    message_id: int | None = Field(
        default=None, foreign_key="messages.id", ondelete="SET NULL", index=True
    )
    to_address: str = Field(max_length=254)
    # The client it was personalised as, or "sample".
    as_client: str = Field(max_length=254)
    status: str = Field(max_length=16)
    response: str | None = Field(default=None, max_length=1000)
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
