from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime, utcnow


class WorkerState(StrEnum):
    running = "running"  # beats every tick; an old heartbeat means it died or hangs
    stopped = "stopped"  # exited cleanly


class Worker(SQLModel, table=True):
    """A daemon, a run-due pass or a panel worker: its heartbeat, for `mailctl status`."""

    __tablename__ = "workers"

    id: str = Field(primary_key=True, max_length=120)
    kind: str = Field(max_length=16)
    hostname: str = Field(max_length=255)
    pid: int
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    state: str = Field(default=WorkerState.running.value, max_length=32)
